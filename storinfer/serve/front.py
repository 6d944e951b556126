"""The store front: the lookup-or-remember logic every face shares.

``StorInferCache`` (LangChain LLM cache), ``StorInferChain`` (LangChain chain wrapper) and
``StorInferQueryEngine`` (LlamaIndex) all go through one :class:`StoreFront`. A lookup goes
front -> match -> store once:

    front.lookup -> match.lookup.find (the exact key, else the k nearest: the only store read)
                 -> learner.decide (or, without a learner, policy.decide at the policy's point)
                 -> [policy.llm_check, for a doubtful miss]

A failing store is a miss (so it costs time, never an answer). After a miss the app's chain
answers; :meth:`StoreFront.remember` turns that answer into the learner's label and stores it
(off the caller's path).

Read your own writes: a lookup also sees the answers still queued for writing, an exact repeat
by id and a rewording by vector, so a paraphrase asked right after its question is served.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from storinfer.errors import ConfigError
from storinfer.match.features import Query, same_answer_key
from storinfer.match.lookup import Candidates, find
from storinfer.match.policy import Policy, VerifierPolicy
from storinfer.models.identity import cosine
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, Lookup, Match, QAPair, Reason
from storinfer.serve.learner import Learner, LearnerLike, PartitionLearning, check_rate, with_rate
from storinfer.serve.stats import LookupStats
from storinfer.serve.worker import Worker
from storinfer.serve.writeback import WriteBehind, write_pairs
from storinfer.store import QAStore
from storinfer.store.encoding import metadata
from storinfer.text import clean_text, pair_id

logger = logging.getLogger(__name__)
DEFAULT_LEARNER = Learner()
"""The learner every face uses unless given another (a frozen configuration: safe to share)."""
_PENDING = 256
_AUDITS = 64
"""Audits (chain runs checking a served answer) that may wait; past that, one is skipped."""
_SHOWN_LEARNERS = 256
"""Learners a front lists in ``stats()`` (the most recently used)."""


def learner_option(learner: LearnerLike | None, max_wrong_rate: float | None) -> LearnerLike | None:
    """The learner a face runs: ``learner`` with ``max_wrong_rate`` set on it, if given."""
    if max_wrong_rate is None:
        return learner
    check_rate(max_wrong_rate)
    if learner is None:
        msg = ("max_wrong_rate needs a learner: drop learner=None, or leave max_wrong_rate unset to serve at the "
               "policy's operating point.")
        raise ConfigError(msg)
    return with_rate(learner, max_wrong_rate)


def check_options(*, store: object, namespace: object, partition: object, policy: object, learner: object,
                  store_misses: object, ttl_seconds: object) -> None:
    """Raise :class:`ConfigError` naming the fix for the first option a face cannot use (every face
    builds a StoreFront, so every face refuses a bad option the same way)."""
    if not isinstance(store, QAStore):
        msg = (f"store must be a storinfer QAStore or the folder of a local store, not {type(store).__name__}: "
               "QAStore(path, embedding=...) for another embedder, QAStore(host=..., port=...) for a Chroma server.")
        raise ConfigError(msg)
    for name, value in (("namespace", namespace), ("partition", partition)):
        if not isinstance(value, str) or not value.strip():
            msg = f"{name} must be a non-empty string (e.g. your tenant or app name), got {value!r}."
            raise ConfigError(msg)
    if policy is not None and not all(callable(getattr(policy, m, None)) for m in ("bind", "assess", "decide")):
        msg = (f"policy must be a storinfer Policy, not {type(policy).__name__}: VerifierPolicy(...), ThresholdPolicy(...), "
               "or None for the shipped verifier.")
        raise ConfigError(msg)
    if learner is not None and not callable(getattr(learner, "start", None)):
        msg = (f"learner must be a storinfer Learner, not {type(learner).__name__}: Learner(max_wrong_rate=...), or None "
               "to serve at the policy's operating point.")
        raise ConfigError(msg)
    if not isinstance(store_misses, bool):
        msg = f"store_misses must be True (store the chain's answers to misses) or False, got {store_misses!r}."
        raise ConfigError(msg)
    if ttl_seconds is not None and not (
        isinstance(ttl_seconds, (int, float)) and math.isfinite(ttl_seconds) and ttl_seconds > 0
    ):
        msg = f"ttl_seconds must be a positive number of seconds, or None for answers that never expire; got {ttl_seconds!r}."
        raise ConfigError(msg)


class StoreFront:
    """Looks questions up, serves what the policy or the learner admits, remembers the chain's answers.

    Setup:
        ```bash
        pip install 'storinfer[local]'   # the offline MiniLM; or QAStore(path, embedding=yours)
        ```

    Instantiate:
        ```python
        from storinfer import QAStore, StoreFront

        front = StoreFront("./storinfer_db")          # or a QAStore (server mode: QAStore(host=...))
        ```

    Usage:
        ```python
        answer, lookup = front.answer("Who won Super Bowl 50?", my_chain)   # a hit, or my_chain's answer
        front.stats()["hits"], lookup.reason
        ```

    Args:
        store: the :class:`~storinfer.QAStore`, or a folder (opened as ``QAStore(folder)``).
        namespace, partition: where in the store (``partition`` can be overridden per call).
        max_wrong_rate: the expected share of served answers allowed to be wrong, set on the learner
            (default: the learner's own, 0.01).
        policy: how candidates are decided (default :class:`~storinfer.match.policy.VerifierPolicy`).
        learner: how much to serve, learnt from the chain's answers (default
            :class:`~storinfer.serve.learner.Learner`); None: serve at the policy's point, learn nothing.
        store_misses: store the chain's answers to missed questions.
        ttl_seconds: remembered answers expire after this long (None: never).
        write_behind: store them from a background thread (False: on the caller's thread).
    """

    def __init__(
        self,
        store: QAStore | str | os.PathLike[str],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        partition: str = DEFAULT_PARTITION,
        max_wrong_rate: float | None = None,
        policy: Policy | None = None,
        learner: LearnerLike | None = DEFAULT_LEARNER,
        store_misses: bool = True,
        ttl_seconds: float | None = None,
        write_behind: bool = True,
    ) -> None:
        if isinstance(store, (str, os.PathLike)):
            store = QAStore(store)
        check_options(store=store, namespace=namespace, partition=partition, policy=policy, learner=learner,
                      store_misses=store_misses, ttl_seconds=ttl_seconds)
        self.store = store
        self.namespace, self.partition = namespace, partition
        self.policy: Policy = (policy or VerifierPolicy()).bind(store)
        self.learner = learner_option(learner, max_wrong_rate)
        self.store_misses, self.ttl_seconds = store_misses, ttl_seconds
        self._learners: OrderedDict[str, PartitionLearning] = OrderedDict()
        self._learners_lock = threading.Lock()
        self.counters = LookupStats()
        self._pending: OrderedDict[tuple[str, str], tuple[Lookup, float]] = OrderedDict()
        self._pending_lock = threading.Lock()
        self.writer = WriteBehind(store, on_written=self._count_written, on_error=self._count_failed) if write_behind else None
        self._auditor: Worker | None = None
        self._audit_lock = threading.Lock()

    @property
    def max_wrong_rate(self) -> float | None:
        return self.learner.max_wrong_rate if self.learner is not None else None

    def learning(self, partition: str | None = None) -> PartitionLearning | None:
        """The learner of a partition (None with ``learner=None``): one per store, namespace and
        partition in the process, shared with every other face on the same store."""
        if self.learner is None:
            return None
        part = partition or self.partition
        found = self.learner.start(self.store, self.namespace, part, self.policy)
        with self._learners_lock:
            self._learners[part] = found
            self._learners.move_to_end(part)
            while len(self._learners) > _SHOWN_LEARNERS:
                self._learners.popitem(last=False)
        return found

    # --- lookups -----------------------------------------------------------------------------
    def lookup(self, question: str, *, partition: str | None = None, learner_partition: str | None = None,
               race: threading.Event | None = None, audit: bool = True) -> Lookup:
        """What to serve for ``question``, counted. Never raises: a failing store is logged, counted as
        an error, and is a miss.

        ``learner_partition``: the partition whose learner decides (default: ``partition``), so that
        partitions of one kind of traffic (a chat model's conversations) learn together.
        ``race``: set when the app's chain, started beside this lookup, has answered (an LLM check
        still deciding then stops: the chain won). ``audit``: the caller runs the chain after a hit with
        ``audit`` set and hands its answer to :meth:`remember` (:meth:`audit` does it in the background);
        False (an LLM cache, which cannot): the learner's checks are misses instead."""
        part = partition or self.partition
        self.counters.count("lookups")
        found = self._queued_answer(question, part)
        if found is None:
            try:
                found = self._decide(question, part, learner_partition or part, race, audit)
            except Exception:
                logger.warning("StorInfer lookup failed; running the app's chain instead", exc_info=True)
                self.counters.count("errors")
                return Lookup(None, Reason.STORE_ERROR)
        self.counters.record(question, found)
        if found.match is None and isinstance(question, str):
            with self._pending_lock:  # for remember() after a lookup it was not handed (LangChain's cache)
                self._pending[(part, clean_text(question))] = (found, time.perf_counter())
                while len(self._pending) > _PENDING:
                    self._pending.popitem(last=False)
        return found

    def _decide(self, question: str, part: str, learner_part: str, race: threading.Event | None, audit: bool) -> Lookup:
        with self.store.reading():
            found = find(self.store, question, namespace=self.namespace, partition=part, k=self.policy.k,
                         extra=self._queued_candidates(part))
            if not isinstance(found, Candidates):
                return found
            query = Query(found.question)
            learning = self.learning(learner_part)
            decided = (learning.decide(query, found, self.policy, audit=audit) if learning is not None
                       else self.policy.decide(query, found))
        if decided.match is None and decided.reason is not Reason.EXPLORE and self.policy.llm_check is not None:
            decided = self._check(found.question, decided, learning, race)
        return decided

    def _check(self, question: str, found: Lookup, learning: PartitionLearning | None,
               race: threading.Event | None) -> Lookup:
        """Serve a doubtful candidate the LLM check accepts (see :mod:`storinfer.match.llm_check`): outside
        ``max_wrong_rate`` (counted apart, ``stats()["llm_check"]``), never an answer the learner has cut."""
        check: Any = self.policy.llm_check
        if not found.candidates:
            return found
        if not check.pays():
            check.counts["skipped_not_paying"] += 1
            return found
        cut = getattr(learning, "answer_cut", None)
        for cand, score in check.doubtful(self.policy, question, found.candidates):
            if cut is not None and score < cut(same_answer_key(cand)):
                continue
            verdict = check.ask(question, cand.question, race)
            if verdict is None:
                return found  # the chain answered first
            if verdict:
                return Lookup(cand, Reason.LLM_CHECK, best_similarity=found.best_similarity, rejected=found.rejected,
                              score=score, vector=found.vector, candidates=found.candidates)
        return found

    def _queued_answer(self, question: str, partition: str) -> Lookup | None:
        """An exact repeat of a question whose answer still waits in the write-back queue."""
        if self.writer is None or not self.writer.pending or not isinstance(question, str):
            return None
        q = clean_text(question)
        pair = self.writer.queued(pair_id(self.namespace, partition, q)) if q else None
        if pair is None or (pair.expires_at and pair.expires_at <= time.time()):
            return None
        return Lookup(Match(pair.id, q, pair.answer, 1.0, metadata(pair, time.time()), exact=True), Reason.EXACT,
                      best_similarity=1.0)

    def _queued_candidates(self, partition: str) -> Callable[[list[float]], list[Match]] | None:
        """Candidates from the answers still queued for writing, by vector (read your own writes)."""
        if self.writer is None or not self.writer.pending:
            return None
        pairs = [p for p in self.writer.queued_pairs() if p.partition == partition and p.namespace == self.namespace
                 and p.vector is not None and not (p.expires_at and p.expires_at <= time.time())]
        if not pairs:
            return None

        def extra(vector: list[float]) -> list[Match]:
            now = time.time()
            return [Match(p.id, clean_text(p.question), p.answer, cosine(vector, p.vector or []), metadata(p, now))
                    for p in pairs]

        return extra

    # --- misses: learn, then remember -----------------------------------------------------------
    def remember(self, question: str, answer: str, *, partition: str | None = None, learner_partition: str | None = None,
                 lookup: Lookup | None = None, **provenance: Any) -> None:
        """After a miss: label the lookup's best candidate with the chain's answer, then store the answer
        (skipped when off, empty, or unmatchable). After a hit with ``audit`` set: label the served answer,
        and store the chain's only if it differs. Never raises.

        With ``write_behind`` this only queues the pair. ``lookup``, the miss's own lookup, lends its
        candidates to the label and its query vector to the key (when the embedder is symmetric, so
        the key is not embedded twice)."""
        part = partition or self.partition
        if not isinstance(answer, str) or not answer.strip() or not isinstance(question, str):
            return
        with self._pending_lock:
            kept, looked_up_at = self._pending.pop((part, clean_text(question)), (None, None))
        lookup = lookup or kept
        check: Any = self.policy.llm_check
        if check is not None and looked_up_at is not None:
            check.record_miss((time.perf_counter() - looked_up_at) * 1000)
        learning = self.learning(learner_partition or part) if lookup is not None else None
        label = None
        if learning is not None and lookup is not None:
            try:
                label = learning.learn(clean_text(question), lookup, answer)
            except Exception:
                logger.warning("StorInfer could not label a miss; it is still answered", exc_info=True)
        if lookup is not None and lookup.audit:
            self.counters.count("audits")
            if label is None or label.right:
                return  # the served answer stands: nothing new to store
        if not self.store_misses or self.store.question_problem(question) is not None:
            return
        expires = time.time() + self.ttl_seconds if self.ttl_seconds else 0.0
        vector = lookup.vector if lookup is not None and self.store.symmetric_embedder else None
        pair = QAPair(question, answer, namespace=self.namespace, partition=part, origin="runtime", expires_at=expires,
                      vector=vector, **provenance)
        if self.writer is not None:
            self.writer.submit(pair)
        else:
            write_pairs(self.store, [pair], self._count_written, self._count_failed)

    def _count_written(self, n: int) -> None:
        self.counters.count("updates", n)

    def _count_failed(self, n: int) -> None:
        self.counters.count("errors", n)

    async def aremember(self, question: str, answer: str, **kwargs: Any) -> None:
        """Async :meth:`remember`: just queue puts with ``write_behind``, else in a worker thread."""
        if self.writer is not None:
            self.remember(question, answer, **kwargs)
        else:
            await asyncio.to_thread(self.remember, question, answer, **kwargs)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every audit has run and every queued answer and label is stored; True if none is left."""
        audited = self._auditor.flush(timeout) if self._auditor is not None else True
        done = (self.writer.flush(timeout) if self.writer is not None else True) and audited
        with self._learners_lock:
            learners = list(self._learners.values())
        return all([lr.flush(timeout) for lr in learners]) and done

    def close(self) -> None:
        """Store what is queued and stop the writer (the store stays open)."""
        with self._learners_lock:
            learners = list(self._learners.values())
        if self._auditor is not None:
            self._auditor.flush(30)
        for lr in learners:
            lr.flush(30)
        if self.writer is not None:
            self.writer.close()

    def answer(self, question: str, run: Callable[[str], str]) -> tuple[str, Lookup]:
        """The stored answer on a hit (checked by ``run`` in the background if it is an audit); else
        ``run(question)``, learnt from and remembered. Returns ``(answer, lookup)``."""
        found = self.lookup(question)
        if found.match is not None:
            self.audit(question, found, run)
            return found.match.answer, found
        text = run(question)
        self.remember(question, text, lookup=found)
        return text, found

    def audit(self, question: str, found: Lookup, run: Callable[[str], str]) -> None:
        """If ``found`` is a hit to check (``audit`` set), run the chain on ``question`` in the background and
        :meth:`remember` its answer (a label of the served answer). At most :data:`_AUDITS` wait; past that
        one is skipped (counted ``audits_skipped``). A failing chain is logged, never raised."""
        if not found.audit:
            return

        def task() -> None:
            try:
                text = run(question)
            except Exception:
                logger.warning("StorInfer's audit of a served answer failed; nothing is learnt from it", exc_info=True)
                self.counters.count("audits_failed")
                return
            self.remember(question, text, lookup=found)

        with self._audit_lock:
            if self._auditor is None:
                self._auditor = Worker(name="storinfer-audit")
            if self._auditor.pending >= _AUDITS:
                self.counters.count("audits_skipped")
                return
            self._auditor.submit(task)

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, the similarity of hits (recent ones listed), the write-back
        queue (``pending_writes``: a crash would lose these; ``writes_inline``), and per partition
        the learner: its limit, expected wrong rate, labels and exploration (``explore_per_query``)."""
        out = self.counters.as_dict()
        out["pending_writes"] = self.writer.pending if self.writer is not None else 0
        out["writes_inline"] = self.writer.inline if self.writer is not None else 0
        with self._learners_lock:
            learners = dict(self._learners)
        out["learner"] = {part: lr.stats() for part, lr in learners.items()}
        explored = sum(lr.counts["explored"] for lr in learners.values())
        out["explored"] = explored
        out["explore_per_query"] = explored / out["lookups"] if out["lookups"] else 0.0
        out["max_wrong_rate"] = self.max_wrong_rate
        check: Any = self.policy.llm_check
        if check is not None:
            out["llm_check"] = check.stats()
        return out
