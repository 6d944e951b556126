"""The store as LangChain users see it: the engine's :class:`storinfer.QAStore` plus ``as_retriever``."""

from __future__ import annotations

from typing import Any

from storinfer import store as _core
from storinfer_langchain.retriever import StorInferRetriever


class QAStore(_core.QAStore):
    """:class:`storinfer.QAStore` with ``as_retriever``; opens the same stores.

    Setup:
        ```bash
        pip install 'storinfer[langchain,local]'
        ```

    Instantiate:
        ```python
        from storinfer_langchain import QAStore

        store = QAStore("./storinfer_db")                  # local, one process
        store = QAStore(host="localhost", port=8000)        # a Chroma server, many processes
        ```

    Usage:
        ```python
        store.search("Which team won Super Bowl 50?", k=3)
        store.as_retriever(k=3).invoke("Who won Super Bowl 50?")
        ```
    """

    def __init__(self, *args: Any, embedding: Any = None, **kwargs: Any) -> None:
        if embedding is None:
            from storinfer_langchain.embeddings import default_embeddings

            embedding = default_embeddings()
        super().__init__(*args, embedding=embedding, **kwargs)

    def as_retriever(self, **kwargs: Any) -> StorInferRetriever:
        """A LangChain retriever over the stored pairs; see :class:`StorInferRetriever`."""
        return StorInferRetriever(store=self, **kwargs)
