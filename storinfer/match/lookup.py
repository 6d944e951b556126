"""Lookup: the stored pair that may answer a question, or why there is none.

An identical question (after normalisation) is found by id without embedding. Otherwise the
question is embedded once and the ``k`` nearest keys of its namespace and partition (and any
``extra`` candidates, such as answers still queued for writing) are checked by the hit verifier
(:class:`storinfer.match.verify.Verifier`): each candidate at or above its cosine floor must break
no hard rule and score at or above its head's cut; the best-scoring one is served.

``verifier=False`` serves as StorInfer 0.1 did: the nearest candidate at cosine >= ``threshold``
(0.95) that no look-alike rule (:func:`storinfer.match.lookalike.conflict`) refuses. Everything
refused is returned with the reason, so a caller can say why it missed.

This module reads the store through the few methods :class:`StoreView` names, and imports no
store: the store calls it (``QAStore.lookup``), never the other way round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from storinfer.match.lookalike import conflict
from storinfer.match.verify import Verifier
from storinfer.match.verify import runner_up as competitor
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, DEFAULT_THRESHOLD, Lookup, Match
from storinfer.text import clean_text

DEFAULT_K = 8
"""Nearest keys checked per lookup: enough to see an answer's other keys and its rivals."""


class StoreView(Protocol):
    """What a lookup needs of a store (:class:`storinfer.store.QAStore` has it)."""

    embedding: Any
    verifier: Verifier

    def question_problem(self, question: object) -> str: ...

    def exact(self, question: str, *, namespace: str, partition: str, now: float | None = None) -> Match | None: ...

    def search_by_vector(self, vector: list[float], *, namespace: str, partition: str, k: int,
                         now: float | None = None) -> list[Match]: ...


def runner_up(candidates: list[Match], position: int) -> float | None:
    """Similarity of the best other candidate with a different answer (see :func:`storinfer.match.verify.runner_up`)."""
    return competitor([(c.answer, c.similarity) for c in candidates], position)


def merged(found: Sequence[Match], extra: Sequence[Match], k: int) -> list[Match]:
    """The ``k`` best of both lists, best first; a stored key also among ``extra`` counts once."""
    seen: set[str] = set()
    out = []
    for m in sorted([*extra, *found], key=lambda m: -m.similarity):
        if m.id not in seen:
            seen.add(m.id)
            out.append(m)
    return out[:k]


def lookup(
    store: StoreView,
    question: object,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    partition: str = DEFAULT_PARTITION,
    threshold: float | None = None,
    k: int = DEFAULT_K,
    guard: bool = True,
    verifier: Verifier | bool | None = None,
    now: float | None = None,
    extra: Callable[[list[float]], list[Match]] | None = None,
) -> Lookup:
    """Find a stored answer that may be served for ``question`` in ``store``, or say why there is none.

    ``verifier``: None (default) is the store's (its recorded operating point, else the shipped
    one); False, the look-alike rules at ``threshold`` (default 0.95). ``threshold`` overrides the
    verifier's cosine floors. ``guard=False`` serves the nearest question at or above
    ``threshold`` on cosine alone (for measurement, not for serving). ``extra(vector)`` gives more
    candidates (with their similarity to ``vector``), checked like stored ones.
    """
    problem = store.question_problem(question)
    if problem:
        return Lookup(None, reason=problem)
    assert isinstance(question, str)
    q = clean_text(question)
    now = time.time() if now is None else now
    exact = store.exact(q, namespace=namespace, partition=partition, now=now)
    if exact is not None:
        return Lookup(exact, reason="exact", best_similarity=1.0)
    v = None if verifier is False else (verifier if isinstance(verifier, Verifier) else store.verifier)
    if v is not None and threshold is not None:
        v = v.with_operating_point(floor=threshold)
    vector = store.embedding.embed_query(q)
    candidates = store.search_by_vector(vector, namespace=namespace, partition=partition, k=k, now=now)
    if extra is not None:
        candidates = merged(candidates, extra(vector), k)
    best = candidates[0].similarity if candidates else None
    if not guard or v is None:
        floor = DEFAULT_THRESHOLD if threshold is None else threshold
        rejected: list[tuple[Match, str]] = []
        for cand in candidates:
            if cand.similarity < floor:
                break
            why = None if not guard else conflict(q, cand.question)
            if why is None:
                return Lookup(cand, reason="similar", best_similarity=best, rejected=rejected, vector=vector,
                              candidates=candidates)
            rejected.append((cand, f"rule: {why}"))
        reason = "guard" if rejected else ("empty partition" if best is None else "below threshold")
        return Lookup(None, reason=reason, best_similarity=best, rejected=rejected, vector=vector, candidates=candidates)
    pos, verdicts = v.choose(q, candidates)
    if pos is not None:
        refused = [(c, vd.reason) for c, vd in zip(candidates, verdicts) if not vd.ok and c.similarity >= v.floor]
        return Lookup(candidates[pos], reason="similar", best_similarity=best, rejected=refused,
                      score=verdicts[pos].score, vector=vector, candidates=candidates)
    refused = [(c, vd.reason) for c, vd in zip(candidates, verdicts) if c.similarity >= v.floor]
    reason = "verifier" if refused else ("empty partition" if best is None else "below threshold")
    return Lookup(None, reason=reason, best_similarity=best, rejected=refused, vector=vector, candidates=candidates)
