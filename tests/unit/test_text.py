"""Prompt parsing, normalisation and ids: what the cache matches on."""

import json

from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from storinfer.text import normalize_question, pair_id
from storinfer_langchain.prompt import parse_prompt, stable_llm_string


def test_text_prompt_is_the_question():
    p = parse_prompt("  What is   the AFC? ")
    assert p.question == "What is the AFC?"
    assert p.context == "" and not p.is_chat


def test_chat_prompt_uses_last_human_message_and_folds_system_prompt_into_context():
    a = parse_prompt(dumps([SystemMessage("Be brief."), HumanMessage("Who won Super Bowl 50?")]))
    b = parse_prompt(dumps([SystemMessage("Be verbose."), HumanMessage("Who won Super Bowl 50?")]))
    c = parse_prompt(dumps([HumanMessage("Who won Super Bowl 50?")]))
    assert a.question == b.question == c.question == "Who won Super Bowl 50?"
    assert a.is_chat
    assert len({a.context, b.context, c.context}) == 3  # different system prompts never share answers


def test_chat_history_is_part_of_the_context():
    turn1 = parse_prompt(dumps([HumanMessage("Tell me about Denver."), AIMessage("A city."), HumanMessage("Who won?")]))
    turn2 = parse_prompt(dumps([HumanMessage("Tell me about Carolina."), AIMessage("A state."), HumanMessage("Who won?")]))
    assert turn1.question == turn2.question == "Who won?"
    assert turn1.context != turn2.context


def test_non_text_content_and_non_human_last_message_are_not_matched():
    image = HumanMessage(content=[{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "x"}}])
    assert parse_prompt(dumps([image])).question is None
    tool_last = dumps([HumanMessage("hi"), AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}]),
                       ToolMessage("42", tool_call_id="1")])
    assert parse_prompt(tool_last).question is None
    assert parse_prompt(dumps([HumanMessage("   ")])).question is None
    assert parse_prompt("").question is None
    assert parse_prompt(None).question is None  # type: ignore[arg-type]


def test_text_blocks_are_joined():
    msg = HumanMessage(content=[{"type": "text", "text": "Who won"}, {"type": "text", "text": "Super Bowl 50?"}])
    assert parse_prompt(dumps([msg])).question == "Who won Super Bowl 50?"


def test_json_that_is_not_messages_is_a_plain_prompt():
    prompt = json.dumps([1, 2, 3])
    assert parse_prompt(prompt).question == prompt


def test_normalisation_and_ids():
    assert normalize_question("  Who won Super Bowl 50?? ") == normalize_question("who won super bowl 50")
    assert pair_id("t", "p", "Who won?") == pair_id("t", "p", "who won")
    assert pair_id("t", "p", "Who won?") != pair_id("t2", "p", "Who won?")
    assert pair_id("t", "p", "Who won?") != pair_id("t", "p2", "Who won?")


def test_object_addresses_are_dropped_from_llm_string():
    a = "[('client', <Foo object at 0x7f00aa>), ('model', 'x')]"
    b = "[('client', <Foo object at 0x7f11bb>), ('model', 'x')]"
    assert stable_llm_string(a) == stable_llm_string(b)


def test_streamed_pieces_are_trimmed_like_the_whole_reply():
    from storinfer.models.llamacpp import trimmed as _trimmed

    pieces = ["\n", "  The", " capital", " is", " Paris.", "\n", " "]
    assert "".join(_trimmed(iter(pieces))) == "".join(pieces).strip()
    assert list(_trimmed(iter(["  ", "a", " ", "b", "  "]))) == ["a", " b"]
    assert list(_trimmed(iter(["", " "]))) == []
