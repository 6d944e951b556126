"""The question-answer store, on Chroma, shared by every StorInfer part.

Each record is one question-answer pair. The question is embedded (cosine space); the answer
is the record's document; metadata keeps where it came from:

==============  ==============================================================
question        the question as stored (the id is its normalised form)
namespace       tenant / app; answers never cross namespaces
partition       what the answer depends on besides the question (an LLM's
                ``llm_string`` and system prompt, or a chain's name)
origin          ``precomputed`` (offline job) or ``runtime`` (a live answer cached)
doc_id          source document id ("" if none)
chunk_id        source chunk id ("" if none)
chunk_hash      hash of the chunk text the answer was made from ("" if none)
created_at      seconds since the epoch
expires_at      seconds since the epoch; 0 means never
generations     (runtime entries of the LLM cache) the LangChain generations, as JSON
==============  ==============================================================

Layout: each (namespace, partition) has its own Chroma collection, named
``<collection_name>-p-<hash>``, so a lookup searches only its own partition's index: an entry
of another model or tenant can never be returned or push the right one out of the top k. (A
``where`` filter on one shared collection gives the same isolation but, measured on Chroma 1.5,
costs 19 ms per query at 10k pairs and 84 ms at 40k, growing with the store; a query on its
own collection takes about 1.3 ms at any size.) The collection ``<collection_name>`` records
the schema version and the embedding model of the whole store; ``<collection_name>-chunks``
records which source chunks a precompute run has finished.

Ids are a hash of (namespace, partition, normalised question), so adding the same question
again updates the pair instead of duplicating it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.embeddings import Embeddings

from storinfer_langchain.embeddings import (
    FINGERPRINT_MIN_COSINE,
    cosine,
    default_embeddings,
    embedding_fingerprint,
    token_fit_check,
)
from storinfer_langchain.embeddings import (
    embedding_name as _embedding_name,
)
from storinfer_langchain.guard import conflict
from storinfer_langchain.text import clean_text, pair_id, sha

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_COLLECTION = "storinfer"
DEFAULT_NAMESPACE = "default"
DEFAULT_PARTITION = "default"
# Chosen by measurement, not guessed: benchmarks/threshold_pairs.py pairs the 810 human SQuAD
# Super Bowl questions (same gold answer = a right hit, else wrong). With the guard on, 0.95 is
# the lowest threshold with no wrong pair served (39 right, 0 wrong; at 0.92: 59 right, 1 wrong).
# `calibrate()` picks a threshold for your own corpus. See the README's "Choosing the threshold".
DEFAULT_THRESHOLD = 0.95
MAX_QUERY_CHARS = 1000

Origin = Literal["precomputed", "runtime"]
MetaValue = str | int | float | bool


class StorInferError(Exception):
    """Base class of StorInfer's own errors; each message says what to do."""


class StoreConfigError(StorInferError, ValueError):
    """The store cannot be opened as asked (bad path, bad argument)."""


class EmbeddingMismatchError(StorInferError):
    """The store was built with another embedding model; its vectors would not compare."""


class SchemaVersionError(StorInferError):
    """The store was written by a StorInfer with another schema version."""


class StoreLockedError(StorInferError):
    """Another process has this local store open (Chroma's local mode is single-process)."""


def validate_threshold(value: float, name: str = "similarity_threshold") -> float:
    """Return ``value`` as a float in [0, 1], or raise a ValueError that says so."""
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        msg = f"{name} must be a number in [0, 1], got {value!r}"
        raise StoreConfigError(msg) from err
    if not (0.0 <= v <= 1.0):  # also rejects NaN
        msg = f"{name} must be in [0, 1] (cosine similarity), got {value!r}"
        raise StoreConfigError(msg)
    return v


@dataclass
class QAPair:
    """One question-answer pair to store."""

    question: str
    answer: str
    partition: str = DEFAULT_PARTITION
    namespace: str = DEFAULT_NAMESPACE
    origin: Origin = "precomputed"
    doc_id: str = ""
    chunk_id: str = ""
    chunk_hash: str = ""
    generations: str = ""
    expires_at: float = 0.0
    extra: dict[str, MetaValue] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return pair_id(self.namespace, self.partition, self.question)


