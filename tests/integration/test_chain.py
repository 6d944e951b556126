"""StorInferChain in front of a real RAG chain (MiniLM retrieval, SmolLM2 answers)."""

import pytest

from storinfer import ConfigError, QAPair, Reason
from storinfer_langchain import StorInferChain
from tests.integration.helpers import langchain_rag_chain


@pytest.fixture(scope="module")
def rag(squad, embeddings):
    from storinfer_langchain import default_chat_model

    return langchain_rag_chain([p["context"] for p in squad["paragraphs"][:2]], embeddings,
                               default_chat_model(max_new_tokens=24))


def test_hit_paraphrase_miss_then_cached(store, rag):
    store.add([QAPair("Who won Super Bowl 50?", "The Denver Broncos.", namespace="rag", doc_id="p0")])
    fast = StorInferChain(rag, store, namespace="rag", learner=None)  # the verifier's point: no exploration draw
    answer, found = fast.invoke_with_lookup("Who won Super Bowl 50?")
    assert answer == "The Denver Broncos." and found.reason is Reason.EXACT
    answer, found = fast.invoke_with_lookup({"question": "Who was the winner of Super Bowl 50?"})
    assert answer == "The Denver Broncos." and found.reason is Reason.SIMILAR and found.match.similarity >= 0.95
    q = "What color was used to emphasize the 50th anniversary of the Super Bowl?"
    answer, found = fast.invoke_with_lookup(q)
    assert found.reason is Reason.BELOW_THRESHOLD and answer == rag.invoke(q)  # the chain ran (greedy: same answer)
    again, found = fast.invoke_with_lookup(q)
    assert found.reason is Reason.EXACT and again == answer  # the miss's answer was remembered
    assert store.count(namespace="rag", origin="runtime") == 1
    s = fast.stats()
    assert s["hits"] >= 3 and s["misses"] == 1 and s["updates"] == 1


async def test_async(store, rag):
    store.add([QAPair("Who won Super Bowl 50?", "The Denver Broncos.", namespace="rag")])
    fast = StorInferChain(rag, store, namespace="rag", store_misses=False)
    assert await fast.ainvoke("Who won Super Bowl 50?") == "The Denver Broncos."
    answer = await fast.ainvoke("Where was Super Bowl 50 played?")
    assert answer and store.count() == 1  # not remembered: store_misses=False


def test_bad_input(store, rag):
    fast = StorInferChain(rag, store)
    assert fast._question({"query": "Who won?"}) == "Who won?" and fast._question({"text": "Who won?"}) == "Who won?"
    with pytest.raises(TypeError, match="question"):
        fast.invoke({"a": "one", "b": "two"})
    with pytest.raises(TypeError, match="question"):
        fast.invoke(42)
    with pytest.raises(ConfigError, match="Runnable"):
        StorInferChain(lambda q: q, store)
    with pytest.raises(ConfigError, match="ttl_seconds"):
        StorInferChain(rag, store, ttl_seconds=float("nan"))


def test_a_share_of_hits_is_checked_by_the_chain_after_serving(store):
    from langchain_core.runnables import RunnableLambda

    from storinfer import Learner
    from storinfer.serve.learner import UNEXPLORED

    store.add([QAPair("Who won Super Bowl 50?", "The Denver Broncos.", namespace="rag")])
    ran = []
    chain = RunnableLambda(lambda q: ran.append(q) or "The Denver Broncos.")
    fast = StorInferChain(chain, store, namespace="rag", learner=Learner(audit_share=0.25, seed=0))
    answers = [fast.invoke("Who was the winner of Super Bowl 50?") for _ in range(UNEXPLORED + 40)]
    assert answers == ["The Denver Broncos."] * len(answers)  # every one served from the store
    assert fast.flush(30) and ran and fast.stats()["audits"] == len(ran)  # the chain ran afterwards, for a share
    assert store.count(namespace="rag") == 1  # it agreed: nothing new stored
