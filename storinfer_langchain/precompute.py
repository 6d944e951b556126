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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from tqdm.auto import tqdm

from storinfer_langchain.generation import GenerationConfig, QuestionGenerator, chat_texts
from storinfer_langchain.guard import conflict
from storinfer_langchain.store import DEFAULT_NAMESPACE, DEFAULT_PARTITION, QAPair, QAStore
from storinfer_langchain.text import content_hash, sha

logger = logging.getLogger(__name__)

ANSWER_SYSTEM = "Answer the question using only the text. Reply with one short sentence."

AnswerSource = Runnable | Callable[[str], Any]


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    chunk_id: str
    chunk_hash: str
    text: str

    def record_id(self, namespace: str, partition: str) -> str:
        return sha(namespace, partition, self.chunk_id)


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
        d = asdict(self)
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


def document_id(doc: Document) -> str:
    """A document's stable id: its ``id``, else ``metadata['source']``, else a hash of its text."""
    if doc.id:
        return str(doc.id)
    for key in ("source", "file_path", "doc_id", "id"):
        if doc.metadata.get(key):
            return str(doc.metadata[key])
    return "sha-" + content_hash(doc.page_content)


def as_documents(source: Any) -> list[Document]:
    """LangChain Documents from Documents, a document loader, or plain strings."""
    if hasattr(source, "lazy_load"):
        source = source.lazy_load()
    docs: list[Document] = []
    for i, item in enumerate(source):
        if isinstance(item, Document):
            doc = item
        elif isinstance(item, str):
            doc = Document(page_content=item)
        else:
            msg = (
                f"Item {i} is a {type(item).__name__}; precompute takes LangChain Documents, a LangChain "
                "document loader, or strings (LlamaIndex documents: use storinfer_llamaindex.precompute)."
            )
            raise TypeError(msg)
        if not isinstance(doc.page_content, str):
            msg = f"Document {i} has {type(doc.page_content).__name__} content; text (str) is needed."
            raise TypeError(msg)
        docs.append(doc)
    return docs


def answer_text(output: Any) -> str:
    """The answer text in whatever a chain returned (str, message, dict, LlamaIndex Response)."""
    if isinstance(output, str):
        return output.strip()
    if isinstance(output, BaseMessage):
        return output.text.strip() if isinstance(output.text, str) else str(output.content).strip()
    if isinstance(output, dict):
        for key in ("answer", "result", "output", "response", "text"):
            if isinstance(output.get(key), str):
                return output[key].strip()
    response = getattr(output, "response", None)
    if isinstance(response, str):
        return response.strip()
    msg = (
        f"Cannot read an answer from a {type(output).__name__}: have the chain return a string, a message, "
        "or a dict with an 'answer' key (e.g. end it with StrOutputParser())."
    )
    raise TypeError(msg)


