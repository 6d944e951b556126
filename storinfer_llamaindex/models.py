"""The engine's models (default: the offline MiniLM and Qwen2.5-1.5B on llama.cpp) as LlamaIndex objects.

Small adapters over :mod:`storinfer.models` rather than llama-index-embeddings-huggingface /
llama-index-llms-huggingface, so that a process holds one MiniLM and one LLM whichever framework
calls them, and the store's embedder is the index's embedder by construction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import ConfigDict, PrivateAttr

from storinfer.models.identity import DEFAULT_EMBEDDING_NAME, embedding_name
from storinfer.protocols import ChatModel, Embedder, Message


class StorInferEmbedding(BaseEmbedding):
    """An engine embedder (default: the offline all-MiniLM-L6-v2) as a LlamaIndex embedding.

    Example:
        ```python
        from llama_index.core import VectorStoreIndex
        from storinfer_llamaindex import StorInferEmbedding

        index = VectorStoreIndex.from_documents(docs, embed_model=StorInferEmbedding())
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _core: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder | None = None, **kwargs: Any) -> None:
        if embedder is None:
            from storinfer.models import default_embedder

            embedder = default_embedder()
        kwargs.setdefault("model_name", embedding_name(embedder) or DEFAULT_EMBEDDING_NAME)
        kwargs.setdefault("embed_batch_size", 64)
        super().__init__(**kwargs)
        self._core = embedder

    @property
    def engine_embedder(self) -> Embedder:
        """The wrapped engine embedder (give it to :class:`storinfer.QAStore` to share the model)."""
        return self._core

    @classmethod
    def class_name(cls) -> str:
        return "StorInferEmbedding"

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._core.embed_query(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._core.embed_documents([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._core.embed_documents(texts)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._core.embed_query, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await asyncio.to_thread(self._core.embed_documents, [text]))[0]


_ROLES = {MessageRole.SYSTEM: "system", MessageRole.ASSISTANT: "assistant"}


def _to_engine(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLES.get(m.role, "user"), "content": m.content or ""} for m in messages]


class StorInferLLM(CustomLLM):
    """An engine chat model (default: the offline Qwen2.5-1.5B on llama.cpp) as a LlamaIndex LLM.

    ``stream_chat`` / ``stream_complete`` stream token by token when the engine model can (the
    llama.cpp model does); closing the stream stops the generation.

    Example:
        ```python
        from storinfer_llamaindex import StorInferLLM

        engine = index.as_query_engine(llm=StorInferLLM(max_new_tokens=64))
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    context_window: int = 4096
    num_output: int = 128
    model_name: str = ""
    _chat: ChatModel = PrivateAttr()

    def __init__(self, chat_model: ChatModel | None = None, *, max_new_tokens: int = 128, model: str | None = None,
                 **kwargs: Any) -> None:
        if chat_model is None:
            from storinfer.models import default_chat

            chat_model = default_chat(max_new_tokens, model=model)
        kwargs.setdefault("num_output", max_new_tokens)
        window = getattr(chat_model, "context_window", None)
        if isinstance(window, int):
            kwargs.setdefault("context_window", window)
        kwargs.setdefault("model_name", getattr(chat_model, "model_id", None) or type(chat_model).__name__)
        super().__init__(**kwargs)
        self._chat = chat_model

    @classmethod
    def class_name(cls) -> str:
        return "StorInferLLM"

    @property
    def engine_chat(self) -> ChatModel:
        """The wrapped engine chat model (precompute uses it directly, batched)."""
        return self._chat

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.num_output,
                           model_name=self.model_name, is_chat_model=True)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text = self._chat.chat_batch([_to_engine(messages)])[0]
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

    def _pieces(self, messages: list[Message]) -> Any:
        stream = getattr(self._chat, "stream", None)
        if callable(stream):
            return stream(messages, max_new_tokens=self.num_output)
        return iter([self._chat.chat_batch([messages])[0]])  # a model that gives its reply whole

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        # Keeps the chat structure (the parent would flatten the messages into one text prompt).
        pieces = self._pieces(_to_engine(messages))

        def gen() -> ChatResponseGen:
            text = ""
            try:
                for piece in pieces:
                    text += piece
                    yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=piece)
            finally:
                close = getattr(pieces, "close", None)
                if close:
                    close()

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._chat.chat_batch([[{"role": "user", "content": prompt}]])[0])
    # The parent's async methods call the sync ones in the event loop, blocking it for the whole
    # generation; run them in a worker thread instead.
    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await asyncio.to_thread(self.chat, messages, **kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return await asyncio.to_thread(self.complete, prompt, formatted, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        pieces = self._pieces([{"role": "user", "content": prompt}])

        def gen() -> CompletionResponseGen:
            text = ""
            try:
                for piece in pieces:
                    text += piece
                    yield CompletionResponse(text=text, delta=piece)
            finally:
                close = getattr(pieces, "close", None)
                if close:
                    close()

        return gen()


def default_embed_model() -> StorInferEmbedding:
    """The offline MiniLM as a LlamaIndex embedding (the same loaded model every face uses)."""
    return StorInferEmbedding()


def default_llm(max_new_tokens: int = 128, *, model: str | None = None) -> StorInferLLM:
    """The offline LLM (Qwen2.5-1.5B on llama.cpp; ``model="smollm2-135m"`` or a .gguf path for
    another) as a LlamaIndex LLM (the same weights every face uses)."""
    return StorInferLLM(max_new_tokens=max_new_tokens, model=model)
