"""Evidence: how far a partition's own labels move each head's serving cut from the policy's point.

The policy's operating point (:class:`~storinfer.match.point.OperatingPoint`) serves a candidate at
or above its head's cosine floor and score cut. A candidate's *clearance* is how far it clears the
point: the smaller of (cosine - floor) x :data:`COSINE_SCALE` and (score - cut); inside the point
it is >= 0, outside it is negative, and the further below the point, the more negative. Each head
serves the candidates whose clearance is at or above its *cut*: 0 is the point itself, and the
labels move it.

* **Inside, the point is trusted.** The cut stays at 0 unless the labels of answers explored inside
  the point (or missed there, once part of it is closed) show a band of clearances wrong more often
  than ``max_wrong_rate`` (a one-sided lower confidence bound above it, :data:`CLOSE_MIN_WRONG`
  wrong answers at least): then the cut rises above that band. The whole head closes instead when
  the labels above the band do not show them better than it (their upper bound is not below its
  lower bound) and the labels down to it, together, show the head over the bound: a single right
  label above a wrong band is no evidence that the wrong answers sit only in that band.
* **Beyond it, evidence is needed.** The cut goes below 0 only as far as what the head would then
  serve stays wrong at most ``max_wrong_rate`` of the time on average: the point's expected wrong
  answers (its explored labels, from a prior of the rate it was chosen for, :func:`point_rate`) plus,
  for the candidates beyond it, a one-sided upper confidence bound from their labels (the chain
  answers every miss anyway), each weighed by how often recent lookups land there; and no band
  beyond the point is opened whose own wrong share is far over the bound (:data:`BAND_GUARD`).

The bands are the labels pooled by clearance so that their wrong shares rise as the clearance falls
(:func:`bands`). The cut is chosen again from all the labels at every refit, so it follows the
evidence both ways; each side reads only its own labels, so a wrong answer far below the point
cannot shrink the point, and none inside it stops a well-evidenced region beyond it from opening.
Nothing here reads a store: :mod:`storinfer.serve.learner` wires it up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from storinfer.match.bounds import beta_quantile, clopper_pearson_upper
from storinfer.match.point import HEADS, OperatingPoint, is_repeat

CLOSED = 2.0
"""A cut no clearance reaches: the head serves nothing."""
MIN_COSINE = 0.5
"""Candidates below this cosine are never served beyond the point, nor labelled."""
BAND_GUARD = 3.0
"""No band beyond the point opens if its own wrong share is over this many times the bound, however
good the labels above it: a well-evidenced region cannot carry a bad one below it."""
POINT_PRIOR = 100
"""How many labels the point's prior wrong share (the rate it was chosen for) is worth."""
CLEARANCE_EPS = 1e-4
"""Clearances this close count as the same (labels keep scores and cosines to 5 decimals)."""
COSINE_SCALE = 1.0
"""How many points of verifier score one point of cosine is worth in a clearance (2.5 and 5 were tried
and not kept: docs/serve-decision.md, "Tried and not kept")."""
CLOSE_MIN_WRONG = 2
"""Wrong answers a band inside the point needs before it closes: one wrong answer is its answer's own
business (the answer cut), not evidence against the band."""


@dataclass(frozen=True)
class Case:
    """What the learner knows of a candidate: its head, verifier score, cosine, and whether the
    question asks for a typed answer (the point's typed floor)."""

    head: str
    score: float
    cosine: float
    typed: bool = False


def plain_clearance(point: OperatingPoint, case: Case) -> float:
    """How far ``case`` clears its head's floor and cut, the repeat floor aside: >= 0 inside them."""
    hp = point.head(case.head)
    return min((case.cosine - hp.floor_for(case.typed)) * COSINE_SCALE, case.score - hp.cut)


def clearance(point: OperatingPoint, case: Case) -> float:
    """How far ``case`` clears the point: >= 0 inside it, < 0 outside (see the module docstring). A
    near-repeat of traffic (at or above the point's repeat floor and its head's cosine floor) is inside
    it, at 0 unless it clears it further."""
    plain = plain_clearance(point, case)
    floor = point.head(case.head).floor_for(case.typed)
    return max(plain, 0.0) if is_repeat(point.repeat_floor, case.head, case.cosine) and case.cosine >= floor else plain


