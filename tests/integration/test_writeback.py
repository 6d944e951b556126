"""The background writer: the answers of misses are stored off the caller's path, and never lost
short of a crash (which loses only what was queued)."""

from __future__ import annotations

import json
import threading

from helpers import run_python

from storinfer import QAPair, QAStore
from storinfer.serve import StoreFront
from storinfer.serve.writeback import WriteBehind


def _slow_writer_thread(store, monkeypatch):
    """Make store.add block on the writer thread until the returned event is set."""
    release = threading.Event()
    real_add = store.add

    def add(pairs, **kw):
        if threading.current_thread().name == "storinfer-writeback":
            release.wait(30)
        return real_add(pairs, **kw)

    monkeypatch.setattr(store, "add", add)
    return release


def test_remember_returns_before_the_write_and_flush_stores_it(store, monkeypatch):
    front = StoreFront(store)
    release = _slow_writer_thread(store, monkeypatch)
    front.remember("Who won Super Bowl 50?", "The Denver Broncos.")
    assert front.stats()["pending_writes"] == 1 and store.count() == 0  # not written yet, caller not held
    hit = front.lookup("who won super bowl 50")  # an exact repeat is served from the queue
    assert hit.hit and hit.reason == "exact" and hit.match.answer == "The Denver Broncos."
    assert not front.flush(timeout=0.2)
    release.set()
    assert front.flush(timeout=30)
    s = front.stats()
    assert s["pending_writes"] == 0 and s["updates"] == 1 and store.count(origin="runtime") == 1


def test_a_full_queue_writes_on_the_callers_path_and_loses_nothing(store, monkeypatch):
    front = StoreFront(store)
    front.writer.close()
    front.writer = WriteBehind(store, max_pending=1, on_written=front._count_written, on_error=front._count_failed)
    release = _slow_writer_thread(store, monkeypatch)
    questions = [f"What is the capital of country number {i}?" for i in range(4)]
    for i, q in enumerate(questions):
        front.remember(q, f"Capital {i}.")
    s = front.stats()
    assert s["writes_inline"] >= 2  # one in the writer, one queued, the rest written by the caller
    assert store.count() == s["writes_inline"]
    release.set()
    front.close()
    assert store.count(origin="runtime") == 4
    assert front.stats()["updates"] == 4 and front.stats()["pending_writes"] == 0


def test_closing_the_store_flushes_its_writers(tmp_path, embeddings):
    store = QAStore(tmp_path / "s", embedding=embeddings)
    front = StoreFront(store)
    for i in range(20):
        front.remember(f"Which year is number {i} in the list?", f"Year {2000 + i}.")
    store.close()
    with QAStore(tmp_path / "s", embedding=embeddings) as again:
        assert again.count(origin="runtime") == 20


def test_the_lookup_vector_is_reused_for_a_symmetric_embedder(store, monkeypatch):
    assert store.symmetric_embedder  # MiniLM embeds queries and documents the same way
    front = StoreFront(store, write_behind=False)
    store.add([QAPair("Where was Super Bowl 50 played?", "Levi's Stadium.")])
    calls = []
    real = store.embedding.embed_documents
    monkeypatch.setattr(store.embedding, "embed_documents", lambda texts: calls.append(texts) or real(texts))
    answer, found = front.answer("How many people attended the game?", lambda q: "About 71,000.")
    assert not found.hit and found.vector is not None
    assert calls == []  # the key was stored with the lookup's vector, not embedded again
    assert front.lookup("How many people attended the game?").hit


def test_an_asymmetric_embedder_embeds_the_key_again(tmp_path, embeddings):
    class Prefixed:
        name = "prefixed-minilm"
        query_instruction = "query: "

        def embed_query(self, text):
            return embeddings.embed_query("query: " + text)

        def embed_documents(self, texts):
            return embeddings.embed_documents(texts)

    with QAStore(tmp_path / "p", embedding=Prefixed()) as store:
        assert not store.symmetric_embedder


KILLED = r"""
import json, os, signal, sys, threading
from storinfer import QAStore
from storinfer.serve import StoreFront
store = QAStore(sys.argv[1] if len(sys.argv) > 1 else {path!r})
front = StoreFront(store)
real_add, started = store.add, threading.Event()
def add(pairs, **kw):
    started.set()
    return real_add(pairs, **kw)
store.add = add
for i in range(300):
    front.remember(f"What is fact number {{i}} of the list?", f"Fact {{i}}.")
started.wait(30)
pending = front.stats()["pending_writes"]
print(json.dumps({{"pending": pending}}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_kill_during_write_back_loses_at_most_the_queue(tmp_path, embeddings):
    path = str(tmp_path / "k")
    done = run_python(KILLED.format(path=path), timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    pending = json.loads(done.stdout.strip().splitlines()[-1])["pending"]
    with QAStore(path, embedding=embeddings) as store:
        stored = store.count(origin="runtime")
        assert store.check() == []  # what was written is whole
        assert 300 - pending <= stored <= 300  # lost: at most what was queued at the kill
        for m in store.get([QAPair(f"What is fact number {i} of the list?", "x", origin="runtime").id for i in range(300)]):
            assert m.answer == f"Fact {m.question.split()[3]}."


def test_exit_without_close_flushes_the_queue(tmp_path, embeddings):
    path = str(tmp_path / "e")
    code = (f"from storinfer import QAStore\nfrom storinfer.serve import StoreFront\n"
            f"front = StoreFront(QAStore({path!r}))\n"
            "for i in range(50):\n    front.remember(f'Which planet is number {i}?', f'Planet {i}.')\n")
    done = run_python(code, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with QAStore(path, embedding=embeddings) as store:
        assert store.count(origin="runtime") == 50


def test_a_wrongly_sized_vector_is_refused_before_anything_is_written(store):
    import pytest

    good = QAPair("Who won Super Bowl 50?", "The Denver Broncos.")
    bad = QAPair("Where was it played?", "Levi's Stadium.", vector=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="3 dims"):
        store.add([good, bad])
    assert store.count() == 0
