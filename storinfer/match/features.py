"""Features of a (user question, stored candidate) pair, for the hit verifier (:mod:`storinfer.match.verify`).

Two kinds of candidate, two feature sets, both domain-general (no word list of any topic):

* **question** features, for any stored question: cosine, the margin to the best candidate with
  another answer, content-word overlap, a one-word swap, length, whether the user asks for a
  typed answer (who / when / how many...), and whether the stored answer's words are already in
  the user's question (a question rarely contains its own answer: "Who did the Broncos beat?"
  is not answered by "the Broncos").
* **fact** features, for a key the answer-aware generator wrote (it knows the answer it asks
  for, that answer's entity type, and the sentence it came from): the question features, plus
  how much of the user's question the source sentence holds, how far the user's words sit from
  the answer in that sentence, whether the user names a number the sentence lacks, the summed
  cosine of the top candidates pointing to the same answer, and the pairing of the user's question type with
  the answer's entity type (a "when" question wants a date, a "who" question a person or an
  organisation).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from storinfer.match.lookalike import _fold, _numbers, _tokens, question_type, signals
from storinfer.text import normalize_answer

_STOP = set(
    "a an the of to in on at for by with from as is are was were be been being do does did has have had will would "
    "can could should may might must shall i me my mine you your yours we our us it its it's this that these those "
    "there here and or but if so than then what which who whom whose when where why how please tell know want need "
    "get got am 'm im just any some about into out up down over again also very much many".split()
)
TYPED = {"person", "time", "place", "quantity", "duration", "age", "name"}
Q_TYPES = ("person", "time", "place", "quantity", "duration", "age", "name", "reason", "manner", None)
LABEL_GROUPS = {"PERSON": 0, "ORG": 1, "NORP": 1, "GPE": 2, "LOC": 2, "FAC": 2, "DATE": 3, "TIME": 3, "CARDINAL": 4,
                "QUANTITY": 4, "MONEY": 5, "PERCENT": 5, "NP": 6}
N_GROUPS = 8  # the groups above, and "other" (EVENT, WORK_OF_ART, LAW, PRODUCT, LANGUAGE...)

QUESTION_FEATURES = ("cosine", "cosine_over_90", "cosine_over_95", "margin", "jaccard", "only_query", "only_candidate",
                     "same_first_word", "length_ratio", "one_word_swap", "factoid", "factoid_cosine", "factoid_margin",
                     "factoid_jaccard", "factoid_swap", "answer_in_query")
FACT_FEATURES = ("cosine", "cosine_over_80", "cosine_over_90", "margin", "answer_cosines", "rank", "answer_in_query",
                 "answer_in_query_any", "query_in_sentence", "query_in_key", "key_in_query", "query_words_not_in_sentence",
                 "distance_min", "distance_mean", "answer_not_in_sentence", "query_number_not_in_sentence", "names_differ",
                 "numbers_differ", "types_differ", "focus_differs", "modifiers_differ", "negation_differs",
                 "same_first_word", "query_length", "key_length", "answer_has_capital", "answer_has_number",
                 "person_query_lowercase_answer",
                 *(f"type_{t or 'other'}_x_{g}" for t in Q_TYPES for g in range(N_GROUPS)))


def content_words(tokens: Sequence[str]) -> set[str]:
    """Folded words among ``tokens`` that carry meaning (no function words, wh-words or digits)."""
    return {w for w in (_fold(t) for t in tokens) if w not in _STOP and not w.isdigit()}


def asks_typed_answer(query: str) -> bool:
    """Whether ``query`` asks for a typed answer (who / when / where / how many / how long / how old /
    what is X called); "how do I..." and "why..." do not."""
    return question_type(query) in TYPED


@dataclass
class Query:
    """What the features need of the user's question, computed once per lookup."""

    text: str

    def __post_init__(self) -> None:
        self.tokens = _tokens(self.text)
        self.words = content_words(self.tokens)
        self.qtype = question_type(self.text)
        self.first = self.tokens[0].lower() if self.tokens else ""
        self.numbers = _numbers(self.tokens)


def answer_key(m: Any) -> str:
    """Which stored answer a candidate serves: its ``answer_id`` (all keys of one answer share it),
    else the answer text. The verifier's features group candidates by it (its weights were fitted so)."""
    return str(m.metadata.get("answer_id") or m.answer)


def same_answer_key(m: Any) -> str:
    """What the user would read: the normalised answer text. Two candidates with one key serve the
    same words even from two stored answers (an answer stored from traffic that repeats a stored
    one); the learner's risk rows and answer cuts group candidates by it."""
    return _normalized(str(m.answer)[:500])


@functools.lru_cache(maxsize=8192)
def _normalized(text: str) -> str:
    """``normalize_answer``, once per text: a lookup compares each candidate's answer with every other's."""
    return normalize_answer(text)


def runner_up(cands: Sequence[Any], pos: int, key: Callable[[Any], str] = answer_key) -> float | None:
    """Cosine of the best candidate other than ``pos`` whose ``key`` differs from its (None: none).
    ``cands``: the lookup's candidates, best first."""
    own = key(cands[pos])
    return next((c.similarity for i, c in enumerate(cands) if i != pos and key(c) != own), None)


