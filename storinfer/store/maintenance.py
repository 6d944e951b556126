"""Store maintenance: deleting, expiring, invalidating, counting and listing pairs.

Each function takes the :class:`~storinfer.store.QAStore`; the store's methods of the same names
call them (``store.delete_where(...)``, ``store.stats()``...).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from storinfer.records import Match, Origin
from storinfer.store.encoding import read
from storinfer.store.ledger import where


def delete_where(store: Any, *, namespace: str | None = None, partition: str | None = None, origin: Origin | None = None,
                 doc_id: str | None = None, chunk_id: str | None = None, answer_id: str | None = None) -> int:
    """Delete every pair matching all given fields; return how many. Refuses no filter at all."""
    if all(v is None for v in (namespace, partition, origin, doc_id, chunk_id, answer_id)):
        msg = "delete_where() needs at least one filter; use clear() to empty a namespace."
        raise ValueError(msg)
    cond = where(origin=origin, doc_id=doc_id, chunk_id=chunk_id, answer_id=answer_id)
    removed = 0
    limit = store.layout.max_batch()
    with store._lock:
        for col in store.layout.selected(namespace, partition):
            ids = col.get(where=cond, include=[])["ids"]
            for start in range(0, len(ids), limit):
                col.delete(ids=ids[start : start + limit])
            removed += len(ids)
        if answer_id is None and origin in (None, "precomputed"):  # the sentences of what is gone
            store.sentences.delete_where(namespace=namespace, partition=partition, doc_id=doc_id, chunk_id=chunk_id)
    return removed


def purge_expired(store: Any, now: float | None = None) -> int:
    """Delete pairs whose TTL has passed; return how many."""
    now = time.time() if now is None else now
    removed = 0
    with store._lock:
        for col in store.layout.selected(None, None):
            ids = col.get(where={"$and": [{"expires_at": {"$gt": 0.0}}, {"expires_at": {"$lte": now}}]}, include=[])["ids"]
            if ids:
                col.delete(ids=ids)
            removed += len(ids)
    return removed


def invalidate(store: Any, doc_id: str, namespace: str | None = None) -> int:
    """Delete every pair made from document ``doc_id`` and forget its finished chunks."""
    if not isinstance(doc_id, str) or not doc_id:
        msg = "invalidate() needs the document id (the doc_id stored with its pairs)."
        raise ValueError(msg)
    removed = 0
    with store._lock:
        for col in store.layout.selected(namespace, None):
            ids = col.get(where={"doc_id": doc_id}, include=[])["ids"]
            if ids:
                col.delete(ids=ids)
            removed += len(ids)
        store.ledger.forget_document(doc_id, namespace)
        store.sentences.delete_where(doc_id=doc_id, namespace=namespace)
    return removed


def count(store: Any, *, namespace: str | None = None, partition: str | None = None, origin: Origin | None = None) -> int:
    """Number of stored pairs (optionally of one namespace / partition / origin)."""
    total = 0
    for col in store.layout.selected(namespace, partition):
        total += col.count() if origin is None else len(col.get(where={"origin": origin}, include=[])["ids"])
    return total


def iter_pairs(store: Any, *, namespace: str | None = None, partition: str | None = None,
               where: Mapping[str, Any] | None = None, page: int = 1000) -> Iterator[Match]:
    """Every stored pair (optionally of one namespace / partition, filtered by a Chroma ``where``)."""
    for col in store.layout.selected(namespace, partition):
        offset = 0
        while True:
            res = col.get(where=dict(where) if where else None, limit=page, offset=offset,
                          include=["documents", "metadatas"])
            if not res["ids"]:
                break
            for i, d, m in zip(res["ids"], res["documents"], read(col, res["metadatas"], store.sentences)):
                yield Match(i, m.get("question", ""), d or "", 1.0, m, exact=True)
            offset += len(res["ids"])


def stats(store: Any) -> dict[str, Any]:
    """Counts by namespace, partition and origin, the embedder, and bytes on disk."""
    by: dict[str, dict[str, int]] = {"namespace": {}, "partition": {}, "origin": {}}
    total = 0
    for m in iter_pairs(store):
        total += 1
        for key in by:
            val = str(m.metadata.get(key, ""))
            by[key][val] = by[key].get(val, 0) + 1
    disk = store.disk_bytes()
    return {"pairs": total, "by_namespace": by["namespace"], "by_partition": by["partition"], "by_origin": by["origin"],
            "embedding": store.embedding_name, "collection": store.collection_name, "path": store.path,
            "disk_bytes": disk, "bytes_per_pair": (disk / total) if disk and total else None}
