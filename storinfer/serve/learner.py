"""The learner: how much each partition serves, moved from the policy's point by the app's own answers.

**The promise.** ``max_wrong_rate`` (default 0.01) is the share of served answers allowed to be
wrong, for each kind of stored key: the policy's point serves until the answers explored inside it
show it wrong more often than that (a 95% lower bound), and more is served only where the labels of
candidates beyond the point show them wrong at most that often (a 60% upper bound by default). A bound
stricter than the one the point was chosen for (1%) shrinks the point first, so it serves less,
never more. Exact repeats of a stored question, and hits an optional LLM check accepts, are outside
the promise (they are counted apart in ``stats()``).

**How it learns.** Every miss that had a candidate runs the app's chain anyway, and the chain's
answer says whether the best candidate's stored answer would have done (a *label*, judged by
:mod:`storinfer.match.judge`). A share of would-be hits (none of a learner's first
:data:`UNEXPLORED`) is answered by the chain too, to label the served side: *audited* where the
caller can run the chain after serving (``audit_share``: served at once, ``Lookup.audit`` set, the
chain's answer handed to ``StoreFront.remember`` later), else *explored* (``explore_share``: held
back, a miss). Labels go to the store, shared by every client. In the background the cuts of
:mod:`storinfer.serve.evidence` are chosen again from all the labels (every 10 labels at first, then
every 10% more, and at once after an explored hit was wrong, whose answer is also cut at once) and
published with a compare-and-set on the state's version, so two clients never overwrite each other.
A lookup reads the cuts: two comparisons per candidate.

**What it costs.** One chain run per checked hit: off the user's path for an audit
(``stats()["audited"]``), on it for an explored hit (``stats()["explored"]``).

One learner per (store, namespace, partition, policy point, configuration) in a process, shared by
every face (:func:`learner_for`, at most :data:`MAX_LEARNERS`, least recently used dropped).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from storinfer.errors import ConfigError
from storinfer.match.features import TYPED, Query, candidate_kind, same_answer_key
from storinfer.match.judge import AnswerJudge, TextJudge
from storinfer.match.lookup import Candidates
from storinfer.match.point import POINT_RATE, OperatingPoint
from storinfer.match.policy import Policy
from storinfer.records import Lookup, Match, Reason
from storinfer.serve.evidence import MIN_COSINE, Case, Evidence, LearntState, choose, clearance, plain_clearance, scaled
from storinfer.serve.worker import Worker
from storinfer.serve.writeback import QUIET_WAIT_S
from storinfer.store import Label, QAStore

logger = logging.getLogger(__name__)
UNEXPLORED = 20
"""A learner's first would-be hits are all served (the point is trusted): a first paraphrase is never held back."""
MAX_LEARNERS = 1024
TRAFFIC = 5000
"""Recent lookups a refit weighs the cuts' serves by."""


class PartitionLearning(Protocol):
    """What a front asks of the learner of one partition."""

    counts: dict[str, int]

    def decide(self, query: Query, found: Candidates, policy: Policy, *, audit: bool = True) -> Lookup: ...

    def learn(self, question: str, found: Lookup, answer: str) -> Label | None: ...

    def answer_cut(self, answer: str) -> float: ...

    def refit_now(self, timeout: float | None = None) -> Any: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def stats(self) -> dict[str, Any]: ...


class LearnerLike(Protocol):
    """A learner's configuration (a frozen dataclass with ``max_wrong_rate``)."""

    @property
    def max_wrong_rate(self) -> float: ...

    def start(self, store: QAStore, namespace: str, partition: str, policy: Policy) -> PartitionLearning: ...


def check_rate(value: object) -> float:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        msg = f"max_wrong_rate must be a share between 0 and 1 (e.g. 0.01), got {value!r}"
        raise ConfigError(msg)
    return float(value)


