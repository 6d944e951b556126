"""The serve decision of one partition: its operating point, and how it learns it from traffic.

* **Prior.** The verifier's operating point (shipped in ``storinfer/match/verifier.json``, or the
  one ``storinfer calibrate`` recorded), tightened by a *cold start* from the store's own keys
  (:func:`storinfer.match.calibrate.calibrate` with key probes only: an answer stored under several
  keys looked up by one of them). The cold start only tightens, and is refreshed as the partition
  grows by a quarter: a store's keys say nothing about questions that match none of them, so they
  may not be what loosens the point.
* **Labels.** On a miss with a candidate, the app's chain answers anyway; the answer judge
  (:mod:`storinfer.match.judge`) says whether the best candidate's stored answer would have done
  (a label). A share ``explore_rate`` of would-be hits is held back and answered by the chain too
  (exploration), which labels the served side. Labels go to the store (``store.labels``), shared
  by every client, off the caller's path.
* **Refit.** Every ``refit_every`` labels (and at once after a wrong explored hit) the point is
  refit from all the partition's labels (:mod:`storinfer.match.refit`): it widens only where the
  labels support it under ``max_wrong_rate`` (a one-sided 95% bound), and tightens when they show
  it serves too many wrong answers. A stored answer found wrong gets a cut of its own at once,
  above the score it was found wrong at. The point is written to ``store.points`` in one write
  (a refit that dies leaves the last good point) and other clients reload it every few seconds.
"""

from __future__ import annotations

import atexit
import logging
import queue
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from storinfer.match.bounds import clopper_pearson_upper
from storinfer.match.features import answer_key, asks_typed_answer
from storinfer.match.judge import AnswerJudge, TextJudge
from storinfer.match.refit import FLOORS, SERVE_NOTHING, refit
from storinfer.match.verify import Verifier
from storinfer.records import Label, Lookup

logger = logging.getLogger(__name__)
HEADS = ("question", "fact", "runtime")
"""The groups a point is learnt for: stored questions, answer-aware keys, and answers stored from
traffic (which may be out-of-scope messages answering one another, so they get a point of their own)."""


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
        head, p = getattr(verifier, h) or verifier.question, point.get(h)
        if p is None:
            heads[h] = head
            continue
        typed = head.typed_floor if head.typed_floor is None else max(head.typed_floor, float(p["floor"]))
        heads[h] = replace(head, floor=float(p["floor"]), cut=float(p["cut"]), typed_floor=typed)
    return Verifier(heads["question"], heads["fact"], heads["runtime"])


_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()


class Worker:
    """One background thread running a front's decision tasks in order (labels, refits, reloads)."""

    def __init__(self) -> None:
        self.tasks: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _LIVE.add(self)

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="storinfer-decision", daemon=True)
                self._thread.start()
        self.tasks.put(task)

    def _run(self) -> None:
        while True:
            task = self.tasks.get()
            try:
                task()
            except Exception:
                logger.warning("StorInfer: a decision task failed; the last good operating point stays", exc_info=True)
            finally:
                self.tasks.task_done()

    def flush(self, timeout: float | None = None) -> bool:
        with self.tasks.all_tasks_done:
            return self.tasks.all_tasks_done.wait_for(lambda: self.tasks.unfinished_tasks == 0, timeout)


@atexit.register
def _finish_tasks(timeout: float = 30.0) -> None:
    """Let every worker finish its queued tasks at exit (a store call cut off by the interpreter's
    exit can crash it)."""
    for worker in list(_LIVE):
        worker.flush(timeout)


