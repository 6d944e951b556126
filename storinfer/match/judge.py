"""The answer judge: would the stored answer have done, given the answer the chain just gave?

On a miss that had candidates, the app's chain runs anyway; its answer is the evidence that says
whether the nearest stored answer would have been right. The judge compares the two answers and
its verdict becomes a label (:mod:`storinfer.store.labels`). It must rarely call two different
answers the same (a false "same" would teach the store to serve wrongly); calling two wordings of
one answer different only makes the store more careful.

:class:`TextJudge` (the default, no model): the same normalised text, or one answer holds all of
the other's words (a short answer inside a sentence that gives it), or token F1 >= 0.8; never when
the two name different numbers; for long answers (>= 12 words each), also embedding cosine >= 0.92
when an embedder is given. Any object with ``same(answer, stored) -> bool`` may replace it.
"""

from __future__ import annotations

import math
import re
from typing import Any, Protocol

from storinfer.text import contains, f1, normalize_answer

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


class AnswerJudge(Protocol):
    def same(self, answer: str, stored: str) -> bool: ...


def _digit_groups(text: str) -> set[str]:
    """The figures an answer writes: "24-10" -> {"24", "10"}, "1,000" -> {"1000"}. Unlike the look-alike
    rules' numbers of a question (:mod:`storinfer.match.lookalike`), number words and roman numerals
    are not read: two answers differ where the figures they write differ."""
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


class TextJudge:
    """The default answer judge: normalised text and token overlap, embeddings for long answers.

    Args:
        embedder: an embedder for long answers (``embed_documents``); None: text only.
        min_f1: token F1 at or above which two answers are the same.
        long_words, min_cosine: answers of at least ``long_words`` words each are also the same
            at embedding cosine >= ``min_cosine``.
    """

    def __init__(self, embedder: Any | None = None, *, min_f1: float = 0.8, long_words: int = 12,
                 min_cosine: float = 0.92) -> None:
        self.embedder = embedder
        self.min_f1 = min_f1
        self.long_words = long_words
        self.min_cosine = min_cosine

    def same(self, answer: str, stored: str) -> bool:
        a, b = normalize_answer(answer), normalize_answer(stored)
        if not a or not b:
            return False
        if a == b:
            return True
        figures, stored_figures = _digit_groups(answer), _digit_groups(stored)
        if figures and stored_figures and figures != stored_figures:
            return False  # "1990" / "1991", "24-10" / "24-17"
        ta, tb = a.split(), b.split()
        short, longer = (ta, tb) if len(ta) <= len(tb) else (tb, ta)
        if contains(longer, short) and (len(short) >= 2 or len(longer) <= 4):
            return True  # "Denver Broncos" in "The Denver Broncos won Super Bowl 50."
        if f1(answer, stored) >= self.min_f1:
            return True
        if self.embedder is not None and min(len(ta), len(tb)) >= self.long_words:
            u, v = self.embedder.embed_documents([answer, stored])
            dot = sum(x * y for x, y in zip(u, v))
            norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)) or 1.0
            return dot / norm >= self.min_cosine
        return False