class Precomputer:
    """Turn documents into stored, deduplicated question-answer pairs.

    Setup:
        ```bash
        make setup
        ```

    Instantiate:
        ```python
        from storinfer_langchain import Precomputer, QAStore

        store = QAStore("./storinfer_db")
        pre = Precomputer(store, answer_with=my_rag_chain)   # the chain users talk to
        ```

    Usage:
        ```python
        summary = pre.run(docs)          # Documents, a loader, or strings
        print(summary)                   # chunks, candidates, accepted, duplicates, junk, pairs/call
        pre.run(docs)                    # again: finished chunks are skipped
        ```

    Args:
        store: where pairs go.
        llm: chat model that writes questions (default: the offline SmolLM2).
        answer_with: the chain that answers, called with the question string; default: ``llm``
            answering from the chunk text. Return a string, a message, or a dict with ``answer``.
        namespace, partition: where in the store (see :func:`partition_for_model` to precompute
            for ``StorInferCache``).
        chunk_size, chunk_overlap: text splitter settings (characters); ``chunk_size=None``
            takes each document as one chunk (already split, e.g. an index's nodes).
        config: :class:`GenerationConfig` (masking, adaptive sampling, budgets, thresholds).
    """

    def __init__(
        self,
        store: QAStore,
        *,
        llm: BaseChatModel | None = None,
        answer_with: AnswerSource | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        partition: str = DEFAULT_PARTITION,
        chunk_size: int | None = 1000,
        chunk_overlap: int = 100,
        config: GenerationConfig | None = None,
        answer_max_new_tokens: int = 64,
    ) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        if llm is None:
            from storinfer_langchain.llms import default_chat_model

            llm = default_chat_model()
        if answer_with is not None and not (isinstance(answer_with, Runnable) or callable(answer_with)):
            msg = "answer_with must be a Runnable (e.g. your RAG chain) or a function question -> answer."
            raise TypeError(msg)
        if chunk_size is not None and (chunk_size < 50 or not (0 <= chunk_overlap < chunk_size)):
            msg = f"chunk_size must be >= 50 and 0 <= chunk_overlap < chunk_size (got {chunk_size}, {chunk_overlap})."
            raise ValueError(msg)
        self.store = store
        self.llm = llm
        self.answer_with = answer_with
        self.namespace = namespace
        self.partition = partition
        self.config = config or GenerationConfig()
        self.generator = QuestionGenerator(llm, store.embedding, self.config)
        self.splitter = (
            RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap) if chunk_size else None
        )
        self.answer_max_new_tokens = answer_max_new_tokens

    # --- chunks ------------------------------------------------------------------------------
    def chunks(self, documents: Iterable[Document]) -> list[Chunk]:
        """Chunks of the documents, in order, with stable ids (identical chunks of a document once)."""
        out: list[Chunk] = []
        seen: set[str] = set()
        for doc in documents:
            doc_id = document_id(doc)
            texts = self.splitter.split_text(doc.page_content) if self.splitter else [doc.page_content]
            for text in texts:
                text = text.strip()
                if not text:
                    continue
                chunk_id = sha(doc_id, text, length=24)
                if chunk_id not in seen:
                    seen.add(chunk_id)
                    out.append(Chunk(doc_id, chunk_id, content_hash(text), text))
        return out

    # --- answers -----------------------------------------------------------------------------
    def answer(self, questions: list[str], chunk_text: str) -> list[str]:
        """Answers to ``questions``: from the caller's chain, or the LLM reading the chunk."""
        if not questions:
            return []
        if self.answer_with is None:
            convs = [[SystemMessage(ANSWER_SYSTEM), HumanMessage(f"Text: {chunk_text}\n\nQuestion: {q}")] for q in questions]
            return [a.strip() for a in chat_texts(self.llm, convs, temperature=None, top_p=None, seed=None,
                                                  max_new_tokens=self.answer_max_new_tokens)]
        if isinstance(self.answer_with, Runnable):
            outputs = self.answer_with.batch(questions)
        else:
            outputs = [self.answer_with(q) for q in questions]
        return [answer_text(o) for o in outputs]

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
        docs = as_documents(source)
        summary = PrecomputeSummary(documents=len(docs))
        chunks = self.chunks(docs)
        summary.chunks = len(chunks)
        ns, part = self.namespace, self.partition
        done = self.store.chunk_records(namespace=ns, partition=part)
        current = {c.record_id(ns, part) for c in chunks}
        doc_ids = {document_id(d) for d in docs}
        stale = {rid: m for rid, m in done.items() if rid not in current and (prune or m.get("doc_id") in doc_ids)}
        for meta in stale.values():
            summary.stale_pairs_removed += self.store.delete_where(namespace=ns, partition=part, chunk_id=str(meta["chunk_id"]))
        self.store.forget_chunks(list(stale))
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
            return bool(near) and near[0].similarity >= cfg.dedup_threshold and (
                not cfg.dedup_guard or conflict(question, near[0].question) is None
            )

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
        self.store.mark_chunk_done(
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
