"""``StorInferCache``: a LangChain LLM cache that answers similar questions from the store."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import AIMessage, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from storinfer.errors import ConfigError
from storinfer.match.policy import Policy
from storinfer.records import DEFAULT_NAMESPACE
from storinfer.serve import DEFAULT_LEARNER, LearnerLike, StoreFront
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
            raise ConfigError(msg)
        params = {**model.dict(), "stop": stop}
        return llm_partition(str(sorted(params.items())), "")
    msg = f"partition_for_model() takes a LangChain chat model or LLM, not {type(model).__name__}."
    raise ConfigError(msg)


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
        pip install 'storinfer[langchain,local]'
        ```

    Instantiate:
        ```python
        from langchain_core.globals import set_llm_cache
        from storinfer_langchain import StorInferCache

        cache = StorInferCache("./storinfer_db")        # or StorInferCache(QAStore(host="localhost"))
        set_llm_cache(cache)
        ```

    Usage:
        ```python
        chat = default_chat_model()
        chat.invoke("Who won Super Bowl 50?")            # runs the model, stores the answer
        chat.invoke("Which team won Super Bowl 50?")     # served from the store
        cache.stats()["hits"]                            # 1
        ```

    Args:
        store: a :class:`~storinfer.QAStore`, or the folder of a local one (opened with the offline
            MiniLM embeddings; for a Chroma server, pass ``QAStore(host=..., port=...)``).
        namespace: tenant / app name; answers never cross namespaces.
        max_wrong_rate: the expected share of served answers allowed to be wrong (default: the
            learner's, 0.01).
        policy: how candidates are decided (default: :class:`~storinfer.VerifierPolicy`).
        learner: how much to serve, learnt from the model's answers (default: :class:`~storinfer.Learner`);
            None: serve at the policy's operating point and learn nothing.
        store_misses: store the model's answers on a miss (``update``).
        ttl_seconds: answers stored from traffic expire after this long (None: never).
    """

    def __init__(
        self,
        store: QAStore | str | os.PathLike[str],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        max_wrong_rate: float | None = None,
        policy: Policy | None = None,
        learner: LearnerLike | None = DEFAULT_LEARNER,
        store_misses: bool = True,
        ttl_seconds: float | None = None,
    ) -> None:
        self.front = StoreFront(open_store(store), namespace=namespace, max_wrong_rate=max_wrong_rate, policy=policy,
                                learner=learner, store_misses=store_misses, ttl_seconds=ttl_seconds)
        self.store = self.front.store
        self.namespace = namespace

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, the similarity of hits, and each partition's learner
        (serving limit, expected wrong rate, labels, exploration)."""
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
        found = self.front.lookup(parsed.question, partition=llm_partition(llm_string, parsed.context),
                                  learner_partition=llm_partition(llm_string, parsed.setting), audit=False)
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
                            learner_partition=llm_partition(llm_string, parsed.setting),
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


def open_store(store: QAStore | str | os.PathLike[str]) -> QAStore:
    """A folder opened as a local store with the offline MiniLM as LangChain embeddings; anything else
    as given (the StoreFront refuses what is no store)."""
    if isinstance(store, (str, os.PathLike)):
        from storinfer_langchain.embeddings import default_embeddings

        return QAStore(store, embedding=default_embeddings())
    return store
