"""QAStore on real Chroma on disk with the real all-MiniLM-L6-v2."""

from __future__ import annotations

import time

import pytest
from helpers import chroma_server, lookup, read_only, run_python
from langchain_core.embeddings import DeterministicFakeEmbedding

from storinfer import (
    ConfigError,
    EmbeddingMismatchError,
    QAPair,
    Reason,
    SchemaVersionError,
    StoreError,
    StoreFront,
    ThresholdPolicy,
    Verifier,
    VerifierPolicy,
)
from storinfer_langchain import QAStore

PAIRS = [
    QAPair("Who won Super Bowl 50?", "The Denver Broncos.", doc_id="d1", chunk_id="c1", chunk_hash="h1"),
    QAPair("Which NFL team represented the NFC at Super Bowl 50?", "The Carolina Panthers.", doc_id="d1", chunk_id="c1"),
    QAPair("Where was Super Bowl 50 played?", "Levi's Stadium in Santa Clara.", doc_id="d1", chunk_id="c2"),
]


def test_exact_paraphrase_and_unrelated(store):
    store.add(PAIRS)
    exact = lookup(store, "who won super bowl 50")
    assert exact.hit and exact.reason == "exact" and exact.match.answer == "The Denver Broncos."
    para = lookup(store, "Who was the winner of Super Bowl 50?")
    assert para.hit and para.reason == "similar" and para.match.answer == "The Denver Broncos."
    assert {k: para.match.metadata[k] for k in ("doc_id", "chunk_id", "chunk_hash")} == {"doc_id": "d1", "chunk_id": "c1",
                                                                                      "chunk_hash": "h1"}
    assert not lookup(store, "What is the capital of France?").hit


def test_look_alike_is_not_a_hit(store):
    store.add(PAIRS + [QAPair("What halftime performer previously headlined Super Bowl XLVIII?", "Bruno Mars")])
    # cosine 0.989, far above any floor: only a rule of the verifier stops it
    found = lookup(store, "What halftime performer previously headlined Super Bowl XLVII?")
    assert not found.hit and found.reason is Reason.REFUSED
    assert found.best_similarity > 0.98 and "XLVII" in found.rejected[0][1]
    # AFC / NFC embed at 0.94: refused by the names rule; 0.2's path (verifier=False) says the same
    loose = VerifierPolicy(Verifier.default().with_operating_point(floor=0.9))
    found = lookup(store, "Which NFL team represented the AFC at Super Bowl 50?", policy=loose)
    assert not found.hit and found.reason is Reason.REFUSED
    old = lookup(store, "Which NFL team represented the AFC at Super Bowl 50?", policy=ThresholdPolicy(0.9))
    assert not old.hit and old.reason is Reason.REFUSED
    assert found.rejected and "AFC" in found.rejected[0][1]


def test_adding_again_is_idempotent_and_updates(store):
    store.add(PAIRS)
    store.add(PAIRS)
    assert store.count() == 3
    store.add([QAPair("WHO WON SUPER BOWL 50", "Denver.")])
    assert store.count() == 3
    assert lookup(store, "Who won Super Bowl 50?").match.answer == "Denver."


def test_invalid_pairs_write_nothing(store):
    with pytest.raises(ValueError, match="empty answer"):
        store.add([QAPair("Fine question?", "fine answer"), QAPair("Empty answer?", "  ")])
    with pytest.raises(ValueError, match="empty question"):
        store.add([QAPair(" ", "answer")])
    assert store.count() == 0


def test_partition_is_a_hard_prefilter(store):
    # An identical question in partition A must not shadow a paraphrase in partition B.
    store.add([QAPair("Who won Super Bowl 50?", "A's answer", partition="A"),
               QAPair("Who was the winner of Super Bowl 50?", "B's answer", partition="B")])
    found = lookup(store, "Who won Super Bowl 50?", partition="B")
    assert found.hit and found.match.answer == "B's answer" and found.reason == "similar"
    assert not lookup(store, "Who won Super Bowl 50?", partition="C").hit


def test_namespace_is_a_hard_prefilter(store):
    store.add([QAPair("Who won Super Bowl 50?", "tenant one's answer", namespace="t1")])
    assert not lookup(store, "Who won Super Bowl 50?", namespace="t2").hit
    assert lookup(store, "Who won Super Bowl 50?", namespace="t1").match.answer == "tenant one's answer"
    assert store.search("Who won Super Bowl 50?", namespace="t2") == []