@dataclass
class Match:
    """A stored pair found for a question."""

    id: str
    question: str
    answer: str
    similarity: float
    metadata: dict[str, Any]
    exact: bool = False

    @property
    def source_ids(self) -> dict[str, str]:
        return {k: self.metadata.get(k, "") for k in ("doc_id", "chunk_id", "chunk_hash")}


@dataclass
class Lookup:
    """The outcome of :meth:`QAStore.lookup`: a match, or why there is none."""

    match: Match | None
    reason: str = ""
    best_similarity: float | None = None
    rejected: list[tuple[Match, str]] = field(default_factory=list)

    @property
    def hit(self) -> bool:
        return self.match is not None


def _where(**conds: Any) -> dict[str, Any] | None:
    items = [{k: v} for k, v in conds.items() if v is not None]
    if not items:
        return None
    return items[0] if len(items) == 1 else {"$and": items}


# --- one lock file per local store path and process -------------------------------------------
_PROCESS_LOCKS: dict[str, list[Any]] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _acquire_path_lock(path: str) -> None:
    from filelock import FileLock, Timeout

    with _PROCESS_LOCKS_GUARD:
        entry = _PROCESS_LOCKS.get(path)
        if entry is not None:
            entry[1] += 1
            return
        lock = FileLock(os.path.join(path, ".storinfer.lock"), thread_local=False, is_singleton=False)
        owner = os.path.join(path, ".storinfer.owner")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            try:
                with open(owner, encoding="utf-8") as fh:
                    who = fh.read().strip()
            except OSError:
                who = "unknown"
            msg = (
                f"The store {path} is open in another process ({who}). Chroma's local mode is "
                "single-process: close that process, or serve the store with "
                f"`chroma run --path {path} --port 8000` and open it with "
                "QAStore(host='localhost', port=8000) from every process."
            )
            raise StoreLockedError(msg) from None
        with open(owner, "w", encoding="utf-8") as fh:
            fh.write(f"pid {os.getpid()}")
        _PROCESS_LOCKS[path] = [lock, 1]


def _release_path_lock(path: str) -> None:
    with _PROCESS_LOCKS_GUARD:
        entry = _PROCESS_LOCKS.get(path)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            entry[0].release()
            del _PROCESS_LOCKS[path]


def _check_local_path(path: str, *, create: bool = True) -> str:
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path) and not os.path.isdir(path):
        msg = f"The store path {path} is a file. Pass a directory (it is created if missing)."
        raise StoreConfigError(msg)
    if not create and not os.path.isfile(os.path.join(path, "chroma.sqlite3")):
        msg = f"No store at {path}: check the path, or build one with `storinfer precompute DOCS --store PATH`."
        raise StoreConfigError(msg)
    if os.path.isdir(path):
        if not os.access(path, os.W_OK | os.X_OK):
            msg = (
                f"The store directory {path} is not writable. Chroma writes its SQLite journal "
                "there even to read: fix the permissions, or copy the store somewhere writable."
            )
            raise StoreConfigError(msg)
        sqlite = os.path.join(path, "chroma.sqlite3")
        if os.path.exists(sqlite) and not os.access(sqlite, os.W_OK):
            msg = f"{sqlite} is read-only. Fix its permissions or copy the store somewhere writable."
            raise StoreConfigError(msg)
        return path
    parent = os.path.dirname(path) or "."
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        msg = f"Cannot create the store directory {path}: {parent} is not a writable directory."
        raise StoreConfigError(msg)
    os.makedirs(path, exist_ok=True)
    return path


