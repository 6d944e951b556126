"""The answer-aware generator's parsing: candidate answers and the syntactic questions about them,
pinned on sentences from several kinds of text (real spaCy, en_core_web_sm)."""

from __future__ import annotations

import pytest

from storinfer.precompute.generate.fact_questions import FactQuestionWriter, fact_prompt, gives_away
from storinfer.precompute.generate.facts import chunk_facts, load_nlp
from storinfer.precompute.generate.wh_questions import write
from storinfer.precompute.generate.wh_text import same_answer


@pytest.fixture(scope="module")
def nlp():
    return load_nlp()


def questions(nlp, text: str) -> dict[str, set[str]]:
    """Question -> its answers, for every question written about ``text``."""
    out: dict[str, set[str]] = {}
    for q, _fact, answer in write(chunk_facts(nlp(text))):
        out.setdefault(q, set()).add(answer)
    return out


@pytest.mark.parametrize(("text", "question", "answer"), [
    # the answer is the subject; a passive agent is also asked in the active voice
    ("The Eiffel Tower was designed by Gustave Eiffel.", "Who designed the Eiffel Tower?", "Gustave Eiffel"),
    ("The Eiffel Tower was designed by Gustave Eiffel.", "By whom was the Eiffel Tower designed?", "Gustave Eiffel"),
    # a date in a prepositional phrase: "when", with the auxiliary moved to the front
    ("The game was played on February 7, 2016, at Levi's Stadium.", "When was the game played at Levi's Stadium?",
     "February 7, 2016"),
    ("The game was played on February 7, 2016, at Levi's Stadium.", "Where was the game played on February 7, 2016?",
     "Levi's Stadium"),
    ("The game was played on February 7, 2016, at Levi's Stadium.", "At what stadium was the game played on February 7, 2016?",
     "Levi's Stadium"),
    # do-support, and a number counting a noun
    ("The Broncos scored 24 points in the game.", "How many points did the Broncos score?", "24"),
    ("Warsaw has been the capital of Poland since 1596.", "Since when has Warsaw been the capital of Poland?", "1596"),
    ("Warsaw has been the capital of Poland since 1596.", "Warsaw has been the capital of what since 1596?", "Poland"),
    # a name renaming a noun phrase belongs to the answer
    ("The show was headlined by the British rock group Coldplay.", "Who headlined the show?", "Coldplay"),
    # a relative clause right after its noun, and an acronym in parentheses
    ("Oxygen, which was discovered by Carl Wilhelm Scheele, is a chemical element.", "What was discovered by Carl Wilhelm Scheele?",
     "Oxygen"),
    ("The game decided the champion of the National Football League (NFL) for the 2015 season.", "What does NFL stand for?",
     "the National Football League"),
])
def test_syntactic_questions(nlp, text, question, answer):
    found = questions(nlp, text)
    assert question in found, sorted(found)
    assert any(same_answer(answer, a) for a in found[question]), found[question]


def test_no_question_gives_its_answer_away_or_asks_about_a_pronoun(nlp):
    found = questions(nlp, "He said that the council approved the budget of 2 million euros in March 2019.")
    assert found
    for q, answers in found.items():
        assert not any(gives_away(q, a) for a in answers), q
        assert "He" not in answers and "he" not in answers


def test_a_question_for_two_answers_is_dropped(nlp):
    # "What was Tesla?" would have three answers here: it asks nothing in particular
    found = questions(nlp, "Tesla was an inventor. Tesla was an engineer. Tesla was a futurist.")
    assert "What was Tesla?" not in found


def test_facts_are_typed_and_keep_their_sentence(nlp):
    text = "Marie Curie won the Nobel Prize in 1903. She was born in Warsaw."
    facts = chunk_facts(nlp(text))
    by_text = {f.text: f for f in facts}
    assert by_text["Marie Curie"].label == "PERSON" and by_text["1903"].label == "DATE"
    assert by_text["1903"].sentence == "Marie Curie won the Nobel Prize in 1903."
    assert "She" not in by_text  # pronouns are never answers


def test_writer_groups_wordings_under_one_question():
    writer = FactQuestionWriter()
    [fqs] = writer.write_many(["The Eiffel Tower was designed by Gustave Eiffel and completed in 1889 for the World's Fair."])
    by_answer = {fq.expected_answer: fq for fq in fqs}
    eiffel = by_answer["Gustave Eiffel"]
    assert eiffel.label == "PERSON" and eiffel.writer == "syntactic"
    assert {eiffel.question, *eiffel.variants} >= {"Who designed the Eiffel Tower?", "By whom was the Eiffel Tower designed?"}
    assert len(set(eiffel.variants)) == len(eiffel.variants) and eiffel.question not in eiffel.variants


class Echo:
    """A chat model (the engine's protocol) answering every fact prompt with a fixed reply."""

    def __init__(self, reply: str) -> None:
        self.reply, self.prompts = reply, []

    def chat_batch(self, conversations, **settings):
        self.prompts += list(conversations)
        return [self.reply] * len(conversations)


def test_an_llm_writer_is_asked_per_fact_and_checked():
    text = "The Eiffel Tower was designed by Gustave Eiffel."
    chat = Echo("Who was the engineer behind the Eiffel Tower?")
    [fqs] = FactQuestionWriter("both", llm=chat).write_many([text])
    eiffel = next(fq for fq in fqs if fq.expected_answer == "Gustave Eiffel")
    assert eiffel.writer == "llm" and eiffel.question == "Who was the engineer behind the Eiffel Tower?"
    assert "Who designed the Eiffel Tower?" in eiffel.variants  # the syntactic ones stay as keys
    assert chat.prompts[0][-1]["content"].endswith("Answer: " + chat.prompts[0][-1]["content"].split("Answer: ")[1])
    # a reply that names its answer, or is no question, falls back to the syntactic question
    [fqs] = FactQuestionWriter("llm", llm=Echo("Gustave Eiffel designed it, right?")).write_many([text])
    eiffel = next(fq for fq in fqs if fq.expected_answer == "Gustave Eiffel")
    assert eiffel.writer == "syntactic" and eiffel.question == "Who designed the Eiffel Tower?"
    with pytest.raises(ValueError, match="needs llm="):
        FactQuestionWriter("llm")


def test_fact_prompt_is_few_shot():
    from storinfer.precompute.generate.facts import Fact

    msgs = fact_prompt(Fact("1889", "DATE", "The tower was completed in 1889.", None))
    assert msgs[0]["role"] == "system" and msgs[-1]["content"] == "Sentence: The tower was completed in 1889.\nAnswer: 1889"
    assert sum(m["role"] == "assistant" for m in msgs) == 2


def test_same_answer():
    assert same_answer("the British rock group Coldplay", "Coldplay") and same_answer("The Broncos", "Broncos")
    assert not same_answer("2010", "10") and not same_answer("Denver", "Carolina")