def scaled(point: OperatingPoint, max_wrong_rate: float, point_rate: float) -> OperatingPoint:
    """The point for a stricter bound than the one it was chosen for (``point_rate``): each head's score
    margin below 1, and the repeat floor's cosine margin, shrunk in proportion, so a stricter bound
    serves less, never more."""
    if max_wrong_rate >= point_rate:
        return point
    ratio = max_wrong_rate / point_rate

    def tighten(hp: Any) -> Any:
        return None if hp is None else replace(hp, cut=1.0 - (1.0 - hp.cut) * ratio)

    repeat = None if point.repeat_floor is None else 1.0 - (1.0 - point.repeat_floor) * ratio
    return OperatingPoint(tighten(point.question), tighten(point.fact), tighten(point.runtime), repeat)


def lower_bound(errors: int, n: int, confidence: float) -> float:
    """One-sided lower confidence bound on a rate (exact binomial; 0 without errors)."""
    if errors <= 0:
        return 0.0
    return beta_quantile(1.0 - confidence, errors, n - errors + 1.0)


def bands(labels: Sequence[tuple[float, bool]]) -> list[tuple[float, int, int]]:
    """The labels (``(clearance, right)``) pooled into bands, best first, whose wrong shares rise as the
    clearance falls (pool-adjacent-violators: a band no better than the one above it joins it).
    Each band: (its lowest clearance, labels, wrong)."""
    out: list[list[float]] = []  # [lowest clearance, labels, wrong]
    for m, right in sorted(labels, key=lambda x: -x[0]):
        out.append([m, 1, 0 if right else 1])
        while len(out) > 1 and out[-1][2] * out[-2][1] <= out[-2][2] * out[-1][1]:  # rate below <= rate above
            low, n, k = out.pop()
            out[-1] = [low, out[-1][1] + n, out[-1][2] + k]
    return [(b[0], int(b[1]), int(b[2])) for b in out]


def open_cut(labels: Sequence[tuple[float, bool]], max_wrong_rate: float, confidence: float, *,
             traffic: Sequence[float] = (), point_wrong: float = 0.0) -> tuple[float, int, int]:
    """The lowest clearance beyond the point down to which what the head would serve stays within
    ``max_wrong_rate`` on average: the point's expected wrong answers (``point_wrong``, over the traffic
    inside it) plus, beyond it, the labels' one-sided upper bound at ``confidence`` times the traffic
    there, no more than ``max_wrong_rate`` of all of it; and no band down to it over :data:`BAND_GUARD`
    times the rate. ``traffic``: the clearances of recent lookups' best candidates (without it, the
    labels stand for the traffic). 0 (nothing beyond the point) when none. Returns (cut, labels, wrong)."""
    ranked = sorted(traffic, reverse=True) if traffic else sorted((m for m, _r in labels), reverse=True)
    inside_n = sum(m >= 0 for m in ranked)
    beyond = [m for m in ranked if m < 0]
    best = (0.0, 0, 0)
    n = wrong = 0
    for low, bn, bk in bands(labels):
        if bk > BAND_GUARD * max_wrong_rate * bn:
            break
        n, wrong = n + bn, wrong + bk
        # the labels are lookups that landed there too (and a label's clearance, from its rounded
        # score and cosine, may sit a hair above its lookup's): a band is never free to open
        served = max(sum(m >= low - CLEARANCE_EPS for m in beyond), n)
        if point_wrong + clopper_pearson_upper(wrong, n, confidence) * served <= max_wrong_rate * (inside_n + served):
            best = (low, n, wrong)
    return best


def close_cut(labels: Sequence[tuple[float, bool]], max_wrong_rate: float, confidence: float) -> tuple[float, int, int]:
    """0 (the whole point) unless a band of these labels inside the point is shown wrong more often than
    ``max_wrong_rate`` (see the module docstring); then the lowest clearance of the bands above it, or
    :data:`CLOSED` if it is the best band, or if the bands above are not shown better than it and all the
    labels down to it are shown over the bound. Returns (cut, labels, wrong) of what stays served."""
    found = bands(labels)
    n = wrong = 0
    for i, (_low, bn, bk) in enumerate(found):
        shown = lower_bound(bk, bn, confidence)
        if bk >= CLOSE_MIN_WRONG and shown > max_wrong_rate:
            # the bands above stay served if their own labels show them better than this one, or if the
            # labels down to this band, together, do not show the head over the bound
            if i and (clopper_pearson_upper(wrong, n, confidence) < shown
                      or lower_bound(wrong + bk, n + bn, confidence) <= max_wrong_rate):
                return found[i - 1][0], n, wrong
            return CLOSED, 0, 0
        n, wrong = n + bn, wrong + bk
    return 0.0, n, wrong