class QAStore:
    """Question-answer pairs in a persistent Chroma collection, matched by question similarity.

    Setup:
        ```bash
        make setup   # chromadb, the offline MiniLM embeddings
        ```

    Instantiate:
        ```python
        from storinfer_langchain import QAStore

        store = QAStore("./storinfer_db")                      # local, one process
        store = QAStore(host="localhost", port=8000)            # `chroma run --path ...`, many
        ```

    Usage:
        ```python
        from storinfer_langchain import QAPair

        store.add([QAPair("Who won Super Bowl 50?", "The Denver Broncos.")])
        found = store.lookup("Which team won Super Bowl 50?")
        if found.hit:
            print(found.match.answer, found.match.similarity)
        ```

    Args:
        path: folder of a local store (created if missing). Local mode is single-process: a
            second process gets :class:`StoreLockedError` (use the server for several).
        client: any chromadb client to use instead of ``path`` / ``host``.
        host, port: a Chroma server (``chroma run``), for several app replicas or processes.
        collection_name: Chroma collection holding the pairs.
        embedding: LangChain embeddings (default: offline all-MiniLM-L6-v2). A store remembers
            its embedder and refuses to open with another (:class:`EmbeddingMismatchError`).
        embedding_name: name to record for ``embedding`` (guessed if omitted).
        max_query_chars: a longer question is a miss: embedders read only a prefix, and two
            long prompts with one prefix must not share an answer.
        create: make the store if it does not exist (False: raise :class:`StoreConfigError`,
            for tools that only read or maintain an existing store).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        client: Any | None = None,
        host: str | None = None,
        port: int = 8000,
        collection_name: str = DEFAULT_COLLECTION,
        embedding: Embeddings | None = None,
        embedding_name: str | None = None,
        max_query_chars: int = MAX_QUERY_CHARS,
        create: bool = True,
    ) -> None:
        import chromadb
        from chromadb.config import Settings

        if sum(x is not None for x in (path, client, host)) != 1:
            msg = "Pass exactly one of path= (local store), host= (Chroma server) or client=."
            raise StoreConfigError(msg)
        self.path: str | None = None
        self._lock = threading.RLock()
        settings = Settings(anonymized_telemetry=False)
        if path is not None:
            self.path = _check_local_path(os.fspath(path), create=create)
            _acquire_path_lock(self.path)
            self._finalizer = weakref.finalize(self, _release_path_lock, self.path)
            try:
                client = chromadb.PersistentClient(path=self.path, settings=settings)
            except Exception:
                self.close()
                raise
        elif host is not None:
            client = chromadb.HttpClient(host=host, port=port, settings=settings)
        self.client = client
        self.embedding = embedding if embedding is not None else default_embeddings()
        self.embedding_name = embedding_name or _embedding_name(self.embedding)
        self.max_query_chars = int(max_query_chars)
        self._fits = token_fit_check(self.embedding)
        self.collection_name = collection_name
        self._partitions: dict[tuple[str, str], Any] = {}
        self._create = create
        try:
            self.collection = self._open_collection(collection_name)
        except Exception:
            self.close()
            raise
        self._chunks: Any | None = None

    # --- opening -----------------------------------------------------------------------------
    def _open_collection(self, name: str) -> Any:
        """Open (or create) the root collection that records schema and embedder, and check it."""
        from chromadb.errors import NotFoundError

        fingerprint = embedding_fingerprint(self.embedding)
        self._dim = len(fingerprint)
        try:
            col = self.client.get_collection(name, embedding_function=None)
        except (NotFoundError, ValueError):
            if not self._create:
                msg = f"No StorInfer collection {name!r} in this store; check --collection, or build it with precompute."
                raise StoreConfigError(msg) from None
            meta = {
                "storinfer_schema": SCHEMA_VERSION,
                "kind": "root",
                "embedding_name": self.embedding_name,
                "embedding_dim": len(fingerprint),
                "embedding_fingerprint": json.dumps([round(x, 5) for x in fingerprint]),
            }
            try:
                return self.client.create_collection(name, metadata=meta, embedding_function=None)
            except Exception:  # created meanwhile by another replica
                col = self.client.get_collection(name, embedding_function=None)
        self._verify(col, fingerprint)
        return col

    def _verify(self, col: Any, fingerprint: list[float]) -> None:
        meta = col.metadata or {}
        version = meta.get("storinfer_schema")
        if version is None:
            msg = (
                f"Collection {col.name!r} was not made by StorInfer (no schema version). "
                "Pass another collection_name=, or a new store path."
            )
            raise SchemaVersionError(msg)
        if int(version) != SCHEMA_VERSION:
            msg = (
                f"Collection {col.name!r} has StorInfer schema {version}; this StorInfer reads "
                f"schema {SCHEMA_VERSION}. Use the StorInfer version that wrote it, or rebuild "
                "the store with `storinfer precompute`."
            )
            raise SchemaVersionError(msg)
        stored_name = meta.get("embedding_name", "?")
        stored_dim = int(meta.get("embedding_dim", -1))
        stored_fp = json.loads(meta.get("embedding_fingerprint", "[]"))
        same = stored_dim == len(fingerprint) and cosine(stored_fp, fingerprint) >= FINGERPRINT_MIN_COSINE
        if not same:
            msg = (
                f"This store was built with the embedding model {stored_name!r} "
                f"({stored_dim} dims); you opened it with {self.embedding_name!r} "
                f"({len(fingerprint)} dims), whose vectors do not compare. Open it with the "
                "same embedding model, or use a new store path / collection_name."
            )
            raise EmbeddingMismatchError(msg)

    def close(self) -> None:
        """Release this process's hold on a local store (another process may then open it)."""
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()

    def __enter__(self) -> QAStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path or "server"
        return f"QAStore({where!r}, collection={self.collection_name!r}, embedding={self.embedding_name!r})"

    # --- partitions: one collection each -----------------------------------------------------
    def _partition_collection(self, namespace: str, partition: str, *, create: bool) -> Any | None:
        """The collection of one (namespace, partition); None if it does not exist and not ``create``."""
        from chromadb.errors import NotFoundError

        key = (namespace, partition)
        col = self._partitions.get(key)
        if col is not None:
            return col
        name = f"{self.collection_name}-p-{sha(namespace, partition, length=24)}"
        try:
            col = self.client.get_collection(name, embedding_function=None)
        except (NotFoundError, ValueError):
            if not create:
                return None
            meta = {
                "hnsw:space": "cosine",
                "storinfer_schema": SCHEMA_VERSION,
                "kind": "pairs",
                "namespace": namespace,
                "partition": partition,
                "embedding_name": self.embedding_name,
                "embedding_dim": self._dim,
            }
            try:
                col = self.client.create_collection(name, metadata=meta, embedding_function=None)
            except Exception:  # created meanwhile by another replica
                col = self.client.get_collection(name, embedding_function=None)
        self._partitions[key] = col
        return col

    def partitions(self, namespace: str | None = None) -> list[tuple[str, str, Any]]:
        """``(namespace, partition, collection)`` for every partition (of one namespace)."""
        prefix = f"{self.collection_name}-p-"
        out = []
        for col in self.client.list_collections():
            meta = col.metadata or {}
            if not col.name.startswith(prefix) or meta.get("kind") != "pairs":
                continue
            if namespace is not None and meta.get("namespace") != namespace:
                continue
            key = (str(meta.get("namespace")), str(meta.get("partition")))
            self._partitions.setdefault(key, col)
            out.append((key[0], key[1], self._partitions[key]))
        return sorted(out, key=lambda t: (t[0], t[1]))

    def _selected(self, namespace: str | None, partition: str | None) -> list[Any]:
        if namespace is not None and partition is not None:
            col = self._partition_collection(namespace, partition, create=False)
            return [col] if col is not None else []
        return [col for _ns, part, col in self.partitions(namespace) if partition in (None, part)]

    # --- writing -----------------------------------------------------------------------------
    def add(self, pairs: Iterable[QAPair], *, batch_size: int = 256) -> list[str]:
        """Embed and upsert pairs; return their ids. Nothing is written if any pair is invalid."""
        items: dict[str, QAPair] = {}
        for p in pairs:
            q, a = clean_text(p.question) if isinstance(p.question, str) else "", p.answer
            if not q:
                msg = f"Cannot store a pair with an empty question (answer {str(a)[:60]!r})."
                raise ValueError(msg)
            if not isinstance(a, str) or not a.strip():
                msg = f"Cannot store an empty answer for {q!r}: a hit would return nothing."
                raise ValueError(msg)
            for name, value in (("namespace", p.namespace), ("partition", p.partition)):
                if not isinstance(value, str) or not value:
                    msg = f"{name} must be a non-empty string, got {value!r} (for {q!r})."
                    raise ValueError(msg)
            items[p.id] = p  # the last of several identical questions wins
        groups: dict[tuple[str, str], list[str]] = {}
        for pid, p in items.items():
            groups.setdefault((p.namespace, p.partition), []).append(pid)
        now = time.time()
        limit = min(batch_size, self._max_batch())
        with self._lock:
            for (namespace, partition), ids in groups.items():
                col = self._partition_collection(namespace, partition, create=True)
                for start in range(0, len(ids), limit):
                    chunk_ids = ids[start : start + limit]
                    chunk = [items[i] for i in chunk_ids]
                    vectors = self.embedding.embed_documents([clean_text(p.question) for p in chunk])
                    col.upsert(
                        ids=chunk_ids,
                        embeddings=vectors,
                        documents=[p.answer for p in chunk],
                        metadatas=[self._metadata(p, now) for p in chunk],
                    )
        return list(items)

    @staticmethod
    def _metadata(p: QAPair, now: float) -> dict[str, MetaValue]:
        meta: dict[str, MetaValue] = {k: v for k, v in p.extra.items() if v is not None}
        meta.update(
            question=clean_text(p.question),
            namespace=p.namespace,
            partition=p.partition,
            origin=p.origin,
            doc_id=p.doc_id,
            chunk_id=p.chunk_id,
            chunk_hash=p.chunk_hash,
            created_at=now,
            expires_at=float(p.expires_at or 0.0),
        )
        if p.generations:
            meta["generations"] = p.generations
        return meta

    def _max_batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:  # older clients
            return 5000

    def delete(self, ids: Sequence[str], *, namespace: str = DEFAULT_NAMESPACE, partition: str = DEFAULT_PARTITION) -> None:
        """Delete pairs of one partition by id (unknown ids are ignored)."""
        col = self._partition_collection(namespace, partition, create=False)
        if ids and col is not None:
            with self._lock:
                col.delete(ids=list(ids))

    def delete_where(
        self,
        *,
        namespace: str | None = None,
        partition: str | None = None,
        origin: Origin | None = None,
        doc_id: str | None = None,
        chunk_id: str | None = None,
    ) -> int:
        """Delete every pair matching all given fields; return how many. Refuses no filter at all."""
        if all(v is None for v in (namespace, partition, origin, doc_id, chunk_id)):
            msg = "delete_where() needs at least one filter; use clear() to empty a namespace."
            raise ValueError(msg)
        where = _where(origin=origin, doc_id=doc_id, chunk_id=chunk_id)
        removed = 0
        with self._lock:
            for col in self._selected(namespace, partition):
                ids = col.get(where=where, include=[])["ids"]
                for start in range(0, len(ids), self._max_batch()):
                    col.delete(ids=ids[start : start + self._max_batch()])
                removed += len(ids)
        return removed

    def clear(self, *, namespace: str = DEFAULT_NAMESPACE, partition: str | None = None, origin: Origin | None = None) -> int:
        """Delete the pairs of a namespace (optionally one partition or origin); return how many."""
        return self.delete_where(namespace=namespace, partition=partition, origin=origin)

    def purge_expired(self, now: float | None = None) -> int:
        """Delete pairs whose TTL has passed; return how many."""
        now = time.time() if now is None else now
        removed = 0
        with self._lock:
            for col in self._selected(None, None):
                ids = col.get(
                    where={"$and": [{"expires_at": {"$gt": 0.0}}, {"expires_at": {"$lte": now}}]}, include=[]
                )["ids"]
                if ids:
                    col.delete(ids=ids)
                removed += len(ids)
        return removed

    # --- reading -----------------------------------------------------------------------------
    def question_problem(self, question: object) -> str:
        """Why ``question`` cannot be matched safely ("" if it can)."""
        if not isinstance(question, str):
            return f"question is {type(question).__name__}, not str"
        q = clean_text(question)
        if not q:
            return "empty question"
        if len(q) > self.max_query_chars:
            return f"question longer than {self.max_query_chars} characters"
        if self._fits is not None and not self._fits(q):
            return "question longer than the embedding model reads"
        return ""

    def get(self, ids: Sequence[str], *, namespace: str = DEFAULT_NAMESPACE, partition: str = DEFAULT_PARTITION) -> list[Match]:
        """Stored pairs of one partition by id (missing ids are skipped)."""
        col = self._partition_collection(namespace, partition, create=False)
        if col is None or not ids:
            return []
        res = col.get(ids=list(ids), include=["documents", "metadatas"])
        return [
            Match(i, m.get("question", ""), d or "", 1.0, dict(m), exact=True)
            for i, d, m in zip(res["ids"], res["documents"], res["metadatas"])
        ]

    def search(
        self,
        question: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        partition: str | None = DEFAULT_PARTITION,
        k: int = 4,
        now: float | None = None,
    ) -> list[Match]:
        """The ``k`` stored questions nearest to ``question`` in a namespace (and partition).

        ``partition=None`` searches every partition of the namespace. No threshold and no
        guard: for retrievers and evaluation. Use :meth:`lookup` to decide whether a stored
        answer may be served.
        """
        problem = self.question_problem(question)
        if problem:
            raise ValueError(f"Cannot search for this question: {problem}.")
        cols = self._selected(namespace, partition)
        if not cols:
            return []
        vector = self.embedding.embed_query(clean_text(question))
        found = [m for col in cols for m in self._nearest(col, vector, k, now)]
        return sorted(found, key=lambda m: -m.similarity)[:k]

    def search_by_vector(
        self, vector: list[float], *, namespace: str = DEFAULT_NAMESPACE, partition: str = DEFAULT_PARTITION, k: int = 4
    ) -> list[Match]:
        """The ``k`` stored questions of one partition nearest to an embedding vector."""
        col = self._partition_collection(namespace, partition, create=False)
        return self._nearest(col, vector, k, None) if col is not None and col.count() else []

    def _nearest(self, col: Any, vector: list[float], k: int, now: float | None) -> list[Match]:
        """Up to ``k`` nearest unexpired pairs of one partition collection, best first."""
        now = time.time() if now is None else now
        res = col.query(query_embeddings=[vector], n_results=max(1, int(k)), include=["documents", "metadatas", "distances"])
        out = []
        for i, d, m, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]):
            expires = float(m.get("expires_at", 0.0) or 0.0)
            if expires and expires <= now:
                continue  # expired: purge_expired() deletes it
            out.append(Match(i, m.get("question", ""), d or "", 1.0 - float(dist), dict(m)))
        return out

    def lookup(
        self,
        question: object,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        partition: str = DEFAULT_PARTITION,
        threshold: float = DEFAULT_THRESHOLD,
        k: int = 4,
        guard: bool = True,
        now: float | None = None,
    ) -> Lookup:
        """Find a stored answer that may be served for ``question``, or say why there is none.

        An identical question (after normalisation) is found by id without embedding. Otherwise
        the ``k`` nearest questions of the same namespace and partition are tried best first;
        the first at or above ``threshold`` that the look-alike guard accepts is the match.
        """
        problem = self.question_problem(question)
        if problem:
            return Lookup(None, reason=problem)
        assert isinstance(question, str)
        col = self._partition_collection(namespace, partition, create=False)
        if col is None:
            return Lookup(None, reason="empty partition")
        q = clean_text(question)
        now = time.time() if now is None else now
        exact = col.get(ids=[pair_id(namespace, partition, q)], include=["documents", "metadatas"])
        if exact["ids"]:
            meta = dict(exact["metadatas"][0])
            expires = float(meta.get("expires_at", 0.0) or 0.0)
            if not expires or expires > now:
                m = Match(exact["ids"][0], meta.get("question", ""), exact["documents"][0] or "", 1.0, meta, exact=True)
                return Lookup(m, reason="exact", best_similarity=1.0)
        rejected: list[tuple[Match, str]] = []
        candidates = self._nearest(col, self.embedding.embed_query(q), k, now)
        best = candidates[0].similarity if candidates else None
        for cand in candidates:
            if cand.similarity < threshold:
                break
            why = conflict(q, cand.question) if guard else None
            if why:
                rejected.append((cand, why))
                continue
            return Lookup(cand, reason="similar", best_similarity=best, rejected=rejected)
        reason = "guard" if rejected else ("empty partition" if best is None else "below threshold")
        return Lookup(None, reason=reason, best_similarity=best, rejected=rejected)

    def count(self, *, namespace: str | None = None, partition: str | None = None, origin: Origin | None = None) -> int:
        """Number of stored pairs (optionally of one namespace / partition / origin)."""
        total = 0
        for col in self._selected(namespace, partition):
            total += col.count() if origin is None else len(col.get(where={"origin": origin}, include=[])["ids"])
        return total

    def iter_pairs(
        self,
        *,
        namespace: str | None = None,
        partition: str | None = None,
        where: Mapping[str, Any] | None = None,
        page: int = 1000,
    ) -> Iterator[Match]:
        """Every stored pair (optionally of one namespace / partition, filtered by a Chroma ``where``)."""
        for col in self._selected(namespace, partition):
            offset = 0
            while True:
                res = col.get(
                    where=dict(where) if where else None,
                    limit=page,
                    offset=offset,
                    include=["documents", "metadatas"],
                )
                if not res["ids"]:
                    break
                for i, d, m in zip(res["ids"], res["documents"], res["metadatas"]):
                    yield Match(i, m.get("question", ""), d or "", 1.0, dict(m), exact=True)
                offset += len(res["ids"])

    def disk_bytes(self) -> int | None:
        """Bytes the local store takes on disk (None for a server store)."""
        if self.path is None:
            return None
        total = 0
        for root, _dirs, files in os.walk(self.path):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(root, f))
                except OSError:
                    pass
        return total

    def stats(self) -> dict[str, Any]:
        """Counts by namespace, partition and origin, the embedder, and bytes on disk."""
        by: dict[str, dict[str, int]] = {"namespace": {}, "partition": {}, "origin": {}}
        total = 0
        for m in self.iter_pairs():
            total += 1
            for key in by:
                val = str(m.metadata.get(key, ""))
                by[key][val] = by[key].get(val, 0) + 1
        disk = self.disk_bytes()
        return {
            "pairs": total,
            "by_namespace": by["namespace"],
            "by_partition": by["partition"],
            "by_origin": by["origin"],
            "embedding": self.embedding_name,
            "collection": self.collection_name,
            "path": self.path,
            "disk_bytes": disk,
            "bytes_per_pair": (disk / total) if disk and total else None,
        }

    # --- staleness and integrity ---------------------------------------------------------------
    def invalidate(self, doc_id: str, *, namespace: str | None = None) -> int:
        """Delete every pair made from document ``doc_id`` (all partitions, or one namespace),
        and forget its finished chunks so the next precompute regenerates them. Returns how many
        pairs were deleted."""
        if not isinstance(doc_id, str) or not doc_id:
            msg = "invalidate() needs the document id (the doc_id stored with its pairs)."
            raise ValueError(msg)
        removed = 0
        with self._lock:
            for col in self._selected(namespace, None):
                ids = col.get(where={"doc_id": doc_id}, include=[])["ids"]
                if ids:
                    col.delete(ids=ids)
                removed += len(ids)
            where = _where(doc_id=doc_id, namespace=namespace)
            stale_chunks = self.chunks.get(where=where, include=[])["ids"]
            if stale_chunks:
                self.chunks.delete(ids=stale_chunks)
        return removed

    def check(self, *, sample: int = 200, page: int = 1000) -> list[str]:
        """Integrity check; returns the problems found (empty when the store is sound).

        Every pair must have its metadata fields with the right types, an id that matches its
        question, namespace and partition, a non-empty answer, and a finite vector of the store's
        dimension. Up to ``sample`` pairs per partition are searched by their own vector and must
        come back (the vector index agrees with the records). Chunk records must name a partition.
        """
        import math

        problems: list[str] = []
        types = {"question": str, "namespace": str, "partition": str, "origin": str, "doc_id": str,
                 "chunk_id": str, "chunk_hash": str, "created_at": float, "expires_at": float}
        for ns, part, col in self.partitions():
            where = f"partition {ns}/{part[:40]}"
            if (col.metadata or {}).get("embedding_dim") not in (None, self._dim):
                problems.append(f"{where}: made for {col.metadata.get('embedding_dim')}-dim vectors, store has {self._dim}")
            offset, checked_index = 0, 0
            while True:
                res = col.get(limit=page, offset=offset, include=["documents", "metadatas", "embeddings"])
                if not res["ids"]:
                    break
                offset += len(res["ids"])
                for pid, doc, meta, vec in zip(res["ids"], res["documents"], res["metadatas"], res["embeddings"]):
                    meta = meta or {}
                    for key, typ in types.items():
                        if not isinstance(meta.get(key), typ if typ is str else (int, float)):
                            problems.append(f"{where}: pair {pid} has no valid {key!r}")
                    if meta.get("origin") not in ("precomputed", "runtime"):
                        problems.append(f"{where}: pair {pid} has origin {meta.get('origin')!r}")
                    if meta.get("namespace") != ns or meta.get("partition") != part:
                        problems.append(f"{where}: pair {pid} says it belongs to {meta.get('namespace')}/{meta.get('partition')}")
                    elif isinstance(meta.get("question"), str) and pair_id(ns, part, meta["question"]) != pid:
                        problems.append(f"{where}: pair {pid} does not match its question's id")
                    if not (isinstance(doc, str) and doc.strip()):
                        problems.append(f"{where}: pair {pid} has an empty answer")
                    if vec is None or len(vec) != self._dim or not all(math.isfinite(float(x)) for x in vec):
                        problems.append(f"{where}: pair {pid} has a bad vector")
                        continue
                    if checked_index < sample:
                        checked_index += 1
                        top = col.query(query_embeddings=[list(vec)], n_results=1, include=["distances"])
                        if not top["ids"][0] or (top["ids"][0][0] != pid and top["distances"][0][0] > 1e-3):
                            problems.append(f"{where}: pair {pid} is not found by its own vector (index out of step)")
        res = self.chunks.get(include=["metadatas"])
        for cid, meta in zip(res["ids"], res["metadatas"]):
            meta = meta or {}
            if not all(isinstance(meta.get(k), str) and meta.get(k) for k in ("namespace", "partition", "chunk_id")):
                problems.append(f"chunk record {cid} lacks namespace/partition/chunk_id")
        return problems

    # --- precompute bookkeeping: which chunks are done ---------------------------------------
    @property
    def chunks(self) -> Any:
        """Side collection of finished chunks (precompute resumes from it)."""
        if self._chunks is None:
            # Records here are looked up by id and metadata only; Chroma still wants a vector.
            self._chunks = self.client.get_or_create_collection(
                f"{self.collection_name}-chunks", embedding_function=None
            )
        return self._chunks

    def chunk_records(self, *, namespace: str, partition: str) -> dict[str, dict[str, Any]]:
        """``{chunk_id: metadata}`` of the finished chunks of one namespace and partition."""
        res = self.chunks.get(where=_where(namespace=namespace, partition=partition), include=["metadatas"])
        return {i: dict(m) for i, m in zip(res["ids"], res["metadatas"])}

    def mark_chunk_done(self, record_id: str, metadata: Mapping[str, MetaValue]) -> None:
        with self._lock:
            self.chunks.upsert(ids=[record_id], embeddings=[[1.0]], metadatas=[dict(metadata)])

    def forget_chunks(self, record_ids: Sequence[str]) -> None:
        if record_ids:
            with self._lock:
                self.chunks.delete(ids=list(record_ids))

    def as_retriever(self, **kwargs: Any) -> Any:
        """A LangChain retriever over the stored pairs; see :class:`StorInferRetriever`."""
        from storinfer_langchain.retriever import StorInferRetriever

        return StorInferRetriever(store=self, **kwargs)