def test_long_prompt_sharing_a_prefix_is_a_miss_not_a_wrong_hit(store):
    store.add(PAIRS)
    long_q = "Who won Super Bowl 50? " + "Ignore that and tell me about the weather. " * 2500  # ~100k chars
    found = lookup(store, long_q)
    assert not found.hit and found.reason is Reason.TOO_LONG
    # Under the character cap but past the model's 256 tokens: still a miss.
    store.max_query_chars = 10**6
    assert lookup(store, long_q).reason is Reason.TOO_LONG


def test_ttl_expiry_and_purge(store):
    store.add([QAPair("Who won Super Bowl 50?", "old", origin="runtime", expires_at=time.time() + 0.5),
               QAPair("Where was Super Bowl 50 played?", "Levi's Stadium")])
    assert lookup(store, "Who won Super Bowl 50?").hit
    later = time.time() + 1
    assert not lookup(store, "Who won Super Bowl 50?", now=later).hit
    assert not lookup(store, "Who was the winner of Super Bowl 50?", now=later).hit
    assert store.purge_expired(now=later) == 1
    assert store.count() == 1


def test_delete_where_and_clear(store):
    store.add(PAIRS + [QAPair("Who won Super Bowl 50?", "x", namespace="other")])
    assert store.delete_where(chunk_id="c1") == 2
    with pytest.raises(ValueError, match="at least one filter"):
        store.delete_where()
    assert store.clear() == 1  # the default namespace only
    assert store.count() == 1 and store.count(namespace="other") == 1


def test_persists_across_reopen(tmp_path, embeddings):
    with QAStore(tmp_path / "s", embedding=embeddings) as s:
        s.add(PAIRS)
    with QAStore(tmp_path / "s", embedding=embeddings) as s:
        assert s.count() == 3
        assert lookup(s, "Who was the winner of Super Bowl 50?").hit


def test_store_from_another_embedder_is_refused(tmp_path, embeddings):
    with QAStore(tmp_path / "s", embedding=embeddings) as s:
        s.add(PAIRS)
    with pytest.raises(EmbeddingMismatchError, match="all-MiniLM-L6-v2"):
        QAStore(tmp_path / "s", embedding=DeterministicFakeEmbedding(size=384), embedding_name="fake-384")
    with pytest.raises(EmbeddingMismatchError, match="dims"):
        QAStore(tmp_path / "s", embedding=DeterministicFakeEmbedding(size=16))
    with QAStore(tmp_path / "s", embedding=embeddings) as s:  # still intact
        assert s.count() == 3


def test_foreign_collection_and_other_schema_are_refused(tmp_path, embeddings):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(tmp_path / "s"), settings=Settings(anonymized_telemetry=False))
    client.create_collection("storinfer", embedding_function=None)
    client.create_collection("future", metadata={"storinfer_schema": 99}, embedding_function=None)
    del client
    with pytest.raises(SchemaVersionError, match="not made by StorInfer"):
        QAStore(tmp_path / "s", embedding=embeddings)
    with pytest.raises(SchemaVersionError, match="schema 99"):
        QAStore(tmp_path / "s", embedding=embeddings, collection_name="future")


def test_retriever_returns_answers_with_metadata(store):
    store.add(PAIRS)
    docs = store.as_retriever(k=2).invoke("Who won the Super Bowl?")
    assert docs[0].page_content == "The Denver Broncos."
    meta = docs[0].metadata
    assert meta["question"] == "Who won Super Bowl 50?" and meta["doc_id"] == "d1" and 0 < meta["similarity"] <= 1
    assert docs[0].metadata["similarity"] >= docs[1].metadata["similarity"]
    assert store.as_retriever(score_threshold=0.99).invoke("Who won the Super Bowl?") == []
    assert store.as_retriever().invoke("") == []


async def test_retriever_async(store):
    store.add(PAIRS)
    docs = await store.as_retriever(k=1).ainvoke("Where was Super Bowl 50 played?")
    assert docs[0].page_content == "Levi's Stadium in Santa Clara."


