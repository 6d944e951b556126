"""Serve: answer from the store on a hit, run the app's chain on a miss, and learn from both.

* :mod:`~storinfer.serve.front`: :class:`StoreFront`, the lookup-or-remember logic every face shares;
* :mod:`~storinfer.serve.writeback`: a miss's answer stored off the caller's path;
* :mod:`~storinfer.serve.speculate`: the chain started beside the lookup;
* :mod:`~storinfer.serve.stats`: the counters behind ``stats()``.
"""

from storinfer.serve.front import StoreFront, atee, open_store, store_misses_option, tee

__all__ = ["StoreFront", "atee", "open_store", "store_misses_option", "tee"]
