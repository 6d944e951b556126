"""Masking, dedup, relevance and adaptive sampling, driven by a scripted chat model.

The model is scripted because these tests are about our logic (what is shown, kept, rejected,
and how sampling moves); the embeddings are the real MiniLM, since dedup depends on them.
"""

from __future__ import annotations

from typing import Any

from storinfer.precompute.generate.free import MASK_INTRO, GenerationConfig, QuestionGenerator

CHUNK = (
    "Super Bowl 50 was an American football game to determine the champion of the National Football League "
    "(NFL) for the 2015 season. The American Football Conference (AFC) champion Denver Broncos defeated the "
    "National Football Conference (NFC) champion Carolina Panthers 24–10 to earn their third Super Bowl title. "
    "The game was played on February 7, 2016, at Levi's Stadium in the San Francisco Bay Area at Santa Clara, "
    "California. As this was the 50th Super Bowl, the league emphasized the golden anniversary with various "
    "gold-themed initiatives."
)


class ScriptedChat:
    """A chat model (the engine's protocol) that returns the scripted replies in turn and records
    each call's messages and sampling settings."""

    def __init__(self, replies: list[str], calls: list[dict[str, Any]]) -> None:
        self.replies, self.calls = replies, calls

    def chat_batch(self, conversations: Any, **settings: Any) -> list[str]:
        out = []
        for messages in conversations:
            self.calls.append({"messages": list(messages), **settings})
            out.append(self.replies[min(len(self.calls), len(self.replies)) - 1])
        return out


def run(embeddings, replies, **cfg):
    chat = ScriptedChat(replies=replies, calls=[])
    gen = QuestionGenerator(chat, embeddings, GenerationConfig(**cfg))
    return gen.generate(CHUNK, "chunk-1"), chat.calls


def test_masking_shows_accepted_questions_to_the_generator(embeddings):
    out, calls = run(embeddings, ["1. Who won Super Bowl 50?\n2. Where was Super Bowl 50 played?",
                                  "1. What color was used to emphasize the 50th anniversary of the Super Bowl?"], max_calls_per_chunk=2)
    assert MASK_INTRO not in calls[0]["messages"][0]["content"]
    second_system = calls[1]["messages"][0]["content"]
    assert MASK_INTRO in second_system
    assert "- Who won Super Bowl 50?" in second_system and "- Where was Super Bowl 50 played?" in second_system
    assert [q.question for q in out.accepted] == [
        "Who won Super Bowl 50?", "Where was Super Bowl 50 played?",
        "What color was used to emphasize the 50th anniversary of the Super Bowl?"]


def test_without_masking_the_prompt_never_changes(embeddings):
    _out, calls = run(embeddings, ["1. Who won Super Bowl 50?"] * 3, max_calls_per_chunk=3, masking=False, adaptive=False)
    assert all(c["messages"] == calls[0]["messages"] for c in calls)


def test_near_duplicates_are_rejected_before_answering(embeddings):
    out, _ = run(embeddings, ["1. Who won Super Bowl 50?",
                              "1. Who was the winner of Super Bowl 50?\n2. On what date was Super Bowl 50 played?"],
                 max_calls_per_chunk=2)
    assert [q.question for q in out.accepted] == ["Who won Super Bowl 50?", "On what date was Super Bowl 50 played?"]
    assert out.duplicates == 1


def test_look_alikes_are_not_duplicates_unless_asked(embeddings):
    reply = ["1. Which NFL team represented the AFC at Super Bowl 50?\n2. Which NFL team represented the NFC at Super Bowl 50?"]
    guarded, _ = run(embeddings, reply, max_calls_per_chunk=1)
    assert len(guarded.accepted) == 2  # cosine 0.94, but the guard says they ask different things
    literal, _ = run(embeddings, reply, max_calls_per_chunk=1, dedup_guard=False)
    assert len(literal.accepted) == 1 and literal.duplicates == 1


def test_off_topic_and_junk_are_rejected(embeddings):
    out, _ = run(embeddings, ["Sure! Here are questions:\n1. What is the capital of France?\n2. Who won Super Bowl 50?\n"
                              "3. What do you think about football?"], max_calls_per_chunk=1)
    assert [q.question for q in out.accepted] == ["Who won Super Bowl 50?"]
    assert out.off_topic == 1 and out.junk == 2


def test_store_duplicates_are_rejected(embeddings):
    chat = ScriptedChat(replies=["1. Who won Super Bowl 50?\n2. Where was Super Bowl 50 played?"], calls=[])
    gen = QuestionGenerator(chat, embeddings, GenerationConfig(max_calls_per_chunk=1))
    out = gen.generate(CHUNK, "c", stored_duplicate=lambda q, v: q.startswith("Who won"))
    assert [q.question for q in out.accepted] == ["Where was Super Bowl 50 played?"] and out.duplicates == 1


def test_repetition_raises_temperature_and_junk_lowers_it(embeddings):
    # Call 1 is all new; calls 2 and 3 repeat it: each repeat raises temperature and top-p.
    _out, calls = run(embeddings, ["1. Who won Super Bowl 50?\n2. Where was Super Bowl 50 played?"] * 4,
                      max_calls_per_chunk=4, patience=5)
    temps = [c["temperature"] for c in calls]
    assert temps[0] == temps[1] == 0.7 and temps[2] > temps[1] and temps[3] > temps[2]
    assert calls[2]["top_p"] > calls[1]["top_p"]
    _out, calls = run(embeddings, ["Here you go.\nI hope this helps!\nGood luck."] * 3, max_calls_per_chunk=3, patience=5)
    temps = [c["temperature"] for c in calls]
    assert temps[1] < temps[0] and temps[2] < temps[1]


def test_temperature_stays_within_bounds(embeddings):
    _out, calls = run(embeddings, ["1. Who won Super Bowl 50?"] * 12, max_calls_per_chunk=12, patience=20,
                      temperature_bounds=(0.3, 1.0))
    assert max(c["temperature"] for c in calls) == 1.0


def test_low_yield_stops_the_chunk_early_unless_adaptive_is_off(embeddings):
    replies = ["1. Who won Super Bowl 50?", "1. Who won Super Bowl 50?", "1. Who won Super Bowl 50?", "1. Who won Super Bowl 50?"]
    out, calls = run(embeddings, replies, max_calls_per_chunk=4, patience=2)
    assert len(calls) == 3 and out.stopped == "low yield"
    out, calls = run(embeddings, replies, max_calls_per_chunk=4, adaptive=False)
    assert len(calls) == 4 and out.stopped == "budget spent"
    assert {c["temperature"] for c in calls} == {0.7}


def test_accepted_questions_record_their_sampling(embeddings):
    out, _ = run(embeddings, ["1. Who won Super Bowl 50?", "1. Where was Super Bowl 50 played?"],
                 max_calls_per_chunk=2, patience=5)
    assert [(q.call, q.temperature) for q in out.accepted] == [(0, 0.7), (1, 0.7)]


def test_max_per_chunk_caps_accepted(embeddings):
    out, calls = run(embeddings, ["1. Who won Super Bowl 50?\n2. Where was Super Bowl 50 played?\n"
                                  "3. On what date was Super Bowl 50 played?"], max_per_chunk=2, max_calls_per_chunk=3)
    assert len(out.accepted) == 2 and len(calls) == 1 and out.stopped == "enough questions"