@dataclass(frozen=True)
class Learner:
    """Learns, per partition, where to serve from the app's own answers, checking a share of its hits
    (see the module docstring).

    Setup:
        ```bash
        pip install storinfer          # the learner needs nothing more
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
        max_wrong_rate: the share of served answers allowed to be wrong (the promise above).
        answer_judge: compares the chain's answer with a stored one (default:
            :class:`~storinfer.match.judge.TextJudge` over the store's embedder).
        audit_share: the share of would-be hits served and then checked by the chain, off the user's path,
            where the face holds the chain (after a learner's first :data:`UNEXPLORED`): it labels the
            served side at the cost of a chain run each, no latency and no lost hit.
        explore_share: the same where the face cannot run the chain after serving (the LLM cache): those
            hits are held back and the model answers them (a miss each). 0 for both: a bad point is never found.
        open_confidence: how sure the labels must be that serving beyond the point stays within the bound.
        close_confidence: how sure they must be that part of the point is over it before it serves less.
        seed: seeds exploration's draws (None: drawn afresh in each process).
    """

    max_wrong_rate: float = 0.01
    answer_judge: AnswerJudge | None = field(default=None, compare=False)
    audit_share: float = 0.2
    explore_share: float = 0.02
    open_confidence: float = 0.6
    close_confidence: float = 0.95
    seed: int | None = None

    def __post_init__(self) -> None:
        check_rate(self.max_wrong_rate)
        for name in ("audit_share", "explore_share"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 0.25):
                msg = f"{name} must be a share between 0 and 0.25, got {value!r}"
                raise ConfigError(msg)
        for name in ("open_confidence", "close_confidence"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.5 <= value < 1):
                msg = f"{name} must be a confidence between 0.5 and 1 (e.g. 0.9), got {value!r}"
                raise ConfigError(msg)

    def point_for(self, policy: Policy) -> OperatingPoint:
        """The point this learner starts from: the policy's, shrunk for a bound stricter than it was chosen for."""
        return scaled(policy.point, self.max_wrong_rate, POINT_RATE)

    def start(self, store: QAStore, namespace: str, partition: str, policy: Policy) -> PartitionLearner:
        """This process's learner of one partition of ``store`` (shared with every face that asks)."""
        return learner_for(self, store, namespace, partition, policy)


class StoreLearners:
    """One store's learners in this process and the background thread they share (one writer per
    partition); closing the store flushes the thread and forgets them."""

    def __init__(self, store: QAStore) -> None:
        self.store = store
        self.worker = Worker(before_task=lambda: store.wait_for_quiet(QUIET_WAIT_S))
        self.learners: OrderedDict[tuple, PartitionLearner] = OrderedDict()

    def close(self) -> None:
        self.worker.flush(30)
        with _REGISTRY_LOCK:
            if _STORES.get(id(self.store)) is self:
                del _STORES[id(self.store)]


_STORES: dict[int, StoreLearners] = {}
_REGISTRY_LOCK = threading.Lock()


def learner_for(config: Learner, store: QAStore, namespace: str, partition: str, policy: Policy) -> PartitionLearner:
    """The one learner of (store, namespace, partition, the policy's point, configuration) in this process
    (at most :data:`MAX_LEARNERS` per store, the least recently used dropped)."""
    point = config.point_for(policy)
    key = (namespace, partition, point, config)
    with _REGISTRY_LOCK:
        mine = _STORES.get(id(store))
        if mine is None or mine.store is not store:
            mine = _STORES[id(store)] = StoreLearners(store)
            store.register_writer(mine)
        found = mine.learners.get(key)
        if found is None:
            found = mine.learners[key] = PartitionLearner(config, store, namespace, partition, point, mine.worker)
            while len(mine.learners) > MAX_LEARNERS:
                mine.learners.popitem(last=False)
        mine.learners.move_to_end(key)
        return found


