"""StorInferChain streaming and speculative runs, on a real store. The wrapped chains are small
functions: these tests are about when the chain starts, stops and streams, not about its answers.
The faces serve at the verifier's point (``learner=None``): no exploration draw decides a hit."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from langchain_core.runnables import RunnableGenerator, RunnableLambda

from storinfer import QAPair
from storinfer_langchain import StorInferChain

STORED = QAPair("Who won Super Bowl 50?", "The Denver Broncos won Super Bowl 50.")


def _wait(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_speculative_hit_returns_before_the_chain_and_stops_it_at_its_next_step(store):
    store.add([STORED])
    proceed, steps = threading.Event(), []

    def retrieve(q):
        steps.append("retrieve")
        proceed.wait(30)  # the chain is stuck here until the test lets it go
        return q

    def generate(q):
        steps.append("generate")
        return "from the chain"

    fast = StorInferChain(RunnableLambda(retrieve) | RunnableLambda(generate), store, learner=None).with_speculation()
    assert fast.invoke("Who was the winner of Super Bowl 50?") == STORED.answer  # while retrieve waits
    assert _wait(lambda: steps == ["retrieve"])  # the chain had started beside the lookup
    proceed.set()
    time.sleep(0.3)
    assert steps == ["retrieve"]  # cancelled: its next step never ran
    assert fast.flush() and store.count(origin="runtime") == 0


def test_speculative_miss_started_the_chain_during_the_lookup(store, monkeypatch):
    store.add([STORED])
    started = threading.Event()

    def chain(q):
        started.set()
        return "Paris is the capital of France."

    fast = StorInferChain(RunnableLambda(chain), store, learner=None).with_speculation()
    real_lookup = fast.front.lookup

    def slow_lookup(question, **kw):
        assert started.wait(30), "the chain did not start until the lookup ended"
        return real_lookup(question, **kw)

    monkeypatch.setattr(fast.front, "lookup", slow_lookup)
    answer, found = fast.invoke_with_lookup("What is the capital of France?")
    assert not found.hit and answer == "Paris is the capital of France."
    fast.flush()
    assert store.count(origin="runtime") == 1


def test_a_failing_chain_on_a_speculative_miss_raises(store):
    def broken(q):
        raise RuntimeError("model down")

    with pytest.raises(RuntimeError, match="model down"):
        StorInferChain(RunnableLambda(broken), store, learner=None).with_speculation().invoke("What is the capital of France?")


async def test_async_speculative_hit_cancels_the_chain_task(store):
    store.add([STORED])
    cancelled = asyncio.Event()

    async def forever(q):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    fast = StorInferChain(RunnableLambda(lambda q: q, afunc=forever), store, learner=None).with_speculation()
    assert await fast.ainvoke("Who was the winner of Super Bowl 50?") == STORED.answer
    await asyncio.wait_for(cancelled.wait(), 30)
    echo = StorInferChain(RunnableLambda(lambda q: "x", afunc=_echo), store, learner=None).with_speculation()
    answer, found = await echo.ainvoke_with_lookup("Where is Paris?")
    assert not found.hit and answer == "echo: Where is Paris?"


async def _echo(q):
    return f"echo: {q}"


def _words(inputs):
    for _q in inputs:
        yield from ["Paris ", "is ", "the ", "capital."]


async def _awords(inputs):
    async for _q in inputs:
        for w in ["Paris ", "is ", "the ", "capital."]:
            yield w


@pytest.mark.parametrize("speculative", [False, True])
def test_stream_hit_is_one_chunk_and_a_miss_streams_and_is_stored(store, speculative):
    store.add([STORED])
    fast = StorInferChain(RunnableGenerator(_words, _awords), store, learner=None)
    fast = fast.with_speculation() if speculative else fast
    assert list(fast.stream("Who was the winner of Super Bowl 50?")) == [STORED.answer]
    assert list(fast.stream("What is the capital of France?")) == ["Paris ", "is ", "the ", "capital."]
    fast.flush()
    hit = fast.lookup("What is the capital of France?")
    assert hit.hit and hit.match.answer == "Paris is the capital."
    assert fast.stats()["hits"] == 2 and fast.stats()["misses"] == 1


@pytest.mark.parametrize("speculative", [False, True])
async def test_astream_and_astream_events(store, speculative):
    store.add([STORED])
    fast = StorInferChain(RunnableGenerator(_words, _awords), store, learner=None)
    fast = fast.with_speculation() if speculative else fast
    assert [c async for c in fast.astream("Who was the winner of Super Bowl 50?")] == [STORED.answer]
    assert [c async for c in fast.astream("What is the capital of France?")] == ["Paris ", "is ", "the ", "capital."]
    events = [e async for e in fast.astream_events("Which city is the capital of Italy?", version="v2")]
    streamed = [e["data"]["chunk"] for e in events if e["event"] == "on_chain_stream" and e["name"] == "StorInferChain"]
    assert streamed == ["Paris ", "is ", "the ", "capital."]
    assert any(e["event"] == "on_chain_start" and e["name"] != "StorInferChain" for e in events)  # the inner chain's run
    end = [e for e in events if e["event"] == "on_chain_end" and e["name"] == "StorInferChain"]
    assert end and end[-1]["data"]["output"] == "Paris is the capital."


def test_llamaindex_speculative_hit_and_miss(store):
    from llama_index.core.query_engine import CustomQueryEngine

    from storinfer_llamaindex import StorInferQueryEngine

    store.add([STORED])
    started, proceed = threading.Event(), threading.Event()

    class Slow(CustomQueryEngine):
        def custom_query(self, query_str: str) -> str:
            started.set()
            proceed.wait(30)
            return f"engine: {query_str}"

        async def acustom_query(self, query_str: str) -> str:
            started.set()
            await asyncio.sleep(3600)

    engine = StorInferQueryEngine(Slow(), store, learner=None).with_speculation()
    hit = engine.query("Who was the winner of Super Bowl 50?")  # returns while the engine waits
    assert hit.metadata["cache_hit"] is True and str(hit) == STORED.answer
    assert started.wait(30)  # it had started beside the lookup
    proceed.set()
    miss = engine.query("What is the capital of France?")
    assert miss.metadata["cache_hit"] is False and str(miss) == "engine: What is the capital of France?"
    ahit = asyncio.run(engine.aquery("Who was the winner of Super Bowl 50?"))  # the endless task is cancelled
    assert ahit.metadata["cache_hit"] is True
