"""``StorInferQueryEngine``: put the question-answer store in front of any LlamaIndex query engine."""

from __future__ import annotations

import asyncio
import copy
import os
import re
import threading
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

import llama_index.core.instrumentation as instrument
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import (
    RESPONSE_TYPE,
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.schema import NodeWithScore, QueryBundle

from storinfer.errors import ConfigError
from storinfer.match.policy import Policy
from storinfer.records import DEFAULT_NAMESPACE, Lookup, Match
from storinfer.serve import DEFAULT_LEARNER, LearnerLike, StoreFront, atee, tee
from storinfer.serve.speculate import aspeculate, speculate
from storinfer.store import QAStore
from storinfer.text import content_hash

dispatcher = instrument.get_dispatcher(__name__)


class StorInferHitEvent(BaseEvent):
    """A query answered from the store."""

    query: str
    matched_question: str
    similarity: float
    pair_id: str
    origin: str

    @classmethod
    def class_name(cls) -> str:
        return "StorInferHitEvent"


class StorInferMissEvent(BaseEvent):
    """A query that went to the wrapped engine, and why."""

    query: str
    reason: str
    best_similarity: float | None = None

    @classmethod
    def class_name(cls) -> str:
        return "StorInferMissEvent"


def _words(text: str) -> Generator[str, None, None]:
    yield from re.findall(r"\S+\s*", text) or [text]


async def _awords(text: str) -> AsyncGenerator[str, None]:
    for w in _words(text):
        yield w


def _is_streaming(engine: Any) -> bool:
    synth = getattr(engine, "_response_synthesizer", None)
    return bool(getattr(synth, "_streaming", False) or getattr(engine, "_streaming", False))


class StorInferQueryEngine(BaseQueryEngine):
    """Answer a query from the store when a stored question is close enough, else ask the engine.

    The match is on ``QueryBundle.query_str`` (what the user asked), never the prompt the engine
    builds. A hit returns the stored answer as a ``Response`` (or a ``StreamingResponse``
    replaying it, for streaming engines) with ``metadata["cache_hit"] = True``, the similarity,
    the matched question and its source ids; source nodes are re-attached from the index's
    docstore where the pair points at one. A miss runs the wrapped engine, marks
    ``cache_hit = False``, and (``store_misses=True``) stores its answer with the top source
    node's ids. Each hit and miss is a LlamaIndex instrumentation event
    (:class:`StorInferHitEvent`, :class:`StorInferMissEvent`).

    ``retrieve``, ``aretrieve``, ``synthesize`` and ``asynthesize`` go to the wrapped engine (as
    ``TransformQueryEngine`` does), so LlamaIndex evaluators that retrieve work through it.

    Setup:
        ```bash
        pip install 'storinfer[llamaindex,local]'
        ```

    Instantiate:
        ```python
        from storinfer_llamaindex import StorInferQueryEngine

        engine = StorInferQueryEngine(index.as_query_engine(llm=llm), "./storinfer_db", index=index)
        ```

    Usage:
        ```python
        response = engine.query("Who won Super Bowl 50?")
        response.metadata["cache_hit"], response.metadata.get("similarity")
        engine.with_speculation().query("...")   # the wrapped engine starts beside the lookup
        engine.stats()   # hits, misses, hit rate, the learner
        ```

    Args:
        query_engine: the engine to put the store in front of (its callback manager is this one's).
        store: a :class:`~storinfer.QAStore`, or the folder of a local one (the offline MiniLM).
        index: the index behind ``query_engine``, to re-attach source nodes on hits (found from a
            retriever query engine when omitted).
        namespace: where in the store (the tenant, or this engine's name; the LangChain side uses the same store).
        max_wrong_rate, policy, learner, store_misses, ttl_seconds: as for the LangChain
            ``StorInferCache``: the expected share of served answers allowed to be wrong (default 0.01), how
            candidates are decided, how much to serve (None: the policy's point, nothing learnt), whether
            the engine's answers are stored, and when they expire.
        streaming: answer hits as ``StreamingResponse``; default: as the wrapped engine does.
    """

    def __init__(
        self,
        query_engine: BaseQueryEngine,
        store: QAStore | str | os.PathLike[str],
        *,
        index: Any | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        max_wrong_rate: float | None = None,
        policy: Policy | None = None,
        learner: LearnerLike | None = DEFAULT_LEARNER,
        store_misses: bool = True,
        ttl_seconds: float | None = None,
        streaming: bool | None = None,
    ) -> None:
        if not hasattr(query_engine, "query") or not hasattr(query_engine, "aquery"):
            msg = (f"query_engine must be a LlamaIndex query engine, not {type(query_engine).__name__}: "
                   "index.as_query_engine(), or any BaseQueryEngine.")
            raise ConfigError(msg)
        super().__init__(callback_manager=getattr(query_engine, "callback_manager", None))
        self.front = StoreFront(store, namespace=namespace, max_wrong_rate=max_wrong_rate, policy=policy,
                                learner=learner, store_misses=store_misses, ttl_seconds=ttl_seconds)
        self.query_engine = query_engine
        self.store = self.front.store
        self.streaming = _is_streaming(query_engine) if streaming is None else streaming
        self.speculative = False
        retriever = getattr(query_engine, "retriever", None)
        self.docstore = getattr(index, "docstore", None) or getattr(retriever, "_docstore", None)

    def with_speculation(self) -> StorInferQueryEngine:
        """This engine, started beside each lookup (:mod:`storinfer.serve.speculate`): a miss pays nothing
        for the lookup; a hit cancels an async query at once, while a sync one finishes in the
        background, its answer dropped (it pays for what the engine ran meanwhile). Same store,
        learner and ``stats()``."""
        other = copy.copy(self)
        other.speculative = True
        return other

    # --- what the wrapped engine does itself -------------------------------------------------------
    def retrieve(self, query_bundle: QueryBundle | str) -> list[NodeWithScore]:
        return self.query_engine.retrieve(_bundle(query_bundle))

    async def aretrieve(self, query_bundle: QueryBundle | str) -> list[NodeWithScore]:
        inner = getattr(self.query_engine, "aretrieve", None)
        if inner is not None:
            return await inner(_bundle(query_bundle))
        return await asyncio.to_thread(self.query_engine.retrieve, _bundle(query_bundle))

    def synthesize(self, query_bundle: QueryBundle, nodes: list[NodeWithScore],
                   additional_source_nodes: Sequence[NodeWithScore] | None = None) -> RESPONSE_TYPE:
        return self.query_engine.synthesize(query_bundle=query_bundle, nodes=nodes,
                                            additional_source_nodes=additional_source_nodes)

    async def asynthesize(self, query_bundle: QueryBundle, nodes: list[NodeWithScore],
                          additional_source_nodes: Sequence[NodeWithScore] | None = None) -> RESPONSE_TYPE:
        return await self.query_engine.asynthesize(query_bundle=query_bundle, nodes=nodes,
                                                   additional_source_nodes=additional_source_nodes)

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {"query_engine": self.query_engine}

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters, hit rate, similarity of hits (as ``StorInferCache.stats()``)."""
        return self.front.stats()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the answers of misses queued for storing are stored; True if none is left."""
        return self.front.flush(timeout)

    # --- lookup --------------------------------------------------------------------------------
    def _lookup(self, query: str, race: threading.Event | None = None) -> Lookup:
        found = self.front.lookup(query, race=race)
        if found.match is not None:
            m = found.match
            dispatcher.event(StorInferHitEvent(query=query, matched_question=m.question, similarity=m.similarity,
                                               pair_id=m.id, origin=str(m.metadata.get("origin", ""))))
        else:
            dispatcher.event(StorInferMissEvent(query=query, reason=str(found.reason), best_similarity=found.best_similarity))
        return found

    def _source_nodes(self, m: Match) -> tuple[list[NodeWithScore], str]:
        """Nodes the stored answer came from: the chunk's node if the docstore has it, else the
        document's nodes; none if the index is unknown."""
        doc_id, chunk_hash = m.metadata.get("doc_id"), m.metadata.get("chunk_hash")
        if self.docstore is None or not doc_id:
            return [], "none"
        info = self.docstore.get_ref_doc_info(doc_id)
        if info is None:
            return [], "none"
        nodes = self.docstore.get_nodes(info.node_ids, raise_error=False)
        exact = [n for n in nodes if n is not None and content_hash(n.get_content().strip()) == chunk_hash]
        if exact:
            return [NodeWithScore(node=n, score=m.similarity) for n in exact], "chunk"
        return [NodeWithScore(node=n, score=None) for n in nodes if n is not None], "document"

    def _hit_metadata(self, m: Match, how: str) -> dict[str, Any]:
        return {
            "cache_hit": True, "similarity": m.similarity, "matched_question": m.question, "pair_id": m.id,
            "origin": m.metadata.get("origin"), "doc_id": m.metadata.get("doc_id", ""),
            "chunk_id": m.metadata.get("chunk_id", ""), "chunk_hash": m.metadata.get("chunk_hash", ""),
            "source_match": how,
        }

    def _hit(self, m: Match, asynchronous: bool) -> RESPONSE_TYPE:
        nodes, how = self._source_nodes(m)
        meta = self._hit_metadata(m, how)
        if not self.streaming:
            return Response(response=m.answer, source_nodes=nodes, metadata=meta)
        if asynchronous:
            return AsyncStreamingResponse(response_gen=_awords(m.answer), source_nodes=nodes, metadata=meta)
        return StreamingResponse(response_gen=_words(m.answer), source_nodes=nodes, metadata=meta)

    # --- misses: answer, mark, store -----------------------------------------------------------
    def _store_answer(self, query: str, answer: str, source_nodes: list[NodeWithScore], found: Lookup | None = None) -> None:
        if answer.strip() == "Empty Response":
            return
        top = source_nodes[0].node if source_nodes else None
        self.front.remember(
            query, answer, lookup=found,
            doc_id=str(getattr(top, "ref_doc_id", "") or "") if top else "",
            chunk_id=top.node_id if top else "",
            chunk_hash=content_hash(top.get_content().strip()) if top else "",
        )

    def _mark_miss(self, response: Any, found: Lookup) -> None:
        meta = getattr(response, "metadata", None)
        extra = {"cache_hit": False, "miss_reason": str(found.reason), "best_similarity": found.best_similarity}
        if meta is None:
            try:
                response.metadata = extra
            except AttributeError:
                pass
        else:
            meta.update(extra)

    def _after_miss(self, query: str, response: Any, found: Lookup) -> Any:
        self._mark_miss(response, found)
        if isinstance(response, StreamingResponse):
            response.response_gen = tee(response.response_gen,
                                        lambda t: self._store_answer(query, t, response.source_nodes, found))
        elif isinstance(response, AsyncStreamingResponse):
            response.response_gen = atee(response.response_gen,
                                         lambda t: self._store_answer(query, t, response.source_nodes, found))
        elif isinstance(response, Response) and response.response is not None:
            self._store_answer(query, response.response, response.source_nodes, found)
        return response

    # --- BaseQueryEngine -----------------------------------------------------------------------
    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        query = query_bundle.query_str
        if self.speculative:
            response, found = speculate(lambda race: self._lookup(query, race),
                                        lambda cancel: self.query_engine.query(query_bundle))
        else:
            found = self._lookup(query)
            response = None if found.match is not None else self.query_engine.query(query_bundle)
        if found.match is not None:
            self.front.audit(query, found, lambda _q: str(self.query_engine.query(query_bundle)))
            return self._hit(found.match, asynchronous=False)
        return self._after_miss(query, response, found)

    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        if self.speculative:
            response, found = await aspeculate(lambda race: self._lookup(query_bundle.query_str, race),
                                               lambda: self.query_engine.aquery(query_bundle))
        else:
            found = await asyncio.to_thread(self._lookup, query_bundle.query_str)
            response = None if found.match is not None else await self.query_engine.aquery(query_bundle)
        if found.match is not None:
            self.front.audit(query_bundle.query_str, found, lambda _q: str(self.query_engine.query(query_bundle)))
            return self._hit(found.match, asynchronous=True)
        if isinstance(response, Response) and response.response is not None:
            self._mark_miss(response, found)
            await asyncio.to_thread(self._store_answer, query_bundle.query_str, response.response, response.source_nodes,
                                    found)
            return response
        return self._after_miss(query_bundle.query_str, response, found)


def _bundle(query: QueryBundle | str) -> QueryBundle:
    return QueryBundle(query) if isinstance(query, str) else query
