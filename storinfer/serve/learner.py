"""The learner: how much each partition serves, learnt from the app's own answers under ``max_wrong_rate``.

**The contract.** ``max_wrong_rate`` (default 0.01) is the *expected* share of served answers that
are wrong, over the partition's traffic, warm-up included: a lookup serves its best candidate only
while the answers served at that risk or below are, by the learnt model, wrong no more often than
that, with a margin of half a posterior standard deviation. It is an expectation under the model, not
a guarantee on any one stream: the realised share scatters around it, and a model can be wrong
where it has few labels (see docs/serve-decision.md for what was measured). Exact repeats of a
stored question are served outside it.

**How it learns.** Every miss that had a candidate runs the app's chain anyway, and the chain's
answer says whether the best candidate's stored answer would have done (a *label*, judged by
:mod:`storinfer.match.judge`). A share of would-be hits is answered by the chain too
(*exploration*: half of them at first, then fewer as labels come, at least ``explore_floor``), which
labels the served side. Labels go to the store, shared by every client. In the background, at a
cadence that slows as labels grow (every 10 labels at first, then every 10% more, and at once after
an explored hit was wrong), the risk model of each head (:mod:`storinfer.match.risk`) is refit on all
of them and the serving limit chosen again (:func:`storinfer.match.risk.serve_limit`); the state is
written in one record (a refit that dies leaves the last good one) and other clients read it back.
A lookup only evaluates the model: a few multiplications per candidate.

**What it costs.** One chain run per explored hit: ``stats()["explore_per_query"]``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from storinfer.errors import StoreConfigError
from storinfer.match.features import Query, candidate_kind, same_answer_key
from storinfer.match.judge import AnswerJudge, TextJudge
from storinfer.match.lookup import Candidates
from storinfer.match.policy import Policy
from storinfer.match.risk import RiskModel, describe, serve_limit
from storinfer.records import Lookup, Match, Reason
from storinfer.serve.worker import Worker
from storinfer.store import Label, QAStore

logger = logging.getLogger(__name__)
HEADS = ("question", "fact", "runtime")
MIN_COSINE = 0.5
"""Candidates below this cosine are never considered (nor labelled)."""
TRAFFIC = 3000
"""Recent lookups whose best candidate the serving limit is chosen over."""
AUDIT_PRIOR = 3.0
"""The audit's prior, in expected wrong answers: the risk model is taken as calibrated until the explored
hits have shown about this many wrong answers more (or fewer) than it predicted."""


class PartitionLearning(Protocol):
    """What a front asks of the learner of one partition."""

    counts: dict[str, int]

    def decide(self, query: Query, found: Candidates, policy: Policy) -> Lookup: ...

    def learn(self, question: str, found: Lookup, answer: str) -> Label | None: ...

    def record_check(self, found: Lookup, pos: int, verdict: bool) -> None: ...

    def refit_now(self) -> Any: ...

    def stats(self) -> dict[str, Any]: ...


class LearnerLike(Protocol):
    """A learner's configuration (a frozen dataclass with ``max_wrong_rate``): :class:`Learner`, or a
    baseline of the benchmarks."""

    @property
    def max_wrong_rate(self) -> float: ...

    def start(self, store: QAStore, namespace: str, partition: str, worker: Worker) -> PartitionLearning: ...


def check_rate(value: object) -> float:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        msg = f"max_wrong_rate must be a share between 0 and 1 (e.g. 0.01), got {value!r}"
        raise StoreConfigError(msg)
    return float(value)


@dataclass(frozen=True)
class Learner:
    """Learns, per partition, how much to serve from the app's own answers (see the module docstring).

    Setup:
        ```bash
        pip install storinfer          # the learner needs numpy only
        ```

    Instantiate:
        ```python
        from storinfer import Learner

        learner = Learner(max_wrong_rate=0.02)          # serve more, accept more wrong answers
        ```

    Usage:
        ```python
        StorInferCache("./storinfer_db", learner=learner)   # learner=None: serve at the policy's point
        ```

    Args:
        max_wrong_rate: the expected share of served answers allowed to be wrong.
        answer_judge: compares the chain's answer with a stored one (default:
            :class:`~storinfer.match.judge.TextJudge` over the store's embedder).
        explore_floor: the least share of would-be hits the chain answers anyway, to check them.
        margin_sd: how many posterior standard deviations of margin the serving limit keeps (0.5:
            chosen on CLINC150, see docs/serve-decision.md).
        seed: seeds exploration's draws (None: not repeatable).
    """

    max_wrong_rate: float = 0.01
    answer_judge: AnswerJudge | None = field(default=None, compare=False)
    explore_floor: float = 0.02
    margin_sd: float = 0.5
    seed: int | None = 0

    def __post_init__(self) -> None:
        check_rate(self.max_wrong_rate)
        if not (isinstance(self.explore_floor, (int, float)) and 0 <= self.explore_floor <= 0.5):
            msg = f"explore_floor must be a share between 0 and 0.5, got {self.explore_floor!r}"
            raise StoreConfigError(msg)

    def start(self, store: QAStore, namespace: str, partition: str, worker: Worker) -> PartitionLearner:
        """The learner of one partition of ``store`` (its state read from the store)."""
        return PartitionLearner(self, store, namespace, partition, worker)


@dataclass
class LearntState:
    """What a partition serves with: a risk model per head, the serving limit, answers found wrong."""

    models: dict[str, RiskModel]
    limit: float = 0.0
    expected_wrong: float = 0.0
    answer_cuts: dict[str, float] = field(default_factory=dict)
    """Answer (text key) -> the verifier score it was found wrong at: below it, that answer is not served."""
    labels: int = 0
    explored_labels: int = 0
    version: int = 0
    """0: no refit yet (the policy's point serves)."""
    audit: float = 1.0
    """How much more often explored hits were wrong than the model said when it served them (>= 1)."""

    @classmethod
    def prior(cls) -> LearntState:
        return cls({h: RiskModel.prior() for h in HEADS})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "risk", "models": {h: m.to_dict() for h, m in self.models.items()}, "limit": self.limit,
                "expected_wrong": self.expected_wrong, "answer_cuts": self.answer_cuts, "labels": self.labels,
                "explored_labels": self.explored_labels, "version": self.version, "audit": self.audit}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearntState:
        return cls({h: RiskModel.from_dict(m) for h, m in data["models"].items()}, float(data["limit"]),
                   float(data.get("expected_wrong", 0.0)), dict(data.get("answer_cuts", {})), int(data.get("labels", 0)),
                   int(data.get("explored_labels", 0)), int(data["version"]), float(data.get("audit", 1.0)))


