"""The offline default models: loaded once, offline, usable through LangChain."""

import math

from langchain_core.messages import HumanMessage

from storinfer.embedder import embedding_name
from storinfer.local import SMOLLM2_MODEL_ID, _load_hf
from storinfer_langchain import DEFAULT_EMBEDDING_NAME, default_chat_model, default_embeddings


def test_embeddings_are_minilm_normalised_384(embeddings):
    v = embeddings.embed_query("Who won Super Bowl 50?")
    assert len(v) == 384
    assert math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4)
    assert embedding_name(embeddings) == DEFAULT_EMBEDDING_NAME
    assert default_embeddings() is embeddings  # one instance per process


def test_chat_model_loads_weights_once(chat):
    other = default_chat_model(max_new_tokens=8)
    assert other.local.model is chat.local.model
    assert _load_hf.cache_info().currsize == 1


def test_llm_string_names_the_model_and_settings(chat):
    s = chat._get_llm_string()
    assert SMOLLM2_MODEL_ID in s and "max_new_tokens" in s


def test_chat_answers_and_streams(chat):
    reply = chat.invoke("What is the capital of France?")
    assert isinstance(reply.content, str) and reply.content.strip()
    chunks = list(chat.stream("What is the capital of France?"))
    assert len(chunks) > 1  # token by token, not the whole reply at once
    assert "".join(c.content for c in chunks) == reply.content  # greedy: same text


def test_closing_a_stream_early_stops_the_generation(chat):
    import threading

    stream = chat.local.stream([{"role": "user", "content": "Write a long story about a dragon."}], max_new_tokens=400)
    next(stream)
    stream.close()  # the reader stopped: generation stops at its next token and frees the model
    from storinfer.local import GENERATE_LOCK

    assert GENERATE_LOCK.acquire(timeout=30)
    GENERATE_LOCK.release()
    for t in [t for t in threading.enumerate() if t.name == "storinfer-smollm2-stream"]:
        t.join(30)
        assert not t.is_alive()
    assert chat.local.stream_stopped  # ended by the stop, not by running out of tokens


def test_seeded_sampling_repeats_and_batches(chat):
    convs = [[HumanMessage("Write a question about football.")], [HumanMessage("Write a question about music.")]]
    a = chat.generate_batch(convs, temperature=1.0, top_p=0.95, seed=3)
    b = chat.generate_batch(convs, temperature=1.0, top_p=0.95, seed=3)
    assert a == b and len(a) == 2 and all(a)


def test_batch_runs_as_one_batch_unless_a_cache_is_on(chat, store):
    from langchain_core.globals import set_llm_cache

    from storinfer_langchain import StorInferCache

    replies = chat.batch(["What is 2 + 2?", "Name a primary color."])
    assert len(replies) == 2 and all(isinstance(r.content, str) and r.content for r in replies)
    cache = StorInferCache(store)
    set_llm_cache(cache)
    first = chat.invoke("What is 2 + 2?")
    again = chat.batch(["What is 2 + 2?"])  # with a cache on, batch goes through it
    assert cache.stats()["hits"] == 1 and again[0].content == first.content


def test_onnx_and_torch_paths_give_the_same_vectors(embeddings):
    from storinfer.local import LocalEmbedder, default_embedder

    assert default_embedder().backend == "onnx"  # `make setup` exported it
    texts = ["Who won Super Bowl 50?", "How do I top up my card?\nwith cash", "x " * 400]  # the last is cut at 256 tokens
    torch_path = LocalEmbedder(backend="torch")
    fast, slow = default_embedder().embed_documents(texts), torch_path.embed_documents(texts)
    for a, b in zip(fast, slow):
        assert sum(x * y for x, y in zip(a, b)) > 0.99999
    assert default_embedder().fits("short") and not default_embedder().fits("x " * 400)
    assert torch_path.fits("short") and not torch_path.fits("x " * 400)


def test_onnx_path_missing_names_the_fix(tmp_path, monkeypatch):
    import pytest

    from storinfer.local import LocalEmbedder

    monkeypatch.setenv("STORINFER_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="storinfer prepare-models"):
        LocalEmbedder(backend="onnx")
    assert LocalEmbedder().backend == "torch"  # auto falls back
    with pytest.raises(ValueError, match="backend must be"):
        LocalEmbedder(backend="gpu")


def test_exiting_with_a_stream_left_open_stops_it_cleanly():
    from helpers import run_python

    code = ("from storinfer.local import default_chat\n"
            "s = default_chat(48).stream([{'role': 'user', 'content': 'Write a story.'}], max_new_tokens=300)\n"
            "next(s)\nprint('left open')\n")
    done = run_python(code, timeout=300)
    assert done.returncode == 0 and "left open" in done.stdout, done.stderr[-2000:]  # no abort at exit
