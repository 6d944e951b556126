"""Prompts of one template: the frame two texts share, and a lookup judged inside it (scripted embedder)."""

from __future__ import annotations

from storinfer.match.frame import FRAME_WORDS, Frame, shared_frame
from storinfer.match.lookup import Candidates, inside_frame
from storinfer.records import Match

TEMPLATE = ("Use the context below to answer the question. If the context does not say, say that you do not know. "
            "Question: {q} Context: Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in Santa Clara. "
            "Answer:")


def prompt(question: str) -> str:
    return TEMPLATE.format(q=question)


def test_two_prompts_of_one_template_share_a_frame_cut_back_to_its_labels():
    frame = shared_frame(prompt("Which team won Super Bowl 50?"), prompt("Which team lost Super Bowl 50?"))
    assert frame is not None and frame.prefix[-1] == "Question:" and frame.suffix[0] == "Context:"
    # the middles are the whole questions, not what is left after their shared first and last words
    assert frame.inside(prompt("Which team won Super Bowl 50?")) == "Which team won Super Bowl 50?"
    assert frame.inside("Another text entirely, of a few words.") is None


def test_short_questions_and_long_ones_without_a_boundary_share_no_frame():
    assert shared_frame("How do I activate my new card?", "How can I activate my new card?") is None
    long = "what are the side effects of taking {} vitamin D every day for a long time if I am pregnant and over forty"
    assert len(long.split()) > FRAME_WORDS
    assert shared_frame(long.format("too much"), long.format("too little")) is None  # compared whole, as before
    # a boundary near the start leaves less than FRAME_WORDS words of frame after the cut: compared whole
    assert shared_frame("Hi! " + long.format("too much"), "Hi! " + long.format("too little")) is None


def test_a_question_without_its_question_mark_is_still_whole_inside_the_frame():
    frame = shared_frame(prompt("which team won Super Bowl 50"), prompt("which team lost Super Bowl 50"))
    assert frame is not None and frame.inside(prompt("which team won Super Bowl 50")) == "which team won Super Bowl 50"


class Embedder:
    """Scripted: a text's vector says which question it holds."""

    def vector(self, text: str) -> list[float]:
        return [1.0, 0.0] if "won" in text else [0.6, 0.8]

    def embed_query(self, text: str) -> list[float]:
        return self.vector(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(t) for t in texts]


def test_a_lookup_inside_a_frame_judges_the_middles_and_leaves_out_keys_outside_it():
    asked = prompt("What team won Super Bowl 50?")
    keys = [Match("lost", prompt("Which team lost Super Bowl 50?"), "[lost]", 0.99, {}),
            Match("won", prompt("Which team won Super Bowl 50?"), "[won]", 0.98, {}),
            Match("other", "Which team won Super Bowl 50?", "[bare]", 0.70, {})]
    found = inside_frame(Embedder(), Candidates(asked, [0.5, 0.5], keys))
    assert found.question == "What team won Super Bowl 50?" and found.vector == [0.5, 0.5]  # the prompt's, to store
    assert [(m.id, m.question, round(m.similarity, 2)) for m in found.matches] == [
        ("won", "Which team won Super Bowl 50?", 1.0), ("lost", "Which team lost Super Bowl 50?", 0.6)]
    plain = Candidates("Who won?", [1.0, 0.0], [keys[2]])
    assert inside_frame(Embedder(), plain) is plain  # no frame: nothing changes
    assert Frame(("a",), ("b",)).inside("a b") is None  # nothing inside
