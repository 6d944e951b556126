"""StorInfer 0.4's learner, kept as a measured baseline: a (cosine floor, score cut) grid per head,
refit from the labels under a one-sided 95% Clopper-Pearson bound (``grid_refit.py``).

It plugs into the same seam as the default learner (``StoreFront(store, learner=GridLearner())``),
so ``benchmarks/decision.py`` replays 0.4's decision beside the new one in one run. Its behaviour
is 0.4's: the verifier at the learnt point decides, a share of would-be hits is explored (half of
the first 20 of each head), a wrong explored hit cuts its answer at once, and every 20 labels the
point is refit; it widens only where >= 50 labels bound the wrong rate within ``max_wrong_rate``.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from grid_refit import FLOORS, SERVE_NOTHING, refit

from storinfer.match.features import Query, answer_key, asks_typed_answer
from storinfer.match.judge import AnswerJudge, TextJudge
from storinfer.match.lookup import Candidates
from storinfer.match.point import HeadPoint, OperatingPoint
from storinfer.match.policy import Policy
from storinfer.match.verify import Verifier
from storinfer.records import Lookup, Reason
from storinfer.serve.worker import Worker
from storinfer.store import Label, QAStore

HEADS = ("question", "fact", "runtime")


def prior_point(verifier: Verifier) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for h in HEADS:
        head = getattr(verifier, h) or verifier.question
        out[h] = {"floor": head.floor, "cut": head.cut}
        if head.typed_floor is not None:
            out[h]["typed_floor"] = head.typed_floor
    return out


def at_point(verifier: Verifier, point: dict[str, dict[str, Any]]) -> Verifier:
    """``verifier`` with each head at ``point``'s floor and cut; a typed floor stays at least the prior's."""
    heads = {}
    for h in HEADS:
        head = getattr(verifier, h) or verifier.question
        p = point.get(h)
        if p is None:
            heads[h] = head.point
            continue
        typed = head.typed_floor if head.typed_floor is None else max(head.typed_floor, float(p["floor"]))
        heads[h] = HeadPoint(float(p["floor"]), float(p["cut"]), typed)
    return verifier.at(OperatingPoint(heads["question"], heads["fact"], heads["runtime"]))


@dataclass(frozen=True)
class GridLearner:
    """0.4's learner (see the module docstring)."""

    max_wrong_rate: float = 0.01
    answer_judge: AnswerJudge | None = field(default=None, compare=False)
    explore_rate: float = 0.05
    explore_warmup: int = 20
    refit_every: int = 20
    min_labels: int = 50
    seed: int | None = 0

    def start(self, store: QAStore, namespace: str, partition: str, worker: Worker) -> GridPartition:
        return GridPartition(self, store, namespace, partition, worker)


