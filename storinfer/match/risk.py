"""Risk: the chance that serving a candidate is wrong, learnt per store from its own labels.

Each candidate the rules let through is described by a few numbers (:func:`describe`): the
verifier's score (as a log-odds), the cosine, the margin to the best candidate with another answer,
whether the question asks for a typed answer (who / when / how many...), and how many of the
nearest keys would serve the same answer text (an answer in a crowd of its own keys is safer than a
lone key), plus its *region* (a cosine band x a score band).

Per verifier head, a Bayesian logistic model (:class:`RiskModel`) gives P(wrong): a linear part over
those numbers, plus one effect per region, so the shape can follow what a single (floor, cut) cannot.
The prior is the shipped verifier taken at its word (P(right) = its score), with regions at zero:
twenty labels move it a little, five hundred a lot. It is fitted on *all* the partition's labels
(misses and explored hits) by Newton's method; its posterior covariance (Laplace) says how sure it is.

:func:`serve_limit` then chooses how far down the ranking to serve: the largest risk ``limit`` such
that, over recent traffic, the candidates at or below it have an expected wrong share within
``max_wrong_rate`` with a margin of ``z`` posterior standard deviations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from storinfer.match.features import TYPED, Query, answer_margin, support

COSINE_EDGES = (0.7, 0.8, 0.85, 0.9, 0.93, 0.96)
SCORE_EDGES = (0.5, 0.8, 0.9, 0.96, 0.99)
REGIONS = (len(COSINE_EDGES) + 1) * (len(SCORE_EDGES) + 1)
NAMES = ("bias", "score_logit", "cosine", "margin", "typed", "alone", "few")
PRIOR_MEAN = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
PRIOR_SD = (1.0, 0.3, 0.5, 0.5, 1.0, 1.5, 1.5)
REGION_SD = 0.7
MAX_LOGIT = 8.0


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return max(-MAX_LOGIT, min(MAX_LOGIT, math.log(p / (1 - p))))


def _band(value: float, edges: Sequence[float]) -> int:
    return sum(value >= e for e in edges)


def describe(query: Query, candidates: Sequence[Any], pos: int, score: float) -> list[float]:
    """The numbers the risk model reads for candidate ``pos`` (its verifier ``score``), then its region."""
    cand = candidates[pos]
    n = support(candidates, pos)
    region = _band(cand.similarity, COSINE_EDGES) * (len(SCORE_EDGES) + 1) + _band(score, SCORE_EDGES)
    return [1.0, _logit(score), (cand.similarity - 0.85) / 0.05, min(answer_margin(candidates, pos), 0.2) / 0.1,
            float(query.qtype in TYPED), float(n == 1), float(n in (2, 3)), float(region)]


def design(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """``describe`` rows as the model's design matrix (the region one-hot after the linear part)."""
    x = np.asarray(rows, dtype=float).reshape(len(rows), len(NAMES) + 1)
    out = np.zeros((len(x), len(NAMES) + REGIONS))
    out[:, : len(NAMES)] = x[:, : len(NAMES)]
    out[np.arange(len(x)), len(NAMES) + x[:, len(NAMES)].astype(int)] = 1.0
    return out


@dataclass
class RiskModel:
    """P(wrong | described candidate) for one head: a Bayesian logistic model (see the module docstring)."""

    theta: np.ndarray
    cov: np.ndarray
    labels: int = 0

    @classmethod
    def prior(cls) -> RiskModel:
        sd = np.r_[np.asarray(PRIOR_SD), np.full(REGIONS, REGION_SD)]
        return cls(np.r_[np.asarray(PRIOR_MEAN), np.zeros(REGIONS)], np.diag(sd ** 2))

    def risk(self, row: Sequence[float]) -> float:
        """P(wrong) of one described candidate (the posterior mean's prediction)."""
        eta = sum(t * v for t, v in zip(self.theta, row[: len(NAMES)])) + self.theta[len(NAMES) + int(row[len(NAMES)])]
        return 1.0 / (1.0 + math.exp(max(-50.0, min(50.0, eta))))

    def risks(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(wrong) of each row of a design matrix, and its gradient in the parameters."""
        s = 1.0 / (1.0 + np.exp(-np.clip(a @ self.theta, -50, 50)))  # P(right)
        return 1.0 - s, -(s * (1.0 - s))[:, None] * a

    def fit(self, rows: Sequence[Sequence[float]], right: Sequence[bool], iterations: int = 30) -> RiskModel:
        """The posterior given these labels, from the prior (MAP by Newton's method; Laplace covariance)."""
        prior = RiskModel.prior()
        mean, precision = prior.theta, np.linalg.inv(prior.cov)
        if not len(rows):
            return prior
        a, y = design(rows), np.asarray(right, dtype=float)
        theta = mean.copy()
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(a @ theta, -50, 50)))
            grad = a.T @ (y - p) - precision @ (theta - mean)
            hess = (a * (p * (1 - p))[:, None]).T @ a + precision
            step = np.linalg.solve(hess, grad)
            theta = theta + step
            if float(np.max(np.abs(step))) < 1e-6:
                break
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ theta, -50, 50)))
        hess = (a * (p * (1 - p))[:, None]).T @ a + precision
        return RiskModel(theta, np.linalg.inv(hess), len(rows))

    def to_dict(self) -> dict[str, Any]:
        return {"theta": [round(float(t), 6) for t in self.theta], "labels": self.labels}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskModel:
        theta = np.asarray(data["theta"], dtype=float)
        if theta.shape != (len(NAMES) + REGIONS,):
            msg = f"a recorded risk model has {theta.shape[0]} parameters; this StorInfer's has {len(NAMES) + REGIONS}"
            raise ValueError(msg)
        return cls(theta, RiskModel.prior().cov, int(data.get("labels", 0)))


def serve_limit(models: dict[str, RiskModel], traffic: Sequence[tuple[str, Sequence[float]]], max_wrong_rate: float,
                z: float = 1.0) -> tuple[float, float]:
    """The largest risk to serve at, and the expected wrong share of what it serves (``(0, 0)``: serve nothing).

    ``traffic``: recent lookups' best candidates, ``(head, described row)``. Served are those at or
    below the limit; their expected wrong share is the mean of their risks, and its uncertainty the
    posterior's (delta method, heads independent). The limit is the largest whose share + ``z`` sd
    stays within ``max_wrong_rate``.
    """
    risk, grads = [], []
    offset, offsets = 0, {}
    for head in models:
        offsets[head] = offset
        offset += len(models[head].theta)
    for head, model in models.items():
        rows = [row for h, row in traffic if h == head]
        if not rows:
            continue
        p, g = model.risks(design(rows))
        full = np.zeros((len(rows), offset))
        full[:, offsets[head]: offsets[head] + g.shape[1]] = g
        risk.append(p)
        grads.append(full)
    if not risk:
        return 0.0, 0.0
    p, g = np.concatenate(risk), np.concatenate(grads)
    order = np.argsort(p, kind="stable")
    p, g = p[order], g[order]
    k = np.arange(1, len(p) + 1)
    share = np.cumsum(p) / k
    mean_grad = np.cumsum(g, axis=0) / k[:, None]
    cov = np.zeros((offset, offset))
    for head, model in models.items():
        n = len(model.theta)
        cov[offsets[head]: offsets[head] + n, offsets[head]: offsets[head] + n] = model.cov
    sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", mean_grad, cov, mean_grad), 0.0))
    ok = np.nonzero(share + z * sd <= max_wrong_rate)[0]
    if not len(ok):
        return 0.0, 0.0
    last = int(ok[-1])
    return float(p[last]), float(share[last])
