"""StorInfer: answer LLM questions from storage. The framework-neutral engine.

The flow, and the folder of each step::

    documents -> generate -> deduplicate -> answer -> store -> lookup -> verify -> serve
    '---------------- precompute/ ---------------'   store/   '---- match/ ---'   serve/

``models/`` holds the offline models, ``evaluate/`` SQuAD's scoring (the benchmarks and tests use it).

``storinfer_langchain`` and ``storinfer_llamaindex`` are thin faces over this package; it
imports neither framework. Its models are small protocols (:mod:`storinfer.protocols`): a chat
model with ``chat_batch``, an embedder with ``embed_query`` / ``embed_documents``, and
:class:`Document`. The offline defaults (:func:`default_embedder`, :func:`default_chat`) need
``pip install 'storinfer[local]'``.

Three objects decide what is served: the :class:`QAStore` (what is stored), a policy
(:class:`VerifierPolicy`, how a candidate is judged) and a :class:`Learner` (how much to serve,
learnt from the app's answers under ``max_wrong_rate``); :class:`StoreFront` puts them in front of a chain.

Example:
    ```python
    from storinfer import Precomputer, QAStore, StoreFront

    store = QAStore("./storinfer_db")
    Precomputer(store).run(["Super Bowl 50 was won by the Denver Broncos ..."])
    front = StoreFront(store)
    answer, found = front.answer("Who won Super Bowl 50?", my_llm_function)
    ```
"""

from importlib.metadata import PackageNotFoundError, version

from storinfer.errors import (
    ConfigError,
    EmbeddingMismatchError,
    MissingExtraError,
    SchemaVersionError,
    StoreError,
    StoreLockedError,
    StorInferError,
)
from storinfer.match.calibrate import Calibration, calibrate
from storinfer.match.judge import AnswerJudge, TextJudge
from storinfer.match.llm_check import LLMCheck
from storinfer.match.point import HeadPoint, OperatingPoint
from storinfer.match.policy import Policy, ThresholdPolicy, VerifierPolicy
from storinfer.match.verify import Verifier
from storinfer.models import default_chat, default_embedder
from storinfer.models.identity import DEFAULT_EMBEDDING_NAME
from storinfer.precompute import Precomputer, PrecomputeSummary, answer_text, export_jsonl
from storinfer.precompute.documents import Chunk, TextSplitter
from storinfer.precompute.generate.free import GenerationConfig, QuestionGenerator
from storinfer.protocols import ChatModel, Document, Embedder, Message
from storinfer.records import Lookup, Match, QAPair, Reason
from storinfer.serve import Learner, StoreFront
from storinfer.store import QAStore

try:
    __version__ = version("storinfer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_EMBEDDING_NAME",
    "AnswerJudge",
    "Calibration",
    "ChatModel",
    "Chunk",
    "ConfigError",
    "Document",
    "Embedder",
    "EmbeddingMismatchError",
    "GenerationConfig",
    "HeadPoint",
    "LLMCheck",
    "Learner",
    "Lookup",
    "Match",
    "Message",
    "MissingExtraError",
    "OperatingPoint",
    "Policy",
    "PrecomputeSummary",
    "Precomputer",
    "QAPair",
    "QAStore",
    "QuestionGenerator",
    "Reason",
    "SchemaVersionError",
    "StoreError",
    "StoreFront",
    "StoreLockedError",
    "StorInferError",
    "TextJudge",
    "TextSplitter",
    "ThresholdPolicy",
    "Verifier",
    "VerifierPolicy",
    "__version__",
    "answer_text",
    "calibrate",
    "default_chat",
    "default_embedder",
    "export_jsonl",
]
