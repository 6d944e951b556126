"""StorInfer for LangChain: answer LLM questions from precomputed, stored question-answer pairs.

The store, embeddings, generation and precompute code here are shared with
``storinfer_llamaindex``.
"""

from storinfer_langchain.cache import StorInferCache, partition_for_model
from storinfer_langchain.chain import StorInferChain
from storinfer_langchain.embeddings import DEFAULT_EMBEDDING_NAME, default_embeddings
from storinfer_langchain.generation import GenerationConfig, QuestionGenerator
from storinfer_langchain.llms import LocalChatHuggingFace, default_chat_model
from storinfer_langchain.precompute import Precomputer, PrecomputeSummary, export_jsonl
from storinfer_langchain.retriever import StorInferRetriever
from storinfer_langchain.store import (
    DEFAULT_THRESHOLD,
    EmbeddingMismatchError,
    Lookup,
    Match,
    QAPair,
    QAStore,
    SchemaVersionError,
    StoreConfigError,
    StoreLockedError,
    StorInferError,
)

__all__ = [
    "DEFAULT_EMBEDDING_NAME",
    "DEFAULT_THRESHOLD",
    "EmbeddingMismatchError",
    "GenerationConfig",
    "LocalChatHuggingFace",
    "Lookup",
    "Match",
    "PrecomputeSummary",
    "Precomputer",
    "QAPair",
    "QAStore",
    "QuestionGenerator",
    "SchemaVersionError",
    "StoreConfigError",
    "StoreLockedError",
    "StorInferCache",
    "StorInferChain",
    "StorInferError",
    "StorInferRetriever",
    "default_chat_model",
    "default_embeddings",
    "export_jsonl",
    "partition_for_model",
]
__version__ = "0.1.0"
