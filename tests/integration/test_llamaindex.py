"""StorInferQueryEngine in front of a real VectorStoreIndex (offline MiniLM + SmolLM2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import record_reasons
from llama_index.core import Document, SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.base.llms.types import CompletionResponse, LLMMetadata
from llama_index.core.base.response.schema import AsyncStreamingResponse, Response, StreamingResponse
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from storinfer import ConfigError, QAStore, Reason, default_embedder
from storinfer.precompute.generate.free import GenerationConfig
from storinfer_llamaindex import (
    StorInferHitEvent,
    StorInferMissEvent,
    StorInferQueryEngine,
    default_embed_model,
    default_llm,
    precompute,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "superbowl"


class FixedQuestions(CustomLLM):
    """A LlamaIndex LLM that writes the same question list every time: these tests are about the
    query engine, so the questions are fixed; the answers come from the real engine."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="fixed-questions")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="1. Who won Super Bowl 50?\n2. Where was Super Bowl 50 played?")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        yield self.complete(prompt)


class Collect(BaseEventHandler):
    events: list = []

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, (StorInferHitEvent, StorInferMissEvent)):
            self.events.append(event)


@pytest.fixture(scope="module")
def index(squad):
    docs = [Document(text=p["context"], id_=f"p{i:03d}") for i, p in enumerate(squad["paragraphs"][:4])]
    return VectorStoreIndex.from_documents(docs, embed_model=default_embed_model())


@pytest.fixture(scope="module")
def llm():
    return default_llm(max_new_tokens=24)


@pytest.fixture(scope="module")
def engine(index, llm):
    return index.as_query_engine(llm=llm, similarity_top_k=1)


@pytest.fixture()
def store_with_pairs(tmp_path, index, engine):
    store = QAStore(tmp_path / "s", embedding=default_embedder())
    # the free generator's questions are fixed and no fact is asked: these tests are about the engine
    summary = precompute(index, store, answer_with=engine, llm=FixedQuestions(), progress=False,
                         config=GenerationConfig(max_calls_per_chunk=1, max_per_chunk=2, answer_aware=False, rephrasings=0))
    assert summary.pairs_stored >= 1
    yield store
    store.close()


def test_default_models_are_the_engines(llm):
    emb = default_embed_model()
    assert emb.engine_embedder is default_embedder()
    assert len(emb.get_query_embedding("Who won?")) == 384
    assert llm.metadata.is_chat_model
    assert llm.complete("Say hello.").text.strip()


def test_precomputed_question_and_paraphrase_hit_unrelated_goes_to_engine(store_with_pairs, engine, index):
    store = store_with_pairs
    cached = StorInferQueryEngine(engine, store, index=index, learner=None)  # the verifier's point: no exploration draw
    reasons = record_reasons(cached)
    stored = {m.question: m for m in store.iter_pairs()}
    assert "Who won Super Bowl 50?" in stored
    hit = cached.query("Who won Super Bowl 50?")
    assert isinstance(hit, Response) and hit.metadata["cache_hit"] is True
    assert hit.response == stored["Who won Super Bowl 50?"].answer
    assert hit.metadata["matched_question"] == "Who won Super Bowl 50?" and hit.metadata["similarity"] == 1.0
    assert hit.metadata["doc_id"] == "p000" and hit.metadata["source_match"] == "chunk"
    assert hit.source_nodes and hit.source_nodes[0].node.ref_doc_id == "p000"

    para = cached.query("Who was the winner of Super Bowl 50?")
    assert para.metadata["cache_hit"] is True and 0.95 <= para.metadata["similarity"] < 1.0

    before = store.count(origin="runtime")
    miss = cached.query("How many viewers watched the halftime show?")
    assert miss.metadata["cache_hit"] is False and miss.metadata["miss_reason"] == Reason.BELOW_THRESHOLD.value
    assert miss.source_nodes  # the real engine ran and retrieved
    cached.flush()
    assert store.count(origin="runtime") == before + 1  # and its answer is now stored
    again = cached.query("How many viewers watched the halftime show?")
    assert again.metadata["cache_hit"] is True and again.response == miss.response
    assert reasons == [Reason.EXACT, Reason.SIMILAR, Reason.BELOW_THRESHOLD, Reason.EXACT]
    s = cached.stats()
    assert s["hits"] == 3 and s["misses"] == 1 and s["updates"] == 1


def test_a_share_of_hits_is_checked_by_the_engine_after_serving(store_with_pairs, index):
    from llama_index.core.query_engine import CustomQueryEngine

    from storinfer import Learner
    from storinfer.serve.learner import UNEXPLORED

    ran = []

    class Scripted(CustomQueryEngine):
        def custom_query(self, query_str: str) -> str:
            ran.append(query_str)
            return stored

    stored = next(m.answer for m in store_with_pairs.iter_pairs() if m.question == "Who won Super Bowl 50?")
    cached = StorInferQueryEngine(Scripted(), store_with_pairs, index=index, learner=Learner(audit_share=0.25, seed=0))
    hits = [cached.query("Who was the winner of Super Bowl 50?") for _ in range(UNEXPLORED + 40)]
    assert all(h.metadata["cache_hit"] and h.response == stored for h in hits)
    assert cached.flush(30) and ran and cached.stats()["audits"] == len(ran)


