"""The integrity check behind ``storinfer check``: records, ids, vectors, index and chunk ledger agree."""

from __future__ import annotations

import math
from typing import Any

from storinfer.store.encoding import unpack
from storinfer.text import pair_id

_TYPES = {"question": str, "namespace": str, "partition": str, "origin": str, "doc_id": str,
          "chunk_id": str, "chunk_hash": str, "created_at": float, "expires_at": float}


def check(store: Any, *, sample: int = 200, page: int = 1000) -> list[str]:
    """Integrity check; returns the problems found (empty when the store is sound).

    Every pair must have its metadata fields with the right types (as read: packed fields
    unpacked, namespace and partition from its collection), the source sentence it names, an id that matches its
    question, namespace and partition, a non-empty answer, and a finite vector of the store's
    dimension. Up to ``sample`` pairs per partition are searched by their own vector and must
    come back (the vector index agrees with the records). Chunk records must name a partition.
    """
    problems: list[str] = []
    for ns, part, col in store.partitions():
        where = f"partition {ns}/{part[:40]}"
        if (col.metadata or {}).get("embedding_dim") not in (None, store.layout.dim):
            problems.append(f"{where}: made for {col.metadata.get('embedding_dim')}-dim vectors, store has {store.layout.dim}")
        offset, checked_index = 0, 0
        while True:
            res = col.get(limit=page, offset=offset, include=["documents", "metadatas", "embeddings"])
            if not res["ids"]:
                break
            offset += len(res["ids"])
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
                if checked_index < sample:
                    checked_index += 1
                    if not _found_by_own_vector(col, pid, vec):
                        problems.append(f"{where}: pair {pid} is not found by its own vector (index out of step)")
    problems.extend(store.ledger.problems())
    return problems


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
