"""Rephrasings: other ways to ask an accepted question, stored as extra keys of the same answer.

People phrase one need in many ways; a stored answer is found by any of its keys. The LLM is
asked for "three different ways to ask" each accepted question (SmolLM2-135M answers a question
it is asked to "rewrite", but lists rewordings when asked this way). A rewording is kept only if
it is a question (:func:`storinfer.precompute.generate.free.parse_questions`), is not the question itself, and
keeps its numbers, names, negation and question type (:func:`storinfer.match.lookalike.conflict`): a
"rephrasing" that changes the year asks something else.

The answer is computed once; the keys only point to it. Calibration reuses the same prompt to
make its probes.
"""

from __future__ import annotations

from collections.abc import Sequence

from storinfer.match.lookalike import conflict
from storinfer.precompute.generate.free import parse_questions
from storinfer.protocols import ChatModel
from storinfer.text import normalize_question

SYSTEM = "You write questions."
USER = "Write three different ways to ask this question:\n{question}"


def prompts(questions: Sequence[str]) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER.format(question=q)}]
            for q in questions]


def keep(original: str, candidates: Sequence[str], limit: int) -> list[str]:
    """The usable rewordings of ``original`` among ``candidates`` (at most ``limit``)."""
    seen = {normalize_question(original)}
    out: list[str] = []
    for para in candidates:
        key = normalize_question(para)
        if key in seen or conflict(para, original):
            continue
        seen.add(key)
        out.append(para)
        if len(out) >= limit:
            break
    return out


def rephrase(llm: ChatModel, questions: Sequence[str], *, per_question: int = 3,
             max_new_tokens: int = 64) -> list[list[str]]:
    """Up to ``per_question`` rewordings of each question (one batched, greedy call for all)."""
    if not questions or per_question <= 0:
        return [[] for _ in questions]
    replies = llm.chat_batch(prompts(questions), max_new_tokens=max_new_tokens)
    return [keep(q, parse_questions(reply)[0], per_question) for q, reply in zip(questions, replies, strict=True)]
