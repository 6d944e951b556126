"""The store front: the lookup-or-remember logic every face shares.

``StorInferCache`` (LangChain LLM cache), ``StorInferChain`` (LangChain chain wrapper) and
``StorInferQueryEngine`` (LlamaIndex) all go through one :class:`StoreFront`: it looks a question
up with the same settings, serves what the partition's decision (:mod:`storinfer.serve.decision`)
admits, counts hits and misses, treats a failing store as a miss, stores the answer of a miss
(off the caller's path), and turns the miss's answer into a label the decision learns from.

Read your own writes: a lookup also sees the answers still queued for writing, an exact repeat
by id and a rewording by vector, so a paraphrase asked right after its question is served.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from storinfer.errors import StoreConfigError, validate_threshold
from storinfer.match.judge import AnswerJudge
from storinfer.match.lookup import DEFAULT_K
from storinfer.match.verify import Verifier
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, Lookup, Match, QAPair
from storinfer.serve.decision import Decision, Worker
from storinfer.serve.judge_band import JudgeBand
from storinfer.serve.options import open_store, store_misses_option  # noqa: F401  (re-exported)
from storinfer.serve.stats import LookupStats
from storinfer.serve.streams import atee, tee  # noqa: F401  (re-exported)
from storinfer.serve.writeback import WriteBehind, write_pairs
from storinfer.store import QAStore
from storinfer.store.encoding import metadata
from storinfer.text import clean_text, pair_id

logger = logging.getLogger(__name__)
DEFAULT_MAX_WRONG_RATE = 0.01
_PENDING = 256


class StoreFront:
    """Looks questions up, serves what the decision admits, remembers answers and learns from them.

    Args:
        store: the :class:`QAStore`.
        namespace, partition: where in the store (``partition`` can be overridden per call).
        similarity_threshold: the cosine floor for candidates; None (default): the decision's.
        guard: check candidates (the verifier). False: cosine alone, for measurement.
        verifier: the :class:`~storinfer.match.verify.Verifier` whose operating point is the prior
            (default: the store's, at the point ``storinfer calibrate`` recorded, else the shipped
            one); False: StorInfer 0.1's look-alike rules at ``similarity_threshold`` (0.95).
        max_wrong_rate: the share of served answers allowed to be wrong (default 0.01). Each
            partition's operating point is refit from its labels to serve the most under it, at a
            one-sided 95% bound. None: serve at the prior point and learn nothing (StorInfer 0.3).
        explore_rate: share of would-be hits held back and answered by the chain, to check them
            (each costs what a miss costs; default 0.05).
        answer_judge: compares the chain's answer with a stored one (default: text overlap).
        seed: seeds exploration's draws (default 0: a fixed sequence, so runs repeat).
        k: nearest stored questions tried per lookup.
        store_misses: store the answers of misses.
        ttl_seconds: remembered answers expire after this long (None: never).
        on_miss: what runs instead on a miss, for log messages ("the model", "the chain"...).
        judge: a :class:`~storinfer.serve.judge_band.JudgeBand` asked about candidates just below
            the cut (off by default; see that module for when it pays).
    """

    def __init__(
        self,
        store: QAStore,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        partition: str = DEFAULT_PARTITION,
        similarity_threshold: float | None = None,
        guard: bool = True,
        k: int = DEFAULT_K,
        verifier: Verifier | bool | None = None,
        max_wrong_rate: float | None = DEFAULT_MAX_WRONG_RATE,
        explore_rate: float = 0.05,
        answer_judge: AnswerJudge | None = None,
        seed: int | None = 0,
        store_misses: bool = True,
        write_behind: bool = True,
        max_pending: int = 1024,
        ttl_seconds: float | None = None,
        on_miss: str = "the model",
        decision_options: dict[str, Any] | None = None,
        judge: JudgeBand | None = None,
    ) -> None:
        if ttl_seconds is not None and not (
            isinstance(ttl_seconds, (int, float)) and math.isfinite(ttl_seconds) and ttl_seconds > 0
        ):
            msg = f"ttl_seconds must be a positive number of seconds or None, got {ttl_seconds!r}"
            raise StoreConfigError(msg)
        if not isinstance(namespace, str) or not namespace.strip():
            msg = "namespace must be a non-empty string (e.g. your tenant or app name)."
            raise StoreConfigError(msg)
        if max_wrong_rate is not None and not (isinstance(max_wrong_rate, (int, float)) and 0 < max_wrong_rate < 1):
            msg = f"max_wrong_rate must be a share between 0 and 1 (e.g. 0.01), or None, got {max_wrong_rate!r}"
            raise StoreConfigError(msg)
        if not (isinstance(explore_rate, (int, float)) and 0 <= explore_rate <= 0.5):
            msg = f"explore_rate must be a share between 0 and 0.5 (e.g. 0.05), got {explore_rate!r}"
            raise StoreConfigError(msg)
        self.store = store
        self.namespace = namespace
        self.partition = partition
        self.similarity_threshold = None if similarity_threshold is None else validate_threshold(similarity_threshold)
        self.guard = guard
        self.verifier = verifier
        self.k = int(k)
        self.store_misses = store_misses
        self.ttl_seconds = ttl_seconds
        self.on_miss = on_miss
        learning = max_wrong_rate is not None and guard and verifier is not False
        self.max_wrong_rate = max_wrong_rate if learning else None
        self.explore_rate = float(explore_rate)
        self.answer_judge = answer_judge
        self._seed = seed
        self._decision_options = dict(decision_options or {})
        self._decisions: dict[str, Decision] = {}
        self._decisions_lock = threading.Lock()
        self._worker = Worker()
        self.counters = LookupStats()
        self.judge = judge
        self._pending: OrderedDict[tuple[str, str], tuple[Lookup, float]] = OrderedDict()
        self._pending_lock = threading.Lock()
        self.writer = WriteBehind(store, max_pending=max_pending, on_written=self._count_written,
                                  on_error=self._count_failed) if write_behind else None

    # --- the decision of each partition ----------------------------------------------------------
    def decision(self, partition: str | None = None) -> Decision | None:
        """The serve decision of a partition (None when ``max_wrong_rate=None``)."""
        if self.max_wrong_rate is None:
            return None
        part = partition or self.partition
        with self._decisions_lock:
            if part not in self._decisions:
                self._decisions[part] = Decision(
                    self.store, self.namespace, part, self._worker, max_wrong_rate=self.max_wrong_rate,
                    explore_rate=self.explore_rate, judge=self.answer_judge, seed=self._seed,
                    verifier=self.verifier if isinstance(self.verifier, Verifier) else None, **self._decision_options)
            return self._decisions[part]

    # --- lookups -----------------------------------------------------------------------------
    def lookup(self, question: str, *, partition: str | None = None, race: threading.Event | None = None) -> Lookup:
        """The decision for ``question``, counted. Never raises: a failing store is logged,
        counted as an error, and is a miss (so it costs time, never an answer).

        ``race``: set when the app's chain, started beside this lookup, has answered (a judge
        still deciding then stops: the chain won)."""
        part = partition or self.partition
        self.counters.count("lookups")
        queued = self._queued_answer(question, part)
        if queued is not None:
            self.counters.record(question, queued)
            return queued
        try:
            decision = self.decision(part)
            verifier = decision.verifier() if decision is not None else self.verifier
            found = self.store.lookup(question, namespace=self.namespace, partition=part,
                                      threshold=self.similarity_threshold, k=self.k, guard=self.guard,
                                      verifier=verifier, extra=self._queued_candidates(part))
            if decision is not None:
                found = decision.admit(found)
            if found.match is None and found.reason != "explore" and self.judge is not None and found.candidates:
                found = self._ask_judge(clean_text(question), found, verifier or self.store.verifier, decision, race)
        except Exception:
            logger.warning("StorInfer lookup failed; running %s instead", self.on_miss, exc_info=True)
            self.counters.count("errors")
            return Lookup(None, reason="store error")
        self.counters.record(question, found)
        if found.match is None and isinstance(question, str):
            with self._pending_lock:  # for remember() after a lookup it was not handed (LangChain's cache)
                self._pending[(part, clean_text(question))] = (found, time.perf_counter())
                while len(self._pending) > _PENDING:
                    self._pending.popitem(last=False)
        return found

    def _ask_judge(self, question: str, found: Lookup, verifier: Verifier, decision: Decision | None,
                   race: threading.Event | None) -> Lookup:
        """Serve a doubtful candidate the judge accepts (see :mod:`storinfer.serve.judge_band`)."""
        judge = self.judge
        assert judge is not None
        if not judge.pays():
            judge.counts["skipped_not_paying"] += 1
            return found
        for cand, score in judge.doubtful(verifier, question, found.candidates):
            verdict = judge.ask(question, cand.question, race)
            if verdict is None:
                return found  # the chain answered first
            if decision is not None:
                decision.record_judge(question, cand, score, verdict)
            if verdict:
                return Lookup(cand, reason="judge", best_similarity=found.best_similarity, rejected=found.rejected,
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
        return Lookup(Match(pair.id, q, pair.answer, 1.0, metadata(pair, time.time()), exact=True), reason="exact",
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
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            out = []
            for p in pairs:
                pv = p.vector or []
                sim = sum(x * y for x, y in zip(vector, pv)) / (norm * (math.sqrt(sum(y * y for y in pv)) or 1.0))
                out.append(Match(p.id, clean_text(p.question), p.answer, sim, metadata(p, now)))
            return out

        return extra

    # --- misses: learn, then remember -----------------------------------------------------------
    def remember(self, question: str, answer: str, *, partition: str | None = None, lookup: Lookup | None = None,
                 **provenance: Any) -> None:
        """After a miss: label the lookup's candidate with the chain's answer, then store the answer
        (skipped when off, empty, or unmatchable). Never raises.

        With ``write_behind`` this only queues the pair. ``lookup``, the miss's own lookup, lends
        its candidates to the label and its query vector to the key (when the embedder is
        symmetric, so the key is not embedded twice)."""
        part = partition or self.partition
        if not isinstance(answer, str) or not answer.strip() or not isinstance(question, str):
            return
        with self._pending_lock:
            kept, looked_up_at = self._pending.pop((part, clean_text(question)), (None, None))
        lookup = lookup or kept
        if self.judge is not None and looked_up_at is not None:
            self.judge.record_miss((time.perf_counter() - looked_up_at) * 1000)
        decision = self.decision(part) if lookup is not None else None
        if decision is not None:
            try:
                decision.learn(clean_text(question), lookup, answer)
            except Exception:
                logger.warning("StorInfer could not label a miss; it is still answered", exc_info=True)
        if not self.store_misses or self.store.question_problem(question):
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
        """Wait until every queued answer and label is stored; True if none is left."""
        done = self.writer.flush(timeout) if self.writer is not None else True
        return self._worker.flush(timeout) and done

    def close(self) -> None:
        """Store what is queued and stop the writer (the store stays open)."""
        self._worker.flush(30)
        if self.writer is not None:
            self.writer.close()

    def answer(self, question: str, run: Callable[[str], str]) -> tuple[str, Lookup]:
        """The stored answer on a hit; else ``run(question)``, learnt from and remembered.
        Returns ``(answer, lookup)``."""
        found = self.lookup(question)
        if found.match is not None:
            return found.match.answer, found
        text = run(question)
        self.remember(question, text, lookup=found)
        return text, found

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, the similarity of hits (recent ones listed), the write-back
        queue (``pending_writes``: a crash would lose these; ``writes_inline``), and per partition
        the decision: its operating point, estimated wrong rate and bound, labels and exploration."""
        out = self.counters.as_dict()
        out["pending_writes"] = self.writer.pending if self.writer is not None else 0
        out["writes_inline"] = self.writer.inline if self.writer is not None else 0
        with self._decisions_lock:
            decisions = dict(self._decisions)
        out["decision"] = {part: d.stats() for part, d in decisions.items()}
        explored = sum(d.counts["explored"] for d in decisions.values())
        out["explored"] = explored
        out["explore_per_query"] = explored / out["lookups"] if out["lookups"] else 0.0
        out["max_wrong_rate"] = self.max_wrong_rate
        out["judge_calls"] = self.judge.counts["calls"] if self.judge is not None else 0
        out["judge_calls_per_query"] = out["judge_calls"] / out["lookups"] if out["lookups"] else 0.0
        if self.judge is not None:
            out["judge"] = self.judge.stats()
        return out
