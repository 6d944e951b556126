"""Verify: decide whether a stored question asks the same thing as the user's, in any domain.

After the nearest-neighbour search, every candidate at or above its cosine *floor* is checked,
and the best-scoring one that passes is served:

1. **hard rules**, general ones only (:mod:`storinfer.match.lookalike`; no word list of any topic):
   * a stored question: the two agree on numbers, names, negation, referent-changing modifiers
     (first/last, before/after...), question type (who / when / how many...) and the thing asked
     for, and a when / how-many question's stored answer holds a number or a date;
   * an answer-aware key (it knows the answer it asks for): the user's question type fits the
     answer's entity type (a "when" question wants a date, "who" a person or an organisation),
     the two questions agree on type and negation, every number the user names is in the key's
     source sentence, and the user's question does not already hold the answer;
2. **a learned score**: a logistic model over the features of :mod:`storinfer.match.features`,
   one *head* per kind of candidate, at or above the head's *cut*.

Weights and operating points ship in ``storinfer/match/verifier.json``; ``tools/verifier/train.py``
refits them from public data (BANKING77, CLINC150 and SQuAD: training intents, domains and
articles only) for a 1% wrong-hit target. A store may record its own operating point
(``storinfer calibrate``), which every client then uses.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from storinfer.errors import validate_threshold
from storinfer.match.features import (
    FACT_FEATURES,
    QUESTION_FEATURES,
    TYPED,
    Query,
    asks_typed_answer,
    candidate_kind,
    content_words,
    fact_features,
    is_fact,
    question_features,
)
from storinfer.match.lookalike import _fold, _numbers, _tokens, answer_mismatch, signals
from storinfer.match.point import REPEAT_FLOOR, HeadPoint, OperatingPoint, is_repeat
from storinfer.records import Match, Reason

__all__ = ["FACT_FEATURES", "QUESTION_FEATURES", "Head", "Verdict", "Verifier", "asks_typed_answer", "content_words",
           "features", "refusal_kind"]

HARD_RULES = ("numbers", "names", "negation", "question_type", "focus", "modifiers")
WEIGHTS_PATH = Path(__file__).with_name("verifier.json")
INCOMPATIBLE = {
    "person": {"DATE", "TIME", "CARDINAL", "QUANTITY", "MONEY", "PERCENT", "ORDINAL"},
    "time": {"PERSON", "ORG", "NORP", "GPE", "LOC", "FAC", "CARDINAL", "MONEY", "PERCENT", "PRODUCT"},
    "quantity": {"PERSON", "ORG", "NORP", "GPE", "LOC", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART"},
    "place": {"DATE", "TIME", "CARDINAL", "QUANTITY", "MONEY", "PERCENT", "PERSON"},
    "age": {"PERSON", "ORG", "NORP", "GPE", "LOC", "FAC", "MONEY", "PERCENT"},
    "duration": {"PERSON", "ORG", "NORP", "GPE", "LOC", "FAC", "MONEY", "PERCENT"},
}
"""Entity types an answer-aware key's answer cannot have for each question type (a "when" question
is not answered by a person); the softer pairings (a "who" question and a FAC, which the tagger
gives some bands) are left to the learned score."""


@dataclass(frozen=True)
class Verdict:
    """One candidate judged: ``ok`` (it may be served), its score, why not (or ``"near repeat"``: served
    below the cut as a near-repeat of traffic), and which head judged it."""

    ok: bool
    score: float
    reason: str = ""
    head: str = "question"


@dataclass(frozen=True)
class Head:
    """One logistic model with its operating point (cosine ``floor``, score ``cut``)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    floor: float
    cut: float
    typed_floor: float | None = None
    """A higher floor for questions asking for a typed answer (who / when / how many...), if any."""

    def score(self, x: Sequence[float]) -> float:
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in zip(self.weights, x, self.mean, self.scale))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def floor_for(self, typed: bool) -> float:
        return self.point.floor_for(typed)

    @property
    def point(self) -> HeadPoint:
        return HeadPoint(self.floor, self.cut, self.typed_floor)

    def at(self, point: HeadPoint) -> Head:
        return replace(self, floor=point.floor, cut=point.cut, typed_floor=point.typed_floor)

    @classmethod
    def from_dict(cls, data: dict[str, Any], expected: tuple[str, ...]) -> Head:
        if tuple(data["features"]) != expected:
            msg = (f"verifier weights are for features {data['features']}, this StorInfer computes {expected}: "
                   "refit them with tools/verifier/train.py")
            raise ValueError(msg)
        typed = data.get("typed_floor")
        return cls(expected, tuple(data["weights"]), float(data["bias"]), tuple(data["mean"]), tuple(data["scale"]),
                   float(data["floor"]), float(data["cut"]), None if typed is None else float(typed))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "weights": [round(w, 6) for w in self.weights],
                "bias": round(self.bias, 6), "mean": [round(v, 6) for v in self.mean],
                "scale": [round(v, 6) for v in self.scale], "floor": round(self.floor, 4), "cut": round(self.cut, 4),
                "typed_floor": self.typed_floor}


