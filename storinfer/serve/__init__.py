"""Serve: answer from the store on a hit, run the app's chain on a miss, and learn from both.

* :mod:`~storinfer.serve.front`: :class:`StoreFront`, the lookup-or-remember logic every face shares;
* :mod:`~storinfer.serve.learner`: :class:`Learner`, how far each partition serves from the policy's point,
  learnt from its misses and explored hits under ``max_wrong_rate``; :mod:`~storinfer.serve.evidence` chooses
  the cuts from the labels; :mod:`~storinfer.serve.worker` runs it in the background;
* :mod:`~storinfer.serve.writeback`: a miss's answer stored off the caller's path;
* :mod:`~storinfer.serve.speculate`: the chain started beside the lookup;
* :mod:`~storinfer.serve.stats`: the counters behind ``stats()``;
* :mod:`~storinfer.serve.streams`: streamed misses, stored at their end.
"""

from storinfer.serve.front import DEFAULT_LEARNER, StoreFront
from storinfer.serve.learner import Learner, LearnerLike
from storinfer.serve.streams import atee, tee

__all__ = ["DEFAULT_LEARNER", "Learner", "LearnerLike", "StoreFront", "atee", "tee"]
