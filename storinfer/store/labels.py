"""Labels: what traffic taught the store about its own decisions, per partition.

Every miss that had a candidate runs the app's chain, and the chain's answer says whether the
candidate's stored answer would have done (:mod:`storinfer.match.judge`); an explored hit says the
same of a would-be hit. Each verdict is a :class:`Label`: the candidate's kind (its verifier *head*),
its score and cosine, the features the learner models it by, whether it was right, where the label
came from (``miss``, ``explore``, ``llm check``) and the probability that such a case was labelled at
all (1 for a miss, the exploration share for an explored hit).

Labels live in the side collection ``<collection_name>-labels`` of the same Chroma client, so every
client of the store (local, or many processes on one Chroma server) writes and reads the same labels.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from storinfer.store.ledger import where
from storinfer.store.side import SideTable

LABEL_SOURCES = ("miss", "explore", "llm check")


@dataclass
class Label:
    """One verdict on a candidate the store had for a question."""

    namespace: str
    partition: str
    head: str
    """Which verifier head decided the candidate: ``question``, ``fact`` or ``runtime``."""
    score: float
    """The verifier's score of the candidate."""
    cosine: float
    right: bool
    """The candidate's stored answer would have been right (the answer judge's verdict)."""
    source: str = "miss"
    probability: float = 1.0
    """Chance that a case like this got labelled (the exploration share for an explored hit)."""
    answer: str = ""
    """The candidate's answer text, normalised (:func:`storinfer.match.features.same_answer_key`)."""
    rules_ok: bool = True
    typed: bool = False
    """The question asks for a typed answer (who / when / how many...)."""
    features: list[float] = field(default_factory=list)
    """The learner's description of the case (:func:`storinfer.match.risk.describe`)."""
    risk: float = -1.0
    """The learner's estimate of P(wrong) when it decided (-1: none)."""
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.source not in LABEL_SOURCES:
            msg = f"label source must be one of {LABEL_SOURCES}, not {self.source!r}"
            raise ValueError(msg)
        if not 0.0 < self.probability <= 1.0:
            msg = f"label probability must be in (0, 1], got {self.probability!r}"
            raise ValueError(msg)


class LabelTable(SideTable):
    """The labels side collection (a :class:`~storinfer.store.side.SideTable`)."""

    SUFFIX = "labels"

    def add(self, labels: Iterable[Label]) -> int:
        """Store labels; return how many."""
        rows = [asdict(lb) for lb in labels]
        if not rows:
            return 0
        for r in rows:
            r["right"] = int(r["right"])
            r["rules_ok"] = int(r["rules_ok"])
            r["typed"] = int(r["typed"])
            r["features"] = json.dumps([round(x, 5) for x in r["features"]], separators=(",", ":"))
        ids = [uuid.uuid4().hex for _ in rows]
        with self._lock:
            self.collection.add(ids=ids, embeddings=[[1.0]] * len(ids), metadatas=rows)
        return len(rows)

    def records(self, *, namespace: str, partition: str, since: float | None = None) -> list[Label]:
        """The labels of one partition (optionally only those written after ``since``), oldest first."""
        cond = where(namespace=namespace, partition=partition)
        if since is not None:
            cond = {"$and": [cond, {"created_at": {"$gt": float(since)}}]}
        res = self.collection.get(where=cond, include=["metadatas"])
        out = []
        for m in res["metadatas"]:
            row = dict(m)
            row.update(right=bool(m["right"]), rules_ok=bool(m.get("rules_ok", 1)), typed=bool(m.get("typed", 0)),
                       features=json.loads(m.get("features") or "[]"))
            out.append(Label(**row))
        return sorted(out, key=lambda lb: lb.created_at)

    def count(self, *, namespace: str | None = None, partition: str | None = None) -> int:
        cond = where(namespace=namespace, partition=partition)
        return len(self.collection.get(where=cond, include=[])["ids"]) if cond else self.collection.count()

    def delete_where(self, *, namespace: str | None = None, partition: str | None = None) -> int:
        cond = where(namespace=namespace, partition=partition)
        with self._lock:
            ids = self.collection.get(where=cond, include=[])["ids"]
            if ids:
                self.collection.delete(ids=ids)
        return len(ids)
