"""``StorInferChain``: put the question-answer store in front of any LangChain chain.

``StorInferCache`` works at the LLM call, where a RAG chain's prompt already holds the retrieved
context; this wrapper works at the chain's input, so it matches on what the user asked and skips
retrieval as well as the LLM on a hit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from storinfer.answer import answer_text
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, Lookup
from storinfer.serve import StoreFront, store_misses_option
from storinfer.store import QAStore
from storinfer.verify import Verifier


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
        k: int = 4,
        verifier: Verifier | None = None,
        store_misses: bool = True,
        ttl_seconds: float | None = None,
        input_key: str = "question",
        cache_misses: bool | None = None,
    ) -> None:
        store_misses = store_misses_option(store_misses, cache_misses=cache_misses)
        if not isinstance(chain, Runnable):
            msg = f"chain must be a LangChain Runnable, not {type(chain).__name__} (wrap a function in RunnableLambda)."
            raise TypeError(msg)
        self.chain = chain
        self.front = StoreFront(store, namespace=namespace, partition=partition, similarity_threshold=similarity_threshold,
                                guard=guard, k=k, verifier=verifier, store_misses=store_misses, ttl_seconds=ttl_seconds,
                                on_miss="the chain")
        self.store = store
        self.input_key = input_key

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

    def lookup(self, question: str) -> Lookup:
        """The store's decision for ``question`` (counted in ``stats()``)."""
        return self.front.lookup(question)

    def invoke_with_lookup(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> tuple[str, Lookup]:
        """Like :meth:`invoke`, also returning the lookup (hit or miss, similarity, match)."""
        question = self._question(input)
        found = self.lookup(question)
        if found.match is not None:
            return found.match.answer, found
        answer = answer_text(self.chain.invoke(input, config, **kwargs))
        self.front.remember(question, answer, lookup=found)
        return answer, found

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        return self.invoke_with_lookup(input, config, **kwargs)[0]

    async def ainvoke_with_lookup(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> tuple[str, Lookup]:
        """Async :meth:`invoke_with_lookup` (the lookup runs in a worker thread)."""
        question = self._question(input)
        found = await asyncio.to_thread(self.lookup, question)
        if found.match is not None:
            return found.match.answer, found
        answer = answer_text(await self.chain.ainvoke(input, config, **kwargs))
        await self.front.aremember(question, answer, lookup=found)
        return answer, found

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        return (await self.ainvoke_with_lookup(input, config, **kwargs))[0]
