"""Verify: decide whether a stored question asks the same thing as the user's, in any domain.

After the nearest-neighbour search, every candidate at or above the cosine *floor* must pass
(a question asking for a typed answer, who / when / how many..., has its own floor, 0.95:
on factoid questions the learned score did not keep wrong hits within 1%, see the README):

1. **hard rules** (:mod:`storinfer.lookalike`): the two agree on numbers, names, negation,
   referent-changing modifiers (first/last, before/after, most/least...), question type (who /
   when / where / how many...) and the thing asked for ("what *team*" / "what *position*"), and
   a when / how-many question's stored answer holds a number or a date;
2. **a learned score**: a logistic model over features of the pair that carry across domains
   (cosine, the margin to the next candidate with another answer, content-word overlap, length,
   and whether the question asks for a typed answer), at or above the *cut*.

The weights ship in ``storinfer/verifier.json``; ``benchmarks/train_verifier.py`` refits them from
public data (BANKING77, CLINC150 and SQuAD, training intents, domains and articles only) and
chooses the floor and cut for a 1% wrong-hit target with a 95% upper confidence bound. A store
may record its own operating point (``storinfer calibrate``), which every client then uses.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from storinfer.lookalike import _fold, _tokens, answer_mismatch, question_type, signals

HARD_RULES = ("numbers", "names", "negation", "question_type", "focus", "modifiers")
_STOP = set(
    "a an the of to in on at for by with from as is are was were be been being do does did has have had will would "
    "can could should may might must shall i me my mine you your yours we our us it its it's this that these those "
    "there here and or but if so than then what which who whom whose when where why how please tell know want need "
    "get got am 'm im just any some about into out up down over again also very much many".split()
)
FEATURES = ("cosine", "cosine_over_90", "cosine_over_95", "margin", "jaccard", "only_query", "only_candidate",
            "same_first_word", "length_ratio", "one_word_swap", "factoid", "factoid_cosine", "factoid_margin",
            "factoid_jaccard", "factoid_swap")
"""``factoid``: the query asks for a typed answer (who / when / where / how many...); the
``factoid_*`` features let such questions weigh cosine, margin and overlap differently from
requests ("I want to cancel my transfer"), as they must. ``one_word_swap``: each side has exactly
one content word the other lacks ("Who was Margaret's *husband*?" / "... *brother*?")."""
WEIGHTS_PATH = Path(__file__).with_name("verifier.json")
TYPED = {"person", "time", "place", "quantity", "duration", "age", "name"}


def asks_typed_answer(query: str) -> bool:
    """Whether ``query`` asks for a typed answer (who / when / where / how many / how long / how old /
    what is X called); "how do I..." and "why..." do not."""
    return question_type(query) in TYPED


def content_words(tokens: list[str]) -> set[str]:
    """Folded words among ``tokens`` that carry meaning (no function words, wh-words or digits)."""
    return {w for w in (_fold(t) for t in tokens) if w not in _STOP and not w.isdigit()}


def features(query: str, candidate: str, similarity: float, runner_up: float | None) -> list[float]:
    """The verifier's features of one (query, stored question) pair, in :data:`FEATURES` order.

    ``runner_up`` is the similarity of the best other candidate with a different answer (None:
    there is none).
    """
    qt, ct = _tokens(query), _tokens(candidate)
    qw, cw = content_words(qt), content_words(ct)
    union = qw | cw
    first_q = qt[0].lower() if qt else ""
    first_c = ct[0].lower() if ct else ""
    margin = similarity - runner_up if runner_up is not None else 0.2
    jaccard = len(qw & cw) / len(union) if union else 1.0
    factoid = float(asks_typed_answer(query))
    swap = float(len(qw - cw) == 1 and len(cw - qw) == 1)
    return [
        similarity,
        max(0.0, similarity - 0.90),
        max(0.0, similarity - 0.95),
        margin,
        jaccard,
        float(len(qw - cw)),
        float(len(cw - qw)),
        float(first_q == first_c),
        min(len(qt), len(ct)) / max(len(qt), len(ct), 1),
        swap,
        factoid,
        factoid * similarity,
        factoid * margin,
        factoid * jaccard,
        factoid * swap,
    ]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    score: float
    reason: str = ""


@dataclass(frozen=True)
class Verifier:
    """A fitted pair model and its operating point (cosine ``floor``, score ``cut``).

    Example:
        ```python
        from storinfer.verify import Verifier

        v = Verifier.default()
        v.check("How do I top up my card?", "How can I add money to my card?", 0.86, runner_up=0.71)
        ```
    """

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    floor: float
    cut: float
    factoid_floor: float = 0.95
    """The cosine floor for questions that ask for a typed answer (who / when / how many...)."""
    names: tuple[str, ...] = FEATURES

    def floor_for(self, query: str) -> float:
        """The cosine floor that applies to ``query``."""
        return max(self.floor, self.factoid_floor) if asks_typed_answer(query) else self.floor

    @classmethod
    @functools.cache
    def default(cls) -> Verifier:
        """The shipped verifier (``storinfer/verifier.json``)."""
        return cls.from_dict(json.loads(WEIGHTS_PATH.read_text()))

    @classmethod
    def from_dict(cls, data: dict) -> Verifier:
        if tuple(data["features"]) != FEATURES:
            msg = f"verifier weights are for features {data['features']}, this StorInfer computes {FEATURES}: refit them"
            raise ValueError(msg)
        return cls(tuple(data["weights"]), float(data["bias"]), tuple(data["mean"]), tuple(data["scale"]),
                   float(data["floor"]), float(data["cut"]), float(data.get("factoid_floor", 0.95)))

    def with_operating_point(self, floor: float | None = None, cut: float | None = None) -> Verifier:
        """This verifier with another cosine floor (for every question) and / or score cut."""
        return Verifier(self.weights, self.bias, self.mean, self.scale,
                        self.floor if floor is None else float(floor), self.cut if cut is None else float(cut),
                        self.factoid_floor if floor is None else float(floor), self.names)

    def score_features(self, x: Sequence[float]) -> float:
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in zip(self.weights, x, self.mean, self.scale))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def check(self, query: str, candidate: str, similarity: float, *, runner_up: float | None = None,
              answer: str | None = None) -> Verdict:
        """Whether ``candidate`` (with its stored ``answer``, if known) may answer ``query``: the
        cosine floor, the hard rules, then the learned score."""
        floor = self.floor_for(query)
        if similarity < floor:
            return Verdict(False, 0.0, f"cosine {similarity:.3f} below floor {floor:.2f}")
        broken = hard_refusal(query, candidate)
        if broken:
            return Verdict(False, 0.0, f"rule: {broken}")
        wrong_type = answer_mismatch(query, answer)
        if wrong_type:
            return Verdict(False, 0.0, f"rule: answer {wrong_type}")
        score = self.score_features(features(query, candidate, similarity, runner_up))
        if score < self.cut:
            return Verdict(False, score, f"verifier score {score:.3f} below cut {self.cut:.3f}")
        return Verdict(True, score)


def hard_refusal(query: str, candidate: str) -> str | None:
    """The first hard rule ``candidate`` breaks against ``query`` (None: it breaks none)."""
    found = signals(query, candidate)
    return next((found[r] for r in HARD_RULES if found[r]), None)


def runner_up(candidates: Sequence[tuple[object, float]], position: int) -> float | None:
    """Similarity of the best other candidate with a different answer than candidate ``position``
    (None: there is none). ``candidates`` are ``(answer, similarity)``, best first."""
    own = candidates[position][0]
    return next((sim for i, (answer, sim) in enumerate(candidates) if i != position and answer != own), None)


def refusal_kind(reason: str) -> str:
    """A short label for ``stats()``: ``rule:numbers``, ``verifier``, ``floor``..."""
    if reason.startswith("rule: "):
        return "rule:" + re.split(r"[ :]", reason[6:], maxsplit=1)[0]
    if reason.startswith("verifier"):
        return "verifier"
    if reason.startswith("cosine"):
        return "floor"
    return reason.split(":")[0] or "other"


def clopper_pearson_upper(errors: int, n: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound on a rate from ``errors`` in ``n`` (exact binomial)."""
    if n == 0:
        return 1.0
    if errors >= n:
        return 1.0
    alpha = 1.0 - confidence

    def cdf(p: float) -> float:  # P(X <= errors) for X ~ Binomial(n, p), in log space
        logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
                + (n - k) * math.log1p(-p) for k in range(errors + 1)]
        top = max(logs)
        return math.exp(top) * sum(math.exp(v - top) for v in logs)

    lo, hi = errors / n, 1.0 - 1e-12
    for _ in range(60):
        mid = (lo + hi) / 2
        if cdf(mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi
