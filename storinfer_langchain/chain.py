"""``StorInferChain``: put the question-answer store in front of any LangChain chain.

``StorInferCache`` works at the LLM call, where a RAG chain's prompt already holds the retrieved
context; this wrapper works at the chain's input, so it matches on what the user asked and skips
retrieval as well as the LLM on a hit. It is also the way to serve a streamed app: LangChain's
``stream()`` never reads an LLM cache, while ``StorInferChain.stream`` / ``astream`` /
``astream_events`` yield a hit's answer at once and pass a miss's chunks through as they come.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config, patch_config

from storinfer.match.lookup import DEFAULT_K
from storinfer.match.verify import Verifier
from storinfer.precompute.answer import ANSWER_KEYS, answer_text
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, Lookup
from storinfer.serve import DEFAULT_MAX_WRONG_RATE, StoreFront, atee, store_misses_option, tee
from storinfer.serve.judge_band import JudgeBand
from storinfer.serve.speculate import Cancelled, aspeculate, aspeculate_stream, speculate, speculate_stream
from storinfer.store import QAStore


class StorInferChain(Runnable[Any, str]):
    """Answer from the store when a stored question is close enough, else run the chain.

    Input: the question string, or a dict holding it under ``input_key``. Output: the answer
    text (the stored one on a hit; the chain's, read as by :func:`answer_text`, on a miss).
    A miss's answer is stored (``store_misses``) in the same namespace and partition, so a later
    paraphrase hits. Precompute into the same partition to serve precomputed pairs.

    Setup:
        ```bash
        make setup
        ```

    Instantiate:
        ```python
        from storinfer_langchain import QAStore, StorInferChain

        fast_chain = StorInferChain(rag_chain, QAStore("./storinfer_db"))
        ```

    Usage:
        ```python
        fast_chain.invoke("Who won Super Bowl 50?")
        answer, lookup = fast_chain.invoke_with_lookup("Which team won Super Bowl 50?")
        lookup.hit, lookup.match.similarity
        for chunk in fast_chain.stream("Who won Super Bowl 50?"):   # a hit: one chunk, at once
            print(chunk, end="")
        fast_chain.stats()
        ```

    Args:
        chain: the chain users talk to (takes the question, returns the answer).
        store: the :class:`QAStore`.
        namespace, partition: where in the store (use the partition you precomputed into).
        similarity_threshold, guard, k: as for :class:`StorInferCache`.
        store_misses: store the chain's answers to missed questions (old name ``cache_misses=``,
            accepted for one release).
        ttl_seconds: answers cached at run time expire after this long (None: never).
        input_key: where the question is when the input is a dict.
        speculative: start the chain at the same time as the lookup (:mod:`storinfer.serve.speculate`):
            a miss then pays nothing for the lookup; a hit cancels the chain (async: at once;
            sync: at its next step) and pays for what it ran meanwhile. Off by default, as that
            wastes tokens on a paid model.
        max_wrong_rate, explore_rate, answer_judge, judge: the serve decision, as for
            :class:`StorInferCache`. With ``speculative=True`` a judge runs beside the chain:
            whichever decides first wins.
    """

    def __init__(
        self,
        chain: Runnable,
        store: QAStore,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        partition: str = DEFAULT_PARTITION,
        similarity_threshold: float | None = None,
        guard: bool = True,
        k: int = DEFAULT_K,
        verifier: Verifier | bool | None = None,
        store_misses: bool = True,
        ttl_seconds: float | None = None,
        input_key: str = "question",
        speculative: bool = False,
        max_wrong_rate: float | None = DEFAULT_MAX_WRONG_RATE,
        explore_rate: float = 0.05,
        answer_judge: Any | None = None,
        judge: Any | None = None,
        cache_misses: bool | None = None,
    ) -> None:
        store_misses = store_misses_option(store_misses, cache_misses=cache_misses)
        if not isinstance(chain, Runnable):
            msg = f"chain must be a LangChain Runnable, not {type(chain).__name__} (wrap a function in RunnableLambda)."
            raise TypeError(msg)
        self.chain = chain
        self.front = StoreFront(store, namespace=namespace, partition=partition, similarity_threshold=similarity_threshold,
                                guard=guard, k=k, verifier=verifier, store_misses=store_misses, ttl_seconds=ttl_seconds,
                                on_miss="the chain", max_wrong_rate=max_wrong_rate, explore_rate=explore_rate,
                                answer_judge=answer_judge, judge=judge_band(judge))
        self.store = store
        self.input_key = input_key
        self.speculative = speculative

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, similarity of hits (as ``StorInferCache.stats()``)."""
        return self.front.stats()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the answers of misses queued for storing are stored; True if none is left."""
        return self.front.flush(timeout)

    def _question(self, input: Any) -> str:
        if isinstance(input, str):
            return input
        if isinstance(input, dict) and isinstance(input.get(self.input_key), str):
            return input[self.input_key]
        msg = f"StorInferChain takes the question as a string or as a dict with {self.input_key!r}; got {type(input).__name__}."
        raise TypeError(msg)

    def lookup(self, question: str, race: threading.Event | None = None) -> Lookup:
        """The store's decision for ``question`` (counted in ``stats()``); ``race``: set when the
        chain, started beside it, has answered."""
        return self.front.lookup(question, race=race)

    def invoke_with_lookup(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> tuple[str, Lookup]:
        """Like :meth:`invoke`, also returning the lookup (hit or miss, similarity, match)."""
        question = self._question(input)
        if self.speculative:
            output, found = speculate(lambda race: self.lookup(question, race),
                                      lambda cancel: self.chain.invoke(input, _stoppable(config, cancel), **kwargs))
        else:
            found = self.lookup(question)
            output = None if found.match is not None else self.chain.invoke(input, config, **kwargs)
        if found.match is not None:
            return found.match.answer, found
        answer = answer_text(output)
        self.front.remember(question, answer, lookup=found)
        return answer, found

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        return self.invoke_with_lookup(input, config, **kwargs)[0]

    async def ainvoke_with_lookup(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> tuple[str, Lookup]:
        """Async :meth:`invoke_with_lookup` (the lookup runs in a worker thread)."""
        question = self._question(input)
        if self.speculative:
            output, found = await aspeculate(lambda race: self.lookup(question, race),
                                             lambda: self.chain.ainvoke(input, config, **kwargs))
        else:
            found = await asyncio.to_thread(self.lookup, question)
            output = None if found.match is not None else await self.chain.ainvoke(input, config, **kwargs)
        if found.match is not None:
            return found.match.answer, found
        answer = answer_text(output)
        await self.front.aremember(question, answer, lookup=found)
        return answer, found

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        return (await self.ainvoke_with_lookup(input, config, **kwargs))[0]

    # --- streaming: a hit is one chunk at once; a miss streams the chain's chunks ----------------
    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[str]:
        return self.transform(iter([input]), config, **kwargs)

    def transform(self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[str]:
        yield from self._transform_stream_with_config(input, self._transform, config, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[str]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for chunk in self.atransform(one(), config, **kwargs):
            yield chunk

    async def atransform(self, input: AsyncIterator[Any], config: RunnableConfig | None = None,
                         **kwargs: Any) -> AsyncIterator[str]:
        async for chunk in self._atransform_stream_with_config(input, self._atransform, config, **kwargs):
            yield chunk

    def _transform(self, inputs: Iterator[Any], config: RunnableConfig, **kwargs: Any) -> Iterator[str]:
        for input in inputs:
            question = self._question(input)
            if self.speculative:
                chunks, found = speculate_stream(
                    lambda race, q=question: self.lookup(q, race),
                    lambda cancel, x=input: self.chain.stream(x, _stoppable(config, cancel), **kwargs))
            else:
                found = self.lookup(question)
                chunks = None if found.match is not None else self.chain.stream(input, config, **kwargs)
            if found.match is not None:
                yield found.match.answer
                continue
            yield from tee((chunk_text(c) for c in chunks or ()),
                           lambda text, q=question, f=found: self.front.remember(q, text.strip(), lookup=f))

    async def _atransform(self, inputs: AsyncIterator[Any], config: RunnableConfig, **kwargs: Any) -> AsyncIterator[str]:
        async for input in inputs:
            question = self._question(input)
            if self.speculative:
                chunks, found = await aspeculate_stream(lambda race, q=question: self.lookup(q, race),
                                                        lambda x=input: self.chain.astream(x, config, **kwargs))
            else:
                found = await asyncio.to_thread(self.lookup, question)
                chunks = None if found.match is not None else self.chain.astream(input, config, **kwargs)
            if found.match is not None:
                yield found.match.answer
                continue
            texts = (chunk_text(c) async for c in chunks)  # type: ignore[union-attr]
            async for text in atee(texts, lambda t, q=question, f=found: self.front.remember(q, t.strip(), lookup=f)):
                yield text


def chunk_text(chunk: Any) -> str:
    """The text of one streamed chunk (a str, a message chunk, or a dict holding the answer), unstripped."""
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, dict):
        for key in ANSWER_KEYS:
            if isinstance(chunk.get(key), str):
                return chunk[key]
        return ""  # other keys of a streamed dict (retrieved context...) are not the answer
    content = getattr(chunk, "content", None)
    if isinstance(content, str):
        return content
    return answer_text(chunk)


class _StopWhenSet(BaseCallbackHandler):
    """Stops a speculative run at its next step once the store has answered."""

    raise_error = True

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel

    def _check(self, *args: Any, **kwargs: Any) -> None:
        if self.cancel.is_set():
            raise Cancelled("the store answered first")

    on_chain_start = on_llm_start = on_chat_model_start = on_llm_new_token = _check
    on_retriever_start = on_tool_start = _check


def _stoppable(config: RunnableConfig | None, cancel: threading.Event) -> RunnableConfig:
    """``config`` with a callback that stops the run once ``cancel`` is set."""
    config = ensure_config(config)
    stop = _StopWhenSet(cancel)
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(stop, inherit=True)
        return patch_config(config, callbacks=manager)
    return patch_config(config, callbacks=[*(callbacks or []), stop])


def judge_band(model: Any | None) -> JudgeBand | None:
    """A judge band over ``model`` (a LangChain chat model, adapted; or an engine ChatModel)."""
    if model is None or isinstance(model, JudgeBand):
        return model
    from storinfer_langchain.adapters import as_chat_model

    return JudgeBand(as_chat_model(model))
