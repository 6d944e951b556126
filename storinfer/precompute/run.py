"""The offline job: documents in, deduplicated question-answer pairs in the store.

Documents are split into chunks. For each chunk two generators write questions: the
answer-aware one asks about every fact of the chunk (:mod:`storinfer.precompute.generate.fact_questions`), and the
paper's free generator (:class:`QuestionGenerator`: adaptive masking and sampling) writes others,
seeing the answer-aware questions in its mask. Questions that ask what an accepted or stored one
asks are dropped; the caller's own chain answers the rest; each answer is stored under several
keys (:mod:`storinfer.precompute.keys`: its question, other wordings, the LLM's rephrasings), with the
provenance (document id, chunk id, chunk hash, sampling parameters, expected answer).

Chunks are processed ``batch_chunks`` at a time: their question-writing calls, answers and
rephrasings each go to the model as one batch (a local model fills its batches; a served one gets
concurrent calls through ``max_concurrency``).

Resumable and incremental: a chunk is recorded as done in the store only after its pairs are
written, and chunk ids are hashes of (document id, chunk text). A killed run restarted on the
same documents skips finished chunks and redoes the one it was in (its partial pairs are
deleted first; sampling is seeded per chunk and call, so it comes out the same). A changed
document has new chunk ids: the pairs of its old chunks are deleted and only the new chunks
are generated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from storinfer.errors import ConfigError
from storinfer.precompute.answer import Answerer, answer_text  # noqa: F401  (answer_text: re-exported)
from storinfer.precompute.deduplicate import dot, duplicates
from storinfer.precompute.documents import Chunk, TextSplitter, as_documents, chunk_documents, document_id
from storinfer.precompute.generate.free import ChunkJob, GenerationConfig, QuestionGenerator
from storinfer.precompute.generate.rephrase import rephrase
from storinfer.precompute.generate.wh_text import same_answer
from storinfer.precompute.keys import Answered, chunk_keys
from storinfer.precompute.summary import PrecomputeSummary
from storinfer.protocols import ChatModel, Document
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION
from storinfer.store import QAStore

logger = logging.getLogger(__name__)


class Precomputer:
    """Turn documents into stored, deduplicated question-answer pairs.

    Setup:
        ```bash
        pip install 'storinfer[local]'   # or bring your own chat model and embedder (+ storinfer[nlp])
        ```

    Instantiate:
        ```python
        from storinfer import Precomputer, QAStore

        store = QAStore("./storinfer_db")
        pre = Precomputer(store, answer_with=my_answer_function)   # what your app answers
        ```

    Usage:
        ```python
        summary = pre.run(docs)          # storinfer.Document objects, or strings
        print(summary)                   # chunks, questions of both generators, answers, keys, pairs/hour
        pre.run(docs)                    # again: finished chunks are skipped
        ```

    Args:
        store: where pairs go.
        llm: a :class:`~storinfer.protocols.ChatModel` that writes questions (default: the
            offline Qwen2.5-1.5B). The faces adapt LangChain and LlamaIndex models to it.
        answer_with: what answers: a function ``question -> answer`` or anything with
            ``batch(questions)`` (a LangChain Runnable); default: ``llm`` answering from the chunk
            text. It may return a string, a message, or a dict with ``answer``.
        namespace, partition: where in the store (``storinfer_langchain.partition_for_model``
            gives the partition ``StorInferCache`` serves a model from).
        chunk_size, chunk_overlap: text splitter settings (characters); ``chunk_size=None``
            takes each document as one chunk (already split, e.g. an index's nodes).
        config: :class:`GenerationConfig` (both generators, masking, adaptive sampling, keys).
        batch_chunks: chunks worked on together (their calls batched). 1 makes a resumed run (with
            a model that can decode one conversation at a time, as the llama.cpp one does inside it)
            repeat an uninterrupted one exactly; larger batches may word a few questions
            differently on resume (batched decoding's numerics), never duplicate or lose a pair.
    """

    def __init__(
        self,
        store: QAStore,
        *,
        llm: ChatModel | None = None,
        answer_with: Any | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        partition: str = DEFAULT_PARTITION,
        chunk_size: int | None = 1000,
        chunk_overlap: int = 100,
        config: GenerationConfig | None = None,
        answer_max_new_tokens: int = 64,
        batch_chunks: int = 8,
    ) -> None:
        if llm is None:
            from storinfer.models import default_chat

            llm = default_chat()
        if not callable(getattr(llm, "chat_batch", None)):
            msg = (f"llm must be a storinfer ChatModel (with chat_batch), not {type(llm).__name__}: "
                   "use storinfer_langchain.Precomputer or storinfer_llamaindex.precompute for framework models.")
            raise ConfigError(msg)
        if not (isinstance(batch_chunks, int) and batch_chunks >= 1):
            msg = f"batch_chunks must be a whole number >= 1, got {batch_chunks!r}"
            raise ConfigError(msg)
        self.store = store
        self.llm = llm
        self.answerer = Answerer(llm, answer_with, max_new_tokens=answer_max_new_tokens)
        self.namespace = namespace
        self.partition = partition
        self.config = config or GenerationConfig()
        self.generator = QuestionGenerator(llm, store.embedding, self.config)
        self.splitter = TextSplitter(chunk_size, chunk_overlap) if chunk_size else None
        self.batch_chunks = batch_chunks
        self._fact_writer: Any = None

    @property
    def answer_with(self) -> Any | None:
        return self.answerer.answer_with

    @property
    def fact_writer(self) -> Any:
        """The answer-aware question writer (spaCy loads on first use; None when turned off)."""
        if self._fact_writer is None and self.config.answer_aware:
            from storinfer.precompute.generate.fact_questions import FactQuestionWriter

            cfg = self.config
            self._fact_writer = FactQuestionWriter(cfg.fact_writer, llm=self.llm, max_per_chunk=cfg.max_facts_per_chunk,
                                                   max_variants=cfg.fact_variants)
        return self._fact_writer

    def documents(self, source: Any) -> list[Document]:
        """The core Documents of ``source`` (the faces override this to take their own types)."""
        return as_documents(source)

    def chunks(self, documents: Iterable[Document]) -> list[Chunk]:
        """Chunks of the documents, in order, with stable ids (identical chunks of a document once)."""
        return chunk_documents(documents, self.splitter)

    def answer(self, questions: list[str], chunk_text: str) -> list[str]:
        """Answers to ``questions``: from the caller's chain, or the LLM reading the chunk."""
        return self.answerer(questions, chunk_text)

    # --- the run -----------------------------------------------------------------------------
    def run(
        self,
        source: Any,
        *,
        prune: bool = False,
        progress: bool = True,
        export_path: str | Path | None = None,
    ) -> PrecomputeSummary:
        """Precompute pairs for ``source`` (Documents, a loader, or strings); return a summary.

        ``prune=True`` also removes the pairs of documents that are no longer in ``source``
        (use it when ``source`` is the whole corpus). ``export_path`` writes the partition's
        pairs as JSONL at the end.
        """
        started = time.perf_counter()
        docs = self.documents(source)
        summary = PrecomputeSummary(documents=len(docs))
        chunks = self.chunks(docs)
        summary.chunks = len(chunks)
        ns, part = self.namespace, self.partition
        done = self.store.ledger.records(namespace=ns, partition=part)
        current = {c.record_id(ns, part) for c in chunks}
        doc_ids = {document_id(d) for d in docs}
        stale = {rid: m for rid, m in done.items() if rid not in current and (prune or m.get("doc_id") in doc_ids)}
        for meta in stale.values():
            summary.stale_pairs_removed += self.store.delete_where(namespace=ns, partition=part, chunk_id=str(meta["chunk_id"]))
        self.store.ledger.forget(list(stale))
        summary.stale_chunks_removed = len(stale)
        pending = [c for c in chunks if c.record_id(ns, part) not in done]
        summary.chunks_already_done = len(chunks) - len(pending)
        vectors = self.store.embedding.embed_documents([c.text for c in pending]) if pending else []

        bar_chunks = tqdm(total=len(pending), desc="chunks", unit="chunk", disable=not progress, position=0)
        bar_pairs = tqdm(desc="pairs", unit="pair", disable=not progress, position=1)
        one_at_a_time = getattr(self.llm, "sequential", None) if self.batch_chunks == 1 else None
        ordered = one_at_a_time() if callable(one_at_a_time) else contextlib.nullcontext()
        try:
            ordered.__enter__()
            for start in range(0, len(pending), self.batch_chunks):
                group = list(zip(pending[start:start + self.batch_chunks], vectors[start:start + self.batch_chunks]))
                for stored in self._process(group, summary):
                    bar_chunks.update(1)
                    bar_pairs.update(stored)
        finally:
            ordered.__exit__(None, None, None)
            bar_chunks.close()
            bar_pairs.close()
        if export_path is not None:
            export_jsonl(self.store, export_path, namespace=ns, partition=part)
        summary.wall_seconds = time.perf_counter() - started
        return summary

    def _stored_duplicate(self, question: str, vec: list[float], expected: str | None = None) -> bool:
        """Whether the partition already holds a question asking this (an answer-aware question
        with another expected answer asks something else)."""
        cfg = self.config
        near = self.store.search_by_vector(vec, namespace=self.namespace, partition=self.partition, k=1)
        if not near or not duplicates(question, near[0].question, near[0].similarity, cfg.dedup_threshold,
                                      guard=cfg.dedup_guard):
            return False
        theirs = near[0].metadata.get("expected_answer")
        return not (expected and theirs) or same_answer(expected, str(theirs))

    def _facts(self, group: list[tuple[Chunk, list[float]]], summary: PrecomputeSummary) -> list[list[Answered]]:
        """The answer-aware questions of each chunk of ``group``, deduplicated (two questions with
        different expected answers are two questions, however close they embed)."""
        if self.fact_writer is None:
            return [[] for _ in group]
        written = self.fact_writer.write_many([c.text for c, _v in group])
        if self.config.fact_writer != "syntactic":
            summary.fact_writer_calls += sum(len(w) for w in written)
        flat = [fq.question for w in written for fq in w]
        vecs = iter(self.store.embedding.embed_documents(flat) if flat else [])
        out: list[list[Answered]] = []
        for fqs in written:
            kept: list[tuple[Answered, list[float]]] = []
            for fq in fqs:
                vec = next(vecs)
                summary.fact_questions += 1
                dup = any(dot(vec, v) >= self.config.dedup_threshold and same_answer(fq.expected_answer, str(a.meta["expected_answer"]))
                          for a, v in kept)
                if dup or self._stored_duplicate(fq.question, vec, fq.expected_answer):
                    summary.fact_duplicates += 1
                    continue
                meta = {"expected_answer": fq.expected_answer, "answer_label": fq.label,
                        "source_sentence": fq.sentence[:500], "fact_writer": fq.writer}
                kept.append((Answered(fq.question, "", "facts", list(fq.variants), meta=meta, vector=vec), vec))
            summary.fact_accepted += len(kept)
            out.append([a for a, _v in kept])
        return out

    def _across_chunks(self, answered: list[list[Answered]], summary: PrecomputeSummary) -> list[list[Answered]]:
        """Drop a question that asks what a question of an earlier chunk of the same group asks
        (the store check above only sees earlier groups)."""
        cfg = self.config
        kept: list[Answered] = []
        out = []
        for items in answered:
            mine = []
            for a in items:
                expected = a.meta.get("expected_answer")
                dup = a.vector is not None and any(
                    b.vector is not None and duplicates(a.question, b.question, dot(a.vector, b.vector), cfg.dedup_threshold,
                                                        guard=cfg.dedup_guard)
                    and (not (expected and b.meta.get("expected_answer"))
                         or same_answer(str(expected), str(b.meta["expected_answer"])))
                    for b in kept)
                if dup:
                    if a.generator == "facts":
                        summary.fact_accepted -= 1
                        summary.fact_duplicates += 1
                    else:
                        summary.accepted -= 1
                        summary.rejected_duplicate += 1
                    continue
                mine.append(a)
            kept.extend(mine)
            out.append(mine)
        return out

    def _process(self, group: list[tuple[Chunk, list[float]]], summary: PrecomputeSummary) -> Iterator[int]:
        """Generate, answer and store one group of chunks; yield the pairs stored per chunk. The model
        gets each step's calls for the whole group as one batch."""
        for chunk, _v in group:  # pairs left by a run killed inside this chunk: delete, then redo it
            self.store.delete_where(namespace=self.namespace, partition=self.partition, chunk_id=chunk.chunk_id)
        t = time.perf_counter()
        facts = self._facts(group, summary)
        summary.timed("facts", t)
        t = time.perf_counter()
        free = self._free_questions(group, facts, summary) if self.config.free_generation else [[] for _ in group]
        summary.timed("free", t)
        answered = self._across_chunks([f + g for f, g in zip(facts, free)], summary)
        t = time.perf_counter()
        self._answer(group, answered, summary)
        summary.timed("answers", t)
        t = time.perf_counter()
        if self.config.rephrasings:
            self._rephrase(answered, summary)
        summary.timed("rephrasings", t)
        yield from self._store_chunks(group, answered, summary)

    def _free_questions(self, group: list[tuple[Chunk, list[float]]], facts: list[list[Answered]],
                        summary: PrecomputeSummary) -> list[list[Answered]]:
        """The free generator's questions of each chunk, its mask seeded with the chunk's nearest stored
        questions and its answer-aware ones."""
        jobs = []
        for (chunk, vector), fact_qs in zip(group, facts):
            nearest = self.store.search_by_vector(vector, namespace=self.namespace, partition=self.partition,
                                                  k=self.config.store_neighbours)
            known = [(a.question, a.vector) for a in fact_qs if a.vector is not None]
            jobs.append(ChunkJob(chunk.text, chunk.chunk_id, vector, [m.question for m in nearest], known,
                                 lambda q, v: self._stored_duplicate(q, v)))
        free: list[list[Answered]] = [[] for _ in group]
        for i, gen in enumerate(self.generator.generate_many(jobs)):
            free[i] = [Answered(g.question, "", "free", meta={"gen_temperature": round(g.temperature, 3),
                                                              "gen_top_p": round(g.top_p, 3), "gen_call": g.call},
                                vector=g.vector) for g in gen.accepted]
            summary.generation_calls += gen.calls
            summary.candidates += gen.candidates
            summary.accepted += len(gen.accepted)
            summary.rejected_duplicate += gen.duplicates
            summary.rejected_junk += gen.junk
            summary.rejected_off_topic += gen.off_topic
            summary.stop_reasons[gen.stopped] = summary.stop_reasons.get(gen.stopped, 0) + 1
        return free

    def _answer(self, group: list[tuple[Chunk, list[float]]], answered: list[list[Answered]],
                summary: PrecomputeSummary) -> None:
        """Set each question's answer: the app's chain reading its chunk, or (``fact_answers="span"``)
        the fact an answer-aware question was written for."""
        span = self.config.fact_answers == "span"
        asked = [(a, chunk) for (chunk, _v), items in zip(group, answered) for a in items
                 if not (a.generator == "facts" and span)]
        answers = self.answerer.answer_many([(a.question, chunk.text) for a, chunk in asked])
        summary.answer_calls += len(asked)
        for (a, _chunk), text in zip(asked, answers, strict=True):  # a chain that drops answers is an error
            a.answer = text
        for items in answered:
            for a in items:
                if a.generator == "facts" and span:
                    a.answer = str(a.meta["expected_answer"])

    def _rephrase(self, answered: list[list[Answered]], summary: PrecomputeSummary) -> None:
        """Other wordings of each answered question (free ones; fact ones too with ``rephrase_facts``)."""
        cfg = self.config
        todo = [a for items in answered for a in items if a.answer and (cfg.rephrase_facts or a.generator == "free")]
        for a, extra in zip(todo, rephrase(self.llm, [a.question for a in todo], per_question=cfg.rephrasings)):
            a.rephrasings = extra
            summary.rephrasings_kept += len(extra)
        summary.rephrase_calls += len(todo)

    def _store_chunks(self, group: list[tuple[Chunk, list[float]]], answered: list[list[Answered]],
                      summary: PrecomputeSummary) -> Iterator[int]:
        """Store each chunk's answers under their keys and mark the chunk done; yield the pairs stored."""
        ns, part = self.namespace, self.partition
        t = time.perf_counter()
        key_texts = list(dict.fromkeys(k for items in answered for a in items if a.answer
                                       for k in (a.question, *a.variants, *a.rephrasings)))
        vectors = dict(zip(key_texts, self.store.embedding.embed_documents(key_texts) if key_texts else []))
        for (chunk, _v), items in zip(group, answered):
            summary.empty_answers += sum(not a.answer for a in items)
            usable = [a for a in items if a.answer]
            pairs, stored = chunk_keys(chunk, usable, vectors, namespace=ns, partition=part,
                                       threshold=self.config.key_dedup_threshold)
            self.store.add(pairs)
            summary.emitted.extend(pairs)
            self.store.ledger.mark_done(
                chunk.record_id(ns, part),
                {"namespace": ns, "partition": part, "doc_id": chunk.doc_id, "chunk_id": chunk.chunk_id,
                 "chunk_hash": chunk.chunk_hash, "pairs": stored, "keys": len(pairs), "finished_at": time.time()},
            )
            summary.chunks_processed += 1
            summary.rejected_key_duplicates += len(usable) - stored
            summary.pairs_stored += stored
            summary.keys_stored += len(pairs)
            summary.timed("store", t)
            yield stored
            t = time.perf_counter()


def export_jsonl(store: QAStore, path: str | Path, *, namespace: str | None = None, partition: str | None = None) -> int:
    """Write stored pairs (of a namespace / partition) as JSON lines; return how many.

    Written to a temporary file and renamed, so a failed export never leaves half a file.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for m in store.iter_pairs(namespace=namespace, partition=partition):
            meta = {k: v for k, v in m.metadata.items() if k not in ("question", "generations")}
            fh.write(json.dumps({"id": m.id, "question": m.question, "answer": m.answer, **meta}, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n
