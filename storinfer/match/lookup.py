"""Lookup: the stored keys that may answer a question, read from the store once.

An identical question (after normalisation) is found by id without embedding: that is an exact
hit. Otherwise the question is embedded once and the ``k`` nearest keys of its namespace and
partition (and any ``extra`` candidates, such as answers still queued for writing) are the
:class:`Candidates` that a policy (:mod:`storinfer.match.policy`) or a learner then decides on.

This module reads the store through the few methods :class:`StoreView` names and imports no store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from storinfer.protocols import Embedder
from storinfer.records import Lookup, Match, Reason
from storinfer.text import clean_text

DEFAULT_K = 8
"""Nearest keys checked per lookup: enough to see an answer's other keys and its rivals."""


class StoreView(Protocol):
    """What a lookup needs of a store (:class:`storinfer.QAStore` has it)."""

    embedding: Embedder

    def question_problem(self, question: object) -> Reason | None: ...

    def exact(self, question: str, *, namespace: str, partition: str, now: float | None = None) -> Match | None: ...

    def search_by_vector(self, vector: list[float], *, namespace: str, partition: str, k: int,
                         now: float | None = None) -> list[Match]: ...

    def reading(self) -> AbstractContextManager[None]: ...


@dataclass
class Candidates:
    """What a lookup found before deciding: the question, its vector and the nearest keys, best first."""

    question: str
    vector: list[float]
    matches: list[Match] = field(default_factory=list)

    @property
    def best_similarity(self) -> float | None:
        return self.matches[0].similarity if self.matches else None

    def __iter__(self) -> Iterator[Match]:
        return iter(self.matches)

    def __len__(self) -> int:
        return len(self.matches)

    def miss(self, reason: Reason, **kw: object) -> Lookup:
        """A :class:`Lookup` that serves nothing, carrying these candidates."""
        return Lookup(None, reason, best_similarity=self.best_similarity, vector=self.vector, candidates=self.matches,
                      **kw)  # type: ignore[arg-type]

    def hit(self, pos: int, reason: Reason = Reason.SIMILAR, **kw: object) -> Lookup:
        return Lookup(self.matches[pos], reason, best_similarity=self.best_similarity, vector=self.vector,
                      candidates=self.matches, **kw)  # type: ignore[arg-type]


def merged(found: Sequence[Match], extra: Sequence[Match], k: int) -> list[Match]:
    """The ``k`` best of both lists, best first; a stored key also among ``extra`` counts once."""
    seen: set[str] = set()
    out = []
    for m in sorted([*extra, *found], key=lambda m: -m.similarity):
        if m.id not in seen:
            seen.add(m.id)
            out.append(m)
    return out[:k]


def find(store: StoreView, question: object, *, namespace: str, partition: str, k: int = DEFAULT_K,
         now: float | None = None, extra: Callable[[list[float]], list[Match]] | None = None) -> Lookup | Candidates:
    """An exact hit or a question the store cannot match (a :class:`Lookup`), else the :class:`Candidates`.

    ``extra(vector)`` gives more candidates (with their similarity to ``vector``), merged with the stored ones.
    """
    problem = store.question_problem(question)
    if problem is not None:
        return Lookup(None, problem)
    assert isinstance(question, str)
    q = clean_text(question)
    now = time.time() if now is None else now
    with store.reading():
        exact = store.exact(q, namespace=namespace, partition=partition, now=now)
        if exact is not None:
            return Lookup(exact, Reason.EXACT, best_similarity=1.0)
        vector = store.embedding.embed_query(q)
        matches = store.search_by_vector(vector, namespace=namespace, partition=partition, k=k, now=now)
    if extra is not None:
        matches = merged(matches, extra(vector), k)
    return Candidates(q, vector, matches)
