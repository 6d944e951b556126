"""Side collections: what a store keeps beside its keys, in the same Chroma client.

The chunk ledger, the sentences of answer-aware keys, the labels and the operating points each
live in a collection ``<collection_name>-<suffix>`` that every client of the store shares. Chroma
still wants a vector per record: they store a constant one.
"""

from __future__ import annotations

import threading
from typing import Any


class SideTable:
    """A side collection named ``<collection_name>-<SUFFIX>``, opened on first use."""

    SUFFIX = ""

    def __init__(self, client: Any, collection_name: str, lock: threading.RLock) -> None:
        self._client = client
        self._name = f"{collection_name}-{self.SUFFIX}"
        self._lock = lock
        self._col: Any | None = None

    @property
    def collection(self) -> Any:
        if self._col is None:
            self._col = self._client.get_or_create_collection(self._name, embedding_function=None)
        return self._col
