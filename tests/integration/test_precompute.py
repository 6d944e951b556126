"""Precompute with the real SmolLM2 on SQuAD paragraphs: stored, deduplicated, with provenance,
incremental on changed documents (kill -9 and resume: test_resume.py)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from storinfer.errors import ConfigError
from storinfer.match.lookalike import conflict
from storinfer.precompute.generate.free import GenerationConfig
from storinfer.precompute.generate.wh_text import same_answer
from storinfer.text import content_hash
from storinfer_langchain import QAStore
from storinfer_langchain.precompute import Precomputer, export_jsonl

SMALL = dict(max_calls_per_chunk=1, max_per_chunk=3, max_new_tokens=80, max_facts_per_chunk=3, rephrasings=1)


def small_precomputer(store, chat, **kw):
    return Precomputer(store, llm=chat, config=GenerationConfig(**SMALL, **kw.pop("config", {})), answer_max_new_tokens=24, **kw)


@pytest.fixture(scope="module")
def three_docs(squad):
    return [Document(page_content=squad["paragraphs"][i]["context"], id=f"p{i:03d}") for i in (0, 5, 33)]


@pytest.fixture(scope="module")
def precomputed(tmp_path_factory, embeddings, chat, three_docs):
    store = QAStore(tmp_path_factory.mktemp("pre") / "store", embedding=embeddings)
    pre = small_precomputer(store, chat)
    summary = pre.run(three_docs, progress=False)
    yield store, pre, summary
    store.close()


def test_pairs_are_stored_with_provenance(precomputed, three_docs):
    store, pre, summary = precomputed
    pairs = list(store.iter_pairs())
    assert summary.keys_stored == len(pairs) > summary.pairs_stored > 0
    assert len({m.metadata["answer_id"] for m in pairs}) == summary.pairs_stored  # each answer once, under its keys
    texts = {c.chunk_id: c.text for c in pre.chunks(three_docs)}
    generators = set()
    for m in pairs:
        meta = m.metadata
        assert meta["origin"] == "precomputed"
        assert meta["doc_id"] in {"p000", "p005", "p033"}
        assert meta["chunk_hash"] == content_hash(texts[meta["chunk_id"]])
        generators.add(meta["generator"])
        if meta["generator"] == "free":
            assert 0.3 <= meta["gen_temperature"] <= 1.3 and 0.7 <= meta["gen_top_p"] <= 1.0
        else:  # answer-aware: the fact asked for, its type and sentence are kept
            assert meta["expected_answer"] and meta["answer_label"]
            assert meta["expected_answer"].lower() in meta["source_sentence"].lower()
            assert meta["source_sentence"] in texts[meta["chunk_id"]]
        assert m.question.endswith("?") and m.answer
    assert generators == {"free", "facts"}  # both generators run by default


def test_no_two_answered_questions_of_a_chunk_are_duplicates(precomputed, embeddings):
    """Which questions get an answer: none asks what another asks (0.90 and the look-alike check,
    or, for answer-aware questions, another expected answer). Keys of one answer may be closer."""
    store, pre, _ = precomputed
    by_chunk: dict[str, list] = {}
    for m in store.iter_pairs():
        if m.metadata["key_kind"] == "question":
            by_chunk.setdefault(m.metadata["chunk_id"], []).append(m)
    for asked in by_chunk.values():
        vecs = np.array(embeddings.embed_documents([m.question for m in asked]))
        for i, j in itertools.combinations(range(len(asked)), 2):
            if vecs[i] @ vecs[j] >= pre.config.dedup_threshold:
                a, b = asked[i], asked[j]
                different = (a.metadata.get("expected_answer") and b.metadata.get("expected_answer")
                             and not same_answer(a.metadata["expected_answer"], b.metadata["expected_answer"]))
                assert different or conflict(a.question, b.question), (a.question, b.question)


def test_keys_of_one_chunk_are_below_the_key_threshold(precomputed, embeddings):
    store, pre, _ = precomputed
    by_chunk: dict[str, list[str]] = {}
    for m in store.iter_pairs():
        by_chunk.setdefault(m.metadata["chunk_id"], []).append(m.question)
    for keys in by_chunk.values():
        vecs = np.array(embeddings.embed_documents(keys))
        sims = vecs @ vecs.T - np.eye(len(keys)) * 2
        assert sims.max() < pre.config.key_dedup_threshold


def test_summary_adds_up(precomputed):
    store, _pre, s = precomputed
    assert s.documents == 3 and s.chunks == 3 and s.chunks_processed == 3
    assert s.accepted + s.fact_accepted == s.pairs_stored + s.empty_answers + s.rejected_key_duplicates
    assert s.fact_questions == s.fact_accepted + s.fact_duplicates
    assert s.candidates == s.accepted + s.rejected_duplicate + s.rejected_off_topic
    assert s.answer_calls == s.accepted + s.fact_accepted
    assert s.rephrase_calls <= s.accepted  # the free generator's questions are reworded (answer-aware ones have variants)
    assert s.keys_stored == store.count()
    assert 1 <= s.generation_calls <= 3 * SMALL["max_calls_per_chunk"]
    assert s.pairs_per_llm_call == pytest.approx(s.pairs_stored / (s.generation_calls + s.answer_calls + s.rephrase_calls))
    assert "pairs per LLM call" in str(s) and s.pairs_per_hour > 0


def test_a_second_run_does_nothing(precomputed, three_docs):
    store, pre, first = precomputed
    again = pre.run(three_docs, progress=False)
    assert again.chunks_already_done == 3 and again.chunks_processed == 0 and again.llm_calls == 0
    assert store.count() == first.keys_stored


def test_export_matches_the_store(precomputed, tmp_path):
    store, _pre, _ = precomputed
    n = export_jsonl(store, tmp_path / "pairs.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert n == len(lines) == store.count()
    assert {(d["question"], d["answer"]) for d in lines} == {(m.question, m.answer) for m in store.iter_pairs()}
    assert all(d["chunk_id"] and d["doc_id"] for d in lines)


def test_literal_dedup_threshold(tmp_path, embeddings, chat, three_docs):
    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        small_precomputer(store, chat, config={"dedup_guard": False}).run(three_docs[:1], progress=False)
        questions = [m.question for m in store.iter_pairs()
                     if m.metadata["generator"] == "free" and m.metadata["key_kind"] == "question"]
        vecs = np.array(embeddings.embed_documents(questions))
        sims = vecs @ vecs.T - np.eye(len(questions)) * 2
        assert sims.max() < 0.90


class NamesChat:
    """A chat model (the engine's protocol) asking about the names in each chunk: for tests of
    our bookkeeping, where what the LLM writes does not matter (the real model runs above)."""

    def chat_batch(self, conversations, **settings):
        out = []
        for conv in conversations:
            text = conv[-1]["content"]
            names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]{3,}\b", text.split("Text:", 1)[-1])))[:3]
            out.append("\n".join(f"{i + 1}. What is known about {n}?" for i, n in enumerate(names)))
        return out


def test_changed_document_replaces_its_old_pairs_only(tmp_path, embeddings, three_docs):
    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        pre = Precomputer(store, llm=NamesChat(), answer_with=lambda q: f"about {q}",
                          config=GenerationConfig(**SMALL, min_relevance=0.0))
        pre.run(three_docs, progress=False)
        before = {m.id: m.metadata["chunk_id"] for m in store.iter_pairs()}
        old_chunk = {m.metadata["chunk_id"] for m in store.iter_pairs() if m.metadata["doc_id"] == "p005"}
        assert old_chunk  # p005 had pairs to lose
        changed = [three_docs[0], Document(page_content=three_docs[1].page_content.replace("three", "four"), id="p005"),
                   three_docs[2]]
        summary = pre.run(changed, progress=False)
        assert summary.stale_chunks_removed == 1 and summary.chunks_processed == 1 and summary.chunks_already_done == 2
        after = {m.id: m.metadata["chunk_id"] for m in store.iter_pairs()}
        assert not old_chunk & set(after.values())  # the old chunk's pairs are gone
        kept = {i: c for i, c in before.items() if c not in old_chunk}
        assert kept.items() <= after.items()  # other documents' pairs untouched
        # A document left out of a run stays, unless the run prunes.
        assert pre.run(changed[:2], progress=False).stale_chunks_removed == 0
        pruned = pre.run(changed[:2], progress=False, prune=True)
        assert pruned.stale_chunks_removed == 1
        assert not [m for m in store.iter_pairs() if m.metadata["doc_id"] == "p033"]


def test_answers_come_from_the_callers_chain(tmp_path, embeddings, three_docs):
    chain = RunnableLambda(lambda q: {"answer": f"CHAIN SAYS: {q}"})
    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        Precomputer(store, llm=NamesChat(), answer_with=chain, config=GenerationConfig(**SMALL, min_relevance=0.0)).run(
            three_docs[:1], progress=False)
        pairs = list(store.iter_pairs())
        asked = {m.metadata["answer_id"]: m.question for m in pairs if m.metadata["key_kind"] == "question"}
        assert pairs and all(m.answer == f"CHAIN SAYS: {asked[m.metadata['answer_id']]}" for m in pairs)
        assert len(asked) < len(pairs)  # other keys point to the answer of the question asked


def test_bad_answer_chains_fail_clearly(tmp_path, embeddings, chat, three_docs):
    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        with pytest.raises(TypeError, match="StrOutputParser"):
            small_precomputer(store, chat, answer_with=RunnableLambda(lambda q: 42)).run(three_docs[:1], progress=False)
        with pytest.raises(ConfigError, match="Runnable"):
            Precomputer(store, llm=chat, answer_with="not a chain")


def test_bad_input_files_stop_the_run_and_leave_the_store_alone(tmp_path, embeddings):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Super Bowl 50 was played at Levi's Stadium in Santa Clara.")
    (docs / "latin1.txt").write_bytes("Caf\xe9 au lait est une boisson.".encode("latin-1"))
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    out = subprocess.run([sys.executable, "-m", "storinfer.cli", "precompute", str(docs), "--store",
                          str(tmp_path / "store")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "latin1.txt: not UTF-8" in out.stderr and "binary.txt: binary file" in out.stderr
    assert "--skip-bad-files" in out.stderr and "nothing was stored" in out.stderr
    assert not (tmp_path / "store").exists()


class Crashing(NamesChat):
    """NamesChat that fails on its ``n``-th call: a crash in the middle of a batch of chunks."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def chat_batch(self, conversations, **settings):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("the model server went away")
        return super().chat_batch(conversations, **settings)


def test_a_batched_run_that_crashes_resumes_without_losing_or_doubling_keys(tmp_path, embeddings, squad):
    docs = [Document(page_content=squad["paragraphs"][i]["context"], id=f"p{i:03d}") for i in range(5)]
    cfg = GenerationConfig(**SMALL, min_relevance=0.0)
    with QAStore(tmp_path / "s", embedding=embeddings) as store:
        crashing = Precomputer(store, llm=Crashing(n=3), answer_with=lambda q: f"about {q}", config=cfg, batch_chunks=2)
        with pytest.raises(RuntimeError, match="went away"):
            crashing.run(docs, progress=False)
        done_before = len(store.ledger.records(namespace="default", partition="default"))
        assert 0 < done_before < 5  # the first batch of two chunks was stored, the second was not
        resumed = Precomputer(store, llm=NamesChat(), answer_with=lambda q: f"about {q}", config=cfg, batch_chunks=2)
        summary = resumed.run(docs, progress=False)
        assert summary.chunks_already_done == done_before and summary.chunks_processed == 5 - done_before
        assert store.check() == []
        ids = [m.id for m in store.iter_pairs()]
        assert len(ids) == len(set(ids))
        assert {m.metadata["doc_id"] for m in store.iter_pairs()} == {d.id for d in docs}
        by_chunk = {m.metadata["chunk_id"] for m in store.iter_pairs()}
        assert len(by_chunk) == 5