class Decision:
    """The operating point of one (namespace, partition), learnt from its labels.

    Args:
        store: the :class:`~storinfer.store.QAStore`.
        max_wrong_rate: the bound on wrong serves the point is refit for (e.g. 0.01).
        explore_rate: share of would-be hits held back and answered by the chain, to label them.
        explore_warmup: per head, the first explorations are drawn at one would-be hit in two.
        judge: the answer judge (default :class:`~storinfer.match.judge.TextJudge`).
        refit_every: labels between refits; ``min_labels``: labels a point needs before it may widen.
        reload_seconds: how often another client's refit is read back.
        cold_start: tighten the prior from the store's own keys (in the background). Off by default:
            on the stream the defaults were chosen on (CLINC150) it cost right answers (17.0% ->
            16.4% of queries) without lowering the wrong ones (1.67% -> 1.86% of serves).
        seed: seeds exploration's draws (default 0: a fixed sequence, so runs repeat).
        verifier: the verifier whose point is the prior (default: the store's).
    """

    def __init__(self, store: Any, namespace: str, partition: str, worker: Worker, *, max_wrong_rate: float,
                 explore_rate: float = 0.05, judge: AnswerJudge | None = None, confidence: float = 0.95,
                 min_labels: int = 50, refit_every: int = 20, reload_seconds: float = 5.0, cold_start: bool = False,
                 seed: int | None = 0, verifier: Verifier | None = None, explore_warmup: int = 20) -> None:
        if not 0.0 < max_wrong_rate < 1.0:
            msg = f"max_wrong_rate must be between 0 and 1 (e.g. 0.01), got {max_wrong_rate!r}"
            raise ValueError(msg)
        if not 0.0 <= explore_rate <= 0.5:
            msg = f"explore_rate must be between 0 and 0.5 (a share of would-be hits), got {explore_rate!r}"
            raise ValueError(msg)
        self.store, self.namespace, self.partition, self.worker = store, namespace, partition, worker
        self.max_wrong_rate, self.explore_rate, self.confidence = float(max_wrong_rate), float(explore_rate), confidence
        self.judge: AnswerJudge = judge or TextJudge(getattr(store, "embedding", None))
        self.min_labels, self.refit_every, self.reload_seconds = min_labels, refit_every, reload_seconds
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.base = verifier
        self.prior = prior_point(self.base or store.verifier)
        self.point: dict[str, Any] = {"heads": dict(self.prior), "answer_cuts": {}, "version": 0, "source": "prior"}
        self._verifier: tuple[int, Verifier] | None = None
        self._since_refit = 0
        self._last_reload = 0.0
        self._cold_count = -1
        self._explored: dict[str, int] = {}
        self.explore_warmup = int(explore_warmup)
        self.counts = {"would_be_hits": 0, "explored": 0, "answer_cut_misses": 0, "labels": 0, "labels_wrong": 0,
                       "refits": 0}
        self._reload()
        if cold_start:
            worker.submit(self._cold_start)

    # --- the point ---------------------------------------------------------------------------
    def verifier(self) -> Verifier:
        """The verifier at this partition's current point (the store's own where it is the prior)."""
        if time.monotonic() - self._last_reload > self.reload_seconds:
            self._last_reload = time.monotonic()
            self.worker.submit(self._reload)
        with self._lock:
            point, version = self.point["heads"], self.point["version"]
            if self._verifier is not None and self._verifier[0] == version:
                return self._verifier[1]
            v = at_point(self.base or self.store.verifier, point)
            self._verifier = (version, v)
            return v

    def _reload(self) -> None:
        saved = self.store.points.get(self.namespace, self.partition)
        if saved and saved.get("version", 0) > self.point["version"]:
            with self._lock:
                self.point = saved

    def _publish(self, point: dict[str, Any]) -> None:
        """Write ``point`` to the store (one write), then serve with it."""
        self.store.points.put(self.namespace, self.partition, point)
        with self._lock:
            self.point = point

    def _cold_start(self) -> None:
        """Tighten the prior from key probes of the store's own keys (never loosen it)."""
        from storinfer.match.calibrate import calibrate

        count = self.store.count(namespace=self.namespace, partition=self.partition)
        if count < 40 or (self._cold_count > 0 and count < 1.25 * self._cold_count):
            return
        self._cold_count = count
        cal = calibrate(self.store, None, namespace=self.namespace, partition=self.partition,
                        target_wrong_rate=self.max_wrong_rate, sample=300, min_probes=20, warn=False)
        tightened = {h.head: {**self.prior[h.head], "floor": h.floor, "cut": h.cut} for h in cal.heads.values()
                     if h.tightened and not h.fallback}
        if tightened:
            with self._lock:
                self.prior = {**self.prior, **tightened}
            self._refit(reason="cold start")

    # --- serving -----------------------------------------------------------------------------
    def admit(self, found: Lookup) -> Lookup:
        """The lookup as served: a hit under its answer's own cut is a miss, and a share of the
        would-be hits is held back for exploration (``reason="explore"``, ``explored`` set)."""
        m = found.match
        if m is None or found.reason == "exact":
            return found
        self.counts["would_be_hits"] += 1
        cut = self.point["answer_cuts"].get(answer_key(m))
        if cut is not None and (found.score or 0.0) < cut:
            self.counts["answer_cut_misses"] += 1
            return Lookup(None, reason="answer cut", best_similarity=found.best_similarity, rejected=found.rejected,
                          vector=found.vector, candidates=found.candidates, score=found.score, explored=m)
        rate = self.explore_share(self.verifier().head_name(m))
        if rate and self._random.random() < rate:
            self.counts["explored"] += 1
            self._explored[self.verifier().head_name(m)] = self._explored.get(self.verifier().head_name(m), 0) + 1
            return Lookup(None, reason="explore", best_similarity=found.best_similarity, rejected=found.rejected,
                          vector=found.vector, candidates=found.candidates, score=found.score, explored=m,
                          explore_rate=rate)
        return found

    def explore_share(self, head: str) -> float:
        """The share of a head's would-be hits explored now: ``explore_rate``, and more at first (half
        of them until ``explore_warmup`` are explored), so a new point is checked on served traffic
        early. Over a stream this costs at most ``explore_warmup`` explorations per head beyond
        ``explore_rate``."""
        if not self.explore_rate:
            return 0.0
        return 0.5 if self._explored.get(head, 0) < self.explore_warmup else self.explore_rate

    # --- learning ------------------------------------------------------------------------------
    def label_for(self, question: str, found: Lookup, answer: str) -> Label | None:
        """The label a miss (or an explored hit) gives: its best candidate against the chain's answer."""
        if found.reason == "exact" or found.match is not None:
            return None
        if found.reason == "explore" and found.explored is not None:
            cand, score, source, prob = found.explored, float(found.score or 0.0), "explore", found.explore_rate or 1.0
        else:
            if not found.candidates:
                return None
            relaxed = self.verifier().with_operating_point(floor=min(FLOORS), cut=0.0)
            pos, verdicts = relaxed.choose(question, found.candidates)
            if pos is None:
                return None  # every candidate breaks a hard rule: no point would serve it
            cand, score, source, prob = found.candidates[pos], verdicts[pos].score, "miss", 1.0
        right = bool(self.judge.same(answer, cand.answer))
        return Label(self.namespace, self.partition, self.verifier().head_name(cand), round(score, 5),
                     round(cand.similarity, 5), right, source=source, probability=prob, answer=answer_key(cand),
                     typed=asks_typed_answer(question))

    def learn(self, question: str, found: Lookup, answer: str) -> Label | None:
        """Judge the chain's ``answer`` against the lookup's candidate and queue the label (off the
        caller's path). Returns the label (None when there is nothing to label)."""
        label = self.label_for(question, found, answer)
        if label is None:
            return None
        urgent = label.source == "explore" and not label.right
        if urgent:  # a would-be hit was wrong: that answer gets a cut of its own, at once
            with self._lock:
                cuts = dict(self.point["answer_cuts"])
                cuts[label.answer] = min(1.01, max(cuts.get(label.answer, 0.0), label.score + 1e-3))
                self.point = {**self.point, "answer_cuts": cuts}
        self.worker.submit(lambda: self._write(label, urgent))
        return label

    def record_judge(self, question: str, cand: Any, score: float, verdict: bool) -> None:
        """Keep a judge model's verdict as a label (``source="judge"``; the refit's bound uses the
        chain's answers only)."""
        label = Label(self.namespace, self.partition, self.verifier().head_name(cand), round(score, 5),
                      round(cand.similarity, 5), bool(verdict), source="judge", answer=answer_key(cand),
                      typed=asks_typed_answer(question))
        self.worker.submit(lambda: self.store.labels.add([label]))

    def _write(self, label: Label, urgent: bool) -> None:
        self.store.labels.add([label])
        self.counts["labels"] += 1
        self.counts["labels_wrong"] += not label.right
        self._since_refit += 1
        if urgent or self._since_refit >= self.refit_every:
            self._refit(reason="wrong explored hit" if urgent else "labels")

    def _refit(self, *, reason: str) -> dict[str, Any]:
        """Refit from every label of the partition and publish the point (see :mod:`storinfer.match.refit`)."""
        labels = self.store.labels.records(namespace=self.namespace, partition=self.partition)
        fit = refit(labels, self.prior, max_wrong_rate=self.max_wrong_rate, confidence=self.confidence,
                    min_labels=self.min_labels)
        cuts = dict(self.point["answer_cuts"])
        for lb in labels:  # every stored answer found wrong where it would be served keeps a cut above it
            head = fit.heads[lb.head]
            if not lb.right and lb.source == "explore" or (not lb.right and lb.cosine >= head.floor and lb.score >= head.cut):
                cuts[lb.answer] = min(1.01, max(cuts.get(lb.answer, 0.0), lb.score + 1e-3))
        point = {"heads": {h: {**self.prior[h], "floor": f.floor, "cut": f.cut} for h, f in fit.heads.items()},
                 "answer_cuts": cuts,
                 "version": int(self.point["version"]) + 1, "source": "refit", "reason": reason, "fitted_at": time.time(),
                 "labels": fit.labels, "fit": {h: f.as_dict() for h, f in fit.heads.items()},
                 "max_wrong_rate": self.max_wrong_rate, "prior": self.prior}
        self._since_refit = 0
        self.counts["refits"] += 1
        self._publish(point)
        return point

    def refit_now(self) -> dict[str, Any]:
        """Refit at once, on the caller's thread (after the queued labels are written)."""
        self.worker.flush()
        return self._refit(reason="asked")

    def stats(self) -> dict[str, Any]:
        """The point, its estimated wrong rate and bound (from the labels inside it), labels and
        exploration counts."""
        point = self.point
        fit = point.get("fit") or {}
        served = sum(f.get("labels", 0) for f in fit.values())
        wrong = sum(f.get("wrong", 0) for f in fit.values())
        return {"operating_point": point["heads"], "answer_cuts": len(point["answer_cuts"]), "version": point["version"],
                "source": point.get("source"), "labels_in_store": point.get("labels", 0),
                "estimated_wrong_rate": wrong / served if served else None,
                "wrong_rate_bound": clopper_pearson_upper(wrong, served, self.confidence) if served else None,
                "labels_inside_point": served,
                "max_wrong_rate": self.max_wrong_rate, "explore_rate": self.explore_rate, **self.counts,
                "serves_nothing": all(p["cut"] >= SERVE_NOTHING["cut"] for p in point["heads"].values())}
