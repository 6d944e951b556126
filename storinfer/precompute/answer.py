"""Answers for accepted questions: from the app's own chain, or the LLM reading the chunk.

Stored answers should be what the live system would say, so precompute asks the caller's chain
(``answer_with``) when there is one. The engine knows no framework: ``answer_with`` is a function
``question -> output`` or any object with ``batch(questions)`` (a LangChain Runnable is one), and
:func:`answer_text` reads the text out of what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from storinfer.errors import ConfigError
from storinfer.protocols import ChatModel

ANSWER_SYSTEM = "Answer the question using only the text. Reply with one short sentence."

AnswerSource = Callable[[str], Any]


ANSWER_KEYS = ("answer", "result", "output", "response", "text")
"""Where a chain that returns a dict puts its answer, in the order they are tried."""


def answer_text(output: Any) -> str:
    """The answer text in whatever a chain returned (str, a message, a dict, a LlamaIndex Response)."""
    if isinstance(output, str):
        return output.strip()
    if isinstance(output, dict):
        for key in ANSWER_KEYS:
            if isinstance(output.get(key), str):
                return output[key].strip()
    for attr in ("response", "content", "text"):  # LlamaIndex Response; chat messages
        value = getattr(output, attr, None)
        if isinstance(value, str):
            return value.strip()
    msg = (
        f"Cannot read an answer from a {type(output).__name__}: have the chain return a string, a message, "
        "or a dict with an 'answer' key (e.g. end a LangChain chain with StrOutputParser())."
    )
    raise TypeError(msg)


def check_answer_source(answer_with: object) -> None:
    if answer_with is not None and not (callable(answer_with) or callable(getattr(answer_with, "batch", None))):
        msg = "answer_with must be your chain (anything with .batch, e.g. a LangChain Runnable) or a function question -> answer."
        raise ConfigError(msg)


class Answerer:
    """Answers questions about a chunk: ``answer_with`` if given, else ``llm`` reading the chunk."""

    def __init__(self, llm: ChatModel, answer_with: Any | None = None, *, max_new_tokens: int = 64) -> None:
        check_answer_source(answer_with)
        self.llm = llm
        self.answer_with = answer_with
        self.max_new_tokens = max_new_tokens

    def __call__(self, questions: Sequence[str], chunk_text: str) -> list[str]:
        return self.answer_many([(q, chunk_text) for q in questions])

    def answer_many(self, items: Sequence[tuple[str, str]]) -> list[str]:
        """Answers to ``(question, chunk text)`` items, in one batch (a chain sees the questions only)."""
        if not items:
            return []
        if self.answer_with is None:
            convs = [[{"role": "system", "content": ANSWER_SYSTEM},
                      {"role": "user", "content": f"Text: {text}\n\nQuestion: {q}"}] for q, text in items]
            return [a.strip() for a in self.llm.chat_batch(convs, max_new_tokens=self.max_new_tokens)]
        questions = [q for q, _text in items]
        batch = getattr(self.answer_with, "batch", None)
        outputs = batch(questions) if callable(batch) else [self.answer_with(q) for q in questions]
        if len(outputs) != len(questions):
            msg = f"answer_with returned {len(outputs)} answers for {len(questions)} questions: it must answer each one."
            raise ValueError(msg)
        return [answer_text(o) for o in outputs]
