"""``StorInferChain``: put the question-answer store in front of any LangChain chain.

``StorInferCache`` works at the LLM call, where a RAG chain's prompt already holds the retrieved
context; this wrapper works at the chain's input, so it matches on what the user asked and skips
retrieval as well as the LLM on a hit. It is also the way to serve a streamed app: LangChain's
``stream()`` never reads an LLM cache, while ``StorInferChain.stream`` / ``astream`` /
``astream_events`` yield a hit's answer at once and pass a miss's chunks through as they come.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any, cast

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    BaseCallbackHandler,
    BaseCallbackManager,
    CallbackManagerForChainRun,
)
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config, patch_config

from storinfer.errors import ConfigError
from storinfer.match.policy import Policy
from storinfer.precompute.answer import ANSWER_KEYS, answer_text
from storinfer.records import DEFAULT_NAMESPACE, Lookup
from storinfer.serve import DEFAULT_LEARNER, LearnerLike, StoreFront, atee, tee
from storinfer.serve.speculate import Cancelled, aspeculate, aspeculate_stream, speculate, speculate_stream
from storinfer.store import QAStore
from storinfer_langchain.cache import open_store

QUESTION_KEYS = ("question", "input", "query")


class StorInferChain(Runnable[Any, str]):
    """Answer from the store when a stored question is close enough, else run the chain.

    Input: the question string, or a dict holding it under ``question``, ``input`` or ``query``.
    Output: the answer text (the stored one on a hit; the chain's, read as by :func:`answer_text`,
    on a miss). A miss's answer is stored (``store_misses``) in the same namespace, so a later
    paraphrase hits. Precompute into the same namespace (partition ``default``) to serve precomputed
    pairs; use one namespace per chain when several share a store.

    Setup:
        ```bash
        pip install 'storinfer[langchain,local]'
        ```

    Instantiate:
        ```python
        from storinfer_langchain import StorInferChain

        fast_chain = StorInferChain(rag_chain, "./storinfer_db")
        ```

    Usage:
        ```python
        fast_chain.invoke("Who won Super Bowl 50?")
        answer, lookup = fast_chain.invoke_with_lookup("Which team won Super Bowl 50?")
        lookup.hit, lookup.reason
        for chunk in fast_chain.stream("Who won Super Bowl 50?"):   # a hit: one chunk, at once
            print(chunk, end="")
        fast_chain.with_speculation().invoke("...")   # the chain starts beside the lookup
        fast_chain.stats()
        ```

    Args:
        chain: the chain users talk to (takes the question, returns the answer).
        store: a :class:`~storinfer.QAStore`, or the folder of a local one.
        namespace: where in the store (the tenant, or this chain's name).
        max_wrong_rate, policy, learner, store_misses, ttl_seconds: as for
            :class:`~storinfer_langchain.StorInferCache`.
    """

    def __init__(
        self,
        chain: Runnable,
        store: QAStore | str | os.PathLike[str],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        max_wrong_rate: float | None = None,
        policy: Policy | None = None,
        learner: LearnerLike | None = DEFAULT_LEARNER,
        store_misses: bool = True,
        ttl_seconds: float | None = None,
    ) -> None:
        if not isinstance(chain, Runnable):
            msg = f"chain must be a LangChain Runnable, not {type(chain).__name__} (wrap a function in RunnableLambda)."
            raise ConfigError(msg)
        self.chain = chain
        self.front = StoreFront(open_store(store), namespace=namespace, max_wrong_rate=max_wrong_rate, policy=policy,
                                learner=learner, store_misses=store_misses, ttl_seconds=ttl_seconds)
        self.store = self.front.store
        self.speculative = False

    def with_speculation(self) -> StorInferChain:
        """This chain, started beside each lookup (:mod:`storinfer.serve.speculate`): a miss then pays
        nothing for the lookup; a hit cancels the chain (async: at once; sync: at its next step) and
        pays for what it ran meanwhile, which wastes tokens on a paid model. Same store, learner and
        ``stats()``. An LLM check (``VerifierPolicy(llm_check=...)``) then runs beside the chain too:
        whichever decides first wins."""
        other = copy.copy(self)
        other.speculative = True
        return other

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, similarity of hits (as ``StorInferCache.stats()``)."""
        return self.front.stats()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the answers of misses queued for storing are stored; True if none is left."""
        return self.front.flush(timeout)

    def _question(self, input: Any) -> str:
        if isinstance(input, str):
            return input
        if isinstance(input, dict):
            for key in QUESTION_KEYS:
                if isinstance(input.get(key), str):
                    return input[key]
            texts = [v for v in input.values() if isinstance(v, str)]
            if len(texts) == 1:
                return texts[0]
        msg = (f"StorInferChain takes the question as a string, or a dict holding it under one of {QUESTION_KEYS}; "
               f"got {type(input).__name__}. Map other inputs first: {{'question': itemgetter('q')}} | fast_chain.")
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
            self._audit(question, found, input, config, kwargs)
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
            self._audit(question, found, input, config, kwargs)
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

    def _transform(self, inputs: Iterator[Any], run_manager: CallbackManagerForChainRun, config: RunnableConfig,
                   **kwargs: Any) -> Iterator[str]:
        for input in inputs:
            question = self._question(input)
            if self.speculative:
                chunks, found = speculate_stream(partial(self.lookup, question),
                                                 partial(self._stream_stoppable, input, config, kwargs))
            else:
                found = self.lookup(question)
                chunks = None if found.match is not None else self.chain.stream(input, config, **kwargs)
            if found.match is not None:
                self._audit(question, found, input, config, kwargs)
                yield found.match.answer
                continue
            yield from tee((chunk_text(c) for c in chunks or ()), partial(self._remember_stripped, question, found))

    async def _atransform(self, inputs: AsyncIterator[Any], run_manager: AsyncCallbackManagerForChainRun,
                          config: RunnableConfig, **kwargs: Any) -> AsyncIterator[str]:
        async for input in inputs:
            question = self._question(input)
            chunks: AsyncIterator[Any] | None
            if self.speculative:
                chunks, found = await aspeculate_stream(partial(self.lookup, question),
                                                        partial(self.chain.astream, input, config, **kwargs))
            else:
                found = await asyncio.to_thread(self.lookup, question)
                chunks = None if found.match is not None else self.chain.astream(input, config, **kwargs)
            if found.match is not None:
                self._audit(question, found, input, config, kwargs)
                yield found.match.answer
                continue
            if chunks is None:
                yield ""
                continue
            texts = (chunk_text(c) async for c in chunks)
            async for text in atee(texts, partial(self._remember_stripped, question, found)):
                yield text

    def _stream_stoppable(self, input: Any, config: RunnableConfig, kwargs: dict[str, Any],
                          cancel: threading.Event) -> Iterator[Any]:
        return self.chain.stream(input, _stoppable(config, cancel), **kwargs)

    def _audit(self, question: str, found: Lookup, input: Any, config: RunnableConfig | None, kwargs: dict[str, Any]) -> None:
        """A hit the learner checks: the chain answers it in the background (see ``StoreFront.audit``)."""
        self.front.audit(question, found, lambda _q: answer_text(self.chain.invoke(input, config, **kwargs)).strip())

    def _remember_stripped(self, question: str, found: Lookup, text: str) -> None:
        self.front.remember(question, text.strip(), lookup=found)


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
    return patch_config(config, callbacks=cast(Any, [*(callbacks or []), stop]))  # a list of handlers is what configs hold
