"""Calibration: pick the operating point from data the store owns, never from the users' questions.

Probes come from the store itself:

* **key probes** (no LLM): an answer stored under several keys (its question, other wordings,
  rephrasings) is looked up by one key with that key hidden: serving another key of the same
  answer is right, any other answer is wrong; and with all its keys hidden, any hit is wrong.
* **paraphrase probes** (with a chat model): the LLM rewords stored questions
  (:mod:`storinfer.precompute.generate.rephrase`); each rewording is looked up with its original present (serving the
  original's answer is right) and hidden (any hit is wrong).

For each verifier head (stored questions; answer-aware keys) and each cosine floor and score cut,
the probes are served as a lookup would serve them, and the wrong-hit rate is reported with its
one-sided 95% Clopper-Pearson upper bound. The point serving the most probes right whose observed
rate stays within the target wins. Calibration only ever *tightens* the shipped operating point
(fitted on public human questions): probes a store makes of itself are easier than real users'
phrasings, so they may show that a stricter point is needed, never that a looser one is safe.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storinfer.errors import ConfigError
from storinfer.match.bounds import clopper_pearson_upper
from storinfer.match.features import HEADS, Query, answer_key, is_fact
from storinfer.match.lookalike import conflict
from storinfer.match.lookup import DEFAULT_K
from storinfer.match.point import HeadPoint, record_point, recorded_point
from storinfer.match.verify import Verifier
from storinfer.precompute.generate.rephrase import rephrase
from storinfer.protocols import ChatModel
from storinfer.records import DEFAULT_NAMESPACE, Match

logger = logging.getLogger(__name__)
CALIBRATED_HEADS = tuple(h for h in HEADS if h != "runtime")
"""The heads calibrate() sets: probes are made of precomputed pairs, so none is an answer stored from traffic."""


def served_candidate(query: str, candidates: list[Match], threshold: float, guard: bool,
                     verifier: Verifier | None = None) -> Match | None:
    """What a lookup would serve from these candidates (best first) at cosine floor ``threshold``:
    with ``guard``, the verifier's choice (without one, the first the look-alike rules pass);
    without, the first at all (cosine only)."""
    if not guard or verifier is None:
        for c in candidates:
            if c.similarity < threshold:
                return None
            if not guard or conflict(query, c.question) is None:
                return c
        return None
    pos, _verdicts = verifier.with_operating_point(floor=threshold).choose(query, candidates)
    return candidates[pos] if pos is not None else None


@dataclass
class Probe:
    """A question the store can ask itself, the answer serving it rightly, and what the lookup saw."""

    query: str
    answer: str | None  # None: nothing may be served (its answer is hidden)
    candidates: list[Match]


@dataclass
class HeadCalibration:
    """The operating point chosen for one verifier head, and the table it was chosen from."""

    head: str
    floor: float
    cut: float
    probes: int
    hits: int = 0
    wrong: int = 0
    wrong_rate: float = 0.0
    upper_bound: float = 1.0
    """One-sided 95% Clopper-Pearson bound on the wrong-hit rate at the chosen point."""
    table: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    """True when too few probes were served to choose: the store's point is kept."""
    tightened: bool = False
    """True when the probes called for a stricter point than the shipped one."""


@dataclass
class Calibration:
    """Operating points chosen per head for a target wrong-hit rate."""

    target_wrong_rate: float
    heads: dict[str, HeadCalibration]
    probes: int

    @property
    def fallback(self) -> bool:
        return all(h.fallback for h in self.heads.values())

    @property
    def threshold(self) -> float:  # one cosine floor for reports: the question head's
        return self.heads["question"].floor

    @property
    def cut(self) -> float:
        return self.heads["question"].cut

    @property
    def wrong_rate(self) -> float:
        return self.heads["question"].wrong_rate

    @property
    def upper_bound(self) -> float:
        return self.heads["question"].upper_bound

    @property
    def table(self) -> list[dict[str, Any]]:
        return [row for h in self.heads.values() for row in h.table]


