"""``StorInferQueryEngine``: put the question-answer store in front of any LlamaIndex query engine."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import llama_index.core.instrumentation as instrument
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import (
    RESPONSE_TYPE,
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.callbacks import CallbackManager
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.schema import NodeWithScore, QueryBundle

from storinfer.match.lookup import DEFAULT_K
from storinfer.match.verify import Verifier
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, Lookup, Match
from storinfer.serve import DEFAULT_MAX_WRONG_RATE, StoreFront, atee, open_store, store_misses_option, tee
from storinfer.serve.judge_band import JudgeBand
from storinfer.serve.speculate import aspeculate, speculate
from storinfer.store import QAStore
from storinfer.text import content_hash
from storinfer_llamaindex.adapters import as_embedder

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


def _words(text: str) -> Iterator[str]:
    yield from re.findall(r"\S+\s*", text) or [text]


async def _awords(text: str) -> AsyncIterator[str]:
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

    Setup:
        ```bash
        make setup
        ```

    Instantiate:
        ```python
        from storinfer import QAStore
        from storinfer_llamaindex import StorInferQueryEngine

        engine = StorInferQueryEngine(index.as_query_engine(llm=llm), QAStore("./storinfer_db"), index=index)
        ```

    Usage:
        ```python
        response = engine.query("Who won Super Bowl 50?")
        response.metadata["cache_hit"], response.metadata.get("similarity")
        engine.stats()   # hits, misses, hit rate
        ```

    Args:
        query_engine: the engine to put the store in front of.
        store: the :class:`QAStore` (or give ``path`` / ``host`` / ``port`` / ``embedding``).
        index: the index behind ``query_engine``, to re-attach source nodes on hits
            (found from a retriever query engine when omitted).
        namespace, partition: where in the store (the LangChain side uses the same store).
        similarity_threshold, guard, k: as for :class:`StorInferCache`.
        store_misses: store the engine's answers to missed queries (old name ``cache_misses=``,
            accepted for one release).
        ttl_seconds: answers cached at run time expire after this long (None: never).
        streaming: answer hits as ``StreamingResponse``; default: as the wrapped engine does.
        speculative: start the wrapped engine at the same time as the lookup
            (:mod:`storinfer.serve.speculate`): a miss pays nothing for the lookup; a hit cancels an
            async query at once, while a sync one finishes in the background, its answer dropped.
            Off by default (a hit pays for what the engine ran meanwhile).
        max_wrong_rate: the share of served answers allowed to be wrong (default 0.01); each
            partition learns its operating point from the engine's answers to its misses, under
            this bound. None: StorInfer 0.3's fixed point.
        explore_rate: share of would-be hits answered by the engine anyway, to check them (default 0.05).
        judge: a LlamaIndex LLM asked about candidates just below the cut (off by default; see
            :mod:`storinfer.serve.judge_band`). With ``speculative=True`` it runs beside the engine.
        answer_judge: compares the engine's answer with a stored one (default: text overlap).
    """

    def __init__(
        self,
        query_engine: BaseQueryEngine,
        store: QAStore | None = None,
        *,
        path: str | None = None,
        host: str | None = None,
        port: int = 8000,
        embedding: Any | None = None,  # an engine embedder or a LlamaIndex embedding
        index: Any | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        partition: str = DEFAULT_PARTITION,
        similarity_threshold: float | None = None,
        guard: bool = True,
        k: int = DEFAULT_K,
        verifier: Verifier | bool | None = None,
        store_misses: bool = True,
        ttl_seconds: float | None = None,
        streaming: bool | None = None,
        speculative: bool = False,
        callback_manager: CallbackManager | None = None,
        max_wrong_rate: float | None = DEFAULT_MAX_WRONG_RATE,
        explore_rate: float = 0.05,
        answer_judge: Any | None = None,
        judge: Any | None = None,
        cache_misses: bool | None = None,
    ) -> None:
        store_misses = store_misses_option(store_misses, cache_misses=cache_misses)
        if not hasattr(query_engine, "query") or not hasattr(query_engine, "aquery"):
            msg = f"query_engine must be a LlamaIndex query engine, not {type(query_engine).__name__}."
            raise TypeError(msg)
        super().__init__(callback_manager=callback_manager or getattr(query_engine, "callback_manager", None))
        if embedding is not None:
            embedding = as_embedder(embedding)
        self.front = StoreFront(open_store(store, path, host, port, embedding), namespace=namespace, partition=partition,
                                similarity_threshold=similarity_threshold, guard=guard, k=k, verifier=verifier,
                                store_misses=store_misses, ttl_seconds=ttl_seconds, on_miss="the query engine",
                                max_wrong_rate=max_wrong_rate, explore_rate=explore_rate, answer_judge=answer_judge,
                                judge=judge_band(judge))
        self.query_engine = query_engine
        self.store = self.front.store
        self.streaming = _is_streaming(query_engine) if streaming is None else streaming
        self.speculative = speculative
        retriever = getattr(query_engine, "retriever", None)
        self.docstore = getattr(index, "docstore", None) or getattr(retriever, "_docstore", None)

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
            dispatcher.event(StorInferMissEvent(query=query, reason=found.reason, best_similarity=found.best_similarity))
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
        extra = {"cache_hit": False, "miss_reason": found.reason, "best_similarity": found.best_similarity}
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
            return self._hit(found.match, asynchronous=True)
        if isinstance(response, Response) and response.response is not None:
            self._mark_miss(response, found)
            await asyncio.to_thread(self._store_answer, query_bundle.query_str, response.response, response.source_nodes,
                                    found)
            return response
        return self._after_miss(query_bundle.query_str, response, found)


def judge_band(model: Any | None) -> JudgeBand | None:
    """A judge band over ``model`` (a LlamaIndex LLM, adapted; or an engine ChatModel)."""
    if model is None or isinstance(model, JudgeBand):
        return model
    from storinfer_llamaindex.adapters import as_chat_model

    return JudgeBand(as_chat_model(model))
