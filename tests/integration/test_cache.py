"""StorInferCache behind real LangChain models (the offline SmolLM2), on real Chroma and MiniLM."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import record_reasons
from langchain_core.globals import set_llm_cache
from langchain_core.language_models.llms import LLM
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.outputs import Generation

from storinfer import ConfigError, QAPair, Reason, VerifierPolicy
from storinfer.match.features import Query
from storinfer.match.lookup import Candidates
from storinfer_langchain import StorInferCache, partition_for_model


def test_set_llm_cache_serves_repeat_and_paraphrase_not_unrelated(store, chat):
    cache = StorInferCache(store, learner=None)  # served at the verifier's point: no exploration draw decides
    reasons = record_reasons(cache)
    set_llm_cache(cache)
    first = chat.invoke("What does AFC stand for in American football?")
    assert cache.flush()  # the answer is stored off the caller's path
    assert cache.stats()["misses"] == 1 and cache.stats()["updates"] == 1
    again = chat.invoke("What does AFC stand for in American football?")
    para = chat.invoke("In American football, what does the AFC stand for?")
    s = cache.stats()
    assert s["hits"] == 2 and s["exact_hits"] == 1
    assert again.content == first.content == para.content
    chat.invoke("What is the capital of France?")
    chat.invoke("What does NFC stand for in American football?")  # look-alike: model runs
    assert reasons == [Reason.EMPTY_PARTITION, Reason.EXACT, Reason.SIMILAR, Reason.BELOW_THRESHOLD, Reason.BELOW_THRESHOLD]
    s = cache.stats()
    assert s["hits"] == 2 and s["misses"] == 3
    assert s["hit_rate"] == pytest.approx(2 / 5)
    assert 0.85 <= s["hit_similarity"]["min"] <= s["hit_similarity"]["max"] == 1.0
    assert s["recent_hits"][-1]["matched"] == "What does AFC stand for in American football?"
    cache.flush()
    assert store.count(origin="runtime") == 3  # one per miss


async def test_async_path(store, chat):
    cache = StorInferCache(store, learner=None)
    reasons = record_reasons(cache)
    set_llm_cache(cache)
    first = await chat.ainvoke("Who is the quarterback of the Denver Broncos?")
    cache.flush()
    second = await chat.ainvoke("Who is the Denver Broncos' quarterback?")
    assert second.content == first.content and reasons == [Reason.EMPTY_PARTITION, Reason.SIMILAR]
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1
    await cache.aclear()
    assert store.count() == 0
    assert await cache.alookup(dumps([HumanMessage("Who is the quarterback of the Denver Broncos?")]), "x") is None


RAG_PROMPT = ("You answer questions about a document. Here is the part of it that matters: Super Bowl 50 was an "
              "American football game to determine the champion of the National Football League (NFL) for the 2015 "
              "season. The American Football Conference (AFC) champion Denver Broncos defeated the National Football "
              "Conference (NFC) champion Carolina Panthers 24-10. Answer this question from it, briefly: {q}")


def test_prompts_of_one_template_are_judged_on_the_question_not_the_template(store, chat):
    """A RAG prompt handed whole to the LLM cache: another question in the same template is not served
    (compared whole, the shipped point would serve it: the template is most of both texts); the same
    question reworded is."""
    cache = StorInferCache(store, learner=None)
    reasons = record_reasons(cache)
    set_llm_cache(cache)
    first = chat.invoke(RAG_PROMPT.format(q="Which team won Super Bowl 50?"))
    cache.flush()
    lost = RAG_PROMPT.format(q="Which team lost Super Bowl 50?")
    stored = store.search(lost, k=1, partition=partition_for_model(chat))
    whole = Candidates(lost, [], stored)  # the premise: compared whole, the point serves it
    assert stored[0].similarity > 0.95 and VerifierPolicy().decide(Query(lost), whole).hit
    chat.invoke(lost)
    reworded = chat.invoke(RAG_PROMPT.format(q="What team won Super Bowl 50?"))
    assert reasons[1:] == [Reason.REFUSED, Reason.SIMILAR] and reworded.content == first.content
    assert cache.stats()["recent_hits"][-1]["matched"] == "Which team won Super Bowl 50?"  # what was compared


def test_the_default_cache_judges_a_template_s_question_too(store, chat):
    """The same through the default learner (its first would-be hits are never explored), without
    waiting for the first answer to be written (a lookup also reads the write-back queue)."""
    cache = StorInferCache(store)
    reasons = record_reasons(cache)
    set_llm_cache(cache)
    first = chat.invoke(RAG_PROMPT.format(q="Which team won Super Bowl 50?"))
    chat.invoke(RAG_PROMPT.format(q="Which team lost Super Bowl 50?"))
    reworded = chat.invoke(RAG_PROMPT.format(q="What team won Super Bowl 50?"))
    assert not reasons[1].served and reasons[2] is Reason.SIMILAR, reasons
    assert reworded.content == first.content and cache.stats()["hits"] == 1


def test_the_default_cache_serves_a_paraphrase_of_a_precomputed_pair(store, chat):
    """The face as a user builds it, with the default learner: a learner's first 20 would-be hits are
    never explored, so no draw decides this hit."""
    store.add([QAPair("Who won Super Bowl 50?", "The Denver Broncos.", partition=partition_for_model(chat))])
    cache = StorInferCache(store)
    set_llm_cache(cache)
    reply = chat.invoke("Who was the winner of Super Bowl 50?")
    assert reply.content == "The Denver Broncos." and cache.stats()["hits"] == 1
    # The same model with a system prompt is another partition: it must run.
    chat.invoke([SystemMessage("Answer in French."), HumanMessage("Who was the winner of Super Bowl 50?")])
    assert cache.stats()["misses"] == 1


def test_other_model_settings_and_system_prompts_never_share_answers(store, chat):
    from storinfer_langchain import default_chat_model

    other = default_chat_model(max_new_tokens=24)  # same weights, other llm_string
    assert partition_for_model(other) != partition_for_model(chat)
    cache = StorInferCache(store)
    set_llm_cache(cache)
    chat.invoke("Name one famous stadium.")
    other.invoke("Name one famous stadium.")
    chat.invoke([SystemMessage("Be brief."), HumanMessage("Name one famous stadium.")])
    assert cache.stats()["hits"] == 0 and cache.stats()["misses"] == 3
    cache.flush()
    assert len(store.stats()["by_partition"]) == 3


class _TextLLM(LLM):
    """A text (not chat) LLM over the same offline model."""

    chat: Any

    @property
    def _llm_type(self) -> str:
        return "smollm2-text"

    def _call(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> str:
        return self.chat.chat_batch([[{"role": "user", "content": prompt}]], max_new_tokens=16)[0]


def test_text_llm_generations_round_trip(store, chat):
    llm = _TextLLM(chat=chat)
    cache = StorInferCache(store)
    set_llm_cache(cache)
    first = llm.generate(["The capital of France is"])
    second = llm.generate(["The capital of France is"])
    assert cache.stats()["hits"] == 1
    assert second.generations == first.generations
    assert isinstance(second.generations[0][0], Generation)


def test_bad_prompts_are_safe_misses(store, chat):
    cache = StorInferCache(store)
    store.add([QAPair("Who won Super Bowl 50?", "Denver", partition=partition_for_model(chat))])
    llm_string = chat._get_llm_string()
    huge = dumps([HumanMessage("Who won Super Bowl 50? " + "x" * 100_000)])
    assert cache.lookup(huge, llm_string) is None
    assert cache.lookup(dumps([HumanMessage("")]), llm_string) is None
    image = HumanMessage(content=[{"type": "text", "text": "Who won Super Bowl 50?"}, {"type": "image_url", "image_url": {"url": "u"}}])
    assert cache.lookup(dumps([image]), llm_string) is None
    assert cache.lookup(12345, llm_string) is None  # type: ignore[arg-type]
    assert cache.stats()["skipped"] == 4 and cache.stats()["errors"] == 0
    cache.update(huge, llm_string, [Generation(text="should not be stored")])
    assert store.count() == 1
    # Through LangChain: an empty question runs the model instead of failing.
    set_llm_cache(cache)
    assert isinstance(chat.invoke(" ").content, str)


def test_a_failing_store_is_a_miss_not_a_crash(store, chat, caplog, monkeypatch):
    cache = StorInferCache(store)
    set_llm_cache(cache)

    def broken(*args, **kwargs):
        raise ConnectionError("the Chroma server went away")

    monkeypatch.setattr(store.layout, "partition", broken)  # breaks after opening
    reply = chat.invoke("What is the capital of France?")
    assert reply.content
    cache.flush()
    assert cache.stats()["errors"] == 2  # the lookup, then the update
    assert "StorInfer lookup failed" in caplog.text


@pytest.mark.parametrize("kwargs", [{"max_wrong_rate": float("nan")}, {"max_wrong_rate": 2}, {"ttl_seconds": -1},
                                    {"namespace": ""}, {"max_wrong_rate": 0.02, "learner": None}])
def test_bad_configuration_is_refused(store, kwargs):
    with pytest.raises(ConfigError):
        StorInferCache(store, **kwargs)


def test_needs_a_store():
    with pytest.raises(ConfigError, match="QAStore or the folder"):
        StorInferCache(12345)  # type: ignore[arg-type]
