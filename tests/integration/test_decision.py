"""The learner on a real store: read your own writes, labels shared by clients on a Chroma server, a
wrong explored hit's answer cut at once, exploration counted, the LLM check, a refit that dies
leaving the last good state, and a near-repeat of traffic served whatever its score. Real Chroma
and MiniLM; the chains are scripted where the test is about the learner's logic
(tests/unit/test_learner.py has the scripted streams)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from helpers import chroma_server

from storinfer import Learner, LLMCheck, QAPair, QAStore, Reason, StoreFront, VerifierPolicy
from storinfer.match.verify import Verifier
from storinfer.serve.learner import LearntState

INTENTS = {
    "card": ["How do I activate my new card?", "How can I activate my card?", "What do I do to activate the card?",
             "I need to activate my new card", "Activating my card, how?"],
    "pin": ["How do I change my PIN?", "Can I change my PIN number?", "I want a new PIN", "How to reset my PIN",
            "Change the PIN on my card"],
}


def kb_store(path, embeddings) -> QAStore:
    store = QAStore(path, embedding=embeddings)
    store.add([QAPair(q, f"[{intent}]", partition="kb", extra={"answer_id": intent})
               for intent, qs in INTENTS.items() for q in qs[:3]])
    return store


def test_a_paraphrase_right_after_its_question_is_served_from_the_write_queue(tmp_path, embeddings):
    store = QAStore(tmp_path / "s", embedding=embeddings)
    release = threading.Event()
    real_add = store.add

    def slow_add(pairs, **kw):  # the background writer is still busy: the pair stays queued
        release.wait(30)
        return real_add(pairs, **kw)

    store.add = slow_add
    front = StoreFront(store, learner=None, write_behind=True)  # the verifier's point: no exploration draw
    answer, first = front.answer("What does AFC stand for in American football?", lambda q: "American Football Conference")
    assert first.reason is Reason.EMPTY_PARTITION and front.writer.pending == 1
    answer, again = front.answer("In American football, what does the AFC stand for?", lambda q: "the model ran")
    assert again.reason is Reason.SIMILAR and answer == "American Football Conference"
    assert again.match.metadata["origin"] == "runtime" and store.count() == 0  # served from the queue
    release.set()
    front.flush()
    assert store.count() == 1
    store.close()


def test_misses_give_labels_and_a_refit_publishes_the_state_every_client_uses(tmp_path, embeddings):
    with chroma_server(tmp_path / "server") as port:
        a = QAStore(host="127.0.0.1", port=port, embedding=embeddings)
        a.add([QAPair(q, f"[{i}]", partition="kb", extra={"answer_id": i}) for i, qs in INTENTS.items() for q in qs[:3]])
        front_a = StoreFront(a, partition="kb")
        for intent, qs in INTENTS.items():
            for q in [*qs[3:], "What is a mortgage?", "Where is my nearest branch?"]:
                found = front_a.lookup(q)
                if not found.hit:
                    front_a.remember(q, f"[{intent}]", lookup=found)
        front_a.flush()
        labelled = a.labels.count(namespace="default", partition="kb")
        assert labelled >= 2  # misses with candidates were labelled
        state = front_a.learning("kb").refit_now()
        b = QAStore(host="127.0.0.1", port=port, embedding=embeddings)  # another client of the same store
        front_b = StoreFront(b, partition="kb")
        learning_b = front_b.learning("kb")
        assert learning_b.state.version == state.version and learning_b.state.heads == state.heads
        assert b.labels.count(namespace="default", partition="kb") == labelled  # the labels are the store's
        assert learning_b.refit_now().labels == labelled  # b's refit reads a's labels


def test_a_wrong_explored_hit_cuts_its_answer_at_once(tmp_path, embeddings):
    """The learner serves the card answer, then explores it; the chain says it was wrong: from the next
    lookup on, before the label is even written, that answer is held back (an answer cut), and the
    refit that reads the label keeps the cut."""
    store = kb_store(tmp_path / "s", embeddings)
    front = StoreFront(store, partition="kb", store_misses=False, learner=Learner(explore_share=0.25, seed=7))
    q = "How can I get my new card activated?"
    for _ in range(400):  # served until this hit is explored (the seeded draw decides when, not whether)
        found = front.lookup(q, audit=False)  # as the LLM cache looks up: a check is a miss
        if found.reason is Reason.EXPLORE:
            break
        assert found.reason is Reason.SIMILAR and found.match.answer == "[card]", found.reason
    assert found.reason is Reason.EXPLORE and found.explored.answer == "[card]"

    written = threading.Event()
    real_add = store.labels.add
    store.labels.add = lambda labels: written.wait(30) and real_add(labels)  # the label's write is held back
    front.remember(q, "[something else entirely]", lookup=found)  # the chain says: the stored answer was wrong
    learning = front.learning("kb")
    assert learning.state.version == 0  # no refit yet
    cut = front.lookup(q, audit=False)
    assert cut.reason is Reason.ANSWER_CUT and not cut.hit and learning.counts["answer_cut"] == 1
    assert store.labels.count(namespace="default", partition="kb") == 0  # decided before the label was written
    written.set()
    front.flush()
    assert learning.state.version == 1 and learning.counts["labels_wrong"] == 1
    assert set(store.states.latest("default", "kb")["answer_cuts"]) == {"card"}  # the refit keeps the cut
    assert front.lookup(q).reason is Reason.ANSWER_CUT
    store.close()


def test_exploration_is_counted_per_query(tmp_path, embeddings):
    store = kb_store(tmp_path / "s", embeddings)
    front = StoreFront(store, partition="kb", learner=Learner(explore_share=0.25, seed=1), store_misses=False)
    for _ in range(200):
        found = front.lookup("How can I get my new card activated?", audit=False)  # as the LLM cache looks up
        if not found.hit:
            front.remember("How can I get my new card activated?", "[card]", lookup=found)
    front.flush()
    s = front.stats()
    explored = s["learner"]["kb"]["explored"]
    assert 20 <= explored <= 80 and s["explore_per_query"] == explored / 200  # 25% of the 180 after the first 20
    assert s["hits"] + explored == 200  # every other lookup was served
    off = StoreFront(store, partition="kb", learner=None)
    assert off.lookup("How can I get my new card activated?").hit and off.stats()["explored"] == 0
    store.close()


class SlowJudge:
    """A scripted judge model: says ``reply`` after ``delay`` seconds, stoppable by ``cancel``."""

    def __init__(self, reply: str, delay: float) -> None:
        self.reply, self.delay, self.stopped = reply, delay, False

    def chat_batch(self, conversations, *, max_new_tokens=None, cancel=None, **kw):
        end = time.time() + self.delay
        while time.time() < end:
            if cancel is not None and cancel.is_set():
                self.stopped = True
                return ["no"]
            time.sleep(0.01)
        return [self.reply] * len(conversations)


STRICT = Verifier.default().with_operating_point(cut=0.9995)  # the candidate below scores 0.999: just under the cut


def strict(model: SlowJudge | None = None) -> VerifierPolicy:
    return VerifierPolicy(STRICT, llm_check=LLMCheck(model, band=0.9) if model is not None else None)


def _doubtful_store(tmp_path, embeddings):
    store = kb_store(tmp_path / "s", embeddings)
    question = "Is there a way to activate the card I just got?"
    found = StoreFront(store, partition="kb", policy=strict()).lookup(question)
    assert not found.hit and found.candidates  # a near miss: the LLM check's case
    return store, question


def test_the_llm_check_serves_what_the_model_accepts_and_counts_it(tmp_path, embeddings):
    store, question = _doubtful_store(tmp_path, embeddings)
    yes = StoreFront(store, partition="kb", policy=strict(SlowJudge("yes", 0.0)))
    found = yes.lookup(question)
    assert found.hit and found.reason == "llm check" and yes.stats()["llm_check"]["calls"] >= 1
    no = StoreFront(store, partition="kb", policy=strict(SlowJudge("no", 0.0)))
    assert not no.lookup(question).hit
    no.flush()
    sources = {lb.source for lb in store.labels.records(namespace="default", partition="kb")}
    assert sources == set()  # the LLM check writes no labels: the learner learns from the chain's answers only
    store.close()


def test_when_the_chain_answers_first_the_judge_is_stopped(tmp_path, embeddings):
    from langchain_core.runnables import RunnableLambda

    from storinfer_langchain import StorInferChain

    store, question = _doubtful_store(tmp_path, embeddings)
    slow_yes = SlowJudge("yes", 5.0)
    fast = StorInferChain(RunnableLambda(lambda q: "the chain's answer"), store, namespace="default",
                          policy=strict(slow_yes)).with_speculation()
    fast.front.partition = "kb"
    t = time.perf_counter()
    answer, found = fast.invoke_with_lookup(question)
    assert answer == "the chain's answer" and not found.hit and time.perf_counter() - t < 3.0
    deadline = time.time() + 2
    while not slow_yes.stopped and time.time() < deadline:  # the judge sees the stop at its next step
        time.sleep(0.01)
    assert slow_yes.stopped and fast.stats()["llm_check"]["cancelled"] == 1


def test_when_the_judge_accepts_first_the_chain_is_cancelled(tmp_path, embeddings):
    from langchain_core.runnables import RunnableLambda

    from storinfer_langchain import StorInferChain

    store, question = _doubtful_store(tmp_path, embeddings)
    ran = threading.Event()

    def slow_chain(q):
        time.sleep(5)
        ran.set()
        return "the chain's answer"

    fast = StorInferChain(RunnableLambda(slow_chain), store, policy=strict(SlowJudge("yes", 0.05))).with_speculation()
    fast.front.partition = "kb"
    t = time.perf_counter()
    answer, found = fast.invoke_with_lookup(question)
    assert found.hit and found.reason == "llm check" and answer == "[card]" and time.perf_counter() - t < 3.0


def test_a_refit_that_dies_leaves_the_last_good_state(tmp_path, embeddings, monkeypatch):
    store = kb_store(tmp_path / "s", embeddings)
    front = StoreFront(store, partition="kb")
    learning = front.learning("kb")
    for intent, qs in INTENTS.items():
        for q in qs[3:]:
            found = front.lookup(q)
            if not found.hit:
                front.remember(q, f"[{intent}]", lookup=found)
    good = learning.refit_now()

    def dies(*args, **kwargs):
        raise RuntimeError("killed in the middle of the refit")

    monkeypatch.setattr(store.states, "publish", dies)
    with pytest.raises(RuntimeError):
        learning.refit_now()
    assert learning.state is good and store.states.latest("default", "kb")["version"] == good.version
    monkeypatch.undo()
    store.close()
    with QAStore(tmp_path / "s", embedding=embeddings) as reopened:  # what every client reads
        assert LearntState.from_dict(reopened.states.latest("default", "kb")) == good


def test_a_near_repeat_of_an_answer_stored_from_traffic_is_served_whatever_its_score(tmp_path, embeddings):
    strict = VerifierPolicy(Verifier.default().with_operating_point(cut=1.0))  # no score here clears this cut
    store = QAStore(tmp_path / "s", embedding=embeddings)
    store.add([QAPair("How do I change my PIN?", "[pin]")])  # a stored (precomputed) question
    front = StoreFront(store, policy=strict, learner=None)
    answer, first = front.answer("How do I activate my new card?", lambda _q: "[card]")  # a miss: stored
    assert not first.hit and answer == "[card]"
    front.flush()
    answer, again = front.answer("How can I activate my new card?", lambda _q: "[chain ran]")  # cosine 0.99
    assert again.hit and again.reason is Reason.NEAR_REPEAT and answer == "[card]"
    _answer, pin = front.answer("How can I change my PIN?", lambda _q: "[chain ran]")  # a stored question
    assert not pin.hit  # near as it is, a stored question still needs its score
    assert front.stats()["near_repeat_hits"] == 1
    legacy = StoreFront(store, policy=VerifierPolicy(replace(strict.verifier, repeat_floor=None)), learner=None)
    assert not legacy.lookup("How can I activate my new card?").hit  # without a repeat floor: as before
