"""Serve: the lookup-or-remember logic every face shares.

``StorInferCache`` (LangChain LLM cache), ``StorInferChain`` (LangChain chain wrapper) and
``StorInferQueryEngine`` (LlamaIndex) all: look a question up with the same settings, count
hits and misses, treat a failing store as a miss, and store the answer of a miss
(``store_misses``; the faces' older names ``cache_misses`` / ``cache_runtime_answers`` are
accepted for one release, see :func:`store_misses_option`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from storinfer.errors import StoreConfigError, validate_threshold
from storinfer.match.lookup import DEFAULT_K
from storinfer.match.verify import Verifier
from storinfer.protocols import Embedder
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, Lookup, Match, QAPair
from storinfer.serve.stats import LookupStats
from storinfer.serve.writeback import WriteBehind, write_pairs
from storinfer.store import QAStore
from storinfer.store.encoding import metadata
from storinfer.text import clean_text, pair_id

logger = logging.getLogger(__name__)


def open_store(store: QAStore | None, path: str | None, host: str | None, port: int, embedding: Embedder | None) -> QAStore:
    """``store`` if given, else a :class:`QAStore` at ``path`` or on the server ``host``."""
    if store is not None:
        return store
    if path is None and host is None:
        msg = "Pass store=QAStore(...), path= (a local folder) or host= (a Chroma server)."
        raise StoreConfigError(msg)
    return QAStore(path, host=host, port=port, embedding=embedding)


def store_misses_option(store_misses: bool, **old: bool | None) -> bool:
    """The value of ``store_misses``, taking a deprecated old name (``cache_misses=``...) if one was given."""
    given = {name: value for name, value in old.items() if value is not None}
    if len(given) > 1:
        msg = f"Pass only store_misses= (not {', '.join(given)})."
        raise TypeError(msg)
    for name, value in given.items():
        warnings.warn(f"{name}= is renamed store_misses= and will be removed in the next release.",
                      DeprecationWarning, stacklevel=3)
        return bool(value)
    return store_misses


def tee(pieces: Iterator[str], done: Callable[[str], None]) -> Iterator[str]:
    """Pass a streamed answer's pieces through; once they end, hand the whole text to ``done``
    (to store it: a streamed miss is remembered at its end)."""
    parts: list[str] = []
    for piece in pieces:
        parts.append(piece)
        yield piece
    done("".join(parts))


async def atee(pieces: AsyncIterator[str], done: Callable[[str], None]) -> AsyncIterator[str]:
    """Async :func:`tee`; ``done`` runs in a worker thread."""
    parts: list[str] = []
    async for piece in pieces:
        parts.append(piece)
        yield piece
    await asyncio.to_thread(done, "".join(parts))


class StoreFront:
    """Looks questions up and remembers answers, with one set of settings and counters.

    Args:
        store: the :class:`QAStore`.
        namespace, partition: where in the store (``partition`` can be overridden per call).
        similarity_threshold: the cosine floor for candidates; None (default): the verifier's.
        guard: check candidates (the verifier). False: cosine alone, for measurement.
        verifier: the :class:`~storinfer.match.verify.Verifier` deciding each candidate (default: the
            store's, at the operating point ``storinfer calibrate`` recorded, else the shipped
            one); False: StorInfer 0.1's look-alike rules at ``similarity_threshold`` (0.95).
        k: nearest stored questions tried per lookup.
        store_misses: store the answers of misses.
        ttl_seconds: remembered answers expire after this long (None: never).
        on_miss: what runs instead on a miss, for log messages ("the model", "the chain"...).
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
        store_misses: bool = True,
        write_behind: bool = True,
        max_pending: int = 1024,
        ttl_seconds: float | None = None,
        on_miss: str = "the model",
    ) -> None:
        if ttl_seconds is not None and not (
            isinstance(ttl_seconds, (int, float)) and math.isfinite(ttl_seconds) and ttl_seconds > 0
        ):
            msg = f"ttl_seconds must be a positive number of seconds or None, got {ttl_seconds!r}"
            raise StoreConfigError(msg)
        if not isinstance(namespace, str) or not namespace.strip():
            msg = "namespace must be a non-empty string (e.g. your tenant or app name)."
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
        self.counters = LookupStats()
        self._miss_vectors: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        self._miss_lock = threading.Lock()
        self.writer = WriteBehind(store, max_pending=max_pending, on_written=self._count_written,
                                  on_error=self._count_failed) if write_behind else None

    def lookup(self, question: str, *, partition: str | None = None) -> Lookup:
        """The store's decision for ``question``, counted. Never raises: a failing store is
        logged, counted as an error, and is a miss (so it costs time, never an answer)."""
        self.counters.count("lookups")
        queued = self._queued_answer(question, partition or self.partition)
        if queued is not None:
            self.counters.record(question, queued)
            return queued
        try:
            found = self.store.lookup(question, namespace=self.namespace, partition=partition or self.partition,
                                      threshold=self.similarity_threshold, k=self.k, guard=self.guard,
                                      verifier=self.verifier)
        except Exception:
            logger.warning("StorInfer lookup failed; running %s instead", self.on_miss, exc_info=True)
            self.counters.count("errors")
            return Lookup(None, reason="store error")
        self.counters.record(question, found)
        if found.match is None and found.vector is not None and self.store.symmetric_embedder:
            with self._miss_lock:  # for remember() after a lookup it was not handed (LangChain's cache)
                self._miss_vectors[(partition or self.partition, clean_text(question))] = found.vector
                while len(self._miss_vectors) > 256:
                    self._miss_vectors.popitem(last=False)
        return found

    def _queued_answer(self, question: str, partition: str) -> Lookup | None:
        """An exact repeat of a question whose answer still waits in the write-back queue."""
        if self.writer is None or not self.writer.pending or not isinstance(question, str):
            return None
        q = clean_text(question)
        pair = self.writer.queued(pair_id(self.namespace, partition, q)) if q else None
        if pair is None or (pair.expires_at and pair.expires_at <= time.time()):
            return None
        meta = metadata(pair, time.time())
        return Lookup(Match(pair.id, q, pair.answer, 1.0, meta, exact=True), reason="exact", best_similarity=1.0)

    def remember(self, question: str, answer: str, *, partition: str | None = None, lookup: Lookup | None = None,
                 **provenance: Any) -> None:
        """Store the answer of a miss (skipped when off, empty, or unmatchable). Never raises.

        With ``write_behind`` this only queues the pair. ``lookup``, the miss's own lookup, lends
        its query vector when the embedder is symmetric, so the key is not embedded twice."""
        if not self.store_misses or not isinstance(answer, str) or not answer.strip():
            return
        if self.store.question_problem(question):
            return
        expires = time.time() + self.ttl_seconds if self.ttl_seconds else 0.0
        with self._miss_lock:
            kept = self._miss_vectors.pop((partition or self.partition, clean_text(question)), None)
        vector = lookup.vector if lookup is not None and self.store.symmetric_embedder else kept
        pair = QAPair(question, answer, namespace=self.namespace, partition=partition or self.partition,
                      origin="runtime", expires_at=expires, vector=vector, **provenance)
        if self.writer is not None:
            self.writer.submit(pair)
        else:
            write_pairs(self.store, [pair], self._count_written, self._count_failed)

    def _count_written(self, n: int) -> None:
        self.counters.count("updates", n)

    def _count_failed(self, n: int) -> None:
        self.counters.count("errors", n)

    async def aremember(self, question: str, answer: str, **kwargs: Any) -> None:
        """Async :meth:`remember`: just a queue put with ``write_behind``, else in a worker thread."""
        if self.writer is not None:
            self.remember(question, answer, **kwargs)
        else:
            await asyncio.to_thread(self.remember, question, answer, **kwargs)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued answer is stored; True if none is left."""
        return self.writer.flush(timeout) if self.writer is not None else True

    def close(self) -> None:
        """Store what is queued and stop the writer (the store stays open)."""
        if self.writer is not None:
            self.writer.close()

    def answer(self, question: str, run: Callable[[str], str]) -> tuple[str, Lookup]:
        """The stored answer on a hit; else ``run(question)``, remembered. Returns ``(answer, lookup)``."""
        found = self.lookup(question)
        if found.match is not None:
            return found.match.answer, found
        text = run(question)
        self.remember(question, text, lookup=found)
        return text, found

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, the similarity of hits (recent ones listed), and the
        write-back queue: ``pending_writes`` (a crash would lose these), ``writes_inline``."""
        out = self.counters.as_dict()
        out["pending_writes"] = self.writer.pending if self.writer is not None else 0
        out["writes_inline"] = self.writer.inline if self.writer is not None else 0
        return out
