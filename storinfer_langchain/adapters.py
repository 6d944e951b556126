"""LangChain to the engine's protocols: chat models, embeddings, documents and loaders.

* :func:`as_chat_model`: any LangChain chat model as a :class:`storinfer.ChatModel`. Sampling
  settings are bound as call arguments (the convention of most providers); many conversations
  go through ``batch`` with ``max_concurrency``, which is how a vLLM, Ollama or hosted model
  scales precompute out. A ``config`` (callbacks, tags) is passed on every call, so tracing
  shows each one.
* :class:`CoreEmbeddings`: an engine embedder as LangChain ``Embeddings``. (A LangChain
  ``Embeddings`` already is an engine embedder: it has ``embed_query`` / ``embed_documents``.)
* :func:`as_documents`: LangChain Documents, a document loader, or strings as engine Documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from storinfer.errors import ConfigError
from storinfer.precompute.documents import as_documents as engine_documents
from storinfer.protocols import ChatModel, Conversation, Document, Embedder

_ROLES = {"system": SystemMessage, "assistant": AIMessage, "user": HumanMessage}


def to_messages(conversation: Conversation) -> list[BaseMessage]:
    """Engine messages (role/content dicts) as LangChain messages."""
    return [_ROLES[m["role"]](content=m["content"]) for m in conversation]


def message_text(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else message.text


class LangChainChat:
    """A LangChain chat model speaking the engine's :class:`~storinfer.ChatModel` protocol.

    Args:
        model: the LangChain chat model.
        max_concurrency: how many calls ``batch`` runs at once (None: LangChain's default).
        config: a ``RunnableConfig`` given to every call (callbacks, tags, metadata).
    """

    def __init__(self, model: BaseChatModel, *, max_concurrency: int | None = None,
                 config: RunnableConfig | None = None) -> None:
        self.model = model
        self.max_concurrency = max_concurrency
        self.config: RunnableConfig = dict(config or {})  # type: ignore[assignment]

    def chat_batch(self, conversations: Sequence[Conversation], *, temperature: float | None = None,
                   top_p: float | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        # Sampling settings are bound as call arguments; seed and max_new_tokens have no common
        # LangChain name, so the model's own settings apply.
        runnable = self.model.bind(temperature=temperature, top_p=top_p) if temperature is not None else self.model
        config: RunnableConfig = dict(self.config)  # type: ignore[assignment]
        if self.max_concurrency is not None:
            config["max_concurrency"] = self.max_concurrency
        replies = runnable.batch([to_messages(c) for c in conversations], config=config)
        return [message_text(r) for r in replies]


def as_chat_model(model: Any, *, max_concurrency: int | None = None, config: RunnableConfig | None = None) -> ChatModel:
    """The engine's chat model for ``model``: our own local model as it is (it batches natively,
    unless callbacks must see each call), any other LangChain chat model through :class:`LangChainChat`."""
    if model is None:
        from storinfer_langchain.llms import default_chat_model

        model = default_chat_model()
    if isinstance(model, BaseChatModel):
        local = getattr(model, "local", None)
        if local is not None and not (config or {}).get("callbacks"):
            return local
        return LangChainChat(model, max_concurrency=max_concurrency, config=config)
    if callable(getattr(model, "chat_batch", None)):
        return model
    msg = (f"Expected a LangChain chat model (BaseChatModel) or a storinfer ChatModel, got {type(model).__name__}: "
           "pass e.g. ChatOpenAI(...), or leave it unset for the offline default.")
    raise ConfigError(msg)


class CoreEmbeddings(Embeddings):
    """An engine embedder (default: the offline all-MiniLM-L6-v2) as LangChain ``Embeddings``."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.name = getattr(embedder, "name", None) or type(embedder).__name__
        self.model_name = getattr(embedder, "model_name", None)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text)

    def fits(self, text: str) -> bool:
        fits = getattr(self.embedder, "fits", None)
        return True if fits is None else bool(fits(text))

    # Embedding is CPU work: off the event loop.
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


def as_documents(source: Any) -> list[Document]:
    """Engine Documents from LangChain Documents, a document loader, or strings."""
    if hasattr(source, "lazy_load"):
        source = source.lazy_load()
    items: list[Any] = []
    for i, item in enumerate(source):
        if isinstance(item, LCDocument):
            if not isinstance(item.page_content, str):
                msg = f"Document {i} has {type(item.page_content).__name__} content; text (str) is needed."
                raise TypeError(msg)
            item = Document(item.page_content, id=item.id, metadata=dict(item.metadata))
        items.append(item)
    return engine_documents(items)  # strings and engine Documents pass; anything else is a clear error