async def test_async_hit_and_miss(store_with_pairs, engine, index):
    cached = StorInferQueryEngine(engine, store_with_pairs, index=index)
    hit = await cached.aquery("Where was Super Bowl 50 played?")
    assert hit.metadata["cache_hit"] is True
    miss = await cached.aquery("What color was used to emphasize the 50th anniversary?")
    assert miss.metadata["cache_hit"] is False and miss.response


def test_streaming_engines_get_streaming_responses(store_with_pairs, index, llm):
    streaming = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=True)
    cached = StorInferQueryEngine(streaming, store_with_pairs, index=index)
    assert cached.streaming
    hit = cached.query("Who won Super Bowl 50?")
    assert isinstance(hit, StreamingResponse) and hit.metadata["cache_hit"] is True
    stored = next(m.answer for m in store_with_pairs.iter_pairs() if m.question == "Who won Super Bowl 50?")
    assert "".join(hit.response_gen) == stored
    miss = cached.query("Which network broadcast the game?")
    assert isinstance(miss, StreamingResponse) and miss.metadata["cache_hit"] is False
    text = "".join(miss.response_gen)
    assert text and cached.query("Which network broadcast the game?").metadata["cache_hit"] is True


async def test_async_streaming_hit(store_with_pairs, index, llm):
    streaming = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=True)
    cached = StorInferQueryEngine(streaming, store_with_pairs, index=index)
    hit = await cached.aquery("Who won Super Bowl 50?")
    assert isinstance(hit, AsyncStreamingResponse) and hit.metadata["cache_hit"] is True
    assert "".join([t async for t in hit.async_response_gen()]) == hit.response_txt


def test_instrumentation_events(store_with_pairs, engine, index):
    handler = Collect(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        cached = StorInferQueryEngine(engine, store_with_pairs, index=index, store_misses=False)
        cached.query("Who won Super Bowl 50?")
        cached.query("What is the capital of France?")
    finally:
        root.event_handlers.remove(handler)
    kinds = [type(e).__name__ for e in handler.events]
    assert kinds == ["StorInferHitEvent", "StorInferMissEvent"]
    assert handler.events[0].similarity == 1.0 and handler.events[1].query == "What is the capital of France?"


def test_precompute_with_the_real_model_from_a_reader(tmp_path, engine):
    files = [str(DATA / "p000.txt"), str(DATA / "p005.txt")]
    reader = SimpleDirectoryReader(input_files=files)
    with QAStore(tmp_path / "s", embedding=default_embedder()) as store:
        small = GenerationConfig(max_calls_per_chunk=1, max_per_chunk=2, max_new_tokens=80, max_facts_per_chunk=2,
                                 rephrasings=1)
        first = precompute(reader, store, answer_with=engine, progress=False, config=small)
        assert first.pairs_stored > 0 and first.documents == 2
        ids = {m.metadata["doc_id"] for m in store.iter_pairs()}
        assert all(i.endswith(".txt") for i in ids)  # file paths: stable across runs
        again = precompute(SimpleDirectoryReader(input_files=files), store, answer_with=engine, progress=False, config=small)
        assert again.chunks_processed == 0 and again.chunks_already_done == first.chunks
        cached = StorInferQueryEngine(engine, store)
        q = next(store.iter_pairs()).question
        assert cached.query(q).metadata["cache_hit"] is True


def test_bad_arguments(store_with_pairs, engine):
    with pytest.raises(ConfigError, match="query engine"):
        StorInferQueryEngine("not an engine", store_with_pairs)
    with pytest.raises(ValueError, match="between 0 and 1"):
        StorInferQueryEngine(engine, store_with_pairs, max_wrong_rate=float("nan"))


async def test_retrieve_and_synthesize_go_to_the_wrapped_engine(store_with_pairs, engine, index):
    """LlamaIndex evaluators call retrieve(); as TransformQueryEngine does, the wrapper forwards it."""
    from llama_index.core.schema import QueryBundle

    cached = StorInferQueryEngine(engine, store_with_pairs, index=index)
    bundle = QueryBundle("Where was Super Bowl 50 played?")
    nodes = cached.retrieve(bundle)
    assert [n.node.node_id for n in nodes] == [n.node.node_id for n in engine.retrieve(bundle)] and nodes
    assert [n.node.node_id for n in await cached.aretrieve("Where was Super Bowl 50 played?")] == [n.node.node_id for n in nodes]
    response = cached.synthesize(bundle, nodes)
    assert str(response).strip() and response.source_nodes[0].node.node_id == nodes[0].node.node_id
    assert cached.stats()["lookups"] == 0  # none of these is a lookup
