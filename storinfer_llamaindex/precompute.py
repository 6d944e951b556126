"""Precompute from LlamaIndex sources with any LlamaIndex LLM, through the engine's precompute."""

from __future__ import annotations

from typing import Any

from storinfer.precompute import Precomputer, PrecomputeSummary
from storinfer.store import QAStore
from storinfer_llamaindex.adapters import as_chat_model, as_documents


def precompute(
    source: Any,
    store: QAStore,
    *,
    answer_with: Any | None = None,
    llm: Any | None = None,
    max_concurrency: int = 1,
    progress: bool = True,
    prune: bool = False,
    export_path: str | None = None,
    **precomputer_kwargs: Any,
) -> PrecomputeSummary:
    """Precompute question-answer pairs from a LlamaIndex index, reader, Documents or nodes.

    ``answer_with`` may be a LlamaIndex query engine (its ``query`` answers each question, so
    stored answers are what the app says) or a function. ``llm`` writes the questions: any
    LlamaIndex LLM (an Ollama, vLLM or OpenAI-like one, a ``CustomLLM``), run ``max_concurrency``
    calls at a time, or None for the offline Qwen2.5-1.5B. Other arguments go to
    :class:`storinfer.Precomputer`.

    Example:
        ```python
        engine = index.as_query_engine(llm=default_llm())
        summary = precompute(index, QAStore("./storinfer_db"), answer_with=engine)
        ```
    """
    docs, chunked = as_documents(source)
    if answer_with is not None and hasattr(answer_with, "query") and not callable(answer_with):
        answer_with = answer_with.query
    if chunked:
        precomputer_kwargs.setdefault("chunk_size", None)
    pre = Precomputer(store, llm=as_chat_model(llm, max_concurrency=max_concurrency), answer_with=answer_with,
                      **precomputer_kwargs)
    return pre.run(docs, progress=progress, prune=prune, export_path=export_path)


def to_documents(source: Any) -> list[Any]:
    """The engine Documents precompute would read from ``source`` (see :func:`as_documents`)."""
    return as_documents(source)[0]
