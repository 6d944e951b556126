"""``StorInferRetriever``: the closest known question-answer pairs, as LangChain Documents."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from storinfer.errors import ConfigError, validate_threshold
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_PARTITION
from storinfer.store import QAStore


class StorInferRetriever(BaseRetriever):
    """Retrieve stored question-answer pairs nearest to a query.

    Each Document's ``page_content`` is the stored answer; its metadata holds the stored
    ``question``, the cosine ``similarity`` to the query, the pair ``id`` and its source ids
    (``doc_id``, ``chunk_id``, ``chunk_hash``), ``origin`` and ``partition``.

    Setup:
        ```bash
        make setup
        ```

    Instantiate:
        ```python
        from storinfer_langchain import QAStore

        retriever = QAStore("./storinfer_db").as_retriever(k=3, score_threshold=0.7)
        ```

    Usage:
        ```python
        docs = retriever.invoke("Who won Super Bowl 50?")
        docs[0].metadata["question"], docs[0].metadata["similarity"], docs[0].page_content
        ```

    Args:
        store: the :class:`QAStore`.
        namespace: only pairs of this namespace.
        partition: only pairs of this partition; None for every partition of the namespace.
        k: how many pairs at most.
        score_threshold: drop pairs below this cosine similarity (None keeps all ``k``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: QAStore
    namespace: str = DEFAULT_NAMESPACE
    partition: str | None = DEFAULT_PARTITION
    k: int = 4
    score_threshold: float | None = None

    def model_post_init(self, context: Any) -> None:
        if self.score_threshold is not None:
            self.score_threshold = validate_threshold(self.score_threshold, "score_threshold")
        if self.k < 1:
            msg = f"k must be at least 1 (how many stored pairs to return), got {self.k}"
            raise ConfigError(msg)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.store.question_problem(query):
            return []
        matches = self.store.search(query, namespace=self.namespace, partition=self.partition, k=self.k)
        docs = []
        for m in matches:
            if self.score_threshold is not None and m.similarity < self.score_threshold:
                continue
            meta = {k: v for k, v in m.metadata.items() if k != "generations"}
            meta.update(id=m.id, question=m.question, similarity=m.similarity)
            docs.append(Document(page_content=m.answer, metadata=meta, id=m.id))
        return docs

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return await asyncio.to_thread(
            self._get_relevant_documents, query, run_manager=run_manager.get_sync()
        )