def key_probes(store: Any, namespace: str, partition: str, pairs: list[Match], sample: int, k: int) -> list[Probe]:
    """Probes from answers stored under several keys (no LLM): one key looked up with itself hidden
    (another key of its answer is right), and with every key of its answer hidden (any hit is wrong)."""
    by_answer: dict[str, list[Match]] = {}
    for m in pairs:
        by_answer.setdefault(answer_key(m), []).append(m)
    probes: list[Probe] = []
    for keys in by_answer.values():
        if len(keys) < 2 or len(probes) >= 2 * sample:
            continue
        probe = keys[-1]
        found = store.search(probe.question, namespace=namespace, partition=partition, k=k + len(keys))
        own = {m.id for m in keys}
        probes.append(Probe(probe.question, answer_key(probe), [c for c in found if c.id != probe.id][:k]))
        probes.append(Probe(probe.question, None, [c for c in found if c.id not in own][:k]))
    return probes


def paraphrase_probes(store: Any, chat: ChatModel, namespace: str, partition: str, pairs: list[Match],
                      k: int) -> list[Probe]:
    """Probes from the LLM's rewordings of stored questions: original present (its answer is right),
    original hidden (any hit is wrong)."""
    probes: list[Probe] = []
    for m, paras in zip(pairs, rephrase(chat, [m.question for m in pairs], per_question=3)):
        for para in paras:
            found = store.search(para, namespace=namespace, partition=partition, k=k + 1)
            probes.append(Probe(para, answer_key(m), [c for c in found][:k]))
            probes.append(Probe(para, None, [c for c in found if answer_key(c) != answer_key(m)][:k]))
    return probes


def _scored(probes: Sequence[Probe], verifier: Verifier, head: str) -> list[list[tuple[float, float, bool, bool]]]:
    """For each probe: its candidates of ``head`` as (cosine, score, refused by a rule, right)."""
    v = verifier.with_operating_point(0.0, 0.0)
    out = []
    for p in probes:
        q = Query(p.query)
        rows = []
        for i, c in enumerate(p.candidates):
            if (head == "fact") != is_fact(c):
                continue
            verdict = v.verdict(q, p.candidates, i)
            rows.append((c.similarity, verdict.score, not verdict.ok, p.answer is not None and answer_key(c) == p.answer))
        out.append(rows)
    return out


def _serve(scored: list[list[tuple[float, float, bool, bool]]], floor: float, cut: float) -> tuple[int, int]:
    right = wrong = 0
    for rows in scored:
        ok = [(s, r) for sim, s, refused, r in rows if sim >= floor and not refused and s >= cut]
        if ok:
            best = max(ok)
            right += best[1]
            wrong += not best[1]
    return right, wrong


def calibrate_head(probes: Sequence[Probe], verifier: Verifier, head: str, *, target: float, floors: Sequence[float],
                   cuts: Sequence[float], min_served: int) -> HeadCalibration:
    """The operating point of one head (see the module docstring)."""
    shipped = getattr(verifier, head)
    scored = _scored(probes, verifier, head)
    relevant = sum(1 for rows in scored if rows)
    table: list[dict[str, Any]] = []
    for cut in cuts:
        for floor in floors:
            right, wrong = _serve(scored, floor, cut)
            served = right + wrong
            table.append({"head": head, "threshold": round(floor, 3), "cut": round(cut, 3), "hits": served, "wrong": wrong,
                          "wrong_rate": wrong / served if served else 0.0,
                          "wrong_upper_95": clopper_pearson_upper(wrong, served),
                          "positive_hit_rate": right / relevant if relevant else 0.0})
    at_shipped = _serve(scored, shipped.floor, shipped.cut)
    served = sum(at_shipped)
    if served < min_served:
        return HeadCalibration(head, shipped.floor, shipped.cut, relevant, served, at_shipped[1],
                               at_shipped[1] / served if served else 0.0, clopper_pearson_upper(at_shipped[1], served),
                               table, fallback=True)
    # points no looser than the shipped one: floor and cut at least as high
    safe = [r for r in table if r["threshold"] >= shipped.floor and r["cut"] >= shipped.cut and r["hits"]
            and r["wrong_rate"] <= target]
    if at_shipped[1] / served <= target:
        best = {"threshold": shipped.floor, "cut": shipped.cut, "hits": served, "wrong": at_shipped[1]}
        tightened = False
    elif safe:
        best = max(safe, key=lambda r: (r["hits"] - r["wrong"], -r["cut"], -r["threshold"]))
        tightened = True
    else:
        best = max((r for r in table if r["threshold"] >= shipped.floor and r["cut"] >= shipped.cut),
                   key=lambda r: (r["cut"], r["threshold"]))
        tightened = True
    hits, wrong = best["hits"], best["wrong"]
    return HeadCalibration(head, best["threshold"], best["cut"], relevant, hits, wrong, wrong / hits if hits else 0.0,
                           clopper_pearson_upper(wrong, hits), table, tightened=tightened)


