"""Calibration: pick the operating point from data the store owns, never from the users' questions.

The LLM paraphrases stored questions; each paraphrase is looked up with its original in the store
(serving the original is right) and with it hidden (any hit is wrong). The lowest threshold that
keeps the wrong-hit rate within the target is chosen.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storinfer.generate import parse_questions
from storinfer.lookalike import conflict
from storinfer.lookup import runner_up
from storinfer.protocols import ChatModel
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_THRESHOLD, Match
from storinfer.store import QAStore
from storinfer.text import normalize_question
from storinfer.verify import Verifier, clopper_pearson_upper

logger = logging.getLogger(__name__)

# SmolLM2-135M answers a question it is asked to "rewrite" (0 paraphrases in 40 tries); asked for
# "three different ways to ask" it, it writes a list, and about one question in eight gets one.
PARAPHRASE_SYSTEM = "You write questions."
PARAPHRASE_USER = "Write three different ways to ask this question:\n{question}"


def served_candidate(query: str, candidates: list[Match], threshold: float, guard: bool,
                     verifier: Verifier | None = None) -> Match | None:
    """What a lookup would serve from these candidates (best first) at cosine floor ``threshold``:
    the first that passes the ``verifier`` (or, without one, the look-alike rules) when ``guard``,
    else the first at all (cosine only)."""
    v = verifier.with_operating_point(floor=threshold) if verifier is not None else None
    for pos, c in enumerate(candidates):
        if c.similarity < threshold:
            return None
        if not guard:
            return c
        if v is None and conflict(query, c.question) is None:
            return c
        if v is not None and v.check(query, c.question, c.similarity, runner_up=runner_up(candidates, pos),
                                     answer=c.answer).ok:
            return c
    return None


@dataclass
class Calibration:
    """An operating point (cosine floor ``threshold``, verifier ``cut``) chosen for a target
    wrong-hit rate, the table it was chosen from, and the rate's upper confidence bound."""

    threshold: float
    target_wrong_rate: float
    probes: int
    """Paraphrases used; each is looked up with its original present and with it hidden."""
    table: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    """True when there were too few probes to choose: the store's operating point is kept."""
    cut: float | None = None
    wrong_rate: float = 0.0
    upper_bound: float = 1.0
    """One-sided 95% Clopper-Pearson bound on the wrong-hit rate at the chosen point."""


def calibrate(
    store: QAStore,
    chat: ChatModel,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    partition: str = "default",
    target_wrong_rate: float = 0.01,
    sample: int = 300,
    thresholds: Sequence[float] | None = None,
    cuts: Sequence[float] | None = None,
    guard: bool = True,
    seed: int = 0,
    min_probes: int = 20,
    record: bool = False,
) -> Calibration:
    """Pick the operating point (cosine floor, verifier cut) whose wrong-hit rate stays within
    ``target_wrong_rate``, using only data the store owns: its generated questions.

    The LLM paraphrases ``sample`` stored questions (a paraphrase that changes a number or a name
    is not one, and is dropped). Each paraphrase is looked up twice: with its original in the
    store (serving the original's answer is right, anything else wrong) and with the original
    hidden (any hit is wrong: "other generated questions as negatives"). For each cut (default:
    the store's), the floor is the lowest from which every higher one stays within the target;
    of those, the point serving the most paraphrases wins. Every row carries the 95% upper
    confidence bound of its wrong-hit rate. ``record=True`` stores the point in the store, so
    every client serves with it.

    With fewer than ``min_probes`` paraphrases a rate of 1% cannot be told from 0%: the store's
    operating point is kept (its recorded one, else the default 0.95 with the look-alike rules;
    ``fallback=True``, a warning, nothing recorded).
    """
    if not callable(getattr(chat, "chat_batch", None)):
        msg = (f"calibrate() needs a storinfer ChatModel (with chat_batch), not {type(chat).__name__}: wrap a framework "
               "model with storinfer_langchain.as_chat_model(model) or storinfer_llamaindex.as_chat_model(llm).")
        raise TypeError(msg)
    thresholds = list(thresholds) if thresholds is not None else [round(0.80 + 0.01 * i, 2) for i in range(20)]
    pairs = list(store.iter_pairs(namespace=namespace, partition=partition, where={"origin": "precomputed"}))
    random.Random(seed).shuffle(pairs)
    pairs = pairs[:sample]
    convs = [[{"role": "system", "content": PARAPHRASE_SYSTEM},
              {"role": "user", "content": PARAPHRASE_USER.format(question=m.question)}] for m in pairs]
    replies = chat.chat_batch(convs, max_new_tokens=64) if convs else []
    probes: list[tuple[Match, str, list[Match]]] = []
    for m, reply in zip(pairs, replies):
        found, _junk = parse_questions(reply)
        seen = {normalize_question(m.question)}
        for para in found[:3]:
            key = normalize_question(para)
            if key in seen or conflict(para, m.question):
                continue  # not a paraphrase: the same words, or another number / name / meaning
            seen.add(key)
            probes.append((m, para, store.search(para, namespace=namespace, partition=partition, k=10)))

    verifier = store.verifier or Verifier.default()
    table: list[dict[str, Any]] = []
    for cut in (cuts if cuts is not None else [verifier.cut]) if guard else [None]:
        v = verifier.with_operating_point(cut=cut) if cut is not None else verifier
        for t in thresholds:
            hits = wrong = neg_hits = 0
            for original, para, cands in probes:
                served = served_candidate(para, cands, t, guard, v)
                if served is not None:
                    hits += 1
                    wrong += served.answer != original.answer
                hidden = served_candidate(para, [c for c in cands if c.id != original.id], t, guard, v)
                if hidden is not None:
                    hits += 1
                    wrong += hidden.answer != original.answer
                    neg_hits += hidden.answer != original.answer
            table.append({"threshold": t, "cut": cut, "hits": hits, "wrong": wrong,
                          "wrong_rate": wrong / hits if hits else 0.0,
                          "wrong_upper_95": clopper_pearson_upper(wrong, hits),
                          "positive_hit_rate": (hits - neg_hits) / len(probes) if probes else 0.0})
    best: dict[str, Any] | None = None
    for cut in dict.fromkeys(r["cut"] for r in table):
        rows = sorted((r for r in table if r["cut"] == cut), key=lambda r: r["threshold"], reverse=True)
        chosen = None  # the lowest floor from which every higher one also stays within the target
        for r in rows:
            if r["wrong_rate"] > target_wrong_rate:
                break
            if r["hits"]:
                chosen = r
        if chosen and (best is None or chosen["positive_hit_rate"] > best["positive_hit_rate"]):
            best = chosen
    if len(probes) < min_probes or best is None:
        logger.warning("Calibration found %d usable paraphrases (fewer than %d) or no safe point; keeping the "
                       "operating point floor %s, cut %s. Paraphrase more stored questions (sample=) or use a "
                       "stronger chat model.", len(probes), min_probes, verifier.floor, verifier.cut)
        kept = store.verifier
        return Calibration(kept.floor if kept else DEFAULT_THRESHOLD, target_wrong_rate, len(probes), table,
                           fallback=True, cut=kept.cut if kept else None)
    cal = Calibration(best["threshold"], target_wrong_rate, len(probes), table, cut=best["cut"],
                      wrong_rate=best["wrong_rate"], upper_bound=best["wrong_upper_95"])
    if record and best["cut"] is not None:
        store.record_operating_point(cal.threshold, best["cut"], probes=cal.probes, wrong_rate=cal.wrong_rate,
                                     upper_bound_95=cal.upper_bound, target_wrong_rate=target_wrong_rate)
    return cal
