"""The small protocols the engine speaks; the LangChain and LlamaIndex faces adapt to them.

* :class:`ChatModel`: messages and sampling settings in, texts out, one conversation or a batch.
* :class:`Embedder`: ``embed_query`` / ``embed_documents`` (a LangChain ``Embeddings`` already is one).
* :class:`Document`: ``(id, text, metadata)``.

Messages are plain dicts, ``{"role": "system" | "user" | "assistant", "content": str}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]
"""One message: ``{"role": "system" | "user" | "assistant", "content": text}``."""

Conversation = Sequence[Mapping[str, str]]
"""A conversation: messages shaped as :class:`Message` (plain dicts)."""


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers conversations with these sampling settings.

    ``temperature=None`` (or 0) means greedy decoding; ``seed`` makes sampling repeatable where
    the model allows it. ``chat_batch`` returns one reply per conversation, in order.
    """

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        max_new_tokens: int | None = None,
    ) -> list[str]: ...


@runtime_checkable
class Embedder(Protocol):
    """Text to vectors. The store compares vectors by cosine similarity."""

    def embed_query(self, text: str) -> list[float]: ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...


@dataclass
class Document:
    """A text to precompute questions for. ``id`` is stable across runs (a path, a URL, a key)."""

    text: str
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
