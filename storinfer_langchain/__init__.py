"""StorInfer for LangChain: the LangChain face of the ``storinfer`` engine.

``set_llm_cache(StorInferCache(...))``, :class:`StorInferChain` in front of any chain, a
retriever over the stored pairs, and precompute from LangChain loaders, chat models and chains
(:class:`Precomputer`, :class:`PrecomputeChain`). Needs ``pip install 'storinfer[langchain]'``.

Names that lived here before the engine moved to ``storinfer`` (``QAPair``, ``GenerationConfig``,
the errors...) are re-exported, and the old submodules (``storinfer_langchain.generation``,
``.guard``, ``.text``, ``.evaluation``, ``.squad``, ``.front``, ``.stats``, ``.loading``, ``.cli``)
still import, for one release.
"""

import sys as _sys

from storinfer.errors import require as _require

_require("langchain_core", "langchain", "storinfer_langchain")

from storinfer import cli as _cli  # noqa: E402
from storinfer import serve as _serve  # noqa: E402
from storinfer import text as _text  # noqa: E402
from storinfer.errors import (  # noqa: E402
    EmbeddingMismatchError,
    SchemaVersionError,
    StoreConfigError,
    StoreLockedError,
    StorInferError,
)
from storinfer.evaluate import benchmark as _evaluation  # noqa: E402
from storinfer.evaluate import squad as _squad  # noqa: E402
from storinfer.match import lookalike as _lookalike  # noqa: E402
from storinfer.models.identity import DEFAULT_EMBEDDING_NAME  # noqa: E402
from storinfer.precompute import loading as _loading  # noqa: E402
from storinfer.precompute.generate import free as _generate  # noqa: E402
from storinfer.precompute.generate.free import GenerationConfig, QuestionGenerator  # noqa: E402
from storinfer.records import DEFAULT_THRESHOLD, Lookup, Match, QAPair  # noqa: E402
from storinfer.serve import stats as _stats  # noqa: E402
from storinfer_langchain.adapters import CoreEmbeddings, LangChainChat, as_chat_model, as_documents  # noqa: E402
from storinfer_langchain.cache import StorInferCache, partition_for_model  # noqa: E402
from storinfer_langchain.chain import StorInferChain  # noqa: E402
from storinfer_langchain.embeddings import default_embeddings  # noqa: E402
from storinfer_langchain.llms import LocalChatHuggingFace, LocalChatModel, default_chat_model  # noqa: E402
from storinfer_langchain.precompute import PrecomputeChain, Precomputer, PrecomputeSummary, export_jsonl  # noqa: E402
from storinfer_langchain.retriever import StorInferRetriever  # noqa: E402
from storinfer_langchain.store import QAStore  # noqa: E402

# Old module paths, kept importable for one release.
for _old, _new in {"generation": _generate, "guard": _lookalike, "text": _text, "evaluation": _evaluation,
                   "squad": _squad, "front": _serve, "stats": _stats, "loading": _loading, "cli": _cli}.items():
    _sys.modules.setdefault(f"{__name__}.{_old}", _new)

__all__ = [
    "DEFAULT_EMBEDDING_NAME",
    "DEFAULT_THRESHOLD",
    "CoreEmbeddings",
    "EmbeddingMismatchError",
    "GenerationConfig",
    "LangChainChat",
    "LocalChatHuggingFace",
    "LocalChatModel",
    "Lookup",
    "Match",
    "PrecomputeChain",
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
    "as_chat_model",
    "as_documents",
    "default_chat_model",
    "default_embeddings",
    "export_jsonl",
    "partition_for_model",
]
__version__ = "0.3.0"
