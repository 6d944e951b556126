"""Concurrency, crashes, staleness, tenant isolation and bad input, on real Chroma and MiniLM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import chroma_server, lookup
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation

from storinfer import QAPair
from storinfer.text import normalize_question
from storinfer_langchain import QAStore, StorInferCache

HERE = Path(__file__).resolve().parent


def _content(store: QAStore) -> dict[str, tuple[str, str, str]]:
    return {m.id: (m.question, m.answer, m.metadata["namespace"]) for m in store.iter_pairs()}


# --- concurrency -----------------------------------------------------------------------------
def test_threads_share_one_store_and_one_path(tmp_path, embeddings):
    a = QAStore(tmp_path / "s", embedding=embeddings)
    b = QAStore(tmp_path / "s", embedding=embeddings)  # a second handle in the same process

    def work(t: int) -> list[str]:
        store = a if t % 2 else b
        errors = []
        for i in range(25):
            store.add([QAPair(f"What is item {i} of thread {t}?", f"t{t}-i{i}")])
            found = lookup(store, f"what is item {i} of thread {t}")
            if not found.hit or found.match.answer != f"t{t}-i{i}":
                errors.append(f"{t}/{i}: {found.reason}")
            store.add([QAPair("Which item does every thread add?", "the shared one")])
        return errors

    with ThreadPoolExecutor(8) as pool:
        errors = [e for errs in pool.map(work, range(8)) for e in errs]
    assert errors == []
    assert a.count() == 8 * 25 + 1
    assert a.check() == []
    a.close()
    b.close()


def test_four_processes_x_80_operations_on_a_server_store(tmp_path, embeddings):
    with chroma_server(tmp_path / "server") as port:
        QAStore(host="127.0.0.1", port=port, embedding=embeddings)  # create it before the race
        procs = [subprocess.Popen([sys.executable, str(HERE / "mp_worker.py"), str(port), str(w), "80"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(4)]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (_out, err) in zip(procs, outs):
            assert p.returncode == 0, err[-3000:]
        results = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
        assert [r["errors"] for r in results] == [[]] * 4
        store = QAStore(host="127.0.0.1", port=port, embedding=embeddings)
        content = _content(store)
        assert len(content) == 4 * 20 + 10  # 20 own pairs per worker, 10 shared added twice each
        questions = [normalize_question(q) for q, _a, _ns in content.values()]
        assert len(set(questions)) == len(questions)  # no duplicates
        for w in range(4):
            for f in range(20):
                assert lookup(store, f"What is fact {f} recorded by worker {w}?").match.answer == f"w{w}-f{f}"
        assert store.check() == []


# --- crashes ---------------------------------------------------------------------------------
WRITER = """
import sys
from storinfer import QAPair, QAStore
store = QAStore(sys.argv[1])
i = 0
while True:
    store.add([QAPair(f"What was written in update {i}?", f"update {i}", origin="runtime")])
    print(i, flush=True)
    i += 1
