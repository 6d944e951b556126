"""StorInfer: answer LLM questions from storage. The framework-neutral engine.

The flow, and the folder of each step::

    documents -> generate -> deduplicate -> answer -> store -> lookup -> verify -> serve
    '---------------- precompute/ ---------------'   store/   '---- match/ ---'   serve/

``models/`` holds the offline models, ``evaluate/`` the replay harnesses' shared code.

``storinfer_langchain`` and ``storinfer_llamaindex`` are thin faces over this package; it
imports neither framework. Its models are small protocols (:mod:`storinfer.protocols`): a chat
model with ``chat_batch``, an embedder with ``embed_query`` / ``embed_documents``, and
:class:`Document`. The offline defaults (:func:`default_embedder`, :func:`default_chat`) need
``pip install 'storinfer[local]'``.

Example:
    ```python
    from storinfer import Precomputer, QAStore, StoreFront

    store = QAStore("./storinfer_db")
    Precomputer(store).run(["Super Bowl 50 was won by the Denver Broncos ..."])
    front = StoreFront(store)
    answer, found = front.answer("Who won Super Bowl 50?", my_llm_function)
    ```
"""

from storinfer import _compat
from storinfer.errors import (
    EmbeddingMismatchError,
    MissingExtraError,
    SchemaVersionError,
    StoreConfigError,
    StoreLockedError,
    StorInferError,
)
from storinfer.match.calibrate import Calibration, calibrate
from storinfer.models import default_chat, default_embedder
from storinfer.models.identity import DEFAULT_EMBEDDING_NAME
from storinfer.precompute import Precomputer, PrecomputeSummary, answer_text, export_jsonl
from storinfer.precompute.documents import Chunk, TextSplitter
from storinfer.precompute.generate.free import GenerationConfig, QuestionGenerator
from storinfer.protocols import ChatModel, Document, Embedder, Message
from storinfer.records import DEFAULT_THRESHOLD, Lookup, Match, QAPair
from storinfer.serve import StoreFront
from storinfer.store import QAStore

_compat.install()

__all__ = [
    "DEFAULT_EMBEDDING_NAME",
    "DEFAULT_THRESHOLD",
    "Calibration",
    "ChatModel",
    "Chunk",
    "Document",
    "Embedder",
    "EmbeddingMismatchError",
    "GenerationConfig",
    "Lookup",
    "Match",
    "Message",
    "MissingExtraError",
    "PrecomputeSummary",
    "Precomputer",
    "QAPair",
    "QAStore",
    "QuestionGenerator",
    "SchemaVersionError",
    "StoreConfigError",
    "StoreFront",
    "StoreLockedError",
    "StorInferError",
    "TextSplitter",
    "answer_text",
    "calibrate",
    "default_chat",
    "default_embedder",
    "export_jsonl",
]
__version__ = "0.4.0"
