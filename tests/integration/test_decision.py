"""The serve decision on a real store: read your own writes, labels shared by clients, refits that
widen only under the bound and tighten after a wrong serve, exploration's budget, the judge band,
and a refit that dies leaving the last good point. Real Chroma and MiniLM; the chains are scripted
where the test is about the decision's logic."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import chroma_server

from storinfer import QAPair, QAStore, StoreFront
from storinfer.match.verify import Verifier
from storinfer.records import Label
from storinfer.serve.judge_band import JudgeBand

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
    front = StoreFront(store, write_behind=True)
    answer, first = front.answer("What does AFC stand for in American football?", lambda q: "American Football Conference")
    assert not first.hit and front.writer.pending == 1
    answer, again = front.answer("In American football, what does the AFC stand for?", lambda q: "the model ran")
    assert again.hit and answer == "American Football Conference" and again.reason == "similar"
    assert again.match.metadata["origin"] == "runtime" and store.count() == 0  # served from the queue
    release.set()
    front.flush()
    assert store.count() == 1
    store.close()


def test_misses_give_labels_and_a_refit_publishes_the_point_every_client_uses(tmp_path, embeddings):
    with chroma_server(tmp_path / "server") as port:
        a = QAStore(host="127.0.0.1", port=port, embedding=embeddings)
        a.add([QAPair(q, f"[{i}]", partition="kb", extra={"answer_id": i}) for i, qs in INTENTS.items() for q in qs[:3]])
        front_a = StoreFront(a, partition="kb", decision_options={"refit_every": 1000, "cold_start": False})
        for intent, qs in INTENTS.items():
            for q in qs[3:]:
                found = front_a.lookup(q)
                if not found.hit:
                    front_a.remember(q, f"[{intent}]", lookup=found)
        front_a.flush()
        labelled = a.labels.count(namespace="default", partition="kb")
        assert labelled >= 2  # misses with candidates were labelled
        point = front_a.decision("kb").refit_now()
        b = QAStore(host="127.0.0.1", port=port, embedding=embeddings)  # another client of the same store
        front_b = StoreFront(b, partition="kb", decision_options={"cold_start": False})
        decision_b = front_b.decision("kb")
        assert decision_b.point["version"] == point["version"] and decision_b.point["heads"] == point["heads"]
        assert b.labels.count(namespace="default", partition="kb") == labelled  # the labels are the store's
        assert front_b.decision("kb").refit_now()["labels"] == labelled  # b's refit reads a's labels


def test_a_refit_widens_only_under_the_bound(tmp_path, embeddings):
    store = kb_store(tmp_path / "s", embeddings)
    front = StoreFront(store, partition="kb", decision_options={"cold_start": False, "refit_every": 10_000})
    decision = front.decision("kb")
    before = decision.point["heads"]["question"]
    store.labels.add([Label("default", "kb", "question", 0.9, 0.9, True) for _ in range(100)])
    assert decision.refit_now()["heads"]["question"]["cut"] == before["cut"]  # 100 clean labels show nothing yet
    store.labels.add([Label("default", "kb", "question", 0.9, 0.9, True) for _ in range(300)])
    wide = decision.refit_now()
    assert wide["heads"]["question"]["cut"] < before["cut"] and wide["fit"]["question"]["upper"] <= 0.01
    assert front.stats()["decision"]["kb"]["wrong_rate_bound"] <= 0.01
    store.close()


def test_a_wrong_served_answer_gets_its_own_cut_at_once_and_the_point_tightens(tmp_path, embeddings):
    store = kb_store(tmp_path / "s", embeddings)
    front = StoreFront(store, partition="kb", explore_rate=0.5, store_misses=False,
                       decision_options={"cold_start": False, "explore_warmup": 1000})
    decision = front.decision("kb")
    q = "How can I get my new card activated?"
    while True:  # until this would-be hit is explored
        found = front.lookup(q)
        if found.reason == "explore":
            break
        assert found.hit
    front.remember(q, "[something else entirely]", lookup=found)  # the chain says: the stored answer was wrong
    assert "card" in decision.point["answer_cuts"]  # at once, before the label is even written
    again = front.lookup(q)
    assert not again.hit and again.reason in ("answer cut", "explore")
    front.flush()
    assert decision.point["version"] >= 1 and decision.point["reason"] == "wrong explored hit"
    store.close()


def test_exploration_stays_within_its_budget(tmp_path, embeddings):
    store = kb_store(tmp_path / "s", embeddings)
    for rate in (0.0, 0.1):
        front = StoreFront(store, partition="kb", explore_rate=rate, seed=1,
                           decision_options={"cold_start": False, "explore_warmup": 0})
        for _ in range(400):
            front.lookup("How can I get my new card activated?")
        s = front.stats()
        explored = s["decision"]["kb"]["explored"]
        would_be = s["decision"]["kb"]["would_be_hits"]
        assert would_be == 400 and (explored == 0 if rate == 0 else 20 <= explored <= 62)  # Binomial(400, 0.1)
        assert s["explore_per_query"] == explored / 400
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


def _doubtful_store(tmp_path, embeddings):
    store = kb_store(tmp_path / "s", embeddings)
    question = "Is there a way to activate the card I just got?"
    front = StoreFront(store, partition="kb", verifier=STRICT, decision_options={"cold_start": False})
    found = front.lookup(question)
    assert not found.hit and found.candidates  # a near miss: the judge band's case
    return store, question


def test_the_judge_band_serves_what_the_judge_accepts_and_counts_it(tmp_path, embeddings):
    store, question = _doubtful_store(tmp_path, embeddings)
    yes = StoreFront(store, partition="kb", verifier=STRICT, judge=JudgeBand(SlowJudge("yes", 0.0), band=0.9),
                     decision_options={"cold_start": False})
    found = yes.lookup(question)
    assert found.hit and found.reason == "judge" and yes.stats()["judge_calls"] >= 1
    no = StoreFront(store, partition="kb", verifier=STRICT, judge=JudgeBand(SlowJudge("no", 0.0), band=0.9),
                    decision_options={"cold_start": False})
    assert not no.lookup(question).hit
    no.flush()
    assert store.labels.count(namespace="default", partition="kb") >= 2  # its verdicts are labels (source judge)
    store.close()


def test_when_the_chain_answers_first_the_judge_is_stopped(tmp_path, embeddings):
    from langchain_core.runnables import RunnableLambda

    from storinfer_langchain import StorInferChain

    store, question = _doubtful_store(tmp_path, embeddings)
    slow_yes = SlowJudge("yes", 5.0)
    fast = StorInferChain(RunnableLambda(lambda q: "the chain's answer"), store, partition="kb", speculative=True,
                          verifier=STRICT, judge=JudgeBand(slow_yes, band=0.9))
    t = time.perf_counter()
    answer, found = fast.invoke_with_lookup(question)
    assert answer == "the chain's answer" and not found.hit and time.perf_counter() - t < 3.0
    deadline = time.time() + 2
    while not slow_yes.stopped and time.time() < deadline:  # the judge sees the stop at its next step
        time.sleep(0.01)
    assert slow_yes.stopped and fast.stats()["judge"]["cancelled"] == 1


def test_when_the_judge_accepts_first_the_chain_is_cancelled(tmp_path, embeddings):
    from langchain_core.runnables import RunnableLambda

    from storinfer_langchain import StorInferChain

    store, question = _doubtful_store(tmp_path, embeddings)
    ran = threading.Event()

    def slow_chain(q):
        time.sleep(5)
        ran.set()
        return "the chain's answer"

    fast = StorInferChain(RunnableLambda(slow_chain), store, partition="kb", speculative=True,
                          verifier=STRICT, judge=JudgeBand(SlowJudge("yes", 0.05), band=0.9))
    t = time.perf_counter()
    answer, found = fast.invoke_with_lookup(question)
    assert found.hit and found.reason == "judge" and answer == "[card]" and time.perf_counter() - t < 3.0


def test_a_refit_that_dies_leaves_the_last_good_point(tmp_path, embeddings, monkeypatch):
    store = kb_store(tmp_path / "s", embeddings)
    front = StoreFront(store, partition="kb", decision_options={"cold_start": False, "refit_every": 10_000})
    decision = front.decision("kb")
    store.labels.add([Label("default", "kb", "question", 0.9, 0.9, True) for _ in range(400)])
    good = decision.refit_now()

    def dies(*args, **kwargs):
        raise RuntimeError("killed in the middle of the refit")

    store.labels.add([Label("default", "kb", "question", 0.5, 0.9, True) for _ in range(400)])
    monkeypatch.setattr(store.points, "put", dies)
    with pytest.raises(RuntimeError):
        decision.refit_now()
    assert decision.point == good and store.points.get("default", "kb")["version"] == good["version"]
    monkeypatch.undo()
    store.close()
    with QAStore(tmp_path / "s", embedding=embeddings) as reopened:  # what every client reads
        assert reopened.points.get("default", "kb") == good
