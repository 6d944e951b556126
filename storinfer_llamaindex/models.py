"""The offline default models as LlamaIndex objects: small adapters over the LangChain ones.

Adapters rather than llama-index-embeddings-huggingface / llama-index-llms-huggingface, so that
a process holds one MiniLM and one SmolLM2 whichever framework calls them, and the store's
embedder is the index's embedder by construction. ``benchmarks/llamaindex_models.py`` measures
both routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
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


class StorInferEmbedding(BaseEmbedding):
    """A LangChain ``Embeddings`` (default: the offline all-MiniLM-L6-v2) as a LlamaIndex embedding.

    Example:
        ```python
        from llama_index.core import VectorStoreIndex
        from storinfer_llamaindex import StorInferEmbedding

        index = VectorStoreIndex.from_documents(docs, embed_model=StorInferEmbedding())
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _lc: Embeddings = PrivateAttr()

    def __init__(self, embeddings: Embeddings | None = None, **kwargs: Any) -> None:
        from storinfer_langchain.embeddings import DEFAULT_EMBEDDING_NAME, default_embeddings, embedding_name

        lc = embeddings if embeddings is not None else default_embeddings()
        kwargs.setdefault("model_name", DEFAULT_EMBEDDING_NAME if embeddings is None else embedding_name(lc))
        kwargs.setdefault("embed_batch_size", 64)
        super().__init__(**kwargs)
        self._lc = lc

    @property
    def langchain(self) -> Embeddings:
        """The wrapped LangChain embeddings (give it to :class:`QAStore` to share the model)."""
        return self._lc

    @classmethod
    def class_name(cls) -> str:
        return "StorInferEmbedding"

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._lc.embed_query(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._lc.embed_documents([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._lc.embed_documents(texts)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._lc.embed_query, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await asyncio.to_thread(self._lc.embed_documents, [text]))[0]


_ROLES = {MessageRole.SYSTEM: SystemMessage, MessageRole.ASSISTANT: AIMessage}


def _to_langchain(messages: Sequence[ChatMessage]) -> list[BaseMessage]:
    return [_ROLES.get(m.role, HumanMessage)(content=m.content or "") for m in messages]


class StorInferLLM(CustomLLM):
    """A LangChain chat model (default: the offline SmolLM2-135M-Instruct) as a LlamaIndex LLM.

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
    _chat: BaseChatModel = PrivateAttr()

    def __init__(self, chat_model: BaseChatModel | None = None, *, max_new_tokens: int = 128, **kwargs: Any) -> None:
        if chat_model is None:
            from storinfer_langchain.llms import default_chat_model

            chat_model = default_chat_model(max_new_tokens=max_new_tokens)
        kwargs.setdefault("num_output", max_new_tokens)
        kwargs.setdefault("model_name", getattr(chat_model, "model_id", None) or type(chat_model).__name__)
        super().__init__(**kwargs)
        self._chat = chat_model

    @classmethod
    def class_name(cls) -> str:
        return "StorInferLLM"

    @property
    def langchain(self) -> BaseChatModel:
        """The wrapped LangChain chat model."""
        return self._chat

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.num_output,
                           model_name=self.model_name, is_chat_model=True)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        reply = self._chat.invoke(_to_langchain(messages))
        text = reply.content if isinstance(reply.content, str) else str(reply.content)
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
        reply = self._chat.invoke([HumanMessage(content=prompt)])
        text = reply.content if isinstance(reply.content, str) else str(reply.content)
        return CompletionResponse(text=text)

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
    """The offline MiniLM as a LlamaIndex embedding (the same instance LangChain uses)."""
    return StorInferEmbedding()


def default_llm(max_new_tokens: int = 128) -> StorInferLLM:
    """The offline SmolLM2 as a LlamaIndex LLM (the same weights LangChain uses)."""
    return StorInferLLM(max_new_tokens=max_new_tokens)
