"""StorInfer for LlamaIndex: the LlamaIndex face of the ``storinfer`` engine.

A query-engine wrapper, and precompute from readers, Documents, nodes or an index with any
LlamaIndex LLM. Needs ``pip install 'storinfer[llamaindex]'``; imports no LangChain.

Example:
    ```python
    from llama_index.core import VectorStoreIndex
    from storinfer import QAStore
    from storinfer_llamaindex import StorInferQueryEngine, default_embed_model, default_llm, precompute

    embed = default_embed_model()
    index = VectorStoreIndex.from_documents(docs, embed_model=embed)
    engine = index.as_query_engine(llm=default_llm())
    store = QAStore("./storinfer_db", embedding=embed.engine_embedder)
    precompute(index, store, answer_with=engine)
    cached = StorInferQueryEngine(engine, store, index=index)
    ```
"""

from storinfer.errors import require as _require

_require("llama_index.core", "llamaindex", "storinfer_llamaindex")

from storinfer.store import QAStore  # noqa: E402
from storinfer_llamaindex.adapters import (  # noqa: E402
    LlamaIndexChat,
    LlamaIndexEmbedder,
    as_chat_model,
    as_documents,
    as_embedder,
)
from storinfer_llamaindex.models import StorInferEmbedding, StorInferLLM, default_embed_model, default_llm  # noqa: E402
from storinfer_llamaindex.precompute import precompute, to_documents  # noqa: E402
from storinfer_llamaindex.query_engine import (  # noqa: E402
    StorInferHitEvent,
    StorInferMissEvent,
    StorInferQueryEngine,
)

__all__ = [
    "LlamaIndexChat",
    "LlamaIndexEmbedder",
    "QAStore",
    "StorInferEmbedding",
    "StorInferHitEvent",
    "StorInferLLM",
    "StorInferMissEvent",
    "StorInferQueryEngine",
    "as_chat_model",
    "as_documents",
    "as_embedder",
    "default_embed_model",
    "default_llm",
    "precompute",
    "to_documents",
]