@dataclass
class HeadCut:
    """One head's cut (serve at clearance >= ``cut``) and the evidence behind it."""

    cut: float = 0.0
    inside_labels: int = 0
    inside_wrong: int = 0
    outside_labels: int = 0
    outside_wrong: int = 0

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadCut:
        return cls(float(data.get("cut", 0.0)), *(int(data.get(k, 0)) for k in
                                                  ("inside_labels", "inside_wrong", "outside_labels", "outside_wrong")))


@dataclass
class LearntState:
    """What a partition serves with: each head's cut and the answers found wrong (the *answer cuts*:
    below the verifier score it was found wrong at, that answer is not served)."""

    heads: dict[str, HeadCut] = field(default_factory=lambda: {h: HeadCut() for h in HEADS})
    answer_cuts: dict[str, float] = field(default_factory=dict)
    labels: int = 0
    version: int = 0
    """0: nothing learnt yet (the point serves as it is)."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "clearances", "heads": {h: c.to_dict() for h, c in self.heads.items()},
                "answer_cuts": self.answer_cuts, "labels": self.labels, "version": self.version}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearntState | None:
        """A recorded state, or None for one of another kind (an older StorInfer's: relearnt from the labels)."""
        if data.get("kind") != "clearances":
            return None
        heads = {h: HeadCut.from_dict(data["heads"].get(h, {})) for h in HEADS}
        return cls(heads, {str(k): float(v) for k, v in data.get("answer_cuts", {}).items()}, int(data.get("labels", 0)),
                   int(data["version"]))


@dataclass(frozen=True)
class Evidence:
    """One label as the cut reads it: the case, whether it was right, whether it was an explored hit, its answer."""

    case: Case
    right: bool
    explored: bool
    answer: str = ""

    @property
    def checked_wrong(self) -> bool:
        """A checked hit (audited or explored) whose stored answer was wrong (as :attr:`storinfer.store.Label.checked_wrong`)."""
        return self.explored and not self.right


def point_rate(labels: int, wrong: int, prior_rate: float) -> float:
    """The expected wrong share of the point: its explored labels, from a prior of the rate it was chosen for
    worth :data:`POINT_PRIOR` labels."""
    return (wrong + prior_rate * POINT_PRIOR) / (labels + POINT_PRIOR)


def choose(labels: Iterable[Evidence], point: OperatingPoint, *, max_wrong_rate: float, open_confidence: float,
           close_confidence: float, traffic: Iterable[tuple[str, float]] = (), prior_rate: float = 0.01,
           version: int = 0) -> LearntState:
    """Each head's cut from all the labels (a point shown over the bound is not widened), and the answer cuts.
    ``traffic``: (head, clearance) of recent lookups' best candidates."""
    labels, traffic = list(labels), list(traffic)
    heads = {}
    for head in HEADS:
        rows = [(clearance(point, lb.case), lb.right) for lb in labels if lb.case.head == head and lb.case.cosine >= MIN_COSINE]
        ins = [r for r in rows if r[0] >= 0]
        cut_in, n_in, k_in = close_cut(ins, max_wrong_rate, close_confidence)
        seen = [m for h, m in traffic if h == head]
        rate = point_rate(len(ins), sum(not r for _m, r in ins), min(prior_rate, max_wrong_rate))
        cut_out, n_out, k_out = open_cut([r for r in rows if r[0] < 0], max_wrong_rate, open_confidence, traffic=seen,
                                         point_wrong=rate * sum(m >= 0 for m in seen))
        heads[head] = HeadCut(cut_in if cut_in > 0 else cut_out, n_in, k_in, n_out, k_out)
    cuts: dict[str, float] = {}
    for lb in labels:
        if lb.checked_wrong and lb.answer:
            cuts[lb.answer] = max(cuts.get(lb.answer, 0.0), lb.case.score + 1e-3)
    return LearntState(heads, cuts, len(labels), version)


__all__ = ["CLOSED", "MIN_COSINE", "Case", "Evidence", "HeadCut", "LearntState", "bands", "choose", "close_cut",
           "open_cut", "scaled"]