class GridPartition:
    def __init__(self, config: GridLearner, store: QAStore, namespace: str, partition: str, worker: Worker) -> None:
        self.config, self.store, self.namespace, self.partition, self.worker = config, store, namespace, partition, worker
        self.judge: AnswerJudge = config.answer_judge or TextJudge(store.embedding)
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()
        self.base: Verifier | None = None
        self.prior: dict[str, dict[str, Any]] | None = None
        self.point: dict[str, Any] = {"heads": {}, "answer_cuts": {}, "version": 0}
        self._verifier: tuple[int, Verifier] | None = None
        self._since_refit = 0
        self._explored: dict[str, int] = {}
        self.counts = {"would_be_hits": 0, "explored": 0, "answer_cut_misses": 0, "labels": 0, "labels_wrong": 0,
                       "refits": 0}

    def _start(self, policy: Policy) -> None:
        if self.base is None:
            self.base = getattr(policy, "active", None) or Verifier.default()
            self.prior = prior_point(self.base)
            self.point["heads"] = dict(self.prior)

    def verifier(self) -> Verifier:
        assert self.base is not None
        with self._lock:
            version = self.point["version"]
            if self._verifier is None or self._verifier[0] != version:
                self._verifier = (version, at_point(self.base, self.point["heads"]))
            return self._verifier[1]

    def decide(self, query: Query, found: Candidates, policy: Policy) -> Lookup:
        self._start(policy)
        v = self.verifier()
        pos, verdicts = v.choose(query, found.matches)
        if pos is None:
            refused = [(c, vd.reason) for c, vd in zip(found.matches, verdicts) if c.similarity >= v.floor]
            reason = Reason.REFUSED if refused else (Reason.EMPTY_PARTITION if not found.matches else Reason.BELOW_THRESHOLD)
            return found.miss(reason, rejected=refused)
        refused = [(c, vd.reason) for c, vd in zip(found.matches, verdicts) if not vd.ok and c.similarity >= v.floor]
        m, score = found.matches[pos], verdicts[pos].score
        self.counts["would_be_hits"] += 1
        cut = self.point["answer_cuts"].get(answer_key(m))
        if cut is not None and score < cut:
            self.counts["answer_cut_misses"] += 1
            return found.miss(Reason.ANSWER_CUT, rejected=refused, score=score, explored=m)
        head = v.head_name(m)
        rate = self.explore_share(head)
        if rate and self._random.random() < rate:
            self.counts["explored"] += 1
            self._explored[head] = self._explored.get(head, 0) + 1
            return found.miss(Reason.EXPLORE, rejected=refused, score=score, explored=m, note={"probability": rate})
        return found.hit(pos, rejected=refused, score=score)

    def explore_share(self, head: str) -> float:
        if not self.config.explore_rate:
            return 0.0
        return 0.5 if self._explored.get(head, 0) < self.config.explore_warmup else self.config.explore_rate

    def label_for(self, question: str, found: Lookup, answer: str) -> Label | None:
        if found.reason is Reason.EXACT or found.match is not None or self.base is None:
            return None
        if found.reason is Reason.EXPLORE and found.explored is not None:
            cand, score, source, prob = found.explored, float(found.score or 0.0), "explore", found.note.get("probability", 1.0)
        else:
            if not found.candidates:
                return None
            relaxed = self.verifier().with_operating_point(floor=min(FLOORS), cut=0.0)
            pos, verdicts = relaxed.choose(question, found.candidates)
            if pos is None:
                return None
            cand, score, source, prob = found.candidates[pos], verdicts[pos].score, "miss", 1.0
        right = bool(self.judge.same(answer, cand.answer))
        return Label(self.namespace, self.partition, self.verifier().head_name(cand), round(score, 5),
                     round(cand.similarity, 5), right, source=source, probability=prob, answer=answer_key(cand),
                     typed=asks_typed_answer(question))

    def learn(self, question: str, found: Lookup, answer: str) -> Label | None:
        label = self.label_for(question, found, answer)
        if label is None:
            return None
        urgent = label.source == "explore" and not label.right
        if urgent:
            with self._lock:
                cuts = dict(self.point["answer_cuts"])
                cuts[label.answer] = min(1.01, max(cuts.get(label.answer, 0.0), label.score + 1e-3))
                self.point = {**self.point, "answer_cuts": cuts}
        self.worker.submit(lambda: self._write(label, urgent))
        return label

    def record_check(self, found: Lookup, pos: int, verdict: bool) -> None:
        return None

    def _write(self, label: Label, urgent: bool) -> None:
        self.store.labels.add([label])
        self.counts["labels"] += 1
        self.counts["labels_wrong"] += not label.right
        self._since_refit += 1
        if urgent or self._since_refit >= self.config.refit_every:
            self._refit()

    def _refit(self) -> dict[str, Any]:
        assert self.prior is not None
        labels = [lb for lb in self.store.labels.records(namespace=self.namespace, partition=self.partition)
                  if lb.source in ("miss", "explore")]
        fit = refit(labels, self.prior, max_wrong_rate=self.config.max_wrong_rate, min_labels=self.config.min_labels)
        cuts = dict(self.point["answer_cuts"])
        for lb in labels:
            head = fit.heads[lb.head]
            if not lb.right and lb.source == "explore" or (not lb.right and lb.cosine >= head.floor and lb.score >= head.cut):
                cuts[lb.answer] = min(1.01, max(cuts.get(lb.answer, 0.0), lb.score + 1e-3))
        point = {"kind": "grid", "heads": {h: {**self.prior[h], "floor": f.floor, "cut": f.cut} for h, f in fit.heads.items()},
                 "answer_cuts": cuts, "version": int(self.point["version"]) + 1, "fitted_at": time.time(),
                 "labels": fit.labels, "fit": {h: f.as_dict() for h, f in fit.heads.items()}}
        self._since_refit = 0
        self.counts["refits"] += 1
        self.store.states.put(self.namespace, self.partition, point)
        with self._lock:
            self.point = point
        return point

    def refit_now(self) -> dict[str, Any]:
        self.worker.flush()
        return self._refit()

    def stats(self) -> dict[str, Any]:
        return {"operating_point": self.point["heads"], "answer_cuts": len(self.point["answer_cuts"]),
                "version": self.point["version"], "max_wrong_rate": self.config.max_wrong_rate, **self.counts,
                "serves_nothing": all(p["cut"] >= SERVE_NOTHING["cut"] for p in self.point["heads"].values())}
