"""The learner's logic on scripted streams (no model, no Chroma): the cuts' statistics, the promise
(do no harm, a stricter bound serves less), exploration, answer cuts and their races."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from storinfer import Learner, Match, Reason
from storinfer.match.bounds import clopper_pearson_upper
from storinfer.match.features import Query, same_answer_key
from storinfer.match.lookup import Candidates
from storinfer.match.point import HeadPoint, OperatingPoint
from storinfer.match.verify import Verdict
from storinfer.serve.evidence import CLOSED, Case, Evidence, LearntState, choose, clearance, close_cut, open_cut, scaled
from storinfer.serve.learner import UNEXPLORED, PartitionLearner
from storinfer.serve.worker import InlineWorker
from storinfer.store.memory import MemoryStore

POINT = OperatingPoint(HeadPoint(0.80, 0.90), HeadPoint(0.80, 0.90))


# --- a policy and a judge that are scripts (the store and worker: storinfer.store.memory, InlineWorker) ---
class Judge:
    def same(self, answer: str, stored: str) -> bool:
        return answer == stored


class Policy:
    """Scores each candidate with the number in its question ("q 0.93" scores 0.93)."""

    k = 8
    llm_check = None
    point = POINT

    def assess(self, query, candidates):
        return [Verdict(True, float(c.question.split()[1]), "", "question") for c in candidates]


def learner(store: MemoryStore | None = None, **options) -> PartitionLearner:
    config = Learner(answer_judge=Judge(), seed=0, **options)
    return PartitionLearner(config, store or MemoryStore(), "default", "p", config.point_for(Policy()), InlineWorker())


def lookup(pl: PartitionLearner, score: float, cosine: float = 0.9, answer: str = "Paris", audit: bool = False) -> object:
    """One lookup; ``audit=False`` (a face that cannot run the chain after serving): checks are misses."""
    cand = Match(f"id{score}", f"q {score}", answer, cosine, {})
    return pl.decide(Query("how do I do it"), Candidates("how do I do it", [0.0], [cand]), Policy(), audit=audit)


def ev(score: float, right: bool, *, cosine: float = 0.9, explored: bool = False, answer: str = "") -> Evidence:
    return Evidence(Case("question", score, cosine), right, explored, answer)


# --- the statistics -----------------------------------------------------------------------------
def test_a_clearance_is_how_far_a_case_clears_the_point():
    assert clearance(POINT, Case("question", 0.95, 0.90)) == pytest.approx(0.05)  # score 0.05 over the cut
    assert clearance(POINT, Case("question", 0.99, 0.82)) == pytest.approx(0.02)  # cosine 0.02 over the floor
    assert clearance(POINT, Case("question", 0.85, 0.95)) == pytest.approx(-0.05)  # outside: 0.05 under the cut


def test_beyond_the_point_opens_only_as_far_as_the_labels_upper_bound_is_within_the_rate():
    assert open_cut([], 0.01, 0.8) == (0.0, 0, 0)
    right = [(-0.01 - i * 1e-4, True) for i in range(300)]  # 300 right answers at margins -0.01 .. -0.04
    cut, n, wrong = open_cut(right, 0.01, 0.8)
    assert cut == pytest.approx(right[-1][0]) and (n, wrong) == (300, 0)
    # the fewest labels whose 80% upper bound is within 1% (0 wrong): opens exactly there
    need = next(n for n in range(1, 400) if clopper_pearson_upper(0, n, 0.8) <= 0.01)
    assert open_cut(right[:need], 0.01, 0.8)[1] == need and open_cut(right[: need - 1], 0.01, 0.8)[0] == 0.0
    # a run of wrong answers below them is not carried by the good region above it
    bad = [(-0.1 - i * 1e-4, False) for i in range(20)]
    assert open_cut(right + bad, 0.01, 0.8)[0] == pytest.approx(right[-1][0])
    one_bad = [(-0.1, False)]  # one wrong answer: pooled 1 in 301 is within 1%, but its own band (1 of 1) is not
    assert open_cut(right + one_bad, 0.01, 0.8)[0] == pytest.approx(right[-1][0])


def test_a_band_no_recent_lookup_reached_is_not_free_to_open():
    # one right label a hair above its lookup's clearance (its score and cosine rounded); 500 lookups
    # inside a point expected wrong 1% of the time: no budget is left, so beyond it needs an upper bound
    # within 1%, which one label (0.8) is not
    inside = [0.05] * 500
    assert open_cut([(-0.07897, True)], 0.01, 0.8, traffic=[*inside, -0.078974], point_wrong=0.01 * 500) == (0.0, 0, 0)
    # 300 right labels there are (upper bound 0.54%)
    right = [(-0.07897, True)] * 300
    assert open_cut(right, 0.01, 0.8, traffic=[*inside, -0.078974], point_wrong=0.01 * 500)[0] == pytest.approx(-0.07897)


def test_inside_closes_only_on_evidence_and_only_as_far_as_it_reaches():
    assert close_cut([], 0.01, 0.95) == (0.0, 0, 0)
    one = [(0.05, True)] * 30 + [(0.02, False)]  # one wrong answer: its answer cut's business, not the band's
    assert close_cut(one, 0.01, 0.95)[0] == 0.0
    fine = [(0.01 + i * 3e-4, True) for i in range(300)] + [(0.03, False), (0.06, False)]  # 2 wrong in 302, spread
    assert close_cut(fine, 0.01, 0.95)[0] == 0.0
    low = [(0.05, True)] * 300 + [(0.02, False), (0.025, False)]  # the two wrong ones are all there is below 0.05
    assert close_cut(low, 0.01, 0.95)[0] == pytest.approx(0.05)
    assert close_cut([(0.05, False)] * 5, 0.01, 0.95)[0] == CLOSED
    # one right label above a band shown wrong: nothing shows the wrong answers are only in that band
    assert close_cut([(0.06, True)] + [(0.02, False)] * 2 + [(0.01, True)] * 8, 0.01, 0.95) == (CLOSED, 0, 0)
    assert close_cut([(0.06, True)] * 300 + [(0.02, False)] * 2 + [(0.01, True)] * 8, 0.01, 0.95)[0] == pytest.approx(0.06)
    # 50 right above it: not shown better, but together (2 wrong in 60) not shown over the bound either
    assert close_cut([(0.06, True)] * 50 + [(0.02, False)] * 2 + [(0.01, True)] * 8, 0.01, 0.95)[0] == pytest.approx(0.06)


def test_a_wrong_label_far_below_the_point_cannot_shrink_it():
    inside_right = [ev(0.95, True, explored=True)] * 5
    far_wrong = [ev(0.30, False, cosine=0.6)] * 50  # outside the point: these are other questions
    state = choose(inside_right + far_wrong, POINT, max_wrong_rate=0.01, open_confidence=0.8, close_confidence=0.95)
    assert state.heads["question"].cut == 0.0


def test_answer_cuts_come_from_explored_answers_found_wrong_and_are_rebuilt_from_labels():
    labels = [ev(0.93, False, explored=True, answer="a"), ev(0.97, False, explored=True, answer="a"),
              ev(0.95, False, answer="b")]  # a miss found wrong says nothing about serving "b" higher up
    state = choose(labels, POINT, max_wrong_rate=0.01, open_confidence=0.8, close_confidence=0.95)
    assert state.answer_cuts == {"a": pytest.approx(0.971)}
    assert LearntState.from_dict(state.to_dict()).answer_cuts == state.answer_cuts


def test_a_stricter_bound_shrinks_the_point_and_a_looser_one_keeps_it():
    strict = scaled(POINT, 0.001, 0.01)
    assert strict.question.cut == pytest.approx(0.99) and strict.question.floor == POINT.question.floor
    assert scaled(POINT, 0.05, 0.01) == POINT
    repeats = scaled(replace(POINT, repeat_floor=0.95), 0.001, 0.01)
    assert repeats.repeat_floor == pytest.approx(0.995)  # near-repeats must be nearer


def test_a_near_repeat_of_traffic_is_inside_the_point_whatever_its_score():
    point = replace(POINT, repeat_floor=0.95)
    assert clearance(point, Case("runtime", 0.10, 0.96)) == 0.0  # inside, at the point's edge
    assert clearance(point, Case("runtime", 0.99, 0.97)) == pytest.approx(0.09)  # clears it further on its own
    assert clearance(point, Case("runtime", 0.10, 0.94)) == pytest.approx(-0.80)  # under the repeat floor
    assert clearance(point, Case("question", 0.10, 0.96)) == pytest.approx(-0.80)  # stored questions: never
    assert clearance(POINT, Case("runtime", 0.10, 0.96)) == pytest.approx(-0.80)  # no repeat floor
    higher = replace(point, question=HeadPoint(0.98, 0.90))  # a floor above the repeat floor holds
    assert clearance(higher, Case("runtime", 0.10, 0.97)) == pytest.approx(-0.80)


def test_a_hit_served_only_because_the_repeat_floor_lifted_it_says_so():
    class Repeats(Policy):
        point = replace(POINT, repeat_floor=0.95)

    config = Learner(answer_judge=Judge(), seed=0)
    pl = PartitionLearner(config, MemoryStore(), "default", "p", config.point_for(Repeats()), InlineWorker())

    def ask(score: float, cosine: float, origin: str = "runtime") -> object:
        cand = Match(f"id{score}", f"q {score}", "Paris", cosine, {"origin": origin})
        return pl.decide(Query("how do I do it"), Candidates("how do I do it", [0.0], [cand]), Repeats())

    assert ask(0.10, 0.96).reason is Reason.NEAR_REPEAT  # below the cut: the repeat floor alone serves it
    assert ask(0.95, 0.96).reason is Reason.SIMILAR  # it clears the cut on its own
    assert not ask(0.10, 0.96, origin="precomputed").hit  # a stored question needs its score


# --- the learner --------------------------------------------------------------------------------
def test_the_point_serves_from_the_first_request_and_the_first_hits_are_never_explored():
    pl = learner(explore_share=0.25)
    found = [lookup(pl, 0.95) for _ in range(UNEXPLORED)]
    assert all(f.reason is Reason.SIMILAR for f in found)
    later = [lookup(pl, 0.95).reason for _ in range(400)]
    assert 60 < later.count(Reason.EXPLORE) < 140  # a quarter of the later ones, as asked
    assert pl.counts["explored"] == later.count(Reason.EXPLORE)


def test_where_the_caller_can_run_the_chain_after_serving_checked_hits_are_served_and_labelled():
    pl = learner(audit_share=0.25, explore_share=0.25)
    assert not any(lookup(pl, 0.95, audit=True).audit for _ in range(UNEXPLORED))
    found = [lookup(pl, 0.95, audit=True) for _ in range(400)]
    assert all(f.hit for f in found)  # an audit never costs a hit
    audited = [f for f in found if f.audit]
    assert 60 < len(audited) < 140 and pl.counts["audited"] == len(audited) and pl.counts["explored"] == 0
    label = pl.learn("how do I do it", audited[0], "Lyon")  # the chain's answer differs: the served one was wrong
    assert label is not None and label.source == "explore" and not label.right
    assert pl.answer_cut(same_answer_key(audited[0].match)) > 0.95  # cut at once
    assert lookup(pl, 0.95, audit=True).reason is Reason.ANSWER_CUT
    assert pl.learn("how do I do it", next(f for f in found if not f.audit), "Lyon") is None  # no audit: no label


def test_a_strict_bound_serves_less_from_the_first_request():
    assert lookup(learner(), 0.95).hit
    strict = learner(max_wrong_rate=0.001)
    assert not lookup(strict, 0.95).hit and lookup(strict, 0.995).hit


def test_misses_beyond_the_point_open_it_and_wrong_explored_hits_close_it_again():
    pl = learner(explore_share=0.0)
    for _ in range(400):  # below the point's cut, and always right
        found = lookup(pl, 0.85)
        assert found.reason is Reason.BELOW_THRESHOLD or found.hit
        if not found.hit:
            pl.learn("how do I do it", found, "Paris")
    assert lookup(pl, 0.85).hit and pl.state.heads["question"].cut == pytest.approx(-0.05)
    assert not lookup(pl, 0.84).hit  # never seen: still closed


class Queued(InlineWorker):
    """Keeps tasks until run() (the real worker runs them on its thread, one after another)."""

    def __init__(self) -> None:
        self.tasks: list = []

    def submit(self, task) -> None:
        self.tasks.append(task)

    def run(self) -> None:
        while self.tasks:
            self.tasks.pop(0)()


def test_an_explored_answer_found_wrong_is_cut_at_once_even_while_a_refit_runs():
    store = MemoryStore()
    pl = learner(store, explore_share=0.25)
    pl.worker = worker = Queued()
    explored = next(f for f in (lookup(pl, 0.95) for _ in range(100)) if f.reason is Reason.EXPLORE)
    gate, started = threading.Event(), threading.Event()
    read = store.labels.records

    def records(**kw):  # a refit that read its labels before the wrong one was written, and is slow
        rows = read(**kw)
        started.set()
        gate.wait(5)
        return rows

    store.labels.records = records
    refit = threading.Thread(target=pl.refit)
    refit.start()
    started.wait(5)
    pl.learn("how do I do it", explored, "Lyon")  # wrong: "Paris" is cut now, whatever that refit publishes
    gate.set()
    refit.join(5)
    assert pl.state.version == 1 and not pl.state.answer_cuts  # the refit knew nothing of it...
    assert lookup(pl, 0.95).reason is Reason.ANSWER_CUT  # ...and the cut stands
    store.labels.records = read
    worker.run()  # the label is written; the refit it triggers rebuilds the cut from the labels
    assert pl.state.answer_cuts == {same_answer_key(explored.explored): pytest.approx(0.951)}
    assert lookup(pl, 0.95).reason is Reason.ANSWER_CUT


def test_two_clients_publishing_one_version_keep_the_first_and_the_second_takes_it():
    store = MemoryStore()
    a, b = learner(store), learner(store)
    first = a.refit()
    second = b.refit()
    assert first.version == second.version == 1
    assert b.counts["lost_publish"] == 1 and store.states.latest("default", "p")["writer"] == a._token
    assert b.state.to_dict() == LearntState.from_dict(store.states.latest("default", "p")).to_dict()


def test_labels_written_by_an_older_storinfer_are_read_without_their_old_fields(tmp_path):
    from storinfer import QAStore

    with QAStore(tmp_path / "s", embedding=_Constant()) as store:
        store.labels.collection.add(ids=["old"], embeddings=[[1.0]], metadatas=[{
            "namespace": "default", "partition": "p", "head": "question", "score": 0.9, "cosine": 0.9, "right": 1,
            "source": "miss", "probability": 1.0, "answer": "a", "rules_ok": 1, "typed": 0, "features": "[1]",
            "risk": 0.1, "created_at": time.time()}])
        store.labels.collection.add(ids=["check"], embeddings=[[1.0]], metadatas=[{
            "namespace": "default", "partition": "p", "head": "question", "score": 0.9, "cosine": 0.9, "right": 1,
            "source": "llm check", "created_at": time.time()}])
        (label,) = store.labels.records(namespace="default", partition="p")
        assert (label.id, label.answer, label.right) == ("old", "a", True)


class _Constant:
    def embed_documents(self, texts):
        return [[1.0, 0.0] for _ in texts]

    def embed_query(self, text):
        return [1.0, 0.0]


def test_labels_queued_while_the_worker_is_busy_are_written_together():
    """A write per label could not keep up with a busy stream (the refits then read ever older labels):
    whatever queued while a write waited goes in the next one."""
    store = MemoryStore()
    pl = learner(store, explore_share=0.0)
    pl.worker = worker = Queued()
    adds = []
    add = store.labels.add
    store.labels.add = lambda labels: adds.append(len(list(labels))) or add(labels)
    for _ in range(30):
        pl.learn("how do I do it", lookup(pl, 0.85), "Paris")
    assert len(worker.tasks) == 1  # one write waits, however many labels queue behind it
    worker.run()
    assert adds == [30] and pl.counts["labels"] == 30 and len(store.labels.records(namespace="default", partition="p")) == 30
    assert pl.state.version == 1  # 30 labels are past the first refit's 10
    pl.learn("how do I do it", lookup(pl, 0.85), "Paris")
    worker.run()
    assert adds == [30, 1]
