"""The serve decision's statistics: the bounds, the answer judge, and the refit's rules."""

import random

import pytest

from storinfer.match.bounds import clopper_pearson_upper, max_errors_within
from storinfer.match.judge import TextJudge
from storinfer.match.refit import SERVE_NOTHING, fit_head
from storinfer.records import Label

PRIOR = {"floor": 0.825, "cut": 0.96}


def labels(n, *, score, cosine=0.9, wrong=0, source="miss", probability=1.0, seed=0):
    rng = random.Random(seed)
    lo, hi = score
    out = [Label("default", "p", "question", round(rng.uniform(lo, hi), 4), cosine, True, source=source,
                 probability=probability) for _ in range(n)]
    for lb in rng.sample(out, wrong):
        lb.right = False
    return out


def test_the_bound_is_clopper_pearson():
    assert clopper_pearson_upper(0, 299) == pytest.approx(0.00997, abs=1e-4)
    assert clopper_pearson_upper(1, 50) == pytest.approx(0.0914, abs=1e-4)
    assert max_errors_within(298, 0.01) == -1 and max_errors_within(299, 0.01) == 0 and max_errors_within(1000, 0.01) == 4
    for n in (300, 1000, 5000):
        e = max_errors_within(n, 0.01)
        assert clopper_pearson_upper(e, n) <= 0.01 < clopper_pearson_upper(e + 1, n)


def test_the_judge_calls_two_answers_the_same_only_when_they_are():
    j = TextJudge()
    assert j.same("Denver Broncos", "The Denver Broncos won Super Bowl 50.")
    assert j.same("[answer for card_arrival]", "[answer for card_arrival]")
    assert not j.same("1990", "1991") and not j.same("24-10", "24-17")
    assert not j.same("Peyton Manning", "Eli Manning") and not j.same("Broncos", "Panthers")
    assert not j.same("", "anything")


def test_no_labels_keep_the_prior():
    fit = fit_head([], "question", PRIOR, max_wrong_rate=0.01)
    assert (fit.floor, fit.cut) == (0.825, 0.96) and not fit.widened and not fit.tightened


def test_it_widens_only_where_the_labels_support_it_under_the_bound():
    few = labels(200, score=(0.85, 0.96))  # clean, but 200 labels cannot show <= 1% at 95%
    assert fit_head(few, "question", PRIOR, max_wrong_rate=0.01).cut == 0.96
    many = labels(400, score=(0.85, 0.96))
    fit = fit_head(many, "question", PRIOR, max_wrong_rate=0.01)
    assert fit.widened and fit.cut < 0.96 and fit.upper <= 0.01
    noisy = labels(400, score=(0.85, 0.96), wrong=40)  # 10% wrong below the cut: no wider point holds
    assert fit_head(noisy, "question", PRIOR, max_wrong_rate=0.01).cut == 0.96
    # wrong ones only low: it widens down to them, not past them
    mixed = labels(400, score=(0.90, 0.96)) + labels(100, score=(0.80, 0.85), wrong=30, seed=1)
    fit = fit_head(mixed, "question", PRIOR, max_wrong_rate=0.01)
    assert fit.widened and 0.85 <= fit.cut <= 0.90


def test_explored_hits_count_for_the_traffic_they_stand_for_not_for_the_bound():
    explored = labels(30, score=(0.96, 1.0), source="explore", probability=0.05)
    band = labels(300, score=(0.90, 0.96))
    fit = fit_head(explored + band, "question", PRIOR, max_wrong_rate=0.01)
    assert fit.widened and fit.volume == pytest.approx(30 / 0.05 + sum(lb.score >= fit.cut for lb in band))


def test_served_answers_found_wrong_tighten_it_at_once():
    served = labels(40, score=(0.96, 1.0), source="explore", probability=0.05)
    served[0].right = served[1].right = False
    served[0].score, served[1].score = 0.965, 0.97
    fit = fit_head(served, "question", PRIOR, max_wrong_rate=0.01)
    assert fit.tightened and fit.cut > 0.97  # above both wrong ones
    allwrong = labels(10, score=(0.96, 1.0), cosine=0.9, source="explore", wrong=10)
    fit = fit_head(allwrong, "question", PRIOR, max_wrong_rate=0.01)
    assert fit.tightened and fit.wrong == 0 and (fit.floor > 0.9 or fit.cut > max(lb.score for lb in allwrong))
    everywhere = [Label("d", "p", "question", 0.999, c, False, source="explore") for c in (0.999, 0.9995, 1.0)] * 4
    fit = fit_head(everywhere, "question", PRIOR, max_wrong_rate=0.01)
    assert (fit.floor, fit.cut) == (SERVE_NOTHING["floor"], SERVE_NOTHING["cut"])
    one_in_many = labels(300, score=(0.96, 1.0), source="explore", wrong=1)  # 0.3% wrong: within the target
    assert not fit_head(one_in_many, "question", PRIOR, max_wrong_rate=0.01).tightened


def test_typed_questions_never_go_below_their_own_floor():
    typed = [Label("d", "p", "question", 0.99, 0.90, True, typed=True) for _ in range(400)]
    fit = fit_head(typed, "question", {**PRIOR, "typed_floor": 0.938}, max_wrong_rate=0.01)
    assert not fit.widened  # all below the typed floor: they are never served, so they support nothing