def calibrate(
    store: Any,
    chat: ChatModel | None = None,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    partition: str = "default",
    target_wrong_rate: float = 0.01,
    sample: int = 300,
    thresholds: Sequence[float] | None = None,
    cuts: Sequence[float] | None = None,
    seed: int = 0,
    min_probes: int = 20,
    record: bool = False,
    k: int = DEFAULT_K,
    warn: bool = True,
) -> Calibration:
    """Pick each verifier head's operating point (cosine floor, score cut) for ``target_wrong_rate``,
    from probes the store makes of its own precomputed keys (see the module docstring).

    ``chat`` (optional) rewords up to ``sample`` stored questions for paraphrase probes; key probes
    need no model. A head with fewer than ``min_probes`` probes served keeps its operating point
    (``fallback``; a warning). ``record=True`` stores the chosen points, so every client of the
    store serves with them where no learner runs (``VerifierPolicy`` reads them).
    """
    if chat is not None and not callable(getattr(chat, "chat_batch", None)):
        msg = (f"calibrate() needs a storinfer ChatModel (with chat_batch), not {type(chat).__name__}: wrap a framework "
               "model with storinfer_langchain.as_chat_model(model) or storinfer_llamaindex.as_chat_model(llm).")
        raise ConfigError(msg)
    floors = list(thresholds) if thresholds is not None else [round(0.50 + 0.025 * i, 3) for i in range(20)]
    cuts = list(cuts) if cuts is not None else [round(0.50 + 0.01 * i, 2) for i in range(50)]
    pairs = list(store.iter_pairs(namespace=namespace, partition=partition, where={"origin": "precomputed"}))
    random.Random(seed).shuffle(pairs)
    probes = key_probes(store, namespace, partition, pairs, sample, k)
    if chat is not None:
        asked = [m for m in pairs if m.metadata.get("key_kind", "question") == "question"][:sample]
        probes += paraphrase_probes(store, chat, namespace, partition, asked, k)
    shipped = Verifier.default()
    recorded = recorded_point(store, shipped.point)
    verifier = shipped.at(recorded) if recorded is not None else shipped
    heads = {}
    for head in CALIBRATED_HEADS:
        heads[head] = calibrate_head(probes, verifier, head, target=target_wrong_rate, floors=floors, cuts=cuts,
                                     min_served=min_probes)
        h = heads[head]
        if h.fallback:
            if warn:
                logger.warning("Calibration of the %s head served %d probes (fewer than %d); keeping floor %s, cut %s. "
                               "Store more keys per answer, or pass a chat model to paraphrase stored questions.",
                               head, h.hits, min_probes, h.floor, h.cut)
        elif record:
            typed = getattr(verifier, head).typed_floor
            record_point(store, head, HeadPoint(h.floor, h.cut, None if typed is None else max(typed, h.floor)),
                         verifier.point, probes=h.probes, hits=h.hits, wrong=h.wrong, wrong_rate=h.wrong_rate,
                         upper_bound_95=h.upper_bound, target_wrong_rate=target_wrong_rate)
    return Calibration(target_wrong_rate, heads, len(probes))
