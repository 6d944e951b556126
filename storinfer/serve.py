"""Serve: the lookup-or-remember logic every face shares.

``StorInferCache`` (LangChain LLM cache), ``StorInferChain`` (LangChain chain wrapper) and
``StorInferQueryEngine`` (LlamaIndex) all: look a question up with the same settings, count
hits and misses, treat a failing store as a miss, and store the answer of a miss
(``store_misses``; the faces' older names ``cache_misses`` / ``cache_runtime_answers`` are
accepted for one release, see :func:`store_misses_option`).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

from storinfer.errors import StoreConfigError, validate_threshold
from storinfer.protocols import Embedder
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, Lookup, QAPair
from storinfer.stats import LookupStats
from storinfer.store import QAStore
from storinfer.verify import Verifier

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


class StoreFront:
    """Looks questions up and remembers answers, with one set of settings and counters.

    Args:
        store: the :class:`QAStore`.
        namespace, partition: where in the store (``partition`` can be overridden per call).
        similarity_threshold: the cosine floor for candidates; None (default): 0.95 with the
            look-alike rules, or the verifier's floor.
        guard: check candidates (look-alike rules, or the verifier). False: cosine alone.
        verifier: a :class:`~storinfer.verify.Verifier` deciding each candidate (default: the one
            recorded in the store by ``storinfer calibrate``, if any).
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
        k: int = 4,
        verifier: Verifier | None = None,
        store_misses: bool = True,
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

    def lookup(self, question: str, *, partition: str | None = None) -> Lookup:
        """The store's decision for ``question``, counted. Never raises: a failing store is
        logged, counted as an error, and is a miss (so it costs time, never an answer)."""
        self.counters.count("lookups")
        try:
            found = self.store.lookup(question, namespace=self.namespace, partition=partition or self.partition,
                                      threshold=self.similarity_threshold, k=self.k, guard=self.guard,
                                      verifier=self.verifier)
        except Exception:
            logger.warning("StorInfer lookup failed; running %s instead", self.on_miss, exc_info=True)
            self.counters.count("errors")
            return Lookup(None, reason="store error")
        self.counters.record(question, found)
        return found

    def remember(self, question: str, answer: str, *, partition: str | None = None, **provenance: Any) -> None:
        """Store the answer of a miss (skipped when off, empty, or unmatchable). Never raises."""
        if not self.store_misses or not isinstance(answer, str) or not answer.strip():
            return
        if self.store.question_problem(question):
            return
        try:
            expires = time.time() + self.ttl_seconds if self.ttl_seconds else 0.0
            self.store.add([QAPair(question, answer, namespace=self.namespace, partition=partition or self.partition,
                                   origin="runtime", expires_at=expires, **provenance)])
            self.counters.count("updates")
        except Exception:
            logger.warning("StorInfer could not store an answer; it was still returned", exc_info=True)
            self.counters.count("errors")

    def answer(self, question: str, run: Callable[[str], str]) -> tuple[str, Lookup]:
        """The stored answer on a hit; else ``run(question)``, remembered. Returns ``(answer, lookup)``."""
        found = self.lookup(question)
        if found.match is not None:
            return found.match.answer, found
        text = run(question)
        self.remember(question, text)
        return text, found

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, and the similarity of hits (recent ones listed)."""
        return self.counters.as_dict()
