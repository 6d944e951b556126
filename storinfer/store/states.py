"""Learnt states: what each partition's learner serves with, as its last refit left it.

One record per (namespace, partition) in the side collection ``<collection_name>-learner``, the whole
state in one JSON document written in one upsert: a refit that dies before it writes leaves the last
good state, and every client of the store reads the same one.
"""

from __future__ import annotations

import json
from typing import Any

from storinfer.store.side import SideTable
from storinfer.text import sha


class StateTable(SideTable):
    """The learnt-state side collection (a :class:`~storinfer.store.side.SideTable`)."""

    SUFFIX = "learner"

    @staticmethod
    def key(namespace: str, partition: str) -> str:
        return sha(namespace, partition, length=24)

    def get(self, namespace: str, partition: str) -> dict[str, Any] | None:
        """The recorded state of one partition (None: none yet)."""
        res = self.collection.get(ids=[self.key(namespace, partition)], include=["documents"])
        return json.loads(res["documents"][0]) if res["ids"] and res["documents"][0] else None

    def put(self, namespace: str, partition: str, state: dict[str, Any]) -> None:
        """Record a partition's state (replacing the last one, in one write)."""
        text = json.dumps(state, sort_keys=True, default=float)
        with self._lock:
            self.collection.upsert(ids=[self.key(namespace, partition)], embeddings=[[1.0]], documents=[text],
                                   metadatas=[{"namespace": namespace, "partition": partition}])

    def delete(self, namespace: str, partition: str) -> None:
        with self._lock:
            self.collection.delete(ids=[self.key(namespace, partition)])
