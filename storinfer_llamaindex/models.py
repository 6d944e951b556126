"""The engine's models (default: the offline MiniLM and SmolLM2) as LlamaIndex objects.

Small adapters over :mod:`storinfer.local` rather than llama-index-embeddings-huggingface /
llama-index-llms-huggingface, so that a process holds one MiniLM and one SmolLM2 whichever
framework calls them, and the store's embedder is the index's embedder by construction.
``benchmarks/llamaindex_models.py`` measures both routes.
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

from storinfer.embedder import DEFAULT_EMBEDDING_NAME, embedding_name
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
            from storinfer.local import default_embedder

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


def _to_engine(messages: Sequence[ChatMessage]) -> list[Message]:
    return [{"role": _ROLES.get(m.role, "user"), "content": m.content or ""} for m in messages]  # type: ignore[misc]


class StorInferLLM(CustomLLM):
    """An engine chat model (default: the offline SmolLM2-135M-Instruct) as a LlamaIndex LLM.

    Example:
        ```python
        from storinfer_llamaindex import StorInferLLM

        engine = index.as_query_engine(llm=StorInferLLM(max_new_tokens=64))
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    context_window: int = 8192
    num_output: int = 128
    model_name: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    _chat: ChatModel = PrivateAttr()

    def __init__(self, chat_model: ChatModel | None = None, *, max_new_tokens: int = 128, **kwargs: Any) -> None:
        if chat_model is None:
            from storinfer.local import default_chat

            chat_model = default_chat(max_new_tokens)
        kwargs.setdefault("num_output", max_new_tokens)
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

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        # The local model gives its reply whole; keep the chat structure (the parent would flatten
        # the messages into one text prompt).
        response = self.chat(messages, **kwargs)

        def gen() -> ChatResponseGen:
            yield ChatResponse(message=response.message, delta=response.message.content)

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
        response = self.complete(prompt, formatted=formatted, **kwargs)

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=response.text, delta=response.text)

        return gen()


def default_embed_model() -> StorInferEmbedding:
    """The offline MiniLM as a LlamaIndex embedding (the same loaded model every face uses)."""
    return StorInferEmbedding()


def default_llm(max_new_tokens: int = 128) -> StorInferLLM:
    """The offline SmolLM2 as a LlamaIndex LLM (the same weights every face uses)."""
    return StorInferLLM(max_new_tokens=max_new_tokens)
