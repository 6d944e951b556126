"""The hit verifier: its features, its rules and its decisions on hand-picked pairs from several domains."""

from __future__ import annotations

import math

import pytest

from storinfer.lookalike import answer_mismatch
from storinfer.verify import FEATURES, Verifier, asks_typed_answer, clopper_pearson_upper, features, refusal_kind, runner_up

V = Verifier.default()


def test_shipped_weights_match_the_features():
    assert len(V.weights) == len(V.mean) == len(V.scale) == len(FEATURES)
    assert 0.5 <= V.floor < V.factoid_floor <= 1.0 and 0.0 < V.cut < 1.0


def test_features_are_pinned():
    f = dict(zip(FEATURES, features("How do I top up my card?", "How can I add money to my card?", 0.86, 0.71)))
    assert f["cosine"] == 0.86 and f["cosine_over_90"] == 0.0 and math.isclose(f["margin"], 0.15)
    assert f["only_query"] == 1.0 and f["only_candidate"] == 2.0  # top / add, money (card is shared)
    assert math.isclose(f["jaccard"], 1 / 4) and f["same_first_word"] == 1.0 and f["factoid"] == 0.0
    g = dict(zip(FEATURES, features("Who was Margaret's husband?", "Who was Margaret's brother?", 0.9, None)))
    assert g["one_word_swap"] == 1.0 and g["factoid"] == 1.0 and g["factoid_swap"] == 1.0 and g["margin"] == 0.2


def test_typed_questions():
    assert asks_typed_answer("When did Tesla die?") and asks_typed_answer("How many people live in Warsaw?")
    assert not asks_typed_answer("How do I cancel my transfer?") and not asks_typed_answer("Why was my card declined?")


@pytest.mark.parametrize(("query", "candidate", "sim", "runner", "answer", "kind"), [
    ("set an alarm for 7 am", "set an alarm for 8 am", 0.97, None, None, "rule:numbers"),             # assistant
    ("Which team did not win?", "Which team won?", 0.93, None, "x", "rule:negation"),                # factoid
    ("Who won Super Bowl 49?", "Who won Super Bowl 50?", 0.99, None, "Denver", "rule:numbers"),
    ("When did Tesla die?", "What year did Tesla die?", 0.97, None, "Nikola Tesla", "rule:answer"),  # answer has no date
    ("Who was Margaret's husband?", "Who was Margaret's brother?", 0.90, None, "Edgar", "floor"),    # typed: floor 0.95
    ("how do i cancel my transfer", "how do i make a transfer", 0.88, 0.80, None, "verifier"),       # banking look-alike
    ("what is the weather like today", "what time is it", 0.62, None, None, "floor"),
])
def test_refusals_say_why(query, candidate, sim, runner, answer, kind):
    verdict = V.check(query, candidate, sim, runner_up=runner, answer=answer)
    assert not verdict.ok and refusal_kind(verdict.reason) == kind, verdict


@pytest.mark.parametrize(("query", "candidate", "sim", "runner"), [
    ("what is the weather like today", "what is the weather forecast for today", 0.91, 0.6),
    ("What is our refund policy?", "What's our refund policy?", 0.995, None),
])
def test_clear_paraphrases_pass(query, candidate, sim, runner):
    verdict = V.check(query, candidate, sim, runner_up=runner)
    assert verdict.ok and verdict.score >= V.cut


def test_a_closer_neighbour_with_another_answer_lowers_the_score():
    alone = V.score_features(features("what is the weather like today", "what is the weather forecast for today", 0.91, None))
    crowded = V.score_features(features("what is the weather like today", "what is the weather forecast for today", 0.91, 0.93))
    assert crowded < alone


def test_runner_up_skips_candidates_with_the_same_answer():
    cands = [("A", 0.95), ("A", 0.94), ("B", 0.90)]
    assert runner_up(cands, 0) == 0.90 and runner_up(cands, 2) == 0.95 and runner_up([("A", 0.9)], 0) is None


def test_answer_type_rule():
    assert answer_mismatch("When was the game played?", "at Levi's Stadium") is not None
    assert answer_mismatch("When was the game played?", "On February 7, 2016.") is None
    assert answer_mismatch("How many teams played?", "two teams") is None
    assert answer_mismatch("Who won?", "the Broncos") is None and answer_mismatch("When?", None) is None


def test_operating_point_override():
    v = V.with_operating_point(floor=0.9, cut=0.5)
    assert (v.floor, v.factoid_floor, v.cut) == (0.9, 0.9, 0.5) and v.weights == V.weights


def test_clopper_pearson_upper_bound():
    assert math.isclose(clopper_pearson_upper(0, 10), 1 - 0.05 ** (1 / 10), rel_tol=1e-6)
    assert 0.0099 < clopper_pearson_upper(0, 298) < 0.0101  # the "rule of three": 3/n
    assert clopper_pearson_upper(1, 100) > 0.01 and clopper_pearson_upper(0, 0) == 1.0
