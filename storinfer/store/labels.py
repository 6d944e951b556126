"""Labels: what traffic taught the store about its own decisions, per partition.

Every miss that had a candidate runs the app's chain, and the chain's answer says whether the
candidate's stored answer would have done (:mod:`storinfer.match.judge`); a checked hit (audited
or explored) says the same of a would-be hit. Each verdict is a :class:`Label`: the candidate's kind (its verifier *head*),
its score and cosine, whether it was right, and where the label came from (``miss``, ``explore``).

Labels live in the side collection ``<collection_name>-labels`` of the same Chroma client, so every
client of the store (local, or many processes on one Chroma server) writes and reads the same labels.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from storinfer.store.ledger import where
from storinfer.store.side import SideTable

LABEL_SOURCES = ("miss", "explore")
_FIELDS = ("id", "namespace", "partition", "head", "score", "cosine", "right", "source", "answer", "typed", "created_at")


@dataclass
class Label:
    """One verdict on the best candidate the store had for a question."""

    namespace: str
    partition: str
    head: str
    """Which kind of candidate it was: ``question``, ``fact`` or ``runtime``."""
    score: float
    """The verifier's score of the candidate."""
    cosine: float
    right: bool
    """The candidate's stored answer would have been right (the answer judge's verdict)."""
    source: str = "miss"
    """``miss`` (the candidate was not served) or ``explore`` (a would-be hit the chain answered too: audited
    after serving, or explored instead of it)."""
    answer: str = ""
    """The candidate's answer text, normalised (:func:`storinfer.match.features.same_answer_key`)."""
    typed: bool = False
    """The question asks for a typed answer (who / when / how many...)."""
    created_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def checked_wrong(self) -> bool:
        """A checked hit (audited or explored) whose stored answer was wrong."""
        return self.source == "explore" and not self.right

    def __post_init__(self) -> None:
        if self.source not in LABEL_SOURCES:
            msg = f"label source must be one of {LABEL_SOURCES}, not {self.source!r}"
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
            r["typed"] = int(r["typed"])
        ids = [r.pop("id") for r in rows]
        with self._lock:
            self.collection.add(ids=ids, embeddings=[[1.0]] * len(ids), metadatas=rows)
        return len(rows)

    def records(self, *, namespace: str, partition: str, since: float | None = None) -> list[Label]:
        """The labels of one partition (optionally only those written after ``since``), oldest first.
        Fields an older StorInfer wrote and this one does not read are left out."""
        cond = where(namespace=namespace, partition=partition)
        if since is not None:
            cond = {"$and": [cond, {"created_at": {"$gt": float(since)}}]}
        res = self.collection.get(where=cond, include=["metadatas"])
        out = []
        for i, m in zip(res["ids"], res["metadatas"]):
            if m.get("source") not in LABEL_SOURCES:
                continue  # an older StorInfer's "llm check" verdicts: never read
            row = {k: m[k] for k in _FIELDS if k in m}
            row.update(id=i, right=bool(m["right"]), typed=bool(m.get("typed", 0)))
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
