"""Keys: the several questions under which one answer is stored.

An answered question is stored once per *key*: the question itself, its other wordings from the
answer-aware writer, and the LLM's rephrasings. Every key of one answer carries the same
``answer_id`` and the same answer text (computed once), so any wording finds it. A key within
``key_dedup_threshold`` (0.99, the paper's deduplication threshold) of a key already kept in the
chunk adds nothing and is dropped; which questions get an answer at all is decided earlier and
more strictly (``dedup_threshold``, 0.90 with the look-alike check).

Each key's metadata says where it came from: ``key_kind`` (``question`` / ``variant`` /
``rephrasing``), ``generator`` (``free`` / ``facts``), and for answer-aware questions the
``expected_answer``, its entity ``answer_label`` and the ``source_sentence``, which the hit
verifier reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from storinfer.match.lookalike import conflict
from storinfer.precompute.deduplicate import dot
from storinfer.precompute.documents import Chunk
from storinfer.precompute.generate.wh_text import same_answer
from storinfer.records import MetaValue, QAPair
from storinfer.text import sha


@dataclass
class Answered:
    """An answered question of a chunk, with its other wordings and provenance."""

    question: str
    answer: str
    generator: str  # "free" | "facts"
    variants: list[str] = field(default_factory=list)
    rephrasings: list[str] = field(default_factory=list)
    meta: dict[str, MetaValue] = field(default_factory=dict)
    vector: list[float] | None = field(default=None, repr=False)
    """The question's embedding, once computed."""


def answer_id(namespace: str, partition: str, chunk_id: str, question: str) -> str:
    """The id every key of one answer shares."""
    return sha(namespace, partition, chunk_id, question, length=24)


def chunk_keys(chunk: Chunk, answered: Sequence[Answered], vectors: dict[str, list[float]], *, namespace: str,
               partition: str, threshold: float) -> tuple[list[QAPair], int]:
    """The key records of one chunk's answered questions, deduplicated at ``threshold``, and how
    many answers they store (an answer whose own question is as close to a kept key, and asks the
    same thing by the look-alike rules and expected answers, adds nothing: left out with its keys).

    ``vectors`` maps each key text to its embedding (keys missing from it are kept: they cannot
    be compared).
    """
    kept: list[tuple[str, list[float], str]] = []  # (key, vector, the expected answer of its answer)
    pairs: list[QAPair] = []
    answers = 0
    for a in answered:
        aid = answer_id(namespace, partition, chunk.chunk_id, a.question)
        kinds = [(a.question, "question")] + [(v, "variant") for v in a.variants] + [(r, "rephrasing") for r in a.rephrasings]
        expected = str(a.meta.get("expected_answer", ""))
        own = vectors.get(a.question)
        if own is not None and any(
                dot(own, vec) >= threshold and conflict(a.question, text) is None
                and not (expected and theirs and not same_answer(expected, theirs)) for text, vec, theirs in kept):
            continue  # asks what a kept key asks
        answers += 1
        for text, kind in kinds:
            vec = vectors.get(text)
            if vec is not None and any(dot(vec, other) >= threshold for _t, other, _e in kept):
                continue
            if vec is not None:
                kept.append((text, vec, expected))
            meta: dict[str, MetaValue] = {**a.meta, "answer_id": aid, "key_kind": kind, "generator": a.generator}
            pairs.append(QAPair(text, a.answer, partition=partition, namespace=namespace, origin="precomputed",
                                doc_id=chunk.doc_id, chunk_id=chunk.chunk_id, chunk_hash=chunk.chunk_hash,
                                extra=meta, vector=vec))
    return pairs, answers
