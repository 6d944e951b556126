"""``StorInferCache``: a LangChain LLM cache that answers similar questions from the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import AIMessage, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from storinfer.errors import validate_threshold
from storinfer.match.lookup import DEFAULT_K
from storinfer.match.verify import Verifier
from storinfer.protocols import Embedder
from storinfer.records import DEFAULT_NAMESPACE
from storinfer.serve import DEFAULT_MAX_WRONG_RATE, StoreFront, open_store, store_misses_option
from storinfer.serve.judge_band import JudgeBand
from storinfer.store import QAStore
from storinfer.text import sha
from storinfer_langchain.prompt import parse_prompt, stable_llm_string


def llm_partition(llm_string: str, context: str = "") -> str:
    """Partition key of an LLM configuration plus the context its answers depend on."""
    return "llm-" + sha(stable_llm_string(llm_string), context, length=24)


def partition_for_model(model: Any, *, system_prompt: str | None = None, stop: list[str] | None = None) -> str:
    """The partition :class:`StorInferCache` uses for ``model`` (called with this system prompt).

    Precompute into this partition to have ``set_llm_cache(StorInferCache(...))`` serve the
    precomputed pairs to that model.

    Example:
        ```python
        chat = default_chat_model()
        precomputer = Precomputer(store, partition=partition_for_model(chat))
        ```
    """
    from langchain_core.language_models import BaseChatModel, BaseLLM
    from langchain_core.load import dumps
    from langchain_core.messages import HumanMessage, SystemMessage

    if isinstance(model, BaseChatModel):
        llm_string = model._get_llm_string(stop=stop)
        messages = ([SystemMessage(system_prompt)] if system_prompt else []) + [HumanMessage("?")]
        parsed = parse_prompt(dumps(messages))
        return llm_partition(llm_string, parsed.context)
    if isinstance(model, BaseLLM):
        if system_prompt:
            msg = "A text LLM has no system prompt; leave system_prompt unset."
            raise ValueError(msg)
        params = {**model.dict(), "stop": stop}
        return llm_partition(str(sorted(params.items())), "")
    msg = f"partition_for_model() takes a LangChain chat model or LLM, not {type(model).__name__}."
    raise TypeError(msg)


def dump_generations(generations: Sequence[Generation]) -> str:
    """JSON of generations: text, generation_info and (for chat) the whole message."""
    out = []
    for g in generations:
        item: dict[str, Any] = {"text": g.text, "generation_info": g.generation_info}
        if isinstance(g, ChatGeneration):
            item["message"] = message_to_dict(g.message)
        out.append(item)
    return json.dumps(out, default=str)


def load_generations(data: str) -> list[Generation]:
    """Inverse of :func:`dump_generations`. Builds messages only, never arbitrary objects."""
    gens: list[Generation] = []
    for item in json.loads(data):
        if "message" in item:
            message = messages_from_dict([item["message"]])[0]
            gens.append(ChatGeneration(message=message, generation_info=item.get("generation_info")))
        else:
            gens.append(Generation(text=item["text"], generation_info=item.get("generation_info")))
    return gens


class StorInferCache(BaseCache):
    """LangChain LLM cache that serves stored answers to *similar* questions.

    Chat models pass the conversation serialised as JSON; the cache matches on the last human
    message and folds the system prompt and earlier turns, with the model's ``llm_string``, into
    the partition, so an answer is only ever served to the same model, settings and context.

    Setup:
        ```bash
        make setup
        ```

    Instantiate:
        ```python
        from langchain_core.globals import set_llm_cache
        from storinfer_langchain import StorInferCache

        set_llm_cache(StorInferCache(path="./storinfer_db"))
        ```

    Usage:
        ```python
        chat = default_chat_model()
        chat.invoke("Who won Super Bowl 50?")            # runs the model, stores the answer
        chat.invoke("Which team won Super Bowl 50?")     # served from the store
        cache.stats()["hits"]                            # 1
        ```

    Args:
        store: a :class:`QAStore` to use (else one is opened from ``path`` / ``host``).
        path, host, port, embedding: passed to :class:`QAStore` when ``store`` is not given.
        namespace: tenant / app name; answers never cross namespaces.
        similarity_threshold: the cosine floor for candidates; None (default): the verifier's.
        guard: check each candidate with the hit verifier. Keep it on (False: cosine alone).
        verifier: the :class:`storinfer.match.verify.Verifier` deciding each candidate (default: the
            store's: the shipped one, at the operating point ``storinfer calibrate`` recorded);
            False: StorInfer 0.1's look-alike rules at ``similarity_threshold`` (0.95).
        k: nearest stored keys checked per lookup.
        ttl_seconds: answers cached at run time expire after this long (None: never).
        store_misses: store the model's answers on a miss (``update``). The old name
            ``cache_runtime_answers=`` is accepted for one release.
        max_wrong_rate: the share of served answers allowed to be wrong (default 0.01): each
            partition learns its operating point from the model's answers to its misses, under
            this bound (:mod:`storinfer.serve.decision`). None: StorInfer 0.3's fixed point.
        explore_rate: share of would-be hits sent to the model anyway, to check them (default 0.05).
        judge: a LangChain chat model asked about candidates just below the cut (off by default;
            see :mod:`storinfer.serve.judge_band`).
        answer_judge: compares the model's answer with a stored one (default: text overlap).
    """

    def __init__(
        self,
        store: QAStore | None = None,
        *,
        path: str | None = None,
        host: str | None = None,
        port: int = 8000,
        embedding: Embedder | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        similarity_threshold: float | None = None,
        guard: bool = True,
        k: int = DEFAULT_K,
        verifier: Verifier | bool | None = None,
        ttl_seconds: float | None = None,
        store_misses: bool = True,
        max_wrong_rate: float | None = DEFAULT_MAX_WRONG_RATE,
        explore_rate: float = 0.05,
        answer_judge: Any | None = None,
        judge: Any | None = None,
        cache_runtime_answers: bool | None = None,
    ) -> None:
        if similarity_threshold is not None:
            validate_threshold(similarity_threshold)  # fail before opening a store
        store_misses = store_misses_option(store_misses, cache_runtime_answers=cache_runtime_answers)
        if store is None and embedding is None:
            from storinfer_langchain.embeddings import default_embeddings

            embedding = default_embeddings()
        self.front = StoreFront(
            open_store(store, path, host, port, embedding), namespace=namespace,
            similarity_threshold=similarity_threshold, guard=guard, k=k, verifier=verifier, store_misses=store_misses,
            ttl_seconds=ttl_seconds, on_miss="the model", max_wrong_rate=max_wrong_rate, explore_rate=explore_rate,
            answer_judge=answer_judge, judge=judge_band(judge),
        )
        self.store = self.front.store
        self.namespace = namespace
        self.similarity_threshold = self.front.similarity_threshold

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, the similarity of hits, and each partition's decision
        (operating point, estimated wrong rate and bound, labels, exploration)."""
        return self.front.stats()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the answers of misses queued for storing are stored; True if none is left.
        (They are stored by a background thread; ``QAStore.close()`` and exit flush too.)"""
        return self.front.flush(timeout)

    def reset_stats(self) -> None:
        """Zero the counters (the stored pairs stay)."""
        self.front.counters.reset()

    # --- BaseCache -----------------------------------------------------------------------------
    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Return stored generations for a close-enough question of this model, else None.

        Never raises: a store failure is logged, counted in ``stats()["errors"]``, and is a miss
        (the model then runs, so a failing cache costs time, not answers).
        """
        parsed = parse_prompt(prompt)
        if parsed.question is None:
            self.front.counters.count("lookups")
            self.front.counters.count("skipped")
            return None
        found = self.front.lookup(parsed.question, partition=llm_partition(llm_string, parsed.context))
        if found.match is None:
            return None
        m = found.match
        stored = m.metadata.get("generations")
        if stored:
            return load_generations(stored)
        if parsed.is_chat:
            return [ChatGeneration(message=AIMessage(content=m.answer))]
        return [Generation(text=m.answer)]

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store the model's answer to this question (skipped for tool calls or empty text)."""
        if not return_val:
            return
        parsed = parse_prompt(prompt)
        first = return_val[0]
        if parsed.question is None or getattr(getattr(first, "message", None), "tool_calls", None):
            return  # a tool call is no answer to serve to someone else
        self.front.remember(parsed.question, first.text, partition=llm_partition(llm_string, parsed.context),
                            generations=dump_generations(return_val))

    def clear(self, **kwargs: Any) -> None:
        """Delete this namespace's pairs. ``clear(origin="runtime")`` keeps precomputed ones."""
        self.store.clear(namespace=self.namespace, partition=kwargs.get("partition"), origin=kwargs.get("origin"))

    # Chroma's local client has no async API and embedding is CPU work: both run in a worker
    # thread so the event loop keeps serving other requests meanwhile.
    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Async :meth:`lookup` (runs in a worker thread; never blocks the event loop)."""
        return await asyncio.to_thread(self.lookup, prompt, llm_string)

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Async :meth:`update` (runs in a worker thread)."""
        await asyncio.to_thread(self.update, prompt, llm_string, return_val)

    async def aclear(self, **kwargs: Any) -> None:
        """Async :meth:`clear` (runs in a worker thread)."""
        await asyncio.to_thread(self.clear, **kwargs)


def judge_band(model: Any | None) -> JudgeBand | None:
    """A judge band over ``model`` (a LangChain chat model, adapted; or an engine ChatModel)."""
    if model is None or isinstance(model, JudgeBand):
        return model
    from storinfer_langchain.adapters import as_chat_model

    return JudgeBand(as_chat_model(model))
