"""Labels: what traffic taught the store about its own decisions, per partition.

Every miss that had a candidate runs the app's chain, and the chain's answer says whether the
candidate's stored answer would have done (:mod:`storinfer.match.judge`); an explored hit says
the same of a would-be hit. Each verdict is a *label*: the candidate's verifier head, its score
and cosine, whether it was right, where the label came from (``miss``, ``explore``, ``judge``)
and the probability that such a case was labelled at all (1 for a miss, the exploration share
for a hit), so the refit (:mod:`storinfer.match.refit`) can weigh them.

Labels live in the side collection ``<collection_name>-labels`` of the same Chroma client, so
every client of the store (local, or many processes on one Chroma server) writes and reads the
same labels.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict

from storinfer.records import Label
from storinfer.store.ledger import where
from storinfer.store.side import SideTable


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
        out = [Label(**{**m, "right": bool(m["right"]), "rules_ok": bool(m.get("rules_ok", 1)), "typed": bool(m.get("typed", 0))})
               for m in res["metadatas"]]
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
