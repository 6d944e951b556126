"""Documents in, chunks out: the first step of precompute.

A chunk id is a hash of (document id, chunk text), so the same text of the same document is the
same chunk in every run (precompute resumes and updates by it). The splitter is LangChain's
``RecursiveCharacterTextSplitter`` algorithm (paragraphs, then lines, then words, then
characters, with overlap), written out here so the engine needs no framework; a test checks it
cuts exactly as LangChain's does, so stores made before keep their chunk ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storinfer.errors import ConfigError
from storinfer.protocols import Document
from storinfer.text import content_hash, sha

SEPARATORS = ("\n\n", "\n", " ", "")


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    chunk_id: str
    chunk_hash: str
    text: str

    def record_id(self, namespace: str, partition: str) -> str:
        return sha(namespace, partition, self.chunk_id)


def document_id(doc: Document) -> str:
    """A document's stable id: its ``id``, else ``metadata['source']`` (or similar), else a hash of its text."""
    if doc.id:
        return str(doc.id)
    for key in ("source", "file_path", "doc_id", "id"):
        if doc.metadata.get(key):
            return str(doc.metadata[key])
    return "sha-" + content_hash(doc.text)


def as_documents(source: Iterable[Any]) -> list[Document]:
    """Core Documents from Documents or strings (the framework faces convert their own types first)."""
    docs: list[Document] = []
    for i, item in enumerate(source):
        doc = Document(item) if isinstance(item, str) else item
        if not isinstance(doc, Document):
            msg = (
                f"Item {i} is a {type(item).__name__}; precompute takes storinfer.Document, strings, LangChain "
                "Documents or a loader (storinfer_langchain), or LlamaIndex sources (storinfer_llamaindex.precompute)."
            )
            raise TypeError(msg)
        if not isinstance(doc.text, str):
            msg = f"Document {i} has {type(doc.text).__name__} content; text (str) is needed."
            raise TypeError(msg)
        docs.append(doc)
    return docs


class TextSplitter:
    """Recursive character splitter (LangChain's algorithm and defaults, ``keep_separator='start'``)."""

    def __init__(self, chunk_size: int = 1000, chunk_overlap: int = 100) -> None:
        if chunk_size < 50 or not (0 <= chunk_overlap < chunk_size):
            msg = f"chunk_size must be >= 50 and 0 <= chunk_overlap < chunk_size (got {chunk_size}, {chunk_overlap})."
            raise ConfigError(msg)
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap

    def split_text(self, text: str) -> list[str]:
        return self._split(text, list(SEPARATORS))

    def _split(self, text: str, separators: list[str]) -> list[str]:
        separator, rest = separators[-1], []
        for i, s in enumerate(separators):
            if not s:
                separator = s
                break
            if re.search(re.escape(s), text):
                separator, rest = s, separators[i + 1 :]
                break
        chunks: list[str] = []
        good: list[str] = []
        for piece in _split_keep_start(text, separator):
            if len(piece) < self.chunk_size:
                good.append(piece)
                continue
            if good:
                chunks.extend(self._merge(good))
                good = []
            chunks.extend(self._split(piece, rest) if rest else [piece])
        if good:
            chunks.extend(self._merge(good))
        return chunks

    def _merge(self, splits: list[str]) -> list[str]:
        """Pack small pieces into chunks of at most ``chunk_size``, carrying ``chunk_overlap`` over."""
        docs: list[str] = []
        current: list[str] = []
        total = 0
        for d in splits:
            if total + len(d) > self.chunk_size and current:
                joined = "".join(current).strip()
                if joined:
                    docs.append(joined)
                while total > self.chunk_overlap or (total + len(d) > self.chunk_size and total > 0):
                    total -= len(current[0])
                    current = current[1:]
            current.append(d)
            total += len(d)
        joined = "".join(current).strip()
        if joined:
            docs.append(joined)
        return docs


def _split_keep_start(text: str, separator: str) -> list[str]:
    """Split on ``separator``, keeping it at the start of the piece that follows it."""
    if not separator:
        return [ch for ch in text if ch]
    parts = re.split(f"({re.escape(separator)})", text)
    pieces = [parts[i] + parts[i + 1] for i in range(1, len(parts), 2)]
    if len(parts) % 2 == 0:
        pieces += parts[-1:]
    return [p for p in [parts[0], *pieces] if p]


def chunk_documents(documents: Iterable[Document], splitter: TextSplitter | None) -> list[Chunk]:
    """Chunks of the documents, in order, with stable ids (identical chunks of a document once).

    ``splitter=None`` takes each document as one chunk (already split, e.g. an index's nodes).
    """
    out: list[Chunk] = []
    seen: set[str] = set()
    for doc in documents:
        doc_id = document_id(doc)
        for text in splitter.split_text(doc.text) if splitter else [doc.text]:
            text = text.strip()
            if not text:
                continue
            chunk_id = sha(doc_id, text, length=24)
            if chunk_id not in seen:
                seen.add(chunk_id)
                out.append(Chunk(doc_id, chunk_id, content_hash(text), text))
    return out
