"""LlamaIndex to the engine's protocols: any LLM, embedding, Document, node, reader or index.

* :func:`as_chat_model`: any LlamaIndex LLM (Ollama, vLLM, OpenAI-like, a ``CustomLLM``...) as a
  :class:`storinfer.ChatModel`. Sampling settings reach an LLM that has a ``temperature`` /
  ``top_p`` field through a copy with them set; conversations run ``max_concurrency`` at a time.
* :func:`as_embedder`: a LlamaIndex ``BaseEmbedding`` as an engine embedder.
* :func:`as_documents`: engine Documents from an index (its nodes, already chunked), a reader,
  Documents or nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms.llm import LLM

from storinfer.errors import ConfigError
from storinfer.protocols import ChatModel, Conversation, Document, Embedder

_ROLES = {"system": MessageRole.SYSTEM, "assistant": MessageRole.ASSISTANT, "user": MessageRole.USER}


def to_chat_messages(conversation: Conversation) -> list[ChatMessage]:
    return [ChatMessage(role=_ROLES[m["role"]], content=m["content"]) for m in conversation]


class LlamaIndexChat:
    """A LlamaIndex LLM speaking the engine's :class:`~storinfer.ChatModel` protocol."""

    def __init__(self, llm: LLM, *, max_concurrency: int = 1) -> None:
        self.llm = llm
        self.max_concurrency = max(1, int(max_concurrency))

    def _configured(self, temperature: float | None, top_p: float | None, max_new_tokens: int | None) -> LLM:
        fields = type(self.llm).model_fields
        update: dict[str, Any] = {}
        if temperature is not None and "temperature" in fields:
            update["temperature"] = temperature
        if top_p is not None and "top_p" in fields:
            update["top_p"] = top_p
        if max_new_tokens is not None and "max_tokens" in fields:
            update["max_tokens"] = max_new_tokens
        return self.llm.model_copy(update=update) if update else self.llm

    def chat_batch(self, conversations: Sequence[Conversation], *, temperature: float | None = None,
                   top_p: float | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        llm = self._configured(temperature, top_p, max_new_tokens)

        def one(conversation: Conversation) -> str:
            return (llm.chat(to_chat_messages(conversation)).message.content or "").strip()

        if self.max_concurrency == 1 or len(conversations) < 2:
            return [one(c) for c in conversations]
        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(pool.map(one, conversations))


def as_chat_model(llm: Any, *, max_concurrency: int = 1) -> ChatModel:
    """The engine's chat model for a LlamaIndex LLM (ours hands over the engine model it wraps)."""
    if llm is None:
        from storinfer.models import default_chat

        return default_chat()
    inner = getattr(llm, "engine_chat", None)
    if inner is not None:
        return inner
    if isinstance(llm, LLM):
        return LlamaIndexChat(llm, max_concurrency=max_concurrency)
    if callable(getattr(llm, "chat_batch", None)):
        return llm
    msg = (f"Expected a LlamaIndex LLM or a storinfer ChatModel, got {type(llm).__name__}: pass e.g. Settings.llm, "
           "or leave it unset for the offline default.")
    raise ConfigError(msg)


class LlamaIndexEmbedder:
    """A LlamaIndex embedding speaking the engine's embedder protocol."""

    def __init__(self, embed_model: BaseEmbedding) -> None:
        self.embed_model = embed_model
        self.name = embed_model.model_name or type(embed_model).__name__

    def embed_query(self, text: str) -> list[float]:
        return list(self.embed_model.get_query_embedding(text))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(v) for v in self.embed_model.get_text_embedding_batch(texts)]


def as_embedder(embed_model: Any) -> Embedder:
    """The engine embedder for a LlamaIndex embedding (ours hands over the engine embedder it wraps)."""
    inner = getattr(embed_model, "engine_embedder", None)
    if inner is not None:
        return inner
    if isinstance(embed_model, BaseEmbedding):
        return LlamaIndexEmbedder(embed_model)
    return embed_model


def _node_to_document(node: Any) -> Document:
    doc_id = getattr(node, "ref_doc_id", None) or node.node_id
    meta = {k: v for k, v in (node.metadata or {}).items() if isinstance(v, (str, int, float, bool))}
    return Document(node.get_content(), id=str(doc_id), metadata={**meta, "node_id": node.node_id})


def as_documents(source: Any) -> tuple[list[Document], bool]:
    """Engine Documents from a LlamaIndex index, reader, Documents or nodes.

    Returns ``(documents, already_chunked)``: an index's nodes are already chunks (so stored
    pairs point at nodes the query engine can re-attach); Documents are split by the
    precompute's splitter. A document's id is its ``file_path`` / ``source`` metadata when
    present (stable across runs: readers give fresh random ids), else its ``doc_id``.
    """
    if hasattr(source, "docstore") and hasattr(source, "index_struct"):  # an index
        nodes = sorted(source.docstore.docs.values(), key=lambda n: (str(getattr(n, "ref_doc_id", "")), n.node_id))
        return [_node_to_document(n) for n in nodes], True
    if hasattr(source, "load_data"):  # a reader
        source = source.load_data()
    docs = []
    for i, item in enumerate(source):
        text = item.get_content() if hasattr(item, "get_content") else getattr(item, "text", None)
        if not isinstance(text, str):
            msg = f"Item {i} ({type(item).__name__}) is not a LlamaIndex Document or node with text."
            raise TypeError(msg)
        meta = dict(getattr(item, "metadata", None) or {})
        doc_id = meta.get("file_path") or meta.get("source") or getattr(item, "doc_id", None) or getattr(item, "id_", None)
        clean = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}
        docs.append(Document(text, id=str(doc_id) if doc_id else None, metadata=clean))
    return docs, False
