"""Serve: answer from the store on a hit, run the app's chain on a miss, and learn from both.

* :mod:`~storinfer.serve.front`: :class:`StoreFront`, the lookup-or-remember logic every face shares;
* :mod:`~storinfer.serve.decision`: each partition's operating point, learnt from its misses and
  explored hits under ``max_wrong_rate``;
* :mod:`~storinfer.serve.writeback`: a miss's answer stored off the caller's path;
* :mod:`~storinfer.serve.speculate`: the chain started beside the lookup;
* :mod:`~storinfer.serve.stats`: the counters behind ``stats()``.
"""

from storinfer.serve.decision import Decision
from storinfer.serve.front import DEFAULT_MAX_WRONG_RATE, StoreFront
from storinfer.serve.options import open_store, store_misses_option
from storinfer.serve.streams import atee, tee

__all__ = ["DEFAULT_MAX_WRONG_RATE", "Decision", "StoreFront", "atee", "open_store", "store_misses_option", "tee"]