class PartitionLearner:
    """The learner of one (namespace, partition): decides each lookup and learns from its labels."""

    reload_seconds = 5.0

    def __init__(self, config: Learner, store: QAStore, namespace: str, partition: str, point: OperatingPoint,
                 worker: Any) -> None:
        self.config, self.store, self.namespace, self.partition, self.point = config, store, namespace, partition, point
        self.worker = worker
        self.judge: AnswerJudge = config.answer_judge or TextJudge(store.embedding)
        self.state = LearntState()
        self._random = random.Random(config.seed)
        self._token = uuid.uuid4().hex
        """Names this learner's published states (to tell them from another client's)."""
        self._lock = threading.Lock()
        self.traffic: deque[tuple[str, float]] = deque(maxlen=TRAFFIC)
        """(head, clearance) of recent lookups' best candidates: how much each cut would serve."""
        self._recent_cuts: dict[str, float] = {}
        """Answers cut by an explored hit since the last refit that read its label."""
        self._labels: list[Label] = []
        self._unwritten: list[Label] = []  # labels for the worker's next write (one write waits at a time)
        self._writing = False
        self._read_until = 0.0
        self._since_refit = 0
        self._last_reload = time.monotonic()
        self.counts = {"would_be_hits": 0, "audited": 0, "explored": 0, "answer_cut": 0, "labels": 0, "labels_wrong": 0, "refits": 0,
                       "lost_publish": 0}
        saved = store.states.latest(namespace, partition)
        restored = LearntState.from_dict(saved) if saved else None
        if restored is not None:
            self.state = restored

    # --- serving -----------------------------------------------------------------------------
    def answer_cut(self, answer: str) -> float:
        """The verifier score below which ``answer`` is not served (0: none)."""
        with self._lock:
            return max(self.state.answer_cuts.get(answer, 0.0), self._recent_cuts.get(answer, 0.0))

    def decide(self, query: Query, found: Candidates, policy: Policy, *, audit: bool = True) -> Lookup:
        """Decide on one candidate: the one the policy's point serves (its best-scoring candidate inside the
        point), else the one closest to the point. Serve it if its head's cut admits it and its answer is not
        cut; else say why not, and keep what the chain's answer will label. A candidate the learner has
        closed or cut is not replaced by a lesser one: that lookup is a miss.

        ``audit``: the caller can run the chain after serving (a face that holds it): a would-be hit drawn
        for checking is served with ``audit`` set; else (an LLM cache) it is held back, a miss (explored)."""
        self._maybe_reload()
        verdicts = policy.assess(query, found.matches)
        state, typed = self.state, query.qtype in TYPED
        picks = []
        for pos, (cand, verdict) in enumerate(zip(found.matches, verdicts)):
            if verdict.ok and cand.similarity >= MIN_COSINE:
                case = Case(candidate_kind(cand), verdict.score, cand.similarity, typed)
                picks.append((clearance(self.point, case), verdict.score, pos, case))
        rejected = [(c, v.reason) for c, v in zip(found.matches, verdicts) if not v.ok and c.similarity >= MIN_COSINE]
        if not picks:
            return found.miss(Reason.REFUSED if rejected else
                              (Reason.EMPTY_PARTITION if not found.matches else Reason.BELOW_THRESHOLD), rejected=rejected)
        inside = [p for p in picks if p[0] >= 0]
        # the point's own choice (its best-scoring candidate) if it has one, else the one closest to the point
        pick = max(inside, key=lambda p: (p[1], -p[2])) if inside else max(picks, key=lambda p: (p[0], p[1], -p[2]))
        with self._lock:
            self.traffic.append((pick[3].head, pick[0]))
        clear, score, pos, case = pick
        if score < self.answer_cut(same_answer_key(found.matches[pos])):
            self.counts["answer_cut"] += 1
            return self._note(found, Reason.ANSWER_CUT, pick, rejected)
        cut = state.heads[case.head].cut
        if clear >= cut:  # a near-repeat of traffic if the repeat floor alone lifted it over the cut
            return self._serve(found, pick, rejected, audit,
                               Reason.NEAR_REPEAT if plain_clearance(self.point, case) < cut else Reason.SIMILAR)
        return self._note(found, Reason.TOO_RISKY if inside else Reason.BELOW_THRESHOLD, pick, rejected)

    def _note(self, found: Candidates, reason: Reason, pick: tuple[float, float, int, Case],
              rejected: list[tuple[Match, str]]) -> Lookup:
        _clearance, score, pos, case = pick
        return found.miss(reason, rejected=rejected, score=score, note={"pos": pos, "case": case},
                          explored=found.matches[pos] if reason is Reason.EXPLORE else None)

    def _serve(self, found: Candidates, pick: tuple[float, float, int, Case], rejected: list[tuple[Match, str]],
               audit: bool, served: Reason) -> Lookup:
        """A would-be hit: served; a share of them (after the first :data:`UNEXPLORED`) checked by the chain,
        after serving (``audit_share``, where the caller can) or instead of it (``explore_share``)."""
        cfg = self.config
        with self._lock:
            self.counts["would_be_hits"] += 1
            draw = self._random.random() if self.counts["would_be_hits"] > UNEXPLORED else 1.0
            checked = draw < (cfg.audit_share if audit else cfg.explore_share)
            if checked:
                self.counts["audited" if audit else "explored"] += 1
        if checked and not audit:
            return self._note(found, Reason.EXPLORE, pick, rejected)
        return found.hit(pick[2], served, rejected=rejected, score=pick[1], audit=checked,
                         note={"pos": pick[2], "case": pick[3]} if checked else {})

    # --- learning ------------------------------------------------------------------------------
    def label_for(self, found: Lookup, answer: str) -> Label | None:
        note = found.note
        if not note or "case" not in note:
            return None
        case: Case = note["case"]
        cand = found.candidates[note["pos"]]
        return Label(self.namespace, self.partition, case.head, round(case.score, 5), round(case.cosine, 5),
                     bool(self.judge.same(answer, cand.answer)),
                     source="explore" if found.reason is Reason.EXPLORE or found.audit else "miss",
                     answer=same_answer_key(cand), typed=case.typed)

    def learn(self, question: str, found: Lookup, answer: str) -> Label | None:
        """Judge the chain's ``answer`` against the lookup's best candidate and queue the label (off the
        caller's path). An explored hit found wrong cuts its answer at once."""
        label = self.label_for(found, answer)
        if label is None:
            return None
        with self._lock:
            if label.checked_wrong:  # its answer is cut at once, and the cuts chosen again without waiting
                self._recent_cuts[label.answer] = max(self._recent_cuts.get(label.answer, 0.0), label.score + 1e-3)
            self._unwritten.append(label)
            start, self._writing = not self._writing, True
        if start:
            self.worker.submit(self._write)
        return label

    def _write(self) -> None:
        """Write the labels queued since the last write, together (one write each fell behind a busy stream)."""
        with self._lock:
            batch, self._unwritten, self._writing = self._unwritten, [], False
        self.store.labels.add(batch)
        self.counts["labels"] += len(batch)
        self.counts["labels_wrong"] += sum(not lb.right for lb in batch)
        self._since_refit += len(batch)
        due = max(10, int(0.1 * (self.state.labels + self._since_refit)))
        if any(lb.checked_wrong for lb in batch) or self._since_refit >= due:
            self.refit()

    def _read_labels(self) -> list[Label]:
        """Every label of the partition (incrementally: those written since the last read, with overlap)."""
        since = self._read_until - 60.0 if self._labels else None
        fresh = self.store.labels.records(namespace=self.namespace, partition=self.partition, since=since)
        if since is None:
            self._labels = fresh
        else:
            seen = {lb.id for lb in self._labels if lb.created_at > since}
            self._labels += [lb for lb in fresh if lb.id not in seen]
        if self._labels:
            self._read_until = max(lb.created_at for lb in self._labels)
        return self._labels

    def refit(self) -> LearntState:
        """Choose the cuts again from all the partition's labels and publish them (run on the worker only)."""
        labels = self._read_labels()
        evidence = [Evidence(Case(lb.head, lb.score, lb.cosine, lb.typed), lb.right, lb.source == "explore", lb.answer)
                    for lb in labels if lb.source in ("miss", "explore")]
        cfg = self.config
        with self._lock:
            traffic = list(self.traffic)
        state = choose(evidence, self.point, max_wrong_rate=cfg.max_wrong_rate, open_confidence=cfg.open_confidence,
                       close_confidence=cfg.close_confidence, traffic=traffic, prior_rate=POINT_RATE,
                       version=self.state.version + 1)
        won = self.store.states.publish(self.namespace, self.partition, state.version,
                                        {**state.to_dict(), "writer": self._token})
        adopted = LearntState.from_dict(won) if won is not None and won.get("writer") != self._token else None
        if adopted is not None:
            self.counts["lost_publish"] += 1  # another client published this version first: take theirs
            state = adopted
        with self._lock:
            self.state = state
            self._recent_cuts = {a: c for a, c in self._recent_cuts.items() if c > state.answer_cuts.get(a, 0.0)}
            self._since_refit = 0
        self.counts["refits"] += 1
        return state

    def refit_now(self, timeout: float | None = None) -> LearntState:
        """Refit at once, on the worker (after the labels queued before it are written); a refit that fails
        raises here, and the last good state stays."""
        done = threading.Event()
        failed: list[BaseException] = []

        def task() -> None:
            try:
                self.refit()
            except BaseException as err:  # noqa: BLE001 - handed to the caller below
                failed.append(err)
            finally:
                done.set()

        self.worker.submit(task)
        done.wait(timeout)
        if failed:
            raise failed[0]
        return self.state

    def flush(self, timeout: float | None = None) -> bool:
        return self.worker.flush(timeout)

    def _maybe_reload(self) -> None:
        if time.monotonic() - self._last_reload > self.reload_seconds:
            self._last_reload = time.monotonic()
            self.worker.submit(self._reload)

    def _reload(self) -> None:
        saved = self.store.states.latest(self.namespace, self.partition)
        restored = LearntState.from_dict(saved) if saved else None
        if restored is not None and restored.version > self.state.version:
            with self._lock:
                self.state = restored

    def stats(self) -> dict[str, Any]:
        s = self.state
        return {"max_wrong_rate": self.config.max_wrong_rate, "version": s.version, "labels_in_store": s.labels,
                "cuts": {h: c.to_dict() for h, c in s.heads.items()}, "answer_cuts": len(s.answer_cuts) + len(self._recent_cuts),
                "audit_share": self.config.audit_share,
                "explore_share": self.config.explore_share, "labels_waiting": len(self._unwritten), **self.counts}


def with_rate(learner: LearnerLike, max_wrong_rate: float) -> LearnerLike:
    """``learner`` with another ``max_wrong_rate``."""
    return replace(learner, max_wrong_rate=max_wrong_rate)  # type: ignore[type-var]


__all__ = ["Learner", "LearnerLike", "LearntState", "PartitionLearner", "PartitionLearning", "check_rate", "learner_for"]