_IRREGULAR = dict(pair.split(":") for pair in (
    "won:win wrote:write written:write began:begin begun:begin became:become came:come ran:run gave:give given:give "
    "took:take taken:take made:make found:find held:hold led:lead left:leave lost:lose met:meet paid:pay said:say "
    "saw:see seen:see sent:send sold:sell spent:spend stood:stand thought:think told:tell went:go gone:go grew:grow "
    "grown:grow knew:know known:know brought:bring bought:buy built:build caught:catch chose:choose chosen:choose "
    "drew:draw drawn:draw drove:drive driven:drive fell:fall fallen:fall felt:feel fought:fight flew:fly flown:fly "
    "forgot:forget got:get kept:keep laid:lay lay:lie meant:mean rose:rise risen:rise rode:ride sang:sing sung:sing "
    "sat:sit shot:shoot shown:show slept:sleep spoke:speak spoken:speak stole:steal stolen:steal struck:strike "
    "swam:swim taught:teach threw:throw thrown:throw understood:understand wore:wear worn:wear born:bear bore:bear "
    "did:do done:do had:have was:be were:be been:be ate:eat eaten:eat froze:freeze broke:break broken:break").split())
"""Irregular English verb forms and their base ("won" -> "win"), so that "won" and "winner" count as one word."""


def related(a: str, b: str) -> bool:
    """Whether two words are forms of one word ("bed" / "bedridden", "won" / "winner")."""
    a, b = _IRREGULAR.get(a, a), _IRREGULAR.get(b, b)
    return a[:3] == b[:3] or a in b or b in a


def swapped_word(q: Query, candidate: str) -> str | None:
    """The one content word each side has and the other lacks, when they are not forms of one word
    ("Who was Margaret's *husband*?" / "... *brother*?"): for a question asking for a typed answer
    such a swap changes what is asked (fit articles: 15 such pairs of human questions with other
    answers, 7 with the same, at cosine >= 0.85)."""
    other = content_words(_tokens(candidate))
    a, b = q.words - other, other - q.words
    if len(a) == 1 and len(b) == 1:
        x, y = next(iter(a)), next(iter(b))
        if not related(x, y):
            return f"one word swapped: {x} / {y}"
    return None


def question_refusal(q: Query, cand: Match) -> str | None:
    """The first hard rule a stored question breaks against the user's (None: it breaks none)."""
    found = signals(q.text, cand.question)
    broken = next((found[r] for r in HARD_RULES if found[r]), None)
    if broken:
        return broken
    if q.qtype in TYPED:
        swap = swapped_word(q, cand.question)
        if swap:
            return swap
    wrong_type = answer_mismatch(q.text, cand.answer)
    return f"answer {wrong_type}" if wrong_type else None


def fact_refusal(q: Query, cand: Match) -> str | None:
    """The first hard rule an answer-aware key breaks against the user's question (None: none)."""
    meta = cand.metadata
    label = str(meta.get("answer_label", ""))
    if label in INCOMPATIBLE.get(q.qtype or "", ()):
        return f"answer type: a {q.qtype} question, a {label} answer"
    wrong_type = answer_mismatch(q.text, str(meta.get("expected_answer", "")))
    if wrong_type:
        return f"answer {wrong_type}"
    found = signals(q.text, cand.question)
    for rule in ("question_type", "negation"):
        if found[rule]:
            return found[rule]
    sentence = _tokens(str(meta.get("source_sentence", "")))
    missing = q.numbers - _numbers(sentence)
    if missing:
        return f"numbers differ: {' '.join(sorted(missing))} not in the source"
    answer_words = {_fold(t) for t in _tokens(str(meta.get("expected_answer", ""))) if t[:1].isupper() or t[:1].isdigit()}
    if answer_words and answer_words <= {_fold(t) for t in q.tokens}:
        return "answer given: the question already names the answer"
    return None


