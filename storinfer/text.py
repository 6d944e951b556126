"""Text helpers: question normalisation, stable ids and content hashes."""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections import Counter

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


# --- answers, as SQuAD's official script compares them -----------------------------------------
def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles a/an/the, white space folded (SQuAD v1.1)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(longer: list[str], part: list[str]) -> bool:
    """Whether the token list ``part`` occurs, in order and contiguous, in ``longer``."""
    return bool(part) and any(longer[i:i + len(part)] == part for i in range(len(longer) - len(part) + 1))
