"""A pair as it is written to Chroma and read back.

Written: the namespace and partition are left to the partition's collection, ``expires_at`` only
when set, an answer-aware key's source sentence moved to the sentence table, and the fields no
filter needs packed into one string (:func:`pack`). Read: all of it spread out again (:func:`unpack`),
so every reader sees the same metadata.
"""

from __future__ import annotations

import json
from typing import Any

from storinfer.records import MetaValue, QAPair
from storinfer.store.sentences import SentenceTable, sentence_id
from storinfer.text import clean_text

PACKED = {"generator": "g", "key_kind": "k", "answer_label": "l", "sentence_id": "s", "fact_writer": "w",
          "expected_answer": "e", "chunk_hash": "h", "created_at": "t", "gen_temperature": "T",
          "gen_top_p": "P", "gen_call": "C"}
"""Metadata no ``where`` filter needs, written together as one compact JSON string (``packed``).
Chroma stores each metadata entry as a row with two indexes, about 150 bytes each: packing keeps a
key near 3 KB on disk. Fields filters do use (``question``, ``origin``, ``doc_id``, ``chunk_id``,
``answer_id``, ``expires_at``) stay separate. Reads unpack it (:func:`unpack`)."""
_UNPACKED = {v: k for k, v in PACKED.items()}


def pack(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` as stored: the :data:`PACKED` fields in one ``packed`` string."""
    out = {k: v for k, v in meta.items() if k not in PACKED}
    packed = {PACKED[k]: v for k, v in meta.items() if k in PACKED and v not in (None, "")}
    if packed:
        out["packed"] = json.dumps(packed, ensure_ascii=False, separators=(",", ":"))
    return out


def unpack(meta: dict[str, Any] | None, namespace: str | None = None, partition: str | None = None) -> dict[str, Any]:
    """Stored metadata as every reader sees it: packed fields spread out, and the namespace and
    partition (kept by the partition's collection, not by each record) filled in. Records without a
    ``packed`` field read as they are."""
    out = dict(meta or {})
    raw = out.pop("packed", None)
    if raw:
        for k, v in json.loads(raw).items():
            out.setdefault(_UNPACKED.get(k, k), v)
    if namespace is not None:
        out.setdefault("namespace", namespace)
    if partition is not None:
        out.setdefault("partition", partition)
    out.setdefault("expires_at", 0.0)
    out.setdefault("chunk_hash", "")  # packing leaves empty values out
    return out


def validate(p: QAPair, dim: int) -> None:
    """Refuse a pair that cannot be stored, before anything is written."""
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
    if p.vector is not None and len(p.vector) != dim:
        msg = (f"The vector given for {q!r} has {len(p.vector)} dims; this store's embedder gives "
               f"{dim}: pass vector=None to embed it.")
        raise ValueError(msg)


def metadata(p: QAPair, now: float) -> dict[str, MetaValue]:
    """A pair's metadata as readers see it."""
    meta: dict[str, MetaValue] = {k: v for k, v in p.extra.items() if v is not None}
    meta.update(question=clean_text(p.question), namespace=p.namespace, partition=p.partition, origin=p.origin,
                doc_id=p.doc_id, chunk_id=p.chunk_id, chunk_hash=p.chunk_hash, created_at=now,
                expires_at=float(p.expires_at or 0.0))
    if p.generations:
        meta["generations"] = p.generations
    return meta


def stored_metadata(p: QAPair, now: float, sentences: dict[str, tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """A pair's metadata as written; its source sentence (if any) is added to ``sentences``."""
    meta = metadata(p, now)
    meta["created_at"] = int(now)  # whole seconds are enough, and shorter
    for key in ("namespace", "partition"):
        meta.pop(key)
    if not meta.get("expires_at"):
        meta.pop("expires_at")
    text = meta.pop("source_sentence", None)
    if isinstance(text, str) and text:
        sid = sentence_id(p.namespace, p.partition, p.chunk_id, text)
        meta["sentence_id"] = sid
        sentences[sid] = (text, {"namespace": p.namespace, "partition": p.partition, "doc_id": p.doc_id,
                                 "chunk_id": p.chunk_id})
    return pack(meta)


def read(col: Any, metadatas: list[Any], sentences: SentenceTable) -> list[dict[str, Any]]:
    """Stored metadata of one partition's records as readers see them."""
    cmeta = col.metadata or {}
    out = [unpack(m, cmeta.get("namespace"), cmeta.get("partition")) for m in metadatas]
    sentences.fill(out)
    return out