def test_second_process_gets_a_clear_error(store):
    code = (
        "from storinfer import QAStore, StoreLockedError\n"
        f"try:\n    QAStore({store.path!r})\nexcept StoreLockedError as e:\n    print('LOCKED', e)\n"
    )
    out = run_python(code)
    assert "LOCKED" in out.stdout, out.stderr[-2000:]
    assert "chroma run --path" in out.stdout


def test_read_only_directory_is_refused_clearly(tmp_path, embeddings):
    with QAStore(tmp_path / "ro", embedding=embeddings) as s:
        s.add(PAIRS)
    before = sorted((p.name, p.stat().st_size) for p in (tmp_path / "ro").rglob("*") if p.is_file())
    with read_only(tmp_path / "ro"):
        with pytest.raises(StoreError, match="not writable"):
            QAStore(tmp_path / "ro", embedding=embeddings)
        assert sorted((p.name, p.stat().st_size) for p in (tmp_path / "ro").rglob("*") if p.is_file()) == before
    with QAStore(tmp_path / "ro", embedding=embeddings) as s:
        assert s.count() == 3  # nothing lost


def test_chroma_server_mode(tmp_path, embeddings):
    with chroma_server(tmp_path / "server-data") as port:
        a = QAStore(host="127.0.0.1", port=port, embedding=embeddings)
        b = QAStore(host="127.0.0.1", port=port, embedding=embeddings)  # a second replica
        a.add(PAIRS)
        found = lookup(b, "Who was the winner of Super Bowl 50?")
        assert found.hit and found.match.answer == "The Denver Broncos."
        with pytest.raises(EmbeddingMismatchError):
            QAStore(host="127.0.0.1", port=port, embedding=DeterministicFakeEmbedding(size=384))


def test_a_recorded_operating_point_puts_every_client_on_the_verifier(tmp_path, embeddings):
    from storinfer import HeadPoint
    from storinfer.match.point import record_point, recorded_point

    path = tmp_path / "op"
    shipped = Verifier.default()
    with QAStore(path, embedding=embeddings) as store:
        assert recorded_point(store, shipped.point) is None  # nothing recorded: the shipped one
        assert VerifierPolicy().bind(store).active == shipped
        store.add([QAPair("What is the weather forecast for today?", "Sunny.", partition="p"),
                   QAPair("Set an alarm for 7 am.", "Alarm set for 7 am.", partition="p")])
        assert not lookup(store, "what is today's weather forecast", partition="p", policy=ThresholdPolicy()).hit  # 0.88 < 0.95
        record_point(store, "question", HeadPoint(0.80, 0.5), shipped.point, probes=40)
        record_point(store, "fact", HeadPoint(0.85, 0.6), shipped.point)
    with QAStore(path, embedding=embeddings) as store:  # another client, later
        assert store.setting("operating_point")["question"]["probes"] == 40
        verifier = VerifierPolicy().bind(store).active
        assert verifier.question.floor == 0.80 and (verifier.fact.floor, verifier.fact.cut) == (0.85, 0.6)
        front = StoreFront(store, partition="p", learner=None)
        found = front.lookup("what is today's weather forecast")
        assert found.hit and found.match.answer == "Sunny." and found.score is not None
        refused = front.lookup("Set an alarm for 8 am.")
        assert not refused.hit and any(why.startswith("rule: numbers differ") for _m, why in refused.rejected)
        assert front.stats()["refusals"]["rule:numbers"] >= 1
        strict = StoreFront(store, partition="p", policy=VerifierPolicy(shipped.with_operating_point(floor=0.9)), learner=None)
        assert not strict.lookup("what is today's weather forecast").hit
        with pytest.raises(ConfigError, match="head"):
            record_point(store, "answers", HeadPoint(0.8, 0.5), shipped.point)


def test_a_store_front_opens_a_folder_and_refuses_anything_else(tmp_path):
    front = StoreFront(tmp_path / "db", learner=None)  # QAStore(folder), with the default embedder
    front.remember("Who won Super Bowl 50?", "The Denver Broncos")
    front.flush()
    assert front.lookup("Who won Super Bowl 50?").match.answer == "The Denver Broncos"
    assert QAStore(tmp_path / "db").count() == 1  # written where it was asked
    with pytest.raises(ConfigError, match="QAStore or the folder"):
        StoreFront(42)  # type: ignore[arg-type]
