"""Precompute from LangChain: documents or a loader in, stored question-answer pairs out.

* :class:`Precomputer`: the engine's precompute taking LangChain chat models, Runnables,
  Documents and loaders.
* :class:`PrecomputeChain`: the same as a Runnable (``invoke`` / ``batch`` / ``ainvoke``),
  composing with a loader (``loader.load()`` -> chain); callbacks see the run and every
  question-writing and answering call in it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config

from storinfer import precompute as _core
from storinfer.precompute import PrecomputeSummary, export_jsonl  # noqa: F401  (re-exported)
from storinfer.precompute.documents import Chunk
from storinfer.precompute.generate.free import GenerationConfig
from storinfer.protocols import Document
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION
from storinfer.store import QAStore
from storinfer_langchain.adapters import as_chat_model, as_documents


class Precomputer(_core.Precomputer):
    """:class:`storinfer.Precomputer` for LangChain: any chat model, a Runnable to answer, Documents or a loader.

    Setup:
        ```bash
        pip install 'storinfer[langchain,local]'
        ```

    Instantiate:
        ```python
        from storinfer_langchain import Precomputer, QAStore

        pre = Precomputer(QAStore("./storinfer_db"), answer_with=rag_chain)   # the chain users talk to
        ```

    Usage:
        ```python
        summary = pre.run(loader)        # LangChain Documents, a loader, or strings
        print(summary)                   # chunks, candidates, accepted, duplicates, junk, pairs/call
        ```

    Args:
        llm: a LangChain chat model that writes questions (default: the offline Qwen2.5-1.5B).
        max_concurrency: calls in flight at once for a non-local chat model (its ``batch``).
        run_config: a LangChain ``RunnableConfig`` (callbacks, tags) for every model call.
        Others: as :class:`storinfer.Precomputer` (``config`` is its :class:`GenerationConfig`).
    """

    def __init__(self, store: QAStore, *, llm: BaseChatModel | None = None, max_concurrency: int | None = None,
                 run_config: RunnableConfig | None = None, **kwargs: Any) -> None:
        self.lc_llm = llm
        super().__init__(store, llm=as_chat_model(llm, max_concurrency=max_concurrency, config=run_config), **kwargs)

    def documents(self, source: Any) -> list[Document]:
        return as_documents(source)

    def chunks(self, documents: Any) -> list[Chunk]:
        return super().chunks(as_documents(documents))


class _ConfiguredAnswers:
    """A Runnable's ``batch`` with one run's config (its callbacks) attached."""

    def __init__(self, runnable: Runnable, config: RunnableConfig) -> None:
        self.runnable, self.config = runnable, config

    def batch(self, questions: list[str]) -> list[Any]:
        return self.runnable.batch(questions, config=self.config)


class PrecomputeChain(Runnable[Any, dict[str, Any]]):
    """Precompute as a LangChain Runnable: documents in, a summary and the stored pairs out.

    Setup:
        ```bash
        pip install 'storinfer[langchain,local]'
        ```

    Instantiate:
        ```python
        from storinfer_langchain import PrecomputeChain, QAStore

        precompute = PrecomputeChain(QAStore("./storinfer_db"), answer_with=rag_chain)
        ```

    Usage:
        ```python
        out = precompute.invoke(loader.load())     # or RunnableLambda(lambda _: loader.load()) | precompute
        out["summary"]["pairs_stored"], out["pairs"][0]["question"]
        await precompute.ainvoke(docs, config={"callbacks": [tracer]})   # each LLM call is traced
        ```

    Input: LangChain Documents, a loader, or strings. Output: ``{"summary": dict, "pairs":
    [{"id", "question", "answer", "doc_id", "chunk_id"}, ...]}``, the pairs this run stored.

    Args:
        store: where pairs go.
        llm: a LangChain chat model that writes questions (default: the offline Qwen2.5-1.5B).
        answer_with: the chain that answers (a Runnable, or a function question -> answer).
        namespace, partition, chunk_size, chunk_overlap, config: as :class:`storinfer.Precomputer`.
        max_concurrency: calls in flight at once for a non-local chat model.
        prune: also remove the pairs of documents no longer in the input.
    """

    def __init__(self, store: QAStore, *, llm: BaseChatModel | None = None, answer_with: Any | None = None,
                 namespace: str = DEFAULT_NAMESPACE, partition: str = DEFAULT_PARTITION, chunk_size: int | None = 1000,
                 chunk_overlap: int = 100, generation: GenerationConfig | None = None,
                 max_concurrency: int | None = None, prune: bool = False) -> None:
        self.store, self.llm, self.answer_with = store, llm, answer_with
        self.options: dict[str, Any] = {"namespace": namespace, "partition": partition, "chunk_size": chunk_size,
                                        "chunk_overlap": chunk_overlap, "config": generation}
        self.max_concurrency, self.prune = max_concurrency, prune
        Precomputer(store, llm=llm, answer_with=answer_with, **self.options)  # fail now on bad arguments

    def _run(self, source: Any, run_manager: CallbackManagerForChainRun, config: RunnableConfig) -> dict[str, Any]:
        child: RunnableConfig = patch_config(config, callbacks=run_manager.get_child())
        answer_with = self.answer_with
        if isinstance(answer_with, Runnable):
            answer_with = _ConfiguredAnswers(answer_with, child)
        pre = Precomputer(self.store, llm=self.llm, answer_with=answer_with, max_concurrency=self.max_concurrency,
                          run_config=child, **self.options)
        summary = pre.run(source, prune=self.prune, progress=False)
        pairs = [{"id": p.id, "question": p.question, "answer": p.answer, "doc_id": p.doc_id, "chunk_id": p.chunk_id}
                 for p in summary.emitted]
        return {"summary": summary.as_dict(), "pairs": pairs}

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        return self._call_with_config(self._run, input, config, run_type="chain", **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        # The store's local client and the local model have no async API: the run goes to a
        # worker thread, so the event loop stays free.
        return await asyncio.to_thread(self.invoke, input, config, **kwargs)
