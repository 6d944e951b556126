"""The chunk ledger: which source chunks a precompute run has finished, per namespace and partition.

A chunk is recorded only after its pairs are written, so a killed run, restarted, skips the
finished chunks and redoes the one it was in. Records live in the side collection
``<collection_name>-chunks`` of the same Chroma client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from storinfer.records import MetaValue
from storinfer.store.side import SideTable


def where(**conds: Any) -> dict[str, Any] | None:
    """A Chroma ``where`` filter requiring every given (non-None) field."""
    items = [{k: v} for k, v in conds.items() if v is not None]
    if not items:
        return None
    return items[0] if len(items) == 1 else {"$and": items}


class ChunkLedger(SideTable):
    """Finished chunks, looked up by id and metadata (a :class:`~storinfer.store.side.SideTable`)."""

    SUFFIX = "chunks"

    def records(self, *, namespace: str, partition: str) -> dict[str, dict[str, Any]]:
        """``{record_id: metadata}`` of the finished chunks of one namespace and partition."""
        res = self.collection.get(where=where(namespace=namespace, partition=partition), include=["metadatas"])
        return {i: dict(m) for i, m in zip(res["ids"], res["metadatas"])}

    def mark_done(self, record_id: str, metadata: Mapping[str, MetaValue]) -> None:
        with self._lock:
            self.collection.upsert(ids=[record_id], embeddings=[[1.0]], metadatas=[dict(metadata)])

    def forget(self, record_ids: Sequence[str]) -> None:
        if record_ids:
            with self._lock:
                self.collection.delete(ids=list(record_ids))

    def forget_document(self, doc_id: str, namespace: str | None = None) -> None:
        """Forget a document's finished chunks, so the next precompute regenerates them."""
        with self._lock:
            stale = self.collection.get(where=where(doc_id=doc_id, namespace=namespace), include=[])["ids"]
            if stale:
                self.collection.delete(ids=stale)

    def problems(self) -> list[str]:
        """Chunk records that lack what resuming needs."""
        res = self.collection.get(include=["metadatas"])
        return [
            f"chunk record {cid} lacks namespace/partition/chunk_id"
            for cid, meta in zip(res["ids"], res["metadatas"])
            if not all(isinstance((meta or {}).get(k), str) and (meta or {}).get(k) for k in ("namespace", "partition", "chunk_id"))
        ]
