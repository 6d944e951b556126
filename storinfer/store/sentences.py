"""Source sentences of answer-aware keys, stored once each.

Every answer-aware key carries the sentence its fact came from (the hit verifier reads it), and a
sentence holds several facts, each stored under several keys: kept in every key's metadata it
would be written a dozen times, and Chroma writes each metadata string twice more (its value
index). So a key keeps only a ``sentence_id``; the sentence itself lives once in the side
collection ``<collection_name>-sentences`` of the same client, and reads fill it back in
(:meth:`SentenceTable.fill`, with an in-process cache). A sentence id hashes (namespace,
partition, chunk id, text), so removing a chunk's or a document's pairs removes its sentences.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from storinfer.store.ledger import where
from storinfer.store.side import SideTable
from storinfer.text import sha

CACHE = 50_000


def sentence_id(namespace: str, partition: str, chunk_id: str, text: str) -> str:
    return sha(namespace, partition, chunk_id, text, length=16)


class SentenceTable(SideTable):
    """The sentences side collection (a :class:`~storinfer.store.side.SideTable`)."""

    SUFFIX = "sentences"

    def __init__(self, client: Any, collection_name: str, lock: threading.RLock) -> None:
        super().__init__(client, collection_name, lock)
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_lock = threading.Lock()

    def put(self, rows: Mapping[str, tuple[str, Mapping[str, str]]]) -> None:
        """Store ``{sentence_id: (text, {"namespace", "partition", "doc_id", "chunk_id"})}``."""
        if not rows:
            return
        ids = list(rows)
        with self._lock:
            self.collection.upsert(ids=ids, embeddings=[[1.0]] * len(ids), documents=[rows[i][0] for i in ids],
                                   metadatas=[dict(rows[i][1]) for i in ids])
        self._remember({i: rows[i][0] for i in ids})

    def texts(self, ids: Iterable[str]) -> dict[str, str]:
        """The sentences of ``ids`` (unknown ids are left out)."""
        want = list(dict.fromkeys(ids))
        with self._cache_lock:
            found = {i: self._cache[i] for i in want if i in self._cache}
        missing = [i for i in want if i not in found]
        if missing:
            res = self.collection.get(ids=missing, include=["documents"])
            fresh = {i: d for i, d in zip(res["ids"], res["documents"]) if d}
            self._remember(fresh)
            found.update(fresh)
        return found

    def fill(self, metadatas: Iterable[dict[str, Any]]) -> None:
        """Put ``source_sentence`` back into metadata that names a ``sentence_id``."""
        metas = [m for m in metadatas if m.get("sentence_id") and "source_sentence" not in m]
        if not metas:
            return
        texts = self.texts(str(m["sentence_id"]) for m in metas)
        for m in metas:
            if m["sentence_id"] in texts:
                m["source_sentence"] = texts[m["sentence_id"]]

    def delete_where(self, **conds: str | None) -> None:
        """Delete the sentences of a namespace / partition / document / chunk."""
        cond = where(**conds)
        if cond is None:
            return
        with self._lock:
            ids = self.collection.get(where=cond, include=[])["ids"]
            if ids:
                self.collection.delete(ids=ids)
        with self._cache_lock:
            for i in ids:
                self._cache.pop(i, None)

    def _remember(self, texts: Mapping[str, str]) -> None:
        with self._cache_lock:
            self._cache.update(texts)
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
