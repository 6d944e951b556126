"""Lookup: the stored pair that may answer a question, or why there is none.

An identical question (after normalisation) is found by id without embedding. Otherwise the
question is embedded once and the ``k`` nearest keys of its namespace and partition are
checked by the hit verifier (:class:`storinfer.verify.Verifier`: the shipped one, or the one
``storinfer calibrate`` recorded in the store): each candidate at or above its cosine floor
must break no hard rule and score at or above its head's cut; the best-scoring one is served.

``verifier=False`` serves as StorInfer 0.1 did: the nearest candidate at cosine >= ``threshold``
(0.95) that no look-alike rule (:func:`storinfer.lookalike.conflict`) refuses. Everything refused
is returned with the reason, so a caller can say why it missed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from storinfer.lookalike import conflict
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, DEFAULT_THRESHOLD, Lookup, Match
from storinfer.text import clean_text, pair_id
from storinfer.verify import Verifier
from storinfer.verify import runner_up as competitor

DEFAULT_K = 8
"""Nearest keys checked per lookup: enough to see an answer's other keys and its rivals."""

if TYPE_CHECKING:
    from storinfer.store import QAStore


def exact_match(store: QAStore, col: object, namespace: str, partition: str, question: str, now: float) -> Match | None:
    """The unexpired pair stored under this very question, if any."""
    exact = col.get(ids=[pair_id(namespace, partition, question)], include=["documents", "metadatas"])  # type: ignore[attr-defined]
    if not exact["ids"]:
        return None
    meta = store._read(col, exact["metadatas"])[0]
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
    k: int = DEFAULT_K,
    guard: bool = True,
    verifier: Verifier | bool | None = None,
    now: float | None = None,
) -> Lookup:
    """Find a stored answer that may be served for ``question`` in ``store``, or say why there is none.

    ``verifier``: None (default) is the store's (its recorded operating point, else the shipped
    one); False, the look-alike rules at ``threshold`` (default 0.95). ``threshold`` overrides the
    verifier's cosine floors. ``guard=False`` serves the nearest question at or above
    ``threshold`` on cosine alone (for measurement, not for serving).
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
    exact = exact_match(store, col, namespace, partition, q, now)
    if exact is not None:
        return Lookup(exact, reason="exact", best_similarity=1.0)
    v = None if verifier is False else (verifier if isinstance(verifier, Verifier) else store.verifier)
    if v is not None and threshold is not None:
        v = v.with_operating_point(floor=threshold)
    vector = store.embedding.embed_query(q)
    candidates = store._nearest(col, vector, k, now)
    best = candidates[0].similarity if candidates else None
    if not guard or v is None:
        floor = DEFAULT_THRESHOLD if threshold is None else threshold
        rejected: list[tuple[Match, str]] = []
        for cand in candidates:
            if cand.similarity < floor:
                break
            why = None if not guard else conflict(q, cand.question)
            if why is None:
                return Lookup(cand, reason="similar", best_similarity=best, rejected=rejected, vector=vector)
            rejected.append((cand, f"rule: {why}"))
        reason = "guard" if rejected else ("empty partition" if best is None else "below threshold")
        return Lookup(None, reason=reason, best_similarity=best, rejected=rejected, vector=vector)
    pos, verdicts = v.choose(q, candidates)
    if pos is not None:
        refused = [(c, vd.reason) for c, vd in zip(candidates, verdicts) if not vd.ok and c.similarity >= v.floor]
        return Lookup(candidates[pos], reason="similar", best_similarity=best, rejected=refused,
                      score=verdicts[pos].score, vector=vector)
    refused = [(c, vd.reason) for c, vd in zip(candidates, verdicts) if c.similarity >= v.floor]
    reason = "verifier" if refused else ("empty partition" if best is None else "below threshold")
    return Lookup(None, reason=reason, best_similarity=best, rejected=refused, vector=vector)
