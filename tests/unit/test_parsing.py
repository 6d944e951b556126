"""Parsing what a small model writes into question candidates."""

import pytest

from storinfer.precompute.generate.free import GenerationConfig, parse_questions, question_problem


def test_numbered_bulleted_and_labelled_lines():
    text = """Here are five questions:
1. Who won Super Bowl 50?
2) Where was the game played?
- When was the game played?
* **What color was the theme?**
Q: Which team represented the NFC?
Question 3: How many points did Denver score?"""
    qs, junk = parse_questions(text)
    assert qs == [
        "Who won Super Bowl 50?", "Where was the game played?", "When was the game played?",
        "What color was the theme?", "Which team represented the NFC?", "How many points did Denver score?",
    ]
    assert junk == [("Here are five questions:", "not a question")]


def test_several_questions_on_a_line_and_answers_after_the_mark():
    qs, _ = parse_questions("1. Who won? - The Broncos did. Where was it played? At Levi's Stadium.")
    assert qs == ["Where was it played?"]  # "Who won?" is under 3 words: junk
    qs, _ = parse_questions("Who won the game? - The Broncos. Where was the game played? Santa Clara.")
    assert qs == ["Who won the game?", "Where was the game played?"]


def test_duplicates_within_a_reply_are_kept_once():
    qs, _ = parse_questions("1. Who won the game?\n2. Who won the game?")
    assert qs == ["Who won the game?"]


@pytest.mark.parametrize(("q", "why"), [
    ("The answer is Denver.", "not a question"),
    ("Why?", "too short"),
    ("Super Bowl 50 was played where?", "does not start like a question"),
    ("What makes you think the Bears are in control?", "addressed to the assistant"),
    ("What should I know about Super Bowl 50?", "addressed to the assistant"),
    ("What did we learn from the game?", "addressed to the assistant"),
    ("Can us fans watch it online?", "addressed to the assistant"),
    ("What is the main idea of the passage?", "about the text rather than its content"),
    ("What is ### $$$ %%% ^^^ @@@?", "mostly symbols"),
    ("What " + "very " * 40 + "long?", "too long"),
])
def test_junk(q, why):
    assert question_problem(q) == why


def test_good_questions_pass():
    for q in ["Who won Super Bowl 50?", "In which city was the game played?", "Is Levi's Stadium in California?",
              "Who won Super Bowl I?", "What network aired the game in the US?"]:  # a numeral, a country
        assert question_problem(q) == ""


@pytest.mark.parametrize("kwargs", [{"dedup_threshold": 1.5}, {"min_relevance": -1}, {"max_per_chunk": 0},
                                    {"temperature": -0.1}, {"questions_per_call": 2.5}])
def test_bad_generation_config(kwargs):
    with pytest.raises(ValueError):
        GenerationConfig(**kwargs)
