"""Refit: a partition's operating point from its labels, under the user's wrong-hit bound.

Each label is the best candidate a lookup had (its verifier head, cosine and score) and whether
its stored answer would have been right (:mod:`storinfer.store.labels`). For every point
(cosine floor, score cut) of a grid, the labels inside it are the cases that point would serve:

* **volume**: how much traffic it would serve, a miss counting once and an explored hit for the
  ``1 / share`` would-be hits it was drawn from;
* **bound**: the one-sided Clopper-Pearson upper bound (``confidence``) on its wrong rate, from
  the labels inside it counted *unweighted*. Misses are labelled in full and hits only in part, so
  the unweighted count over-represents the lower-scoring candidates, which are wrong more often
  wherever the verifier's score orders right above wrong: the bound is conservative. Exploration
  checks that order on the traffic actually served.

The new point is the one with the most volume whose bound is within ``max_wrong_rate`` and which
holds at least ``min_labels`` labels. A point looser than the prior (the shipped, calibrated or
cold-start one) is taken only that way: the labels must support it. When the labels inside the
prior point are wrong more often than ``max_wrong_rate`` (served answers found wrong), the point
tightens at once to the stricter point serving the most whose labels keep the bound (or, with
fewer than ``min_labels`` labels, hold no wrong one), or to serving nothing but exact repeats if
none does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from storinfer.match.bounds import clopper_pearson_upper

FLOORS = tuple(round(0.60 + 0.01 * i, 2) for i in range(39))  # 0.60 .. 0.98
CUTS = tuple(round(0.02 * i, 2) for i in range(50))  # 0.00 .. 0.98
SERVE_NOTHING = {"floor": 1.01, "cut": 1.01}


@dataclass
class HeadFit:
    """What a refit found for one verifier head."""

    floor: float
    cut: float
    labels: int = 0  # labels inside the chosen point
    wrong: int = 0
    volume: float = 0.0
    upper: float = 1.0
    widened: bool = False
    tightened: bool = False
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"floor": self.floor, "cut": self.cut, "labels": self.labels, "wrong": self.wrong,
                "volume": round(self.volume, 1), "upper": round(self.upper, 5), "widened": self.widened,
                "tightened": self.tightened, "note": self.note}


@dataclass
class Refit:
    heads: dict[str, HeadFit] = field(default_factory=dict)
    labels: int = 0


def _arrays(labels: Sequence[Any], head: str, typed_floor: float | None) -> tuple[np.ndarray, ...]:
    """The head's labels as arrays. A typed question (who / when / how many...) counts only at or
    above the head's typed floor, which a refit does not lower."""
    rows = [lb for lb in labels if lb.head == head and lb.rules_ok and lb.source in ("miss", "explore")]
    cos = np.array([-1.0 if typed_floor is not None and lb.typed and lb.cosine < typed_floor else lb.cosine
                    for lb in rows], dtype=float)
    score = np.array([lb.score for lb in rows], dtype=float)
    wrong = np.array([not lb.right for lb in rows], dtype=bool)
    weight = np.array([1.0 / lb.probability for lb in rows], dtype=float)
    return cos, score, wrong, weight


