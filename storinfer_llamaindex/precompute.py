"""Precompute from LlamaIndex sources through the same code as LangChain's (no second copy)."""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document

from storinfer_langchain.precompute import Precomputer, PrecomputeSummary
from storinfer_langchain.store import QAStore
from storinfer_llamaindex.models import StorInferLLM


def _node_to_document(node: Any) -> Document:
    text = node.get_content()
    doc_id = getattr(node, "ref_doc_id", None) or node.node_id
    meta = {k: v for k, v in (node.metadata or {}).items() if isinstance(v, (str, int, float, bool))}
    return Document(page_content=text, id=str(doc_id), metadata={**meta, "node_id": node.node_id})


def to_langchain_documents(source: Any) -> tuple[list[Document], bool]:
    """LangChain Documents from a LlamaIndex index, reader, Documents or nodes.

    Returns ``(documents, already_chunked)``: an index's nodes are already chunks (so stored
    pairs point at nodes the query engine can re-attach); Documents are split by the
    precompute's splitter. A document's id is its ``file_path`` / ``source`` metadata when
    present (stable across runs: readers give fresh random ids), else its ``doc_id``.
    """
    if hasattr(source, "docstore") and hasattr(source, "index_struct"):  # an index
        nodes = sorted(source.docstore.docs.values(), key=lambda n: (str(getattr(n, "ref_doc_id", "")), n.node_id))
        return [_node_to_document(n) for n in nodes], True
    if hasattr(source, "load_data"):  # a reader
        source = source.load_data()
    docs = []
    for i, item in enumerate(source):
        text = item.get_content() if hasattr(item, "get_content") else getattr(item, "text", None)
        if not isinstance(text, str):
            msg = f"Item {i} ({type(item).__name__}) is not a LlamaIndex Document or node with text."
            raise TypeError(msg)
        meta = dict(getattr(item, "metadata", None) or {})
        doc_id = meta.get("file_path") or meta.get("source") or getattr(item, "doc_id", None) or getattr(item, "id_", None)
        clean = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}
        docs.append(Document(page_content=text, id=str(doc_id) if doc_id else None, metadata=clean))
    return docs, False


def precompute(
    source: Any,
    store: QAStore,
    *,
    answer_with: Any | None = None,
    llm: Any | None = None,
    progress: bool = True,
    prune: bool = False,
    export_path: str | None = None,
    **precomputer_kwargs: Any,
) -> PrecomputeSummary:
    """Precompute question-answer pairs from a LlamaIndex index, reader, or Documents.

    ``answer_with`` may be a LlamaIndex query engine (its ``query`` answers each question, so
    stored answers are what the app says), a LangChain Runnable, or a function. ``llm`` writes
    the questions: a LangChain chat model, a :class:`StorInferLLM`, or None for the offline
    SmolLM2. Other arguments go to :class:`~storinfer_langchain.precompute.Precomputer`.

    Example:
        ```python
        engine = index.as_query_engine(llm=default_llm())
        summary = precompute(index, QAStore("./storinfer_db"), answer_with=engine)
        ```
    """
    docs, chunked = to_langchain_documents(source)
    if answer_with is not None and hasattr(answer_with, "query") and not callable(answer_with):
        engine = answer_with
        answer_with = engine.query
    if isinstance(llm, StorInferLLM):  # use the LangChain chat model inside
        llm = llm.langchain
    if chunked:
        precomputer_kwargs.setdefault("chunk_size", None)
    pre = Precomputer(store, llm=llm, answer_with=answer_with, **precomputer_kwargs)
    return pre.run(docs, progress=progress, prune=prune, export_path=export_path)
