"""Records and vector index in step: the checked write of pairs, and the integrity check and repair behind
``storinfer check [--repair]`` (records, ids, vectors, index and chunk ledger agree)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from storinfer.errors import StoreError
from storinfer.store.encoding import unpack
from storinfer.text import pair_id

_TYPES = {"question": str, "namespace": str, "partition": str, "origin": str, "doc_id": str,
          "chunk_id": str, "chunk_hash": str, "created_at": float, "expires_at": float}


log = logging.getLogger("storinfer.store")

REWRITES = 2


def held(col: Any, ids: list[str], probe: Any) -> set[str]:
    """Which of ``ids`` the vector index holds: one search restricted to them (``probe``: any vector).

    Its cost grows with the partition (a 30,000-pair one: several ms), so writes ask it only of the ids
    their own vectors did not find (:func:`written`). Ids deleted meanwhile (another thread, or
    another client of a server store) are left out: Chroma refuses a search restricted to a gone id."""
    from chromadb.errors import ChromaError

    query = np.asarray([probe], dtype=np.float32)
    try:
        return set(col.query(query_embeddings=query, ids=ids, n_results=len(ids), include=[])["ids"][0])
    except ChromaError:
        present = list(col.get(ids=ids, include=[])["ids"])
        if not present:
            return set()
        return set(col.query(query_embeddings=query, ids=present, n_results=len(present), include=[])["ids"][0])


def written(col: Any, ids: list[str], vectors: Any) -> set[str]:
    """Which of ``ids``, just written, the vector index holds: each searched by its own vector (among the
    10 nearest), and those not found so asked again of :func:`held`. Ids deleted meanwhile count as
    held (nothing of them is to be written again)."""
    top = col.query(query_embeddings=np.asarray(vectors, dtype=np.float32), n_results=10, include=[])["ids"]
    found = {pid for pid, near in zip(ids, top) if pid in near}
    rest = [pid for pid in ids if pid not in found]
    if not rest:
        return found
    present = set(col.get(ids=rest, include=[])["ids"])
    gone = {pid for pid in rest if pid not in present}
    return found | gone | (held(col, sorted(present), vectors[ids.index(rest[0])]) if present else set())


def upsert_indexed(col: Any, ids: list[str], vectors: list[list[float]], answers: list[str],
                   metadatas: list[dict[str, Any]]) -> int:
    """Upsert pairs, then make sure the vector index holds each of them; return how many were re-written.

    Chroma (1.5.9, local) can record a pair and drop its vector: ``get`` finds the pair, no search
    ever does, not even one restricted to its id (chroma-core/chroma issue 7758 reports the same
    symptom after deletes). Here it struck writes that followed each other with no search between
    (``benchmarks/store_index.py`` replays the precompute crash-and-resume scenario; docs/operations.md
    has its figures). After each write, each written pair is searched by its own vector
    (:func:`written`); in those runs that found them all, so the search itself is what prevents the
    loss there, but a precompute of 24 SQuAD articles lost 2 pairs even so. Any id not found is written
    again, up to ``REWRITES`` times, and if still missing the write fails with :class:`StoreError`
    rather than store a pair no lookup can find.
    """
    if not ids:
        return 0
    col.upsert(ids=ids, embeddings=vectors, documents=answers, metadatas=metadatas)
    rewritten, pending = 0, list(range(len(ids)))  # what the last write wrote, to be checked
    for attempt in range(REWRITES + 1):
        found = written(col, [ids[i] for i in pending], [vectors[i] for i in pending])
        lost = [i for i in pending if ids[i] not in found]
        if not lost:
            return rewritten
        if attempt == REWRITES:
            raise StoreError(f"the vector index does not hold {len(lost)} pairs after {REWRITES} rewrites (first: "
                             f"{ids[lost[0]]}); their records are stored: `storinfer check --store PATH --repair` "
                             "writes them again")
        log.warning("the vector index lost %d of %d pairs just written; writing them again", len(lost), len(ids))
        rewritten += len(lost)
        col.upsert(ids=[ids[i] for i in lost], embeddings=[vectors[i] for i in lost],
                   documents=[answers[i] for i in lost], metadatas=[metadatas[i] for i in lost])
        pending = lost
    return rewritten


def check(store: Any, *, sample: int = 200, page: int = 1000) -> list[str]:
    """Integrity check; returns the problems found (empty when the store is sound).

    Every pair must have its metadata fields with the right types (as read: packed fields
    unpacked, namespace and partition from its collection), the source sentence it names, an id that matches its
    question, namespace and partition, a non-empty answer, and a finite vector of the store's
    dimension. Every pair must be in the vector index (one search restricted to each page of ids;
    :func:`repair` writes again those that are not), and up to ``sample`` pairs per partition are
    searched by their own vector and must come back. Chunk records must name a partition.
    """
    problems: list[str] = []
    for ns, part, col in store.partitions():
        where = f"partition {ns}/{part[:40]}"
        if (col.metadata or {}).get("embedding_dim") not in (None, store.layout.dim):
            problems.append(f"{where}: made for {col.metadata.get('embedding_dim')}-dim vectors, store has {store.layout.dim}")
        checked_index = 0
        for res in _pages(col, page, ["documents", "metadatas", "embeddings"]):
            indexed = held(col, list(res["ids"]), res["embeddings"][0])
            for pid, doc, meta, vec in zip(res["ids"], res["documents"], res["metadatas"], res["embeddings"]):
                meta = unpack(meta, ns, part)
                if meta.get("sentence_id") and not store.sentences.texts([meta["sentence_id"]]):
                    problems.append(f"{where}: pair {pid} names sentence {meta['sentence_id']}, which is not stored")
                for key, typ in _TYPES.items():
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
                if vec is None or len(vec) != store.layout.dim or not all(math.isfinite(float(x)) for x in vec):
                    problems.append(f"{where}: pair {pid} has a bad vector")
                    continue
                if pid not in indexed:
                    problems.append(f"{where}: pair {pid} is not in the vector index (`storinfer check --repair` "
                                    "writes it again)")
                    continue
                if checked_index < sample:
                    checked_index += 1
                    if not _found_by_own_vector(col, pid, vec):
                        problems.append(f"{where}: pair {pid} is not found by its own vector (index out of step)")
    problems.extend(store.ledger.problems())
    return problems


def repair(store: Any, *, page: int = 1000) -> int:
    """Write again every pair whose record is stored but whose vector the index lacks (from its stored
    vector, answer and metadata: nothing is recomputed); return how many. What is sound is not touched."""
    repaired, failed = 0, []
    for _ns, _part, col in store.partitions():
        lost: list[str] = []
        for res in _pages(col, page, ["embeddings"]):
            indexed = held(col, list(res["ids"]), res["embeddings"][0])
            lost += [pid for pid in res["ids"] if pid not in indexed]
        for start in range(0, len(lost), page):
            rows = col.get(ids=lost[start : start + page], include=["embeddings", "documents", "metadatas"])
            try:
                upsert_indexed(col, list(rows["ids"]), [list(v) for v in rows["embeddings"]], list(rows["documents"]),
                               list(rows["metadatas"]))
            except StoreError as e:  # the other partitions are still repaired
                failed.append(str(e))
                continue
            repaired += len(rows["ids"])
    if failed:
        raise StoreError(f"{repaired} pairs written again, but {len(failed)} writes left pairs out of the vector "
                         f"index: {failed[0]}")
    return repaired


def _pages(col: Any, page: int, include: list[str]) -> Iterator[dict[str, Any]]:
    """A partition's records, ``page`` at a time (Chroma's ``get`` result of each page)."""
    offset = 0
    while True:
        res = col.get(limit=page, offset=offset, include=include)
        if not res["ids"]:
            return
        offset += len(res["ids"])
        yield res


def _found_by_own_vector(col: Any, pid: str, vec: Any) -> bool:
    """Among the 10 nearest, or a twin at distance ~0; else asked again with a wider search.

    HNSW is approximate: a small graph built by several threads, with updates, can miss a node at
    the default search width (a wider ``n_results`` widens Chroma's search), and a near-twin key
    may come first. A pair the index truly lacks is missed both times.
    """
    if _among_nearest(col, pid, vec, 10):
        return True
    wide = min(col.count(), 500)  # only for a pair missed at the default width
    return wide > 10 and _among_nearest(col, pid, vec, wide)


def _among_nearest(col: Any, pid: str, vec: Any, n: int) -> bool:
    top = col.query(query_embeddings=[list(vec)], n_results=n, include=["distances"])
    return bool(top["ids"][0]) and (pid in top["ids"][0] or top["distances"][0][0] <= 1e-3)
