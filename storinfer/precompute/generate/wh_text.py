"""Text of the syntactic questions: putting tokens back into a question, and checks on it."""

from __future__ import annotations

import re
from typing import Any

MIN_CONTENT_WORDS = 2


class Lit(str):
    """A literal word placed in a question (not a token of the sentence)."""


def _render(pieces: list[Any]) -> str:
    out = []
    for k, p in enumerate(pieces):
        if isinstance(p, str):
            out.append(p + " ")
            continue
        nxt = pieces[k + 1] if k + 1 < len(pieces) else None
        adjacent = nxt is not None and not isinstance(nxt, str) and nxt.i == p.i + 1
        out.append(p.text + (p.whitespace_ if adjacent else " "))
    s = "".join(out)
    s = re.sub(r"\s+([,.;:?!%)\]])", r"\1", s)
    s = re.sub(r"([(\[$])\s+", r"\1", s)
    s = re.sub(r"\(\s*\)|\[\s*\]", "", s)
    s = re.sub(r"\s{2,}", " ", s).strip()
    s = re.sub(r"^[,;:.\s]+|[,;:.\s]+$", "", s)
    s = re.sub(r",\s*(?=,)", "", s)
    return s


def finish(pieces: list[Any]) -> str | None:
    """The question text of ``pieces``: first letter upper case, a final "?"."""
    s = _render(pieces)
    if not s:
        return None
    return s[0].upper() + s[1:] + "?"


def _lower_first(tokens: list[Any]) -> list[Any]:
    """A phrase moved away from the start of the sentence: its first word in lower case unless a name."""
    if not tokens or isinstance(tokens[0], str):
        return tokens
    t = tokens[0]
    if t.i == t.sent.start and t.tag_ not in ("NNP", "NNPS") and t.text != "I" and not t.text.isupper():
        return [Lit(t.text.lower()), *tokens[1:]]
    return tokens


def _subtree(tok: Any, skip: set[int] | frozenset[int] = frozenset(), *, short: bool = False) -> list[Any]:
    """The tokens of ``tok``'s subtree, in order, without ``skip`` (and, ``short``, no parentheses)."""
    toks = [t for t in tok.subtree if t.i not in skip]
    if short:
        toks = _no_parentheses(toks)
    return toks


def _no_parentheses(tokens: list[Any]) -> list[Any]:
    out, depth = [], 0
    for t in tokens:
        text = t if isinstance(t, str) else t.text
        if text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth = max(0, depth - 1)
        elif not depth:
            out.append(t)
    return out


_WORD = re.compile(r"[^\W_]+")
_FUNCTION = set(
    "a an the of to in on at for by with from as is are was were be been being do does did has have had will would can "
    "could should may might must what which who whom whose when where why how many much year percentage that this these "
    "those it its their his her they he she there".split()
)


def _informative(question: str, answer: str) -> bool:
    """A question worth storing: enough words of its own, and not giving its answer away."""
    words = [w.lower() for w in _WORD.findall(question)]
    content = [w for w in words if w not in _FUNCTION]
    if len(content) < MIN_CONTENT_WORDS or len(words) > 40:
        return False
    ans = [w.lower() for w in _WORD.findall(answer) if w.lower() not in _FUNCTION]
    return not ans or not all(w in words for w in ans)


def same_answer(a: str, b: str) -> bool:
    """Whether two answers name the same thing: after SQuAD's normalisation, one holds the other."""
    from storinfer.text import normalize_answer

    x, y = normalize_answer(a).split(), normalize_answer(b).split()
    if len(x) > len(y):
        x, y = y, x
    return bool(x) and any(y[i:i + len(x)] == x for i in range(len(y) - len(x) + 1))
