"""Text helpers: question normalisation, stable ids and content hashes."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WS = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """NFKC-normalise, drop control characters, and fold white space; keeps case."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch.isprintable() or ch.isspace())
    return _WS.sub(" ", text).strip()


def normalize_question(question: str) -> str:
    """The form two questions must share to be *the same* question (used for ids and exact hits).

    Lower case, folded white space, no surrounding quotes and no trailing ``?``/``.``/``!``.
    """
    q = clean_text(question).lower().strip(" \"'`")
    return q.rstrip("?.! ").strip()


def sha(*parts: str, length: int = 32) -> str:
    """SHA-256 of the parts joined by a separator that cannot occur in clean text."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:length]


def pair_id(namespace: str, partition: str, question: str) -> str:
    """Stable id of a question in a partition: re-adding the same question updates, never duplicates."""
    return sha(namespace, partition, normalize_question(question))


def content_hash(text: str) -> str:
    """Hash of a document or chunk's text, stored with each pair for staleness checks."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
