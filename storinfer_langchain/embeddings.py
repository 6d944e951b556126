"""The offline default embeddings (all-MiniLM-L6-v2, from ``storinfer[local]``) as LangChain ``Embeddings``.

The same loaded model the engine and the LlamaIndex face use. Any LangChain ``Embeddings`` can
be given to a store instead: it already speaks the engine's embedder protocol.
"""

from __future__ import annotations

import functools

from storinfer.models import default_embedder
from storinfer.models.identity import DEFAULT_EMBEDDING_NAME, embedding_name  # noqa: F401  (re-exported)
from storinfer_langchain.adapters import CoreEmbeddings


@functools.cache
def default_embeddings() -> CoreEmbeddings:
    """The offline all-MiniLM-L6-v2 as LangChain ``Embeddings`` (loaded once per process).

    Vectors are L2-normalised, so cosine similarity is a dot product.

    Example:
        ```python
        from storinfer_langchain import default_embeddings

        vec = default_embeddings().embed_query("Who won Super Bowl 50?")  # 384 floats
        ```
    """
    return CoreEmbeddings(default_embedder())