def margin(cands: Sequence[Any], pos: int, key: Callable[[Any], str] = answer_key) -> float:
    """Cosine of candidate ``pos`` less its :func:`runner_up`'s (0.2 when there is none)."""
    other = runner_up(cands, pos, key)
    return cands[pos].similarity - other if other is not None else 0.2



def _overlap(words: set[str], other: set[str]) -> float:
    return len(words & other) / len(words) if words else 0.0


def question_features(q: Query, cands: Sequence[Any], pos: int) -> list[float]:
    """:data:`QUESTION_FEATURES` of candidate ``pos`` (``cands``: the lookup's candidates, best first)."""
    c = cands[pos]
    ct = _tokens(c.question)
    qw, cw = q.words, content_words(ct)
    union = qw | cw
    first_c = ct[0].lower() if ct else ""
    sim, m = c.similarity, margin(cands, pos)
    jaccard = len(qw & cw) / len(union) if union else 1.0
    factoid = float(q.qtype in TYPED)
    swap = float(len(qw - cw) == 1 and len(cw - qw) == 1)
    aw = content_words(_tokens(c.answer[:300])) - cw
    return [sim, max(0.0, sim - 0.90), max(0.0, sim - 0.95), m, jaccard, float(len(qw - cw)), float(len(cw - qw)),
            float(q.first == first_c), min(len(q.tokens), len(ct)) / max(len(q.tokens), len(ct), 1), swap, factoid,
            factoid * sim, factoid * m, factoid * jaccard, factoid * swap, _overlap(aw, qw)]


def _find(tokens: Sequence[str], part: Sequence[str]) -> tuple[int, int] | None:
    low, want = [t.lower() for t in tokens], [t.lower() for t in part]
    for i in range(len(low) - len(want) + 1):
        if want and low[i:i + len(want)] == want:
            return i, i + len(want)
    return None


def fact_features(q: Query, cands: Sequence[Any], pos: int) -> list[float]:
    """:data:`FACT_FEATURES` of candidate ``pos``, a key with an ``expected_answer``."""
    c = cands[pos]
    meta = c.metadata
    sim = c.similarity
    answer = str(meta.get("expected_answer", ""))
    sentence = str(meta.get("source_sentence", ""))
    own = answer_key(c)
    answer_cosines = sum(x.similarity for x in cands[:10] if answer_key(x) == own)
    at, st, kt = _tokens(answer), _tokens(sentence), _tokens(c.question)
    aw, sw, kw = content_words(at), content_words(st), content_words(kt)
    qw = q.words
    span = _find(st, at)
    near = [i for i, t in enumerate(st) if _fold(t) in qw - aw]
    if span and near:
        dists = [0 if span[0] <= i < span[1] else min(abs(i - span[0]), abs(i - span[1] + 1)) for i in near]
        dmin, dmean = float(min(dists)), sum(dists) / len(dists)
    else:
        dmin = dmean = 20.0
    found = signals(q.text, c.question)
    qt = Q_TYPES.index(q.qtype) if q.qtype in Q_TYPES else len(Q_TYPES) - 1
    cross = [0.0] * (len(Q_TYPES) * N_GROUPS)
    cross[qt * N_GROUPS + LABEL_GROUPS.get(str(meta.get("answer_label", "")), N_GROUPS - 1)] = 1.0
    first_k = kt[0].lower() if kt else ""
    capital = any(t[:1].isupper() for t in at)
    return [sim, max(0.0, sim - 0.80), max(0.0, sim - 0.90), margin(cands, pos), answer_cosines, float(pos),
            _overlap(aw, qw), float(bool(aw & qw)), _overlap(qw, sw), _overlap(qw, kw), _overlap(kw, qw),
            float(len(qw - sw)), min(dmin, 20.0) / 20, min(dmean, 20.0) / 20, float(span is None),
            float(bool(q.numbers - _numbers(st))), float(bool(found["names"])), float(bool(found["numbers"])),
            float(bool(found["question_type"])), float(bool(found["focus"])), float(bool(found["modifiers"])),
            float(bool(found["negation"])), float(q.first == first_k), len(q.tokens) / 20, len(kt) / 20,
            float(capital), float(bool(_numbers(at))), float(q.qtype == "person" and not capital), *cross]


def is_fact(m: Any) -> bool:
    """Whether a candidate is an answer-aware key (it knows the answer it asks for)."""
    return bool(m.metadata.get("expected_answer"))


HEADS = ("question", "fact", "runtime")
"""The kinds of candidate (:func:`candidate_kind`): stored questions, answer-aware keys, answers stored
from traffic. Each kind has its verifier operating point and its risk model."""


def candidate_kind(m: Any) -> str:
    """``fact`` (an answer-aware key), ``runtime`` (an answer stored from traffic) or ``question``."""
    if is_fact(m):
        return "fact"
    return "runtime" if m.metadata.get("origin") == "runtime" else "question"
