"""Prompts of one template: judge what differs, inside the frame they share.

An LLM cache is handed whole prompts. Two prompts built from one template (a RAG prompt's
instructions and its retrieved context around the user's question) share most of their words, so
their cosine is high and the verifier's word-overlap features see the template, not the question:
with the Super Bowl article's questions put into two RAG templates with their paragraph, the
shipped point served 5.8% and 16.4% of question pairs with different answers, against 0.08-0.09%
for the bare questions (``benchmarks/frame_probe.py``; docs/serve-decision.md, "Prompts of one
template").

So when a question and its nearest key share a *frame* of at least :data:`FRAME_WORDS` words (at
their start and end together), the lookup judges what lies inside it: the question's middle and
each key's, embedded again, with their own cosine. The frame is cut back to where a label or a
sentence ends (``Question:``, ``... California.``; a suffix may also start with a label,
``Context:``), so the middle is the whole question, not what is left of it after the words it
shares with the other one; if less than :data:`FRAME_WORDS` words of frame are left, the two are
compared whole, as any other (a long question written twice, one word changed). A key outside the
frame is left out. Questions of a few words never share such a frame, and nothing changes for them.
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
        words = text.split()
        start, end = len(self.prefix), len(words) - len(self.suffix)
        if end <= start or tuple(words[:start]) != self.prefix or tuple(words[end:]) != self.suffix:
            return None
        return " ".join(words[start:end])


def _prefix_end(words: list[str], shared: int) -> int:
    """The longest prefix of at most ``shared`` words that ends with a label or a sentence (0: none)."""
    return next((n for n in range(shared, 0, -1) if _BOUNDARY.search(words[n - 1])), 0)


def _suffix_start(words: list[str], shared: int) -> int:
    """The longest suffix of at most ``shared`` words that follows a label or a sentence end, or
    starts with a label (0: none)."""
    def bounded(n: int) -> bool:
        before, first = words[len(words) - n - 1], words[len(words) - n]
        return bool(_BOUNDARY.search(before)) or first.endswith(":")
    return next((n for n in range(shared, 0, -1) if n < len(words) and bounded(n)), 0)


def shared_frame(a: str, b: str, min_words: int = FRAME_WORDS) -> Frame | None:
    """The frame texts ``a`` and ``b`` share, cut back to its labels and sentence ends, if it is at
    least ``min_words`` words and both hold something inside it."""
    wa, wb = a.split(), b.split()
    shortest = min(len(wa), len(wb))
    p = 0
    while p < shortest and wa[p] == wb[p]:
        p += 1
    s = 0
    while s < shortest - p and wa[-1 - s] == wb[-1 - s]:
        s += 1
    if p + s < min_words:
        return None
    p, s = _prefix_end(wa, p), _suffix_start(wa, s)
    frame = Frame(tuple(wa[:p]), tuple(wa[len(wa) - s:]))
    framed = p + s >= min_words and frame.inside(a) is not None and frame.inside(b) is not None
    return frame if framed else None


__all__ = ["FRAME_WORDS", "Frame", "shared_frame"]
