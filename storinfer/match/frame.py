"""Prompts of one template: judge what differs, inside the frame they share.

An LLM cache is handed whole prompts. Two prompts built from one template (a RAG prompt's
instructions and its retrieved context around the user's question) share most of their words, so
their cosine is high and the verifier's word-overlap features see the template, not the question:
in LangChain's RAG prompt, over the Super Bowl article's paragraphs, the shipped point served 6.5%
of question pairs with different answers, against 0.05% for the bare questions
(``benchmarks/frame_probe.py``; docs/serve-decision.md, "Prompts of one template").

So when a question and its nearest key share a *frame* of at least :data:`FRAME_WORDS` words (at
their start and end together), the lookup judges what lies inside it: the question's middle and
each key's, embedded again, with their own cosine. The frame is cut back to where a label or a
sentence ends (``Question:``, ``... California.``), so the middle is the whole question, not what is
left of it after the words it shares with the other one; two texts with no such boundary in what
they share (a long question written twice, one word changed) are compared whole, as any other. A
key outside the frame is left out. Questions of a few words never share such a frame, and nothing
changes for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FRAME_WORDS = 20
"""Words two texts must share at their start and end together before only their middles are compared."""
_BOUNDARY = re.compile(r"[:.?!;]$")


@dataclass(frozen=True)
class Frame:
    """The words two texts share at their start (``prefix``) and end (``suffix``)."""

    prefix: tuple[str, ...]
    suffix: tuple[str, ...]

    def inside(self, text: str) -> str | None:
        """What ``text`` holds inside this frame, or None if it is not in it (or holds nothing inside it)."""
        words = text.split(" ")
        start, end = len(self.prefix), len(words) - len(self.suffix)
        if end <= start or tuple(words[:start]) != self.prefix or tuple(words[end:]) != self.suffix:
            return None
        return " ".join(words[start:end])


def _cut_back(shared: int, words: list[str], boundary_at) -> int:
    """``shared`` cut back to the last boundary inside it (0 if there is none)."""
    for n in range(shared, 0, -1):
        if _BOUNDARY.search(boundary_at(words, n)):
            return n
    return 0


def shared_frame(a: str, b: str, min_words: int = FRAME_WORDS) -> Frame | None:
    """The frame texts ``a`` and ``b`` share, if it is at least ``min_words`` words and both hold
    something inside it."""
    wa, wb = a.split(" "), b.split(" ")
    shortest = min(len(wa), len(wb))
    p = 0
    while p < shortest and wa[p] == wb[p]:
        p += 1
    s = 0
    while s < shortest - p and wa[-1 - s] == wb[-1 - s]:
        s += 1
    if p + s < min_words:
        return None
    p = _cut_back(p, wa, lambda w, n: w[n - 1])  # the prefix ends with a label or a sentence
    s = _cut_back(s, wa, lambda w, n: w[len(w) - n - 1] if n < len(w) else "")  # the word before the suffix ends one
    frame = Frame(tuple(wa[:p]), tuple(wa[len(wa) - s:]))
    framed = p + s > 0 and frame.inside(a) is not None and frame.inside(b) is not None
    return frame if framed else None


__all__ = ["FRAME_WORDS", "Frame", "shared_frame"]
