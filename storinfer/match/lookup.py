"""Lookup: the stored keys that may answer a question, read from the store once.

An identical question (after normalisation) is found by id without embedding: that is an exact
hit. Otherwise the question is embedded once and the ``k`` nearest keys of its namespace and
partition (and any ``extra`` candidates, such as answers still queued for writing) are the
:class:`Candidates` that a policy (:mod:`storinfer.match.policy`) or a learner then decides on. A
prompt that shares a template's frame with its nearest key is decided on what lies inside the
frame (:mod:`storinfer.match.frame`).

This module reads the store through the few methods :class:`StoreView` names and imports no store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Protocol

from storinfer.match.frame import shared_frame
from storinfer.models.identity import cosine
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
    return inside_frame(store.embedding, Candidates(q, vector, matches))


def inside_frame(embedder: Embedder, found: Candidates) -> Candidates:
    """``found``, or, where its question shares a template's frame with its nearest key, the question's
    middle and the middles of the keys inside that frame, each embedded, with their own cosine, best
    first (the question's vector stays the whole prompt's, to store its answer under)."""
    frame = shared_frame(found.question, found.matches[0].question) if found.matches else None
    if frame is None:
        return found
    middle = frame.inside(found.question)
    assert middle is not None  # shared_frame gives only frames both texts hold something inside
    inside = [(m, frame.inside(m.question)) for m in found.matches]
    keys = [(m, text) for m, text in inside if text is not None]
    asked = embedder.embed_query(middle)
    vectors = embedder.embed_documents([text for _m, text in keys])
    judged = [replace(m, question=text, similarity=cosine(asked, v)) for (m, text), v in zip(keys, vectors)]
    return Candidates(middle, found.vector, sorted(judged, key=lambda m: -m.similarity))
