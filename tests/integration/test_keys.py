"""One answer, several keys: every key leads to the answer, and every way of removing a document or
an answer removes all of its keys (real Chroma, real MiniLM, real spaCy; a scripted chat model,
since these tests are about our bookkeeping)."""

from __future__ import annotations

import pytest
from helpers import lookup

from storinfer import Document, GenerationConfig, Precomputer, QAStore

DOCS = [
    Document("The Eiffel Tower was designed by Gustave Eiffel and completed in 1889 for the World's Fair. "
             "It is 330 metres tall.", id="eiffel"),
    Document("Warsaw has been the capital of Poland since 1596. About 1.8 million people live in the city.", id="warsaw"),
]


class Scripted:
    """Writes two free questions per chunk, rewords every question it is asked to, answers from a table."""

    def chat_batch(self, conversations, **settings):
        out = []
        for conv in conversations:
            last = conv[-1]["content"]
            if last.startswith("Write three different ways"):
                q = last.splitlines()[-1].rstrip("?")
                out.append(f"1. In short, {q[0].lower() + q[1:]}?\n2. Approximately, {q[0].lower() + q[1:]}?")
            elif "Write" in last:
                out.append("1. What was the Eiffel Tower built for?\n2. What is the Eiffel Tower made of?" if "Eiffel" in last
                           else "1. What is Warsaw known for?\n2. Why did Warsaw become the capital?")
            else:
                out.append("An answer from the text.")
        return out


@pytest.fixture()
def filled(tmp_path, embeddings):
    store = QAStore(tmp_path / "s", embedding=embeddings)
    pre = Precomputer(store, llm=Scripted(), config=GenerationConfig(max_calls_per_chunk=1, min_relevance=0.0))
    summary = pre.run(DOCS, progress=False)
    yield store, pre, summary
    store.close()


def keys_by_answer(store) -> dict[str, list]:
    out: dict[str, list] = {}
    for m in store.iter_pairs():
        out.setdefault(m.metadata["answer_id"], []).append(m)
    return out


def test_every_key_of_an_answer_shares_it(filled):
    store, _pre, summary = filled
    groups = keys_by_answer(store)
    assert len(groups) == summary.pairs_stored and sum(map(len, groups.values())) == summary.keys_stored
    multi = [keys for keys in groups.values() if len(keys) > 1]
    assert multi, "some answer should be stored under several keys"
    kinds = {m.metadata["key_kind"] for keys in multi for m in keys}
    assert kinds >= {"question", "variant"} and summary.rephrasings_kept > 0
    for keys in multi:
        asked = [m for m in keys if m.metadata["key_kind"] == "question"]
        assert len(asked) == 1 and len({m.answer for m in keys}) == 1
        for m in keys:  # any key finds the answer
            found = lookup(store, m.question)
            assert found.hit and found.match.answer == asked[0].answer


def test_invalidating_a_document_removes_all_its_keys(filled):
    store, pre, _ = filled
    assert {m.metadata["key_kind"] for m in store.iter_pairs()} == {"question", "variant", "rephrasing"}
    eiffel = [m for m in store.iter_pairs() if m.metadata["doc_id"] == "eiffel"]
    assert {m.metadata["key_kind"] for m in eiffel} >= {"question", "variant"}
    before = store.count()
    assert store.invalidate("eiffel") == len(eiffel)
    assert store.count() == before - len(eiffel)
    assert not [m for m in store.iter_pairs() if m.metadata["doc_id"] == "eiffel"]
    again = pre.run(DOCS, progress=False)  # the ledger forgot its chunk: it is generated again, the other not
    assert again.chunks_processed == 1 and again.chunks_already_done == 1
    assert store.count() == before


def test_a_changed_document_loses_all_its_old_keys(filled):
    store, pre, _ = filled
    old = {m.id for m in store.iter_pairs() if m.metadata["doc_id"] == "warsaw"}
    assert {m.metadata["key_kind"] for m in store.iter_pairs() if m.id in old} == {"question", "variant", "rephrasing"}
    changed = [DOCS[0], Document(DOCS[1].text.replace("1.8 million", "1.9 million"), id="warsaw")]
    summary = pre.run(changed, progress=False)
    assert summary.stale_chunks_removed == 1 and summary.stale_pairs_removed == len(old)
    now = {m.id: m for m in store.iter_pairs() if m.metadata["doc_id"] == "warsaw"}
    assert all(m.metadata["chunk_hash"] != "" for m in now.values())
    assert not any("1.8 million" in str(m.metadata.get("source_sentence", "")) for m in now.values())
    assert any("1.9 million" in str(m.metadata.get("source_sentence", "")) for m in now.values())


def test_deleting_an_answer_removes_all_its_keys(filled):
    store, _pre, _ = filled
    groups = keys_by_answer(store)
    answer_id, keys = max(groups.items(), key=lambda kv: len(kv[1]))
    assert len(keys) > 1
    assert store.delete_where(partition="default", answer_id=answer_id) == len(keys)
    assert answer_id not in keys_by_answer(store)
    for m in keys:
        found = lookup(store, m.question)
        assert not (found.hit and found.match.metadata.get("answer_id") == answer_id)


def test_source_sentences_are_stored_once_and_go_with_their_document(filled):
    store, _pre, _ = filled
    facts = [m for m in store.iter_pairs() if m.metadata["generator"] == "facts"]
    assert facts and all(m.metadata["source_sentence"] in DOCS[0].text + DOCS[1].text for m in facts)
    sentences = store.sentences.collection.count()
    assert sentences == len({m.metadata["sentence_id"] for m in facts}) < len(facts)  # one row per sentence
    found = lookup(store, facts[0].question)  # what a lookup returns carries the sentence too
    assert found.match.metadata["source_sentence"] == facts[0].metadata["source_sentence"]
    store.invalidate("eiffel")
    left = store.sentences.collection.get(include=["metadatas"])["metadatas"]
    assert left and {m["doc_id"] for m in left} == {"warsaw"}
    assert store.check() == []
