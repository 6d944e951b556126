"""An embedder's identity, as a store records it, and the checks made with it.

A store remembers the name, the dimension and the vector of :data:`FINGERPRINT_TEXT` of the
embedder that built it, and refuses to open with one whose fingerprint differs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from storinfer.errors import EmbeddingMismatchError
from storinfer.models.paths import is_minilm_path

DEFAULT_EMBEDDING_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# A fixed text whose embedding identifies the model: two stores agree on an embedder only if
# this text embeds (almost) the same in both.
FINGERPRINT_TEXT = "StorInfer fingerprint: which team won the championship game in 2016?"
FINGERPRINT_MIN_COSINE = 0.99


def embedding_name(embedding: Any) -> str:
    """A readable name for an embedder, recorded in the store's metadata."""
    own = getattr(embedding, "name", None)
    if isinstance(own, str) and own:
        return own
    model = getattr(embedding, "model_name", None) or getattr(embedding, "model", None)
    if isinstance(model, str) and model:
        if os.path.isdir(model):
            return DEFAULT_EMBEDDING_NAME if is_minilm_path(model) else os.path.basename(os.path.normpath(model))
        return model
    return type(embedding).__name__


def embedding_fingerprint(embedding: Any) -> list[float]:
    """Embed :data:`FINGERPRINT_TEXT`; two embedders agree when these vectors do."""
    return [float(x) for x in embedding.embed_query(FINGERPRINT_TEXT)]


def is_symmetric(embedding: Any, query_vector: Sequence[float]) -> bool:
    """Whether ``embedding`` embeds a question the same as a query and as a document, so a
    lookup's query vector can be stored as the key's vector. Decided from the model: it declares
    no query/document prompts or instructions, and :data:`FINGERPRINT_TEXT` embeds identically both
    ways (``query_vector`` is its query embedding). Anything else embeds the key again."""
    for attr in ("query_instruction", "embed_instruction", "query_encode_kwargs", "encode_kwargs"):
        value = getattr(embedding, attr, None)
        if isinstance(value, str) and value.strip():
            return False
        if isinstance(value, dict) and (value.get("prompt") or value.get("prompt_name")):
            return False
    try:
        doc_vector = embedding.embed_documents([FINGERPRINT_TEXT])[0]
    except Exception:
        return False
    return len(doc_vector) == len(query_vector) and all(abs(float(x) - float(y)) <= 1e-5
                                                       for x, y in zip(doc_vector, query_vector))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros or lengths differ)."""
    if len(a) != len(b):
        return 0.0
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return dot / (na * nb)


def check_same_embedder(meta: dict[str, Any], fingerprint: list[float], opened_name: str) -> None:
    """Raise :class:`~storinfer.errors.EmbeddingMismatchError` unless ``fingerprint`` matches the
    embedder a store's root metadata ``meta`` records."""
    stored_name = meta.get("embedding_name", "?")
    stored_dim = int(meta.get("embedding_dim", -1))
    stored_fp = json.loads(meta.get("embedding_fingerprint", "[]"))
    if stored_dim == len(fingerprint) and cosine(stored_fp, fingerprint) >= FINGERPRINT_MIN_COSINE:
        return
    msg = (
        f"This store was built with the embedding model {stored_name!r} ({stored_dim} dims); you opened it "
        f"with {opened_name!r} ({len(fingerprint)} dims), whose vectors do not compare. Open it with the same "
        "embedding model, or use a new store path / collection_name."
    )
    raise EmbeddingMismatchError(msg)


def token_fit_check(embedding: Any) -> Callable[[str], bool] | None:
    """Return ``fits(text)``: whether the embedder reads all of ``text``, or None if unknown.

    A sentence-transformers model silently cuts its input at ``max_seq_length`` tokens, so two
    long prompts that share their first 256 tokens would embed the same. The store treats a
    question that does not fit as a miss instead of risking a wrong hit. An embedder may say
    itself (a ``fits(text)`` method); a LangChain ``HuggingFaceEmbeddings`` is read through its
    sentence-transformers client.
    """
    own = getattr(embedding, "fits", None)
    if callable(own):
        return own
    client = getattr(embedding, "_client", None)
    tokenizer = getattr(client, "tokenizer", None)
    limit = getattr(client, "max_seq_length", None)
    if tokenizer is None or not limit:
        return None

    def fits(text: str) -> bool:
        n = len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])
        return n <= limit

    return fits
