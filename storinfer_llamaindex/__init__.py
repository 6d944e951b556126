"""StorInfer for LlamaIndex: a query-engine wrapper and precompute, on the same store as LangChain's.

Example:
    ```python
    from llama_index.core import VectorStoreIndex
    from storinfer_langchain import QAStore
    from storinfer_llamaindex import StorInferQueryEngine, default_embed_model, default_llm, precompute

    index = VectorStoreIndex.from_documents(docs, embed_model=default_embed_model())
    engine = index.as_query_engine(llm=default_llm())
    store = QAStore("./storinfer_db", embedding=default_embed_model().langchain)
    precompute(index, store, answer_with=engine)
    cached = StorInferQueryEngine(engine, store, index=index)
    ```
"""

from storinfer_llamaindex.models import StorInferEmbedding, StorInferLLM, default_embed_model, default_llm
from storinfer_llamaindex.precompute import precompute, to_langchain_documents
from storinfer_llamaindex.query_engine import StorInferHitEvent, StorInferMissEvent, StorInferQueryEngine

__all__ = [
    "StorInferEmbedding",
    "StorInferHitEvent",
    "StorInferLLM",
    "StorInferMissEvent",
    "StorInferQueryEngine",
    "default_embed_model",
    "default_llm",
    "precompute",
    "to_langchain_documents",
]
