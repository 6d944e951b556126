"""What the store holds and returns: a pair to store, a match found, and a lookup's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from storinfer.text import pair_id

DEFAULT_NAMESPACE = "default"
DEFAULT_PARTITION = "default"
# Chosen by measurement, not guessed: benchmarks/threshold_pairs.py pairs the 810 human SQuAD
# Super Bowl questions (same gold answer = a right hit, else wrong). With the guard on, 0.95 is
# the lowest threshold with no wrong pair served (39 right, 0 wrong; at 0.92: 59 right, 1 wrong).
# `calibrate()` picks a threshold for your own corpus. See the README's "Choosing the threshold".
DEFAULT_THRESHOLD = 0.95

Origin = Literal["precomputed", "runtime"]
MetaValue = str | int | float | bool


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
    """The outcome of a lookup: a match, or why there is none (and what was refused, and why)."""

    match: Match | None
    reason: str = ""
    best_similarity: float | None = None
    rejected: list[tuple[Match, str]] = field(default_factory=list)

    @property
    def hit(self) -> bool:
        return self.match is not None
