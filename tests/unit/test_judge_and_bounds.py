"""The answer judge, and the bound reports print."""

import pytest

from storinfer.match.bounds import clopper_pearson_upper
from storinfer.match.judge import TextJudge


def test_the_bound_is_clopper_pearson():
    assert clopper_pearson_upper(0, 299) == pytest.approx(0.00997, abs=1e-4)
    assert clopper_pearson_upper(1, 50) == pytest.approx(0.0914, abs=1e-4)
    assert clopper_pearson_upper(0, 0) == 1.0 and clopper_pearson_upper(5, 5) == 1.0


def test_the_judge_calls_two_answers_the_same_only_when_they_are():
    j = TextJudge()
    assert j.same("Denver Broncos", "The Denver Broncos won Super Bowl 50.")
    assert j.same("[answer for card_arrival]", "[answer for card_arrival]")
    assert not j.same("1990", "1991") and not j.same("24-10", "24-17")
    assert not j.same("Peyton Manning", "Eli Manning") and not j.same("Broncos", "Panthers")
    assert not j.same("", "anything")