class PartitionLearner:
    """The learner of one (namespace, partition): decides each lookup and learns from its labels."""

    reload_seconds = 5.0

    def __init__(self, config: Learner, store: QAStore, namespace: str, partition: str, worker: Worker) -> None:
        self.config, self.store, self.namespace, self.partition, self.worker = config, store, namespace, partition, worker
        self.judge: AnswerJudge = config.answer_judge or TextJudge(store.embedding)
        self.state = LearntState.prior()
        self.traffic: deque[tuple[str, list[float]]] = deque(maxlen=TRAFFIC)
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()
        self._labels: list[Label] = []
        self._read_until = 0.0
        self._since_refit = 0
        self._explored_new = 0
        self._last_reload = time.monotonic()
        self.counts = {"would_be_hits": 0, "explored": 0, "answer_cut": 0, "labels": 0, "labels_wrong": 0, "refits": 0}
        saved = store.states.get(namespace, partition)
        if saved and saved.get("kind") == "risk":
            self.state = LearntState.from_dict(saved)

    # --- serving -----------------------------------------------------------------------------
    def explore_share(self) -> float:
        """Half of the would-be hits at first, fewer as explored labels come, never below the floor."""
        return max(self.config.explore_floor, min(0.5, 5.0 / (self.state.explored_labels + self._explored_new + 10)))

    def decide(self, query: Query, found: Candidates, policy: Policy) -> Lookup:
        """Serve the candidate of least risk if it is within the limit; else say why not (and keep
        what the chain's answer will label). Until the first refit, the policy's own point decides
        (the shipped verifier's, or the one ``storinfer calibrate`` recorded)."""
        self._maybe_reload()
        verdicts = policy.assess(query, found.matches)
        state = self.state
        best: tuple[float, int, str, list[float]] | None = None
        rows: dict[int, tuple[float, str, list[float]]] = {}
        for pos, (cand, verdict) in enumerate(zip(found.matches, verdicts)):
            if not verdict.ok or cand.similarity < MIN_COSINE:
                continue
            head = candidate_kind(cand)
            row = describe(query, found.matches, pos, verdict.score)
            risk = state.models[head].risk(row)
            rows[pos] = (risk, head, row)
            if best is None or risk < best[0]:
                best = (risk, pos, head, row)
        rejected = [(c, v.reason) for c, v in zip(found.matches, verdicts) if not v.ok and c.similarity >= MIN_COSINE]
        if best is None:
            return found.miss(Reason.REFUSED if rejected else
                              (Reason.EMPTY_PARTITION if not found.matches else Reason.BELOW_THRESHOLD), rejected=rejected)
        risk, pos, head, row = best
        self.traffic.append((head, row))
        if state.version == 0:  # no refit yet: the policy's point, and its hits explored
            at_point = policy.decide(query, found)
            if at_point.match is not None:
                served = found.matches.index(at_point.match)
                if served in rows:
                    risk, head, row = rows[served]
                    pos = served
                    return self._serve(found, pos, head, row, verdicts[pos].score, risk, rejected)
                return at_point
            return self._note(found, Reason.REFUSED if at_point.rejected else Reason.BELOW_THRESHOLD, pos, head, row,
                              verdicts[pos].score, risk, rejected)
        cand, score = found.matches[pos], verdicts[pos].score
        within = risk <= state.limit * (1 + 1e-9)  # the limit is a risk computed the same way, up to rounding
        cut = state.answer_cuts.get(same_answer_key(cand))
        if within and cut is not None and score < cut:
            self.counts["answer_cut"] += 1
            return self._note(found, Reason.ANSWER_CUT, pos, head, row, score, risk, rejected)
        if within:
            return self._serve(found, pos, head, row, score, risk, rejected)
        return self._note(found, Reason.TOO_RISKY, pos, head, row, score, risk, rejected)

    def _note(self, found: Candidates, reason: Reason, pos: int, head: str, row: list[float], score: float, risk: float,
              rejected: list[tuple[Match, str]], **kw: Any) -> Lookup:
        note = {"pos": pos, "head": head, "row": row, "score": score, "risk": risk, "typed": bool(row[4]), **kw}
        return found.miss(reason, rejected=rejected, score=score, risk=risk, note=note,
                          explored=found.matches[pos] if reason is Reason.EXPLORE else None)

    def _serve(self, found: Candidates, pos: int, head: str, row: list[float], score: float, risk: float,
               rejected: list[tuple[Match, str]]) -> Lookup:
        """A would-be hit: served, or (a share of them) explored."""
        self.counts["would_be_hits"] += 1
        share = self.explore_share()
        if self._random.random() < share:
            self.counts["explored"] += 1
            self._explored_new += 1
            return self._note(found, Reason.EXPLORE, pos, head, row, score, risk, rejected, probability=share)
        return found.hit(pos, rejected=rejected, score=score, risk=risk)

    # --- learning ------------------------------------------------------------------------------
    def label_for(self, found: Lookup, answer: str, source: str = "") -> Label | None:
        note = found.note
        if not note or "row" not in note:
            return None
        cand = found.candidates[note["pos"]]
        explored = found.reason is Reason.EXPLORE
        return Label(self.namespace, self.partition, note["head"], round(float(note["score"]), 5),
                     round(cand.similarity, 5), bool(self.judge.same(answer, cand.answer)),
                     source=source or ("explore" if explored else "miss"),
                     probability=float(note.get("probability", 1.0)) if explored else 1.0,
                     answer=same_answer_key(cand), typed=bool(note["typed"]), features=list(note["row"]),
                     risk=round(float(note.get("risk", -1.0)), 6))

    def learn(self, question: str, found: Lookup, answer: str) -> Label | None:
        """Judge the chain's ``answer`` against the lookup's best candidate and queue the label (off the
        caller's path). An explored hit found wrong cuts its answer at once."""
        label = self.label_for(found, answer)
        if label is None:
            return None
        urgent = label.source == "explore" and not label.right
        if urgent:
            with self._lock:
                cuts = dict(self.state.answer_cuts)
                cuts[label.answer] = min(1.01, max(cuts.get(label.answer, 0.0), label.score + 1e-3))
                self.state.answer_cuts = cuts
        self.worker.submit(lambda: self._write(label, urgent))
        return label

    def record_check(self, found: Lookup, pos: int, verdict: bool) -> None:
        """Keep an LLM check's verdict as a label (``source="llm check"``; the model fits on the chain's only)."""
        cand = found.candidates[pos]
        label = Label(self.namespace, self.partition, candidate_kind(cand), round(float(found.score or 0.0), 5),
                      round(cand.similarity, 5), bool(verdict), source="llm check", answer=same_answer_key(cand))
        def write() -> None:
            self.store.labels.add([label])

        self.worker.submit(write)

    def _write(self, label: Label, urgent: bool) -> None:
        self.store.labels.add([label])
        self.counts["labels"] += 1
        self.counts["labels_wrong"] += not label.right
        self._since_refit += 1
        due = max(10, int(0.1 * (self.state.labels + self._since_refit)))
        if urgent or self._since_refit >= due:
            self.refit()

    def _read_labels(self) -> list[Label]:
        """Every label of the partition (incrementally: those written since the last read, with overlap)."""
        since = self._read_until - 60.0 if self._labels else None
        fresh = self.store.labels.records(namespace=self.namespace, partition=self.partition, since=since)
        if since is None:
            self._labels = fresh
        else:
            seen = {(lb.created_at, lb.score, lb.cosine, lb.answer, lb.source) for lb in self._labels if lb.created_at > since}
            self._labels += [lb for lb in fresh if (lb.created_at, lb.score, lb.cosine, lb.answer, lb.source) not in seen]
        if self._labels:
            self._read_until = max(lb.created_at for lb in self._labels)
        return self._labels

    def refit(self) -> LearntState:
        """Refit every head on all the partition's labels, choose the limit, publish (on the caller's thread)."""
        labels = [lb for lb in self._read_labels() if lb.source in ("miss", "explore") and lb.features]
        models = {}
        for head in HEADS:
            rows = [lb for lb in labels if lb.head == head]
            models[head] = RiskModel.prior().fit([lb.features for lb in rows], [lb.right for lb in rows])
        audit = served_audit(labels)
        limit, expected = serve_limit(models, list(self.traffic), self.config.max_wrong_rate / audit, self.config.margin_sd)
        with self._lock:
            cuts = dict(self.state.answer_cuts)
            state = LearntState(models, limit, expected * audit, cuts, len(labels),
                                sum(lb.source == "explore" for lb in labels), self.state.version + 1, audit)
        self.store.states.put(self.namespace, self.partition, state.to_dict())  # one write: all or nothing
        with self._lock:
            self.state = state
            self._since_refit = 0
            self._explored_new = 0
        self.counts["refits"] += 1
        return state

    def refit_now(self) -> LearntState:
        """Refit at once (after the queued labels are written)."""
        self.worker.flush()
        return self.refit()

    def _maybe_reload(self) -> None:
        if time.monotonic() - self._last_reload > self.reload_seconds:
            self._last_reload = time.monotonic()
            self.worker.submit(self._reload)

    def _reload(self) -> None:
        saved = self.store.states.get(self.namespace, self.partition)
        if saved and saved.get("kind") == "risk" and int(saved["version"]) > self.state.version:
            with self._lock:
                self.state = LearntState.from_dict(saved)

    def stats(self) -> dict[str, Any]:
        s = self.state
        return {"limit": round(s.limit, 5), "expected_wrong_rate": round(s.expected_wrong, 5), "audit": round(s.audit, 3),
                "max_wrong_rate": self.config.max_wrong_rate, "labels_in_store": s.labels, "version": s.version,
                "answer_cuts": len(s.answer_cuts), "explore_share": round(self.explore_share(), 4), **self.counts,
                "serves_nothing": s.limit <= 0.0}


def served_audit(labels: list[Label]) -> float:
    """The explored hits' check of the model where it serves: wrong answers found among them against the
    risk the learner gave each when it served it, a Gamma posterior of their ratio with :data:`AUDIT_PRIOR`
    expected wrong answers of prior; never below 1 (the audit only tightens)."""
    explored = [lb for lb in labels if lb.source == "explore" and lb.risk >= 0]
    observed = sum(not lb.right for lb in explored)
    expected = sum(lb.risk for lb in explored)
    return max(1.0, (AUDIT_PRIOR + observed) / (AUDIT_PRIOR + expected))


__all__ = ["HEADS", "Learner", "LearnerLike", "LearntState", "PartitionLearner", "PartitionLearning", "check_rate"]