"""


def test_kill_9_during_runtime_updates_leaves_a_sound_store(tmp_path, embeddings):
    path = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    last = -1
    while last < 40:
        line = proc.stdout.readline()
        assert line, "the writer died on its own"
        last = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with QAStore(path, embedding=embeddings) as store:  # the dead process's lock is gone
        assert store.check() == []
        content = {q: a for q, a, _ns in _content(store).values()}
        n = len(content)
        assert last + 1 <= n <= last + 2  # every acknowledged write, at most one more
        assert content == {f"What was written in update {i}?": f"update {i}" for i in range(n)}
        store.add([QAPair("Does the store still take writes?", "yes")])
        assert lookup(store, "Does the store still take writes?").hit


def test_storinfer_check_command(tmp_path, embeddings):
    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        store.add([QAPair("Who won Super Bowl 50?", "Denver")])
    ok = subprocess.run([sys.executable, "-m", "storinfer.cli", "check", "--store", str(tmp_path / "s")],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and "1 pairs checked: OK" in ok.stdout
    with QAStore(tmp_path / "s", embedding=embeddings) as store:  # damage one record behind StorInfer's back
        _ns, _p, col = store.partitions()[0]
        pid = col.get()["ids"][0]
        col.update(ids=[pid], metadatas=[{"question": "Something else entirely?"}])
    bad = subprocess.run([sys.executable, "-m", "storinfer.cli", "check", "--store", str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "does not match its question's id" in bad.stdout


class _IndexLacks:
    """A real partition collection whose vector index is made to lack ``pid`` until it is written again:
    what Chroma 1.5.9 was seen to do (the record kept, its vector in no search; docs/operations.md)."""

    def __init__(self, col, pid):
        self.col, self.pid = col, pid

    def __getattr__(self, name):
        return getattr(self.col, name)

    def query(self, **kw):
        res = dict(self.col.query(**kw))
        keep = [i for i, x in enumerate(res["ids"][0]) if x != self.pid]
        for key, value in res.items():
            if isinstance(value, list) and value and isinstance(value[0], list) and len(value[0]) == len(res["ids"][0]):
                res[key] = [[value[0][i] for i in keep]]
        return res

    def upsert(self, **kw):
        self.col.upsert(**kw)
        if self.pid in kw["ids"]:
            self.pid = None


def test_a_pair_stored_without_its_vector_is_found_by_check_and_written_again_by_repair(tmp_path, embeddings):
    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        store.add([QAPair("Who won Super Bowl 50?", "Denver"), QAPair("Where was it played?", "Santa Clara")])
        ns, part, col = store.partitions()[0]
        before = col.get(include=["documents", "metadatas", "embeddings"])
        lost = before["ids"][0]
        lacking = _IndexLacks(col, lost)
        store.partitions = lambda namespace=None: [(ns, part, lacking)]
        problems = store.check()
        assert len(problems) == 1 and lost in problems[0] and "is not in the vector index" in problems[0], problems
        assert store.repair() == 1 and lacking.pid is None
        assert store.check() == [] and store.repair() == 0
        after = col.get(include=["documents", "metadatas", "embeddings"])
        assert after["ids"] == before["ids"] and after["documents"] == before["documents"]
        assert after["metadatas"] == before["metadatas"] and (after["embeddings"] == before["embeddings"]).all()


def test_which_pairs_the_index_holds_leaves_out_a_pair_deleted_meanwhile(tmp_path, embeddings):
    from storinfer.store.integrity import held

    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        store.add([QAPair("Who won Super Bowl 50?", "Denver"), QAPair("Where was it played?", "Santa Clara")])
        _ns, _part, col = store.partitions()[0]
        rows = col.get(include=["embeddings"])
        col.delete(ids=[rows["ids"][0]])  # Chroma refuses a search restricted to a gone id
        assert held(col, list(rows["ids"]), rows["embeddings"][1]) == {rows["ids"][1]}


# --- staleness -------------------------------------------------------------------------------
def test_invalidate_removes_a_documents_pairs_everywhere(store):
    store.add([QAPair("Who won Super Bowl 50?", "Denver", doc_id="doc-a", partition="p1"),
               QAPair("Who won Super Bowl 50?", "Denver", doc_id="doc-a", partition="p2", origin="runtime"),
               QAPair("Where was it played?", "Santa Clara", doc_id="doc-b", partition="p1")])
    store.ledger.mark_done("rec-a", {"namespace": "default", "partition": "p1", "doc_id": "doc-a", "chunk_id": "c-a"})
    assert store.invalidate("doc-a") == 2
    assert [m.question for m in store.iter_pairs()] == ["Where was it played?"]
    assert store.ledger.records(namespace="default", partition="p1") == {}
    with pytest.raises(ValueError, match="document id"):
        store.invalidate("")


def test_runtime_answers_expire(store, chat):
    cache = StorInferCache(store, ttl_seconds=0.5)
    prompt, llm_string = dumps([HumanMessage("Who won Super Bowl 50?")]), chat._get_llm_string()
    cache.update(prompt, llm_string, [Generation(text="Denver")])
    assert cache.lookup(prompt, llm_string) is not None
    time.sleep(0.7)
    assert cache.lookup(prompt, llm_string) is None
    assert store.purge_expired() == 1 and store.count() == 0


# --- isolation -------------------------------------------------------------------------------
def test_a_tenant_never_gets_another_tenants_answer(store, chat):
    llm_string = chat._get_llm_string()
    prompt = dumps([HumanMessage("What is our refund policy?")])
    a = StorInferCache(store, namespace="tenant-a")
    b = StorInferCache(store, namespace="tenant-b")
    c = StorInferCache(store, namespace="tenant-c")
    a.update(prompt, llm_string, [Generation(text="Tenant A: 30 days.")])
    b.update(prompt, llm_string, [Generation(text="Tenant B: no refunds.")])
    assert a.lookup(prompt, llm_string)[0].text == "Tenant A: 30 days."
    assert b.lookup(prompt, llm_string)[0].text == "Tenant B: no refunds."
    assert c.lookup(prompt, llm_string) is None
    para = dumps([HumanMessage("What's our refund policy?")])
    assert c.lookup(para, llm_string) is None
    a.flush(), b.flush()
    docs = store.as_retriever(namespace="tenant-c", partition=None, k=10).invoke("What is our refund policy?")
    assert docs == []
    docs = store.as_retriever(namespace="tenant-b", partition=None, k=10).invoke("What is our refund policy?")
    assert [d.page_content for d in docs] == ["Tenant B: no refunds."]
    a.clear()
    assert b.lookup(prompt, llm_string)[0].text == "Tenant B: no refunds."


# --- bad input -------------------------------------------------------------------------------
ONE_MB = "Who won Super Bowl 50? " + "x" * 1_000_000


@pytest.mark.parametrize("question", ["", "   \n\t ", None, 42, ONE_MB, "\x00\x01"])
def test_bad_questions_are_misses_and_change_nothing(store, chat, question):
    store.add([QAPair("Who won Super Bowl 50?", "Denver")])
    before = _content(store)
    found = lookup(store, question)
    assert not found.hit and found.reason
    cache = StorInferCache(store)
    prompt = question if isinstance(question, str) else question
    assert cache.lookup(prompt, chat._get_llm_string()) is None
    cache.update(prompt, chat._get_llm_string(), [Generation(text="should not be stored")])
    assert _content(store) == before
    assert cache.stats()["errors"] == 0


@pytest.mark.parametrize(("pair", "match"), [
    (QAPair(42, "a"), "empty question"),  # type: ignore[arg-type]
    (QAPair("Fine?", None), "empty answer"),  # type: ignore[arg-type]
    (QAPair("Fine?", "a", namespace=""), "namespace"),
    (QAPair("Fine?", "a", partition=None), "partition"),  # type: ignore[arg-type]
])
def test_bad_pairs_are_refused_and_nothing_is_written(store, pair, match):
    with pytest.raises(ValueError, match=match):
        store.add([QAPair("A good question?", "a good answer"), pair])
    assert store.count() == 0


def test_search_refuses_what_it_cannot_match(store):
    with pytest.raises(ValueError, match="empty question"):
        store.search("  ")
    with pytest.raises(ValueError, match="longer than"):
        store.search(ONE_MB)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storinfer.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_bad_store_paths(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("keep me")
    out = _cli("stats", "--store", str(f))
    assert out.returncode == 2 and "is a file" in out.stderr and f.read_text() == "keep me"
    out = _cli("check", "--store", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "No store at" in out.stderr and not (tmp_path / "nowhere").exists()
    out = _cli("export", "--store", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.jsonl"))
    assert out.returncode == 2 and not (tmp_path / "x.jsonl").exists()
    out = _cli("stats")
    assert out.returncode == 2 and "--store" in out.stderr


def test_cli_store_from_another_schema(tmp_path):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(tmp_path / "s"), settings=Settings(anonymized_telemetry=False))
    client.create_collection("storinfer", metadata={"storinfer_schema": 7}, embedding_function=None)
    del client
    out = _cli("stats", "--store", str(tmp_path / "s"))
    assert out.returncode == 2 and "schema 7" in out.stderr