def fit_head(labels: Sequence[Any], head: str, prior: dict[str, float], *, max_wrong_rate: float,
             confidence: float = 0.95, min_labels: int = 50, floors: Sequence[float] = FLOORS,
             cuts: Sequence[float] = CUTS) -> HeadFit:
    """The operating point of one head (see the module docstring)."""
    cos, score, wrong, weight = _arrays(labels, head, prior.get("typed_floor"))
    p_floor, p_cut = float(prior["floor"]), float(prior["cut"])
    if len(cos) == 0:
        return HeadFit(p_floor, p_cut, note="no labels yet: the prior point")
    f = np.asarray(floors, dtype=float)[:, None, None]
    c = np.asarray(cuts, dtype=float)[None, :, None]
    inside = (cos[None, None, :] >= f) & (score[None, None, :] >= c)  # floors x cuts x labels
    n = inside.sum(axis=2)
    e = (inside & wrong[None, None, :]).sum(axis=2)
    volume = (inside * weight[None, None, :]).sum(axis=2)
    at_prior = (cos >= p_floor) & (score >= p_cut)
    prior_n, prior_e = int(at_prior.sum()), int((at_prior & wrong).sum())
    prior_upper = clopper_pearson_upper(prior_e, prior_n, confidence) if prior_n else 1.0
    prior_volume = float(weight[at_prior].sum())
    # too loose: served answers were found wrong there, more often than the target allows
    breaks = prior_e > 0 and prior_e / prior_n > max_wrong_rate

    def within(i: int, j: int) -> bool:
        return int(e[i, j]) <= max_errors_within(int(n[i, j]), max_wrong_rate, confidence)

    strict = (f >= p_floor) & (c >= p_cut)
    for flat in np.argsort(-volume, axis=None, kind="stable"):  # ties: the lowest floor, then cut
        i, j = np.unravel_index(flat, volume.shape)
        vol = float(volume[i, j])
        if breaks:
            if not strict[i, j, 0]:
                continue
            ok = (n[i, j] >= min_labels and within(i, j)) or (n[i, j] < min_labels and e[i, j] == 0)
            if ok:
                upper = clopper_pearson_upper(int(e[i, j]), int(n[i, j]), confidence) if n[i, j] else 1.0
                return HeadFit(float(floors[i]), float(cuts[j]), int(n[i, j]), int(e[i, j]), vol, upper, tightened=True,
                               note="tightened: the labels showed the prior point serves too many wrong answers")
            continue
        if vol <= prior_volume:
            break  # nothing serves more than the prior with the labels' support
        if n[i, j] < min_labels:
            continue
        if within(i, j):
            upper = clopper_pearson_upper(int(e[i, j]), int(n[i, j]), confidence)
            return HeadFit(float(floors[i]), float(cuts[j]), int(n[i, j]), int(e[i, j]), vol, upper, widened=True,
                           note="widened: the labels support it under the bound")
    if breaks:
        return HeadFit(SERVE_NOTHING["floor"], SERVE_NOTHING["cut"], prior_n, prior_e, 0.0, prior_upper, tightened=True,
                       note="the labels break the bound at every point: only exact repeats are served")
    return HeadFit(p_floor, p_cut, prior_n, prior_e, prior_volume, prior_upper,
                   note="the labels support no wider point yet: the prior point")


def refit(labels: Sequence[Any], prior: dict[str, dict[str, float]], *, max_wrong_rate: float,
          confidence: float = 0.95, min_labels: int = 50) -> Refit:
    """Each head's point from ``labels`` (the partition's), starting from ``prior`` ({head: {floor, cut}})."""
    out = Refit(labels=len(labels))
    for head, point in prior.items():
        out.heads[head] = fit_head(labels, head, point, max_wrong_rate=max_wrong_rate, confidence=confidence,
                                   min_labels=min_labels)
    return out


@functools.lru_cache(maxsize=65536)
def max_errors_within(n: int, rate: float, confidence: float = 0.95) -> int:
    """The most errors in ``n`` whose one-sided Clopper-Pearson upper bound is still <= ``rate``
    (-1: none, not even 0). The bound is within ``rate`` exactly when P(X <= errors) <= 1 - confidence
    for X ~ Binomial(n, rate)."""
    alpha = 1.0 - confidence
    e, cdf = -1, 0.0
    log_q = math.log1p(-rate)
    term = math.exp(n * log_q)  # P(X = 0)
    while e < n:
        cdf += term
        if cdf > alpha:
            return e
        e += 1
        term *= (n - e) / (e + 1) * rate / (1 - rate) if e < n else 0.0
    return n