@dataclass(frozen=True)
class Verifier:
    """The hit verifier: a head for stored questions and one for answer-aware keys, each with its
    operating point.

    Setup:
        ```bash
        pip install storinfer        # the shipped weights are in the package
        ```

    Instantiate:
        ```python
        import dataclasses

        from storinfer.match.verify import Verifier

        v = Verifier.default()                                   # storinfer/match/verifier.json
        strict = v.with_operating_point(cut=0.99)                # both heads
        no_repeats = dataclasses.replace(v, repeat_floor=None)   # near-repeats of traffic need their score too
        ```

    Usage:
        ```python
        pos, verdicts = v.choose("How do I top up my card?", store.search("How do I top up my card?", k=8))
        verdicts[0].reason    # why the nearest one was refused ("near repeat": served as one)
        ```
    """

    question: Head
    fact: Head
    runtime: Head | None = None
    """The question head at its own operating point for answers stored from traffic (``origin``
    ``runtime``), when a store has learnt one; None: runtime keys use the question head."""
    repeat_floor: float | None = REPEAT_FLOOR
    """An answer stored from traffic whose question is at least this close (cosine) to the new one is
    served whatever its score, unless a rule refuses it: a question asked again in other words. None: never."""

    def __post_init__(self) -> None:
        if self.repeat_floor is not None:
            object.__setattr__(self, "repeat_floor", validate_threshold(self.repeat_floor, "repeat_floor"))

    @classmethod
    @functools.cache
    def default(cls) -> Verifier:
        """The shipped verifier (``storinfer/match/verifier.json``)."""
        return cls.from_dict(json.loads(WEIGHTS_PATH.read_text()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verifier:
        return cls(Head.from_dict(data["question"], QUESTION_FEATURES), Head.from_dict(data["fact"], FACT_FEATURES))

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question.to_dict(), "fact": self.fact.to_dict()}

    # --- operating points ------------------------------------------------------------------
    @property
    def floor(self) -> float:
        """The lowest of the heads' cosine floors (no candidate below it can be served)."""
        return min(self.question.floor, self.fact.floor, *([self.runtime.floor] if self.runtime else []))

    @property
    def cut(self) -> float:
        return self.question.cut

    def with_operating_point(self, floor: float | None = None, cut: float | None = None, *,
                             head: str | None = None) -> Verifier:
        """This verifier with another cosine floor and / or score cut, for one head (``"question"`` /
        ``"fact"``) or both. A floor given here is also the typed-question floor."""
        def moved(h: Head) -> Head:
            return replace(h, floor=h.floor if floor is None else float(floor), cut=h.cut if cut is None else float(cut),
                           typed_floor=h.typed_floor if floor is None or h.typed_floor is None else float(floor))
        if head == "runtime":
            return replace(self, runtime=moved(self.runtime or self.question))
        return replace(self, question=moved(self.question) if head in (None, "question") else self.question,
                       fact=moved(self.fact) if head in (None, "fact") else self.fact,
                       runtime=moved(self.runtime) if self.runtime is not None and head is None else self.runtime)

    @property
    def point(self) -> OperatingPoint:
        """Where each head serves now."""
        return OperatingPoint(self.question.point, self.fact.point, None if self.runtime is None else self.runtime.point,
                              self.repeat_floor)

    def at(self, point: OperatingPoint) -> Verifier:
        """This verifier at ``point`` (a runtime point gives answers stored from traffic a head of their own)."""
        return Verifier(self.question.at(point.question), self.fact.at(point.fact),
                        None if point.runtime is None else self.question.at(point.runtime), point.repeat_floor)

    def head_name(self, cand: Match) -> str:
        """Which head decides ``cand``: ``fact`` (an answer-aware key), ``runtime`` (an answer stored
        from traffic, where the store has its own point for those) or ``question``."""
        kind = candidate_kind(cand)
        return "question" if kind == "runtime" and self.runtime is None else kind

    def head_of(self, cand: Match) -> Head:
        return getattr(self, self.head_name(cand))

    def floor_for(self, query: str, cand: Match | None = None) -> float:
        """The cosine floor that applies to ``query`` (and this candidate's head; None: the question head)."""
        head = self.question if cand is None else self.head_of(cand)
        return head.floor_for(asks_typed_answer(query))

    # --- decisions ---------------------------------------------------------------------------
    def verdict(self, q: Query, cands: Sequence[Match], pos: int) -> Verdict:
        """Whether candidate ``pos`` of ``cands`` (the lookup's candidates, best first) may answer ``q``."""
        cand = cands[pos]
        name = self.head_name(cand)
        head: Head = getattr(self, name)
        floor = head.floor_for(q.qtype in TYPED)
        if cand.similarity < floor:
            return Verdict(False, 0.0, f"cosine {cand.similarity:.3f} below floor {floor:.2f}", name)
        ok, score, why = self.assess_one(q, cands, pos)
        if not ok:
            return Verdict(False, 0.0, why, name)
        if score >= head.cut:
            return Verdict(True, score, "", name)
        if is_repeat(self.repeat_floor, candidate_kind(cand), cand.similarity):
            return Verdict(True, score, Reason.NEAR_REPEAT.value, name)
        return Verdict(False, score, f"verifier score {score:.3f} below cut {head.cut:.3f}", name)

    def assess_one(self, q: Query, cands: Sequence[Match], pos: int) -> tuple[bool, float, str]:
        """``(breaks no hard rule, score, the rule broken)`` of candidate ``pos``, at no point."""
        cand = cands[pos]
        fact = is_fact(cand)
        broken = fact_refusal(q, cand) if fact else question_refusal(q, cand)
        if broken:
            return False, 0.0, f"rule: {broken}"
        return True, self.head_of(cand).score(fact_features(q, cands, pos) if fact else question_features(q, cands, pos)), ""

    def assess(self, query: str | Query, cands: Sequence[Match]) -> list[Verdict]:
        """Every candidate judged by the rules and scored, at no point (``ok``: it breaks no hard rule)."""
        q = query if isinstance(query, Query) else Query(query)
        out = []
        for i, c in enumerate(cands):
            ok, score, why = self.assess_one(q, cands, i)
            out.append(Verdict(ok, score, why, self.head_name(c)))
        return out

    def choose(self, query: str | Query, cands: Sequence[Match]) -> tuple[int | None, list[Verdict]]:
        """The candidate to serve (its position; None: none passes) and every candidate's verdict.
        Of the candidates that pass, the best-scoring one wins."""
        q = query if isinstance(query, Query) else Query(query)
        verdicts = [self.verdict(q, cands, i) for i in range(len(cands))]
        passing = [i for i, v in enumerate(verdicts) if v.ok]
        best = max(passing, key=lambda i: (verdicts[i].score, -i)) if passing else None
        return best, verdicts

    def check(self, query: str, candidate: str, similarity: float, *, runner_up: float | None = None,
              answer: str | None = None, metadata: dict[str, Any] | None = None) -> Verdict:
        """Whether one stored question (with its ``answer`` and ``metadata``, if known) may answer
        ``query``; ``runner_up`` is the cosine of the best other candidate with another answer."""
        cands = [Match("c", candidate, answer or "", similarity, dict(metadata or {}))]
        if runner_up is not None:
            cands.append(Match("r", "", "\x00another answer", runner_up, {}))
        return self.verdict(Query(query), cands, 0)


def features(query: str, candidate: str, similarity: float, runner_up: float | None, answer: str = "") -> list[float]:
    """The question head's features of one pair (see :func:`storinfer.match.features.question_features`)."""
    cands = [Match("c", candidate, answer, similarity, {})]
    if runner_up is not None:
        cands.append(Match("r", "", "\x00another answer", runner_up, {}))
    return question_features(Query(query), cands, 0)


def refusal_kind(reason: str) -> str:
    """A short label for ``stats()``: ``rule:numbers``, ``rule:answer``, ``verifier``, ``floor``..."""
    if reason.startswith("rule: "):
        return "rule:" + re.split(r"[ :]", reason[6:], maxsplit=1)[0]
    if reason.startswith("verifier"):
        return "verifier"
    if reason.startswith("cosine"):
        return "floor"
    return reason.split(":")[0] or "other"
