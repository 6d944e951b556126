"""Lookup: the stored pair that may answer a question, or why there is none.

An identical question (after normalisation) is found by id without embedding. Otherwise the
question is embedded once and the ``k`` nearest questions of its namespace and partition are
tried best first: the first at or above the threshold that :mod:`storinfer.verify` accepts is
the match. Everything refused is returned with the reason, so a caller can say why it missed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, DEFAULT_THRESHOLD, Lookup, Match
from storinfer.text import clean_text, pair_id
from storinfer.verify import conflict

if TYPE_CHECKING:
    from storinfer.store import QAStore


def exact_match(store: QAStore, col: object, namespace: str, partition: str, question: str, now: float) -> Match | None:
    """The unexpired pair stored under this very question, if any."""
    exact = col.get(ids=[pair_id(namespace, partition, question)], include=["documents", "metadatas"])  # type: ignore[attr-defined]
    if not exact["ids"]:
        return None
    meta = dict(exact["metadatas"][0])
    expires = float(meta.get("expires_at", 0.0) or 0.0)
    if expires and expires <= now:
        return None
    return Match(exact["ids"][0], meta.get("question", ""), exact["documents"][0] or "", 1.0, meta, exact=True)


def lookup(
    store: QAStore,
    question: object,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    partition: str = DEFAULT_PARTITION,
    threshold: float = DEFAULT_THRESHOLD,
    k: int = 4,
    guard: bool = True,
    now: float | None = None,
) -> Lookup:
    """Find a stored answer that may be served for ``question`` in ``store``, or say why there is none."""
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
    rejected: list[tuple[Match, str]] = []
    candidates = store._nearest(col, store.embedding.embed_query(q), k, now)
    best = candidates[0].similarity if candidates else None
    for cand in candidates:
        if cand.similarity < threshold:
            break
        why = conflict(q, cand.question) if guard else None
        if why:
            rejected.append((cand, why))
            continue
        return Lookup(cand, reason="similar", best_similarity=best, rejected=rejected)
    reason = "guard" if rejected else ("empty partition" if best is None else "below threshold")
    return Lookup(None, reason=reason, best_similarity=best, rejected=rejected)
