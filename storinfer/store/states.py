"""Learnt states: what each partition's learner serves with, as its last refit left it.

Each refit publishes a new *version* of its partition's state, the whole state in one JSON document,
as a record of its own in the side collection ``<collection_name>-learner``. Publishing is a
compare-and-set: a version's record is only ever added, never overwritten (Chroma keeps the first
record of an id), so when two clients publish the same version one wins and the other reads back
and takes the winner's. Every client reads the latest version; older ones are pruned.
"""

from __future__ import annotations

import json
from typing import Any

from storinfer.store.side import SideTable
from storinfer.text import sha

KEEP = 3
"""Versions kept per partition (the latest and the two before it)."""


class StateTable(SideTable):
    """The learnt-state side collection (a :class:`~storinfer.store.side.SideTable`)."""

    SUFFIX = "learner"

    @staticmethod
    def key(namespace: str, partition: str, version: int) -> str:
        return f"{sha(namespace, partition, length=24)}-v{int(version)}"

    def _versions(self, namespace: str, partition: str) -> dict[int, str]:
        res = self.collection.get(where={"$and": [{"namespace": namespace}, {"partition": partition}]},
                                  include=["metadatas"])
        return {int(m.get("version", 0)): i for i, m in zip(res["ids"], res["metadatas"])}

    def latest(self, namespace: str, partition: str) -> dict[str, Any] | None:
        """The latest published state of one partition (None: none yet)."""
        versions = self._versions(namespace, partition)
        if not versions:
            return None
        res = self.collection.get(ids=[versions[max(versions)]], include=["documents"])
        return json.loads(res["documents"][0]) if res["ids"] and res["documents"][0] else None

    def publish(self, namespace: str, partition: str, version: int, state: dict[str, Any]) -> dict[str, Any] | None:
        """Publish ``state`` as ``version`` unless that version exists already; return the state that
        holds that version now (``state`` itself, or the one another client published first)."""
        text = json.dumps(state, sort_keys=True, default=float)
        key = self.key(namespace, partition, version)
        with self._lock:
            self.collection.add(ids=[key], embeddings=[[1.0]], documents=[text],
                                metadatas=[{"namespace": namespace, "partition": partition, "version": int(version)}])
            res = self.collection.get(ids=[key], include=["documents"])
            old = [i for v, i in self._versions(namespace, partition).items() if v <= version - KEEP]
            if old:
                self.collection.delete(ids=old)
        return json.loads(res["documents"][0]) if res["ids"] and res["documents"][0] else None

    def delete(self, namespace: str, partition: str) -> None:
        with self._lock:
            ids = list(self._versions(namespace, partition).values())
            if ids:
                self.collection.delete(ids=ids)
