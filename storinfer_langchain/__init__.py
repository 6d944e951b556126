"""StorInfer for LangChain: the LangChain face of the ``storinfer`` engine.

``set_llm_cache(StorInferCache(...))``, :class:`StorInferChain` in front of any chain, a
retriever over the stored pairs, and precompute from LangChain loaders, chat models and chains
(:class:`Precomputer`, :class:`PrecomputeChain`). Needs ``pip install 'storinfer[langchain]'``.
The store, the policies and the learner are the engine's (``from storinfer import QAStore, Learner, ...``).
"""

from storinfer.errors import require as _require

_require("langchain_core", "langchain", "storinfer_langchain")

from storinfer import __version__  # noqa: E402
from storinfer_langchain.adapters import CoreEmbeddings, LangChainChat, as_chat_model, as_documents  # noqa: E402
from storinfer_langchain.cache import StorInferCache, partition_for_model  # noqa: E402
from storinfer_langchain.chain import StorInferChain  # noqa: E402
from storinfer_langchain.embeddings import default_embeddings  # noqa: E402
from storinfer_langchain.llms import LocalChatModel, default_chat_model  # noqa: E402
from storinfer_langchain.precompute import PrecomputeChain, Precomputer, PrecomputeSummary, export_jsonl  # noqa: E402
from storinfer_langchain.retriever import StorInferRetriever  # noqa: E402
from storinfer_langchain.store import QAStore  # noqa: E402

__all__ = [
    "CoreEmbeddings",
    "LangChainChat",
    "LocalChatModel",
    "PrecomputeChain",
    "PrecomputeSummary",
    "Precomputer",
    "QAStore",
    "StorInferCache",
    "StorInferChain",
    "StorInferRetriever",
    "__version__",
    "as_chat_model",
    "as_documents",
    "default_chat_model",
    "default_embeddings",
    "export_jsonl",
    "partition_for_model",
]
