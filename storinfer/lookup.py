"""Lookup: the stored pair that may answer a question, or why there is none.

An identical question (after normalisation) is found by id without embedding. Otherwise the
question is embedded once and the ``k`` nearest questions of its namespace and partition are
tried best first. The first that passes is the match:

* by default, cosine >= ``threshold`` (0.95) and no look-alike rule fires
  (:func:`storinfer.lookalike.conflict`: numbers, names, negation, modifiers, question type,
  focus);
* with a :class:`~storinfer.verify.Verifier` (passed, or recorded in the store by
  ``storinfer calibrate``): its cosine floor, its hard rules and its learned score.

Everything refused is returned with the reason, so a caller can say why it missed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from storinfer.lookalike import conflict
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, DEFAULT_THRESHOLD, Lookup, Match
from storinfer.text import clean_text, pair_id
from storinfer.verify import Verifier
from storinfer.verify import runner_up as competitor

if TYPE_CHECKING:
    from storinfer.store import QAStore


def exact_match(col: object, namespace: str, partition: str, question: str, now: float) -> Match | None:
    """The unexpired pair stored under this very question, if any."""
    exact = col.get(ids=[pair_id(namespace, partition, question)], include=["documents", "metadatas"])  # type: ignore[attr-defined]
    if not exact["ids"]:
        return None
    meta = dict(exact["metadatas"][0])
    expires = float(meta.get("expires_at", 0.0) or 0.0)
    if expires and expires <= now:
        return None
    return Match(exact["ids"][0], meta.get("question", ""), exact["documents"][0] or "", 1.0, meta, exact=True)


def runner_up(candidates: list[Match], position: int) -> float | None:
    """Similarity of the best other candidate with a different answer (see :func:`storinfer.verify.runner_up`)."""
    return competitor([(c.answer, c.similarity) for c in candidates], position)


def lookup(
    store: QAStore,
    question: object,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    partition: str = DEFAULT_PARTITION,
    threshold: float | None = None,
    k: int = 4,
    guard: bool = True,
    verifier: Verifier | None = None,
    now: float | None = None,
) -> Lookup:
    """Find a stored answer that may be served for ``question`` in ``store``, or say why there is none.

    ``verifier`` defaults to the store's recorded one (None: the look-alike rules at
    ``threshold``, default 0.95); ``threshold`` overrides a verifier's cosine floor.
    ``guard=False`` serves the nearest question at or above ``threshold`` on cosine alone (for
    measurement, not for serving).
    """
    problem = store.question_problem(question)
    if problem:
        return Lookup(None, reason=problem)
    assert isinstance(question, str)
    col = store._partition_collection(namespace, partition, create=False)
    if col is None:
        return Lookup(None, reason="empty partition")
    q = clean_text(question)
    now = time.time() if now is None else now
    exact = exact_match(col, namespace, partition, q, now)
    if exact is not None:
        return Lookup(exact, reason="exact", best_similarity=1.0)
    v = verifier or store.verifier
    if v is not None and threshold is not None:
        v = v.with_operating_point(floor=threshold)
    floor = v.floor_for(q) if v is not None else (DEFAULT_THRESHOLD if threshold is None else threshold)
    rejected: list[tuple[Match, str]] = []
    vector = store.embedding.embed_query(q)
    candidates = store._nearest(col, vector, k, now)
    best = candidates[0].similarity if candidates else None
    for pos, cand in enumerate(candidates):
        if cand.similarity < floor:
            break
        if not guard:
            return Lookup(cand, reason="similar", best_similarity=best, vector=vector)
        if v is None:
            why = conflict(q, cand.question)
            if why is None:
                return Lookup(cand, reason="similar", best_similarity=best, rejected=rejected, vector=vector)
            rejected.append((cand, f"rule: {why}"))
            continue
        verdict = v.check(q, cand.question, cand.similarity, runner_up=runner_up(candidates, pos), answer=cand.answer)
        if verdict.ok:
            return Lookup(cand, reason="similar", best_similarity=best, rejected=rejected, score=verdict.score,
                          vector=vector)
        rejected.append((cand, verdict.reason))
    reason = "guard" if rejected else ("empty partition" if best is None else "below threshold")
    return Lookup(None, reason=reason, best_similarity=best, rejected=rejected, vector=vector)
