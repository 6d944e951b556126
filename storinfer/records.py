"""What the store holds and returns: a pair to store, a match found, and a lookup's outcome."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from storinfer.text import pair_id

DEFAULT_NAMESPACE = "default"
DEFAULT_PARTITION = "default"
# 0.1's fixed cosine threshold (with the look-alike guard). Lookups now take their cosine floor
# from the verifier's operating point (storinfer/verifier.json, or the one a store records);
# kept for the calibration fallback and for code that imported it.
DEFAULT_THRESHOLD = 0.95

Origin = Literal["precomputed", "runtime"]
MetaValue = str | int | float | bool


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
    partition (kept by the partition's collection, not by each record) filled in. Records written
    before packing (StorInfer 0.2) read as they are."""
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
    vector: list[float] | None = field(default=None, repr=False, compare=False)
    """The key's embedding if already computed (a miss's lookup vector); None: embedded on add."""

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
    """The outcome of a lookup: a match, or why there is none (and what was refused, and why)."""

    match: Match | None
    reason: str = ""
    best_similarity: float | None = None
    rejected: list[tuple[Match, str]] = field(default_factory=list)
    """Candidates refused before the match (or all of them, on a miss), with the reason."""
    score: float | None = None
    """The verifier's score of the match (None for an exact hit or an unverified one)."""
    vector: list[float] | None = field(default=None, repr=False, compare=False)
    """The question's embedding, when the lookup computed one (reused to store a miss's answer)."""
    candidates: list[Match] = field(default_factory=list, repr=False, compare=False)
    """The nearest keys the lookup checked, best first (empty for an exact hit)."""
    explored: Match | None = None
    """A would-be hit held back to test it (exploration): the chain answers, and its answer says
    whether this stored one would have been right."""
    explore_rate: float | None = None
    """The chance that this would-be hit was held back (so a label can stand for the hits it represents)."""

    @property
    def hit(self) -> bool:
        return self.match is not None


LABEL_SOURCES = ("miss", "explore", "judge")


@dataclass
class Label:
    """One verdict on a candidate the store had for a question."""

    namespace: str
    partition: str
    head: str  # "question" | "fact"
    score: float  # the verifier's score of the candidate
    cosine: float
    right: bool  # the candidate's stored answer would have been right
    source: str = "miss"  # "miss" | "explore" | "judge"
    probability: float = 1.0  # chance that a case like this got labelled (exploration share for hits)
    answer: str = ""  # the candidate's answer id (or text hash)
    rules_ok: bool = True  # the candidate broke no hard rule
    typed: bool = False  # the question asks for a typed answer (who / when / how many...)
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.source not in LABEL_SOURCES:
            msg = f"label source must be one of {LABEL_SOURCES}, not {self.source!r}"
            raise ValueError(msg)
        if not 0.0 < self.probability <= 1.0:
            msg = f"label probability must be in (0, 1], got {self.probability!r}"
            raise ValueError(msg)
