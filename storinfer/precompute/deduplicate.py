"""Deduplication: a generated question that asks what an accepted or stored one asks is dropped
before it costs an answer.

Two questions are duplicates when their cosine similarity reaches the threshold and the
look-alike check (:func:`storinfer.match.lookalike.conflict`) finds no reason they ask different things
("Which team represented the AFC?" and "... the NFC?" embed at 0.94 but are two questions).
"""

from __future__ import annotations

from collections.abc import Sequence

from storinfer.match.lookalike import conflict


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two L2-normalised vectors."""
    return sum(x * y for x, y in zip(a, b))


def duplicates(question: str, other: str, similarity: float, threshold: float, *, guard: bool = True) -> bool:
    """Whether ``question`` duplicates ``other``, at this cosine ``similarity``: at or above
    ``threshold`` and, with ``guard``, no reason they ask different things."""
    return similarity >= threshold and (not guard or conflict(question, other) is None)


def is_duplicate(question: str, vector: Sequence[float], known: Sequence[tuple[str, Sequence[float]]],
                 threshold: float, *, guard: bool = True) -> bool:
    """Whether ``question`` duplicates any ``(question, vector)`` of ``known``."""
    return any(duplicates(question, other, dot(vector, ovec), threshold, guard=guard) for other, ovec in known)
