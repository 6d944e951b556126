"""The store's layout in Chroma: which collection holds what.

* ``<name>``: the *root* collection. Its metadata records the schema version, the embedding
  model (name, dimension, the vector of a fixed probe text) and the operating points every
  client serves with. It holds no pairs.
* ``<name>-p-<hash>``: one collection per (namespace, partition), holding its pairs. A lookup
  searches only its own partition's index, so an entry of another model or tenant can never be
  returned or push the right one out of the top k. (A ``where`` filter on one shared collection
  isolates too but, measured on Chroma 1.5, costs 19 ms per query at 10k pairs and 84 ms at 40k;
  a collection of its own answers in about 1.3 ms at any size.)
* ``<name>-chunks``, ``<name>-sentences``, ``<name>-labels``: the side collections
  (:mod:`~storinfer.store.ledger`, :mod:`~storinfer.store.sentences`, :mod:`~storinfer.store.labels`).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from storinfer.errors import SchemaVersionError, StoreError
from storinfer.models.identity import check_same_embedder
from storinfer.text import sha

SCHEMA_VERSION = 1
DEFAULT_COLLECTION = "storinfer"


class Layout:
    """Opens and checks the root collection and finds or makes partition collections.

    Args:
        client: the chromadb client.
        name: the root collection's name.
        embedding_name, fingerprint: the embedder opening the store (its name and the vector of
            :data:`storinfer.models.identity.FINGERPRINT_TEXT`); a store made with another is refused.
        create: make the root collection if it is missing (False: :class:`StoreError`).
    """

    def __init__(self, client: Any, name: str, *, embedding_name: str, fingerprint: list[float], lock: threading.RLock,
                 create: bool = True) -> None:
        self.client = client
        self.name = name
        self.embedding_name = embedding_name
        self.dim = len(fingerprint)
        self._lock = lock
        self._partitions: dict[tuple[str, str], Any] = {}
        self.root = self._open_root(fingerprint, create)

    def _open_root(self, fingerprint: list[float], create: bool) -> Any:
        from chromadb.errors import NotFoundError

        try:
            col = self.client.get_collection(self.name, embedding_function=None)
        except (NotFoundError, ValueError):
            if not create:
                msg = f"No StorInfer collection {self.name!r} in this store; check --collection, or build it with precompute."
                raise StoreError(msg) from None
            meta = {"storinfer_schema": SCHEMA_VERSION, "kind": "root", "embedding_name": self.embedding_name,
                    "embedding_dim": self.dim, "embedding_fingerprint": json.dumps([round(x, 5) for x in fingerprint])}
            try:
                return self.client.create_collection(self.name, metadata=meta, embedding_function=None)
            except Exception:  # created meanwhile by another replica
                col = self.client.get_collection(self.name, embedding_function=None)
        check_schema(col)
        check_same_embedder(col.metadata or {}, fingerprint, self.embedding_name)
        return col

    # --- partitions: one collection each -----------------------------------------------------
    def partition(self, namespace: str, partition: str, *, create: bool) -> Any | None:
        """The collection of one (namespace, partition); None if it does not exist and not ``create``."""
        from chromadb.errors import NotFoundError

        key = (namespace, partition)
        col = self._partitions.get(key)
        if col is not None:
            return col
        name = f"{self.name}-p-{sha(namespace, partition, length=24)}"
        try:
            col = self.client.get_collection(name, embedding_function=None)
        except (NotFoundError, ValueError):
            if not create:
                return None
            meta = {"hnsw:space": "cosine", "storinfer_schema": SCHEMA_VERSION, "kind": "pairs", "namespace": namespace,
                    "partition": partition, "embedding_name": self.embedding_name, "embedding_dim": self.dim}
            try:
                col = self.client.create_collection(name, metadata=meta, embedding_function=None)
            except Exception:  # created meanwhile by another replica
                col = self.client.get_collection(name, embedding_function=None)
        self._partitions[key] = col
        return col

    def partitions(self, namespace: str | None = None) -> list[tuple[str, str, Any]]:
        """``(namespace, partition, collection)`` for every partition (of one namespace)."""
        prefix = f"{self.name}-p-"
        out = []
        for col in self.client.list_collections():
            meta = col.metadata or {}
            if not col.name.startswith(prefix) or meta.get("kind") != "pairs":
                continue
            if namespace is not None and meta.get("namespace") != namespace:
                continue
            key = (str(meta.get("namespace")), str(meta.get("partition")))
            self._partitions.setdefault(key, col)
            out.append((key[0], key[1], self._partitions[key]))
        return sorted(out, key=lambda t: (t[0], t[1]))

    def selected(self, namespace: str | None, partition: str | None) -> list[Any]:
        """The partition collections of a namespace (all if None), optionally one partition."""
        if namespace is not None and partition is not None:
            col = self.partition(namespace, partition, create=False)
            return [col] if col is not None else []
        return [col for _ns, part, col in self.partitions(namespace) if partition in (None, part)]

    def max_batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:  # older clients
            return 5000

    # --- what the root records for every client ----------------------------------------------
    def root_metadata(self, *, fresh: bool = False) -> dict[str, Any]:
        """The root collection's metadata (``fresh``: read again from Chroma, to see other clients' writes)."""
        if fresh:
            try:
                self.root = self.client.get_collection(self.name, embedding_function=None)
            except Exception:  # keep the last one read: a lookup must not fail on this
                pass
        return dict(self.root.metadata or {})

    def record(self, key: str, value: Any) -> None:
        """Write one JSON value into the root metadata, in one call (another client's keys are kept)."""
        with self._lock:
            meta = {k: v for k, v in self.root_metadata(fresh=True).items() if not k.startswith("hnsw:")}
            meta[key] = json.dumps(value, default=str)
            self.root.modify(metadata=meta)


def check_schema(col: Any) -> None:
    """Refuse a collection StorInfer did not make, or made with another schema."""
    version = (col.metadata or {}).get("storinfer_schema")
    if version is None:
        msg = (f"Collection {col.name!r} was not made by StorInfer (no schema version). "
               "Pass another collection_name=, or a new store path.")
        raise SchemaVersionError(msg)
    if int(version) != SCHEMA_VERSION:
        msg = (f"Collection {col.name!r} has StorInfer schema {version}; this StorInfer reads schema {SCHEMA_VERSION}. "
               "Use the StorInfer version that wrote it, or rebuild the store with `storinfer precompute`.")
        raise SchemaVersionError(msg)
