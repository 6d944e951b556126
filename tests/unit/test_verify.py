"""The hit verifier: its features, its rules and its decisions on hand-picked pairs from several domains
(banking, an assistant, factoid questions, answer-aware keys), with the shipped weights."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from storinfer.errors import ConfigError
from storinfer.match.bounds import clopper_pearson_upper
from storinfer.match.features import (
    FACT_FEATURES,
    QUESTION_FEATURES,
    Query,
    fact_features,
    margin,
    question_features,
    runner_up,
    same_answer_key,
)
from storinfer.match.lookalike import answer_mismatch
from storinfer.match.point import HeadPoint, OperatingPoint
from storinfer.match.verify import Verifier, asks_typed_answer, features, refusal_kind
from storinfer.records import Match, Reason

V = Verifier.default()
SENTENCE = "The Super Bowl 50 halftime show was headlined by the British rock group Coldplay."


def fact(key: str, sim: float, answer: str, label: str, sentence: str = SENTENCE, aid: str = "a") -> Match:
    """An answer-aware key as the store returns it."""
    return Match(aid + key, key, "stored answer", sim,
                 {"expected_answer": answer, "answer_label": label, "source_sentence": sentence, "answer_id": aid})


def test_shipped_weights_match_the_features():
    for head, names in ((V.question, QUESTION_FEATURES), (V.fact, FACT_FEATURES)):
        assert len(head.weights) == len(head.mean) == len(head.scale) == len(names) == len(head.features)
        assert 0.5 <= head.floor < 1.0 and 0.0 < head.cut < 1.0
    assert V.question.typed_floor is None or V.question.typed_floor >= V.question.floor


def test_question_features_are_pinned():
    f = dict(zip(QUESTION_FEATURES, features("How do I top up my card?", "How can I add money to my card?", 0.86, 0.71)))
    assert f["cosine"] == 0.86 and f["cosine_over_90"] == 0.0 and math.isclose(f["margin"], 0.15)
    assert f["only_query"] == 1.0 and f["only_candidate"] == 2.0  # top / add, money (card is shared)
    assert math.isclose(f["jaccard"], 1 / 4) and f["same_first_word"] == 1.0 and f["factoid"] == 0.0
    g = dict(zip(QUESTION_FEATURES, features("Who was Margaret's husband?", "Who was Margaret's brother?", 0.9, None)))
    assert g["one_word_swap"] == 1.0 and g["factoid"] == 1.0 and g["factoid_swap"] == 1.0 and g["margin"] == 0.2
    h = dict(zip(QUESTION_FEATURES, features("Who did the Broncos defeat?", "Who won the game?", 0.9, None,
                                             answer="The Denver Broncos")))
    assert h["answer_in_query"] == 0.5  # half the stored answer is in the question: it asks about something else


def test_fact_features_are_pinned():
    cands = [fact("Who headlined the Super Bowl 50 halftime show?", 0.99, "Coldplay", "FAC"),
             fact("What was headlined by Coldplay?", 0.80, "The Super Bowl 50 halftime show", "NP", aid="b")]
    f = dict(zip(FACT_FEATURES, fact_features(Query("Who headlined the halftime show of Super Bowl 50?"), cands, 0)))
    assert f["cosine"] == 0.99 and math.isclose(f["margin"], 0.19) and f["rank"] == 0.0
    assert f["answer_in_query"] == 0.0 and f["query_in_sentence"] == 1.0 and f["answer_not_in_sentence"] == 0.0
    assert f["answer_has_capital"] == 1.0 and f["type_person_x_2"] == 1.0  # a who-question, a FAC (place) answer
    assert sum(f[n] for n in FACT_FEATURES if n.startswith("type_")) == 1.0
    assert f["distance_min"] < f["distance_mean"] <= 1.0  # "headlined" sits next to the answer, "Super Bowl" further


def test_typed_questions():
    assert asks_typed_answer("When did Tesla die?") and asks_typed_answer("How many people live in Warsaw?")
    assert not asks_typed_answer("How do I cancel my transfer?") and not asks_typed_answer("Why was my card declined?")


@pytest.mark.parametrize(("query", "candidate", "sim", "runner", "answer", "kind"), [
    ("set an alarm for 7 am", "set an alarm for 8 am", 0.97, None, None, "rule:numbers"),              # assistant
    ("Which team did not win?", "Which team won?", 0.97, None, "x", "rule:negation"),                 # factoid
    ("Who won Super Bowl 49?", "Who won Super Bowl 50?", 0.99, None, "Denver", "rule:numbers"),
    ("When did Tesla die?", "When did Tesla die in Graz?", 0.99, None, "Nikola Tesla", "rule:names"),
    ("When did Tesla die?", "When did Nikola Tesla die?", 0.99, None, "Nikola Tesla", "rule:answer"),  # no date in it
    ("Who sold the rights?", "Who bought the rights?", 0.99, None, "x", "rule:one"),                  # a swapped word
    ("How many campuses does the University of California have?",
     "How many campuses does the California State University have?", 0.98, None, "12", "rule:names"),
    ("how do i cancel my transfer", "how do i make a transfer", 0.88, 0.80, None, "verifier"),        # banking look-alike
    ("what is the weather like today", "what time is it", 0.62, None, None, "floor"),
])
def test_refusals_say_why(query, candidate, sim, runner, answer, kind):
    verdict = V.check(query, candidate, sim, runner_up=runner, answer=answer)
    assert not verdict.ok and refusal_kind(verdict.reason) == kind, verdict


@pytest.mark.parametrize(("query", "key", "answer", "label", "sentence", "kind"), [
    ("Where was the game played?", "When was the game played at Levi's Stadium?", "February 7, 2016", "DATE",
     "The game was played on February 7, 2016, at Levi's Stadium.", "rule:answer"),           # a date for "where"
    ("Who designed the tower?", "Who designed the Eiffel Tower?", "1889", "DATE",
     "The Eiffel Tower was designed by Gustave Eiffel and completed in 1889.", "rule:answer"),
    ("When was the tower finished in 1890?", "When was the Eiffel Tower completed?", "1889", "DATE",
     "The Eiffel Tower was completed in 1889.", "rule:numbers"),                              # 1890 is not in the source
    ("Who defeated the Carolina Panthers?", "Who defeated the Carolina Panthers?", "the Carolina Panthers", "ORG",
     "The Broncos defeated the Carolina Panthers.", "rule:answer"),                           # the question names it
    ("When was the game played?", "What was played on February 7, 2016?", "The game", "NP",
     "The game was played on February 7, 2016.", "rule:answer"),                              # no date in the answer
])
def test_fact_refusals_say_why(query, key, answer, label, sentence, kind):
    pos, verdicts = V.choose(query, [fact(key, 0.99, answer, label, sentence)])
    assert pos is None and refusal_kind(verdicts[0].reason) == kind, verdicts


@pytest.mark.parametrize(("query", "candidate", "sim", "runner"), [
    ("what is the weather like today", "what is the weather forecast for today", 0.91, 0.6),   # assistant
    ("What is our refund policy?", "What's our refund policy?", 0.995, None),
    ("i want to cancel my transfer", "how do i cancel a transfer i made", 0.90, 0.70),       # banking
])
def test_clear_paraphrases_pass(query, candidate, sim, runner):
    verdict = V.check(query, candidate, sim, runner_up=runner)
    assert verdict.ok and verdict.score >= V.question.cut, verdict


@pytest.mark.parametrize(("query", "key", "answer", "label", "sentence"), [
    ("Who headlined the Super Bowl 50 halftime show?", "Who headlined the Super Bowl 50 halftime show?", "Coldplay", "FAC",
     SENTENCE),
    ("When was the game played?", "When was the game played at Levi's Stadium?", "February 7, 2016", "DATE",
     "The game was played on February 7, 2016, at Levi's Stadium."),
    ("How many people live in Warsaw?", "How many people live in Warsaw?", "1.7 million", "CARDINAL",
     "About 1.7 million people live in Warsaw."),
])
def test_answer_aware_keys_that_ask_the_same_pass(query, key, answer, label, sentence):
    pos, verdicts = V.choose(query, [fact(key, 0.99, answer, label, sentence)])
    assert pos == 0 and verdicts[0].score >= V.fact.cut, verdicts


def test_the_best_scoring_candidate_wins_not_the_nearest():
    q = "Who headlined the Super Bowl 50 halftime show?"
    cands = [fact("When was the Super Bowl 50 halftime show headlined?", 0.995, "2016", "DATE", aid="b"),
             fact(q, 0.99, "Coldplay", "FAC")]
    pos, verdicts = V.choose(q, cands)
    assert pos == 1 and not verdicts[0].ok and refusal_kind(verdicts[0].reason) == "rule:answer"  # a date for "who"


def test_a_closer_neighbour_with_another_answer_lowers_the_score():
    def score(runner):
        x = features("what is the weather like today", "what is the weather forecast for today", 0.91, runner)
        return V.question.score(x)
    assert score(0.93) < score(None)


def test_runner_up_skips_candidates_with_the_same_answer():
    def m(answer: str, sim: float, aid: str = "") -> Match:
        return Match(f"{answer}{sim}", "a stored question", answer, sim, {"answer_id": aid} if aid else {})

    cands = [m("A", 0.95), m("A", 0.94), m("B", 0.90)]
    assert runner_up(cands, 0) == 0.90 and runner_up(cands, 2) == 0.95 and runner_up(cands[:1], 0) is None
    assert math.isclose(margin(cands, 0), 0.05) and margin(cands[:2], 0) == 0.2
    # Two stored answers (two answer_ids) with the same words: two answers to the verifier's features,
    # one to the learner's rows (the user would read the same thing).
    twins = [m("The Denver Broncos.", 0.95, aid="x"), m("Denver Broncos", 0.93, aid="y"), m("Carolina", 0.80)]
    assert runner_up(twins, 0) == 0.93 and runner_up(twins, 0, same_answer_key) == 0.80
    assert math.isclose(margin(twins, 0, same_answer_key), 0.15)


def test_margin_is_between_answers_not_keys():
    # two keys of one answer do not compete: the margin is to the best key of another answer
    cands = [fact("Who headlined the show?", 0.95, "Coldplay", "FAC"), fact("Who was the headliner?", 0.94, "Coldplay", "FAC"),
             fact("Who sang the anthem?", 0.80, "Lady Gaga", "PERSON", aid="b")]
    f = dict(zip(FACT_FEATURES, fact_features(Query("Who headlined the halftime show?"), cands, 0)))
    assert math.isclose(f["margin"], 0.15) and math.isclose(f["answer_cosines"], 1.89)
    q = dict(zip(QUESTION_FEATURES, question_features(Query("Who headlined the halftime show?"), cands, 0)))
    assert math.isclose(q["margin"], 0.15)


def test_answer_type_rule():
    assert answer_mismatch("When was the game played?", "at Levi's Stadium") is not None
    assert answer_mismatch("When was the game played?", "On February 7, 2016.") is None
    assert answer_mismatch("How many teams played?", "two teams") is None
    assert answer_mismatch("Who won?", "the Broncos") is None and answer_mismatch("When?", None) is None


def test_operating_points():
    v = V.with_operating_point(floor=0.9, cut=0.5)
    assert (v.question.floor, v.question.cut, v.fact.floor, v.fact.cut) == (0.9, 0.5, 0.9, 0.5)
    assert v.question.weights == V.question.weights
    only_fact = V.with_operating_point(cut=0.99, head="fact")
    assert only_fact.fact.cut == 0.99 and only_fact.question == V.question
    point = OperatingPoint.from_dict({"question": {"floor": 0.85, "cut": 0.97}, "fact": {"floor": 0.92, "cut": 0.93}}, V.point)
    recorded = V.at(point)
    assert (recorded.question.floor, recorded.fact.cut) == (0.85, 0.93) and recorded.point == point
    only_question = OperatingPoint.from_dict({"question": {"floor": 0.85, "cut": 0.97}}, V.point)
    assert V.at(only_question).fact == V.fact and only_question.head("runtime") == HeadPoint(0.85, 0.97, 0.938)
    assert V.question.typed_floor == 0.938  # a recorded point without a typed floor keeps the shipped one


def test_a_near_repeat_of_traffic_is_served_whatever_its_score_unless_a_rule_refuses_it():
    strict = V.with_operating_point(cut=1.0)  # no score here clears this cut
    asked = "How do I activate my new card?"

    def key(origin: str, sim: float, question: str = "How can I activate my new card?") -> list[Match]:
        return [Match("k", question, "[card activation]", sim, {"origin": origin, "question": question})]

    assert strict.repeat_floor == V.repeat_floor == 0.95 and strict.point.repeat_floor == 0.95
    assert strict.choose(asked, key("runtime", 0.96))[0] == 0  # an answer stored from traffic, asked again
    assert strict.choose(asked, key("runtime", 0.96))[1][0].reason == Reason.NEAR_REPEAT  # and says why
    assert V.with_operating_point(cut=0.0).choose(asked, key("runtime", 0.96))[1][0].reason == ""  # its score suffices
    assert strict.choose(asked, key("precomputed", 0.96))[0] is None  # a stored question: the cut holds
    assert strict.choose(asked, key("runtime", 0.94))[0] is None  # under the repeat floor: the cut holds
    assert strict.with_operating_point(floor=0.98).choose(asked, key("runtime", 0.97))[0] is None  # a higher floor holds
    no_repeats = replace(strict, repeat_floor=None)
    assert no_repeats.choose(asked, key("runtime", 0.99))[0] is None and no_repeats.point.repeat_floor is None
    refused = strict.choose("How do I activate 2 cards?", key("runtime", 0.97, "How do I activate 3 cards?"))
    assert refused[0] is None and refused[1][0].reason.startswith("rule:")  # rules still refuse it
    assert OperatingPoint.from_dict({"repeat_floor": 0.97}, V.point).repeat_floor == 0.97
    assert OperatingPoint.from_dict({}, V.point).repeat_floor == 0.95  # a point recorded without one keeps it
    assert OperatingPoint.from_dict(V.point.to_dict(), V.point) == V.point
    assert V.at(OperatingPoint.from_dict({"repeat_floor": None}, V.point)).repeat_floor is None
    with pytest.raises(ConfigError, match="repeat_floor must be in"):
        replace(V, repeat_floor=1.5)
    with pytest.raises(ConfigError, match="repeat_floor must be a number"):
        OperatingPoint.from_dict({"repeat_floor": "high"}, V.point)


def test_refusal_kinds():
    assert refusal_kind("rule: numbers differ: 7 / 8") == "rule:numbers"
    assert refusal_kind("verifier score 0.84 below cut 0.97") == "verifier"
    assert refusal_kind("cosine 0.812 below floor 0.83") == "floor"


def test_clopper_pearson_upper_bound():
    assert math.isclose(clopper_pearson_upper(0, 10), 1 - 0.05 ** (1 / 10), rel_tol=1e-6)
    assert 0.0099 < clopper_pearson_upper(0, 298) < 0.0101  # the "rule of three": 3/n
    assert clopper_pearson_upper(1, 100) > 0.01 and clopper_pearson_upper(0, 0) == 1.0
