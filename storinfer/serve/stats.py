"""Hit / miss counters shared by every face (the LangChain cache and chain, the LlamaIndex query engine)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from storinfer.match.verify import refusal_kind
from storinfer.records import Lookup, Reason

_COUNTERS = ("lookups", "hits", "exact_hits", "near_repeat_hits", "misses", "skipped", "errors", "updates",
             "guard_rejections", "audits", "audits_skipped", "audits_failed")


class LookupStats:
    """Thread-safe counters of lookups, with the similarity of each hit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(_COUNTERS, 0)
            self._similarities: deque[float] = deque(maxlen=10_000)
            self._recent: deque[dict[str, Any]] = deque(maxlen=20)
            self._refusals: dict[str, int] = {}

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def record(self, question: str, found: Lookup) -> None:
        """Count one finished lookup: a hit (with its similarity), a miss, or a skipped question."""
        with self._lock:
            self._counts["guard_rejections"] += len(found.rejected)
            for _cand, why in found.rejected:
                kind = refusal_kind(why)
                self._refusals[kind] = self._refusals.get(kind, 0) + 1
            if found.match is None:
                self._counts["skipped" if found.reason.skipped else "misses"] += 1
                return
            m = found.match
            self._counts["hits"] += 1
            self._counts["exact_hits"] += int(found.reason is Reason.EXACT)
            self._counts["near_repeat_hits"] += int(found.reason is Reason.NEAR_REPEAT)
            self._similarities.append(m.similarity)
            self._recent.append({"question": question, "matched": m.question, "similarity": round(m.similarity, 4),
                                 "origin": m.metadata.get("origin"), "id": m.id})

    def as_dict(self) -> dict[str, Any]:
        """Counters, hit rate, the similarity of hits (min / mean / max; recent hits listed), and
        ``refusals``: candidates the verifier refused, by reason (``rule:numbers``, ``verifier``...)."""
        with self._lock:
            c: dict[str, Any] = dict(self._counts)
            sims = list(self._similarities)
            recent = list(self._recent)
            c["refusals"] = dict(self._refusals)
        answered = c["hits"] + c["misses"]
        c["hit_rate"] = c["hits"] / answered if answered else 0.0
        c["hit_similarity"] = {"min": min(sims), "mean": sum(sims) / len(sims), "max": max(sims)} if sims else None
        c["recent_hits"] = recent
        return c
