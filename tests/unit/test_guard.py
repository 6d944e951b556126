"""The look-alike guard: pairs measured close by MiniLM that ask different things."""

import pytest

from storinfer.match.lookalike import conflict, question_type

# Each of these embeds at cosine 0.93-0.99 with all-MiniLM-L6-v2 but has another gold answer
# in SQuAD (found by benchmarks/threshold_pairs.py, at f5d32c9).
LOOK_ALIKES = [
    ("Which NFL team represented the AFC at Super Bowl 50?", "Which NFL team represented the NFC at Super Bowl 50?"),
    ("What halftime performer previously headlined Super Bowl XLVII?", "What halftime performer previously headlined Super Bowl XLVIII?"),
    ("Who was the Most Valuable Player of Super Bowl 50?", "Who was the Most Valuable Player of Super Bowl II?"),
    ("In what city did the last Super Bowl in California occur?", "When was the last Super Bowl in California?"),
    ("Who won Super Bowl 49?", "Who won Super Bowl 50?"),
    ("Which team did not score a touchdown?", "Which team scored a touchdown?"),
    ("Who didn't play in the game?", "Who played in the game?"),
    ("Who was the oldest quarterback to play in a Super Bowl?", "Who was the youngest quarterback to play in a Super Bowl?"),
    ("What was the first Super Bowl?", "What was the second Super Bowl?"),
    ("What was the name of the Media Day event for Super Bowl 50?", "Where was media day for Super Bowl 50 held?"),
    ("What team did Rivera play for in Super Bowl XX?", "What position did Rivera play in Super Bowl XX?"),
    ("How many interceptions did Manning have?", "How many touchdowns did Manning have?"),
    ("Who is Tom Brady?", "Who is Tom Hanks?"),
    ("What team did Eli Manning play for?", "What team did Peyton Manning play for?"),  # one head, other leading names
    ("What colour is the logo of Juniper Airlines?", "What colour is the logo of Summit Airlines?"),
]
# 0.1 refused this pair with a football word list (offense/defense); 0.2's rules are general and
# let it through at the rule level: a measured loss, kept here so it stays visible.
FOOTBALL_ONLY = ("How many Panthers players were selected to the Pro Bowl?",
                 "How many Panthers defense players were selected for the Pro Bowl?")


def test_domain_word_lists_are_gone():
    assert conflict(*FOOTBALL_ONLY) is None


PARAPHRASES = [
    ("Who won Super Bowl 50?", "who won super bowl 50"),
    ("Where did Super Bowl 50 take place?", "What city did Super Bowl 50 take place in?"),
    ("What does AFC stand for?", "What is the AFC short for?"),
    ("What day was the game played on?", "When was the game played?"),
    ("What was the theme of Super Bowl 50?", "What theme did Super Bowl 50 have?"),
    ("How many points did the Broncos score?", "How many points were scored by the Broncos?"),
    ("What was Peyton Manning's passer rating?", "What was Manning's passer rating?"),
    ("At which Super Bowl did Beyonce headline?", "At what Super Bowl did Beyoncé headline?"),
    ("What was the last game Elway played?", "What was the final game Elway played?"),
    ("What venue hosted Super Bowl 50?", "What stadium hosted Super Bowl 50?"),
    ("Who won Super Bowl 50?", "Who were the winners of Super Bowl 50?"),
    ("Who won Super Bowl 50?", "Who won super bowl fifty?"),
    ("What was the cost of a 30 second commercial?", "How much did a 30-second commercial cost?"),
]


@pytest.mark.parametrize(("a", "b"), LOOK_ALIKES)
def test_look_alikes_conflict_both_ways(a, b):
    assert conflict(a, b)
    assert conflict(b, a)


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrases_pass(a, b):
    assert conflict(a, b) is None, conflict(a, b)


def test_question_types():
    assert question_type("Who won?") == "person"
    assert question_type("When was it?") == "time"
    assert question_type("What year was it?") == "time"
    assert question_type("In what city was it held?") == "place"
    assert question_type("How many yards?") == "quantity"
    assert question_type("What team won?") is None
    assert question_type("What was the name of the Media Day event?") == "name"
