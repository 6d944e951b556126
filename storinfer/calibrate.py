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
from storinfer.protocols import ChatModel
from storinfer.records import DEFAULT_NAMESPACE, DEFAULT_THRESHOLD, Match
from storinfer.store import QAStore
from storinfer.text import normalize_question
from storinfer.verify import conflict

logger = logging.getLogger(__name__)

# SmolLM2-135M answers a question it is asked to "rewrite" (0 paraphrases in 40 tries); asked for
# "three different ways to ask" it, it writes a list, and about one question in eight gets one.
PARAPHRASE_SYSTEM = "You write questions."
PARAPHRASE_USER = "Write three different ways to ask this question:\n{question}"


def served_candidate(query: str, candidates: list[Match], threshold: float, guard: bool) -> Match | None:
    """What :meth:`QAStore.lookup` would serve from these candidates at ``threshold``."""
    for c in candidates:
        if c.similarity < threshold:
            return None
        if not guard or conflict(query, c.question) is None:
            return c
    return None



@dataclass
class Calibration:
    """A threshold chosen for a target wrong-hit rate, and the table it was chosen from."""

    threshold: float
    target_wrong_rate: float
    probes: int
    """Paraphrases used; each is looked up with its original present and with it hidden."""
    table: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    """True when there were too few probes to choose, and ``threshold`` is the measured default."""


def calibrate(
    store: QAStore,
    chat: ChatModel,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    partition: str = "default",
    target_wrong_rate: float = 0.01,
    sample: int = 300,
    thresholds: Sequence[float] | None = None,
    guard: bool = True,
    seed: int = 0,
    min_probes: int = 20,
) -> Calibration:
    """Pick the lowest threshold whose wrong-hit rate stays within ``target_wrong_rate``, using only
    data we own: the store's generated questions.

    The LLM paraphrases ``sample`` stored questions (a paraphrase that changes a number or a name
    is not one, and is dropped). Each paraphrase is looked up twice: with its original in the
    store (serving the original is right, anything else wrong) and with the original hidden (any
    hit is wrong: "other generated questions as negatives").

    With fewer than ``min_probes`` paraphrases a rate of 1% cannot be told from 0%, so the
    measured default threshold (0.95) is returned with ``fallback=True`` and a warning.
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

    table = []
    for t in thresholds:
        hits = wrong = neg_hits = 0
        for original, para, cands in probes:
            served = served_candidate(para, cands, t, guard)
            if served is not None:
                hits += 1
                wrong += served.id != original.id
            hidden = served_candidate(para, [c for c in cands if c.id != original.id], t, guard)
            if hidden is not None:
                hits += 1
                wrong += 1
                neg_hits += 1
        table.append({"threshold": t, "hits": hits, "wrong": wrong, "wrong_rate": wrong / hits if hits else 0.0,
                      "positive_hit_rate": (hits - neg_hits) / len(probes) if probes else 0.0})
    # the lowest threshold from which every higher one also stays within the target
    threshold = max(thresholds)
    for r in sorted(table, key=lambda r: r["threshold"], reverse=True):
        if r["wrong_rate"] > target_wrong_rate:
            break
        if r["hits"]:
            threshold = r["threshold"]
    if len(probes) < min_probes:
        logger.warning("Calibration found %d usable paraphrases (fewer than %d); using the default threshold %s. "
                       "Paraphrase more stored questions (sample=) or use a stronger chat model.",
                       len(probes), min_probes, DEFAULT_THRESHOLD)
        return Calibration(DEFAULT_THRESHOLD, target_wrong_rate, len(probes), table, fallback=True)
    return Calibration(threshold, target_wrong_rate, len(probes), table)
