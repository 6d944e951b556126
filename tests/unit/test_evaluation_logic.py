"""How the SQuAD benchmark (benchmarks/squad_bench.py) judges hits and sweeps thresholds (pure logic, no models)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from squad_bench import Judge, sweep  # noqa: E402

from storinfer.evaluate.squad import SquadQuestion, best_f1, exact_match, normalize_answer  # noqa: E402
from storinfer.match.calibrate import served_candidate  # noqa: E402
from storinfer.records import Match  # noqa: E402

PARAS = {"p0": "The Denver Broncos defeated the Carolina Panthers 24-10 at Levi's Stadium.",
         "p1": "Coldplay headlined the halftime show with Beyonce and Bruno Mars."}
Q_WON = SquadQuestion("q1", "Who won Super Bowl 50?", ("Denver Broncos",), 0)
Q_SHOW = SquadQuestion("q2", "Who headlined the halftime show?", ("Coldplay",), 1)
judge = Judge(paragraphs=PARAS, gold_by_question={"who lost super bowl 50": ("Carolina Panthers",)})


def match(q, a, sim, origin="precomputed", doc="p0", expected=None):
    meta = {"origin": origin, "doc_id": doc, **({"expected_answer": expected} if expected else {})}
    return Match(id=q, question=q, answer=a, similarity=sim, metadata=meta)


def test_squad_scoring():
    assert normalize_answer("The Denver Broncos!") == "denver broncos"
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert best_f1("Broncos", ("Denver Broncos",)) == 2 / 3


def test_clearly_worse_answer_is_wrong():
    wrong, why = judge.wrong(Q_WON, match("Who won the game?", "Carolina", 0.96), plain_f1=1.0)
    assert wrong and "F1" in why
    # the stored answer scores as badly as the plain chain's, but its expected answer is the gold one
    ok = match("Who won the game?", "The Broncos, I think", 0.96, expected="the Denver Broncos")
    assert not judge.wrong(Q_WON, ok, plain_f1=0.2)[0]


def test_cached_human_question_with_other_gold_asks_something_else():
    m = match("Who lost Super Bowl 50?", "The Denver Broncos", 0.96, origin="runtime")
    assert judge.wrong(Q_WON, m, plain_f1=0.0) == (True, "matched question asks something else")


def test_the_strict_judge_asks_for_the_same_fact_not_the_same_paragraph():
    # from the paragraph holding the gold answer, but asking about another fact of it: wrong
    other_fact = match("Who lost the game?", "The Denver Broncos", 0.96, doc="p0", expected="the Carolina Panthers")
    assert judge.wrong(Q_WON, other_fact, plain_f1=0.0) == (True, "matched question asks something else")
    # the same fact: right, whatever the paragraph id
    same_fact = match("Which team won the game?", "Denver Broncos", 0.96, doc="p9", expected="The Denver Broncos")
    assert not judge.wrong(Q_WON, same_fact, plain_f1=1.0)[0]
    # a free-generated pair (no expected answer) is judged by its stored answer; containment counts
    assert not judge.wrong(Q_WON, match("Which team won?", "the Denver Broncos won 24-10", 0.96), plain_f1=0.0)[0]
    assert judge.wrong(Q_WON, match("Which team won?", "Coldplay", 0.96), plain_f1=0.0)[0]


def test_served_candidate_follows_threshold_and_guard():
    cands = [match("Who won Super Bowl 49?", "x", 0.98), match("Who was the winner of Super Bowl 50?", "y", 0.96)]
    assert served_candidate("Who won Super Bowl 50?", cands, 0.95, guard=True).answer == "y"
    assert served_candidate("Who won Super Bowl 50?", cands, 0.95, guard=False).answer == "x"
    assert served_candidate("Who won Super Bowl 50?", cands, 0.97, guard=True) is None


def test_sweep_counts_hits_and_wrong_hits():
    candidates = {"q1": [match("Who won Super Bowl 49?", "Patriots", 0.98), match("Which team won Super Bowl 50?", "Denver Broncos", 0.95)],
                  "q2": [match("Who headlined the halftime show in 2016?", "Coldplay", 0.9, doc="p1")]}
    rows = sweep([Q_WON, Q_SHOW], candidates, {"q1": 1.0, "q2": 1.0}, judge, [0.9, 0.96])
    low, high = rows
    assert (low["guard_hits"], low["guard_wrong"]) == (1, 0)  # q1 -> Broncos pair; q2 blocked: numbers differ
    assert (low["no_guard_hits"], low["no_guard_wrong"]) == (2, 1)  # q1 -> the 49 look-alike
    assert (high["guard_hits"], high["no_guard_hits"], high["no_guard_wrong"]) == (0, 1, 1)
    assert low["guard_hit_rate"] == 0.5 and low["no_guard_wrong_rate"] == 0.5
