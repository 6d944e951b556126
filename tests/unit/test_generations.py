"""Generations stored by the cache come back as they went in."""

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

from storinfer_langchain.cache import dump_generations, load_generations


def test_text_generations_round_trip():
    gens = [Generation(text="Paris.", generation_info={"finish_reason": "stop"}), Generation(text="Lyon")]
    assert load_generations(dump_generations(gens)) == gens


def test_chat_generations_round_trip_with_message_details():
    msg = AIMessage(
        content="Denver Broncos",
        additional_kwargs={"k": "v"},
        response_metadata={"model_name": "m"},
        tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c1", "type": "tool_call"}],
        usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
    )
    gens = [ChatGeneration(message=msg, generation_info={"finish_reason": "stop"})]
    back = load_generations(dump_generations(gens))
    assert isinstance(back[0], ChatGeneration)
    assert back[0].message == msg
    assert back[0].generation_info == {"finish_reason": "stop"}


def test_content_blocks_round_trip():
    msg = AIMessage(content=[{"type": "text", "text": "Denver"}, {"type": "text", "text": " Broncos"}])
    back = load_generations(dump_generations([ChatGeneration(message=msg)]))
    assert back[0].message.content == msg.content
