"""The learner's label and state tables in memory, with the interface of the store's side tables
(:class:`~storinfer.store.labels.LabelTable`, :class:`~storinfer.store.states.StateTable`): for a
learner run without Chroma, as the in-memory replay (`benchmarks/decision_memory.py`) and the
learner's unit tests run it. Nothing here persists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storinfer.store.labels import Label


class MemoryLabels:
    """Labels in a list (``rows``), read back as :class:`~storinfer.store.labels.LabelTable` reads them."""

    def __init__(self) -> None:
        self.rows: list[Label] = []

    def add(self, labels: Iterable[Label]) -> int:
        labels = list(labels)
        self.rows += labels
        return len(labels)

    def records(self, *, namespace: str, partition: str, since: float | None = None) -> list[Label]:
        return [lb for lb in self.rows if since is None or lb.created_at > since]


class MemoryStates:
    """Published states by version (``versions``): the first record of a version stays, the
    compare-and-set of :class:`~storinfer.store.states.StateTable`."""

    def __init__(self) -> None:
        self.versions: dict[int, dict[str, Any]] = {}

    def latest(self, namespace: str, partition: str) -> dict[str, Any] | None:
        return self.versions[max(self.versions)] if self.versions else None

    def publish(self, namespace: str, partition: str, version: int, state: dict[str, Any]) -> dict[str, Any]:
        return self.versions.setdefault(version, state)


class MemoryStore:
    """What a :class:`~storinfer.serve.learner.PartitionLearner` reads of a store, in memory."""

    def __init__(self, embedding: Any = None) -> None:
        self.embedding, self.labels, self.states = embedding, MemoryLabels(), MemoryStates()

    def wait_for_quiet(self, _seconds: float) -> None:
        return None


__all__ = ["MemoryLabels", "MemoryStates", "MemoryStore"]
