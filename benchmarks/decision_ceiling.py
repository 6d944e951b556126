"""Hindsight ceilings of `decision.py`, replayed in memory on a stream's knowledge base.

* **cosine**: the best single cosine threshold, chosen after the fact at <= 1% wrong (nearest key
  served at or above it; every miss's answer stored);
* **verifier**: the best single (cosine floor, score cut) per head of the shipped verifier, chosen after
  the fact at <= 1% wrong: what a perfect learner of one operating point would serve. Searched per head
  (coordinate ascent over a 39 x 50 grid) on the candidates a replay at the current point saw, then
  replayed for real at the point found, three times over (the point changes what is stored, which
  changes the candidates); the figure is the last real replay's.

Both replays serve exactly as a `StoreFront` does (exact repeats, the 8 nearest keys of the store and
of the answers stored so far), in memory (numpy), without Chroma.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from storinfer import QAStore, Verifier
from storinfer.match.features import HEADS, TYPED, Query, candidate_kind
from storinfer.records import Match
from storinfer.text import clean_text, normalize_question

FLOORS = np.round(np.arange(0.60, 0.99, 0.01), 2)
CUTS = np.round(np.arange(0.0, 1.0, 0.02), 2)


class Memory:
    """A stream's knowledge base as numpy vectors, plus the answers stored as the replay goes."""

    def __init__(self, store_folder, partition: str, embedder, queries: list) -> None:
        with QAStore(store_folder, embedding=embedder) as store:
            kb = list(store.iter_pairs(partition=partition))
            col = store.layout.partition("default", partition, create=False)
            ids = [m.id for m in kb]
            vecs: dict = {}
            for start in range(0, len(ids), 5000):
                res = col.get(ids=ids[start:start + 5000], include=["embeddings"])
                vecs.update(dict(zip(res["ids"], res["embeddings"])))
        self.matches = [Match(m.id, m.question, m.answer, 1.0, m.metadata) for m in kb]
        kv = np.asarray([vecs[i] for i in ids], dtype=np.float32)
        self.base = len(kv)
        qv = np.asarray(embedder.embed_documents([clean_text(q.text) for q in queries]), dtype=np.float32)
        self.qv = qv / (np.linalg.norm(qv, axis=1, keepdims=True) + 1e-12)
        self.kv = kv / (np.linalg.norm(kv, axis=1, keepdims=True) + 1e-12)
        self.reset()

    def reset(self) -> None:
        self.vectors = np.zeros((self.base + len(self.qv), self.kv.shape[1]), np.float32)
        self.vectors[: self.base] = self.kv
        self.n = self.base
        self.items = list(self.matches)
        self.exact = {normalize_question(m.question): i for i, m in enumerate(self.items)}

    def add(self, i: int, text: str, answer: str) -> None:
        self.vectors[self.n] = self.qv[i]
        self.items.append(Match(f"rt{i}", clean_text(text), answer, 1.0, {"origin": "runtime", "question": clean_text(text)}))
        self.exact[normalize_question(text)] = self.n
        self.n += 1

    def nearest(self, i: int, k: int = 8) -> list[Match]:
        sims = self.vectors[: self.n] @ self.qv[i]
        idx = np.argpartition(-sims, k)[:k] if self.n > k else np.arange(self.n)
        idx = idx[np.argsort(-sims[idx], kind="stable")]
        return [Match(self.items[j].id, self.items[j].question, self.items[j].answer, float(sims[j]), self.items[j].metadata)
                for j in idx]


def replay(stream, memory: Memory, decide: Callable[[int, str, list[Match]], Match | None], served_text) -> dict:
    """Serve each query as ``decide`` says; store every miss's answer. Right and wrong as `decision.py` counts them."""
    memory.reset()
    right = wrong = exact = exact_wrong = 0
    for i, q in enumerate(stream.queries):
        ex = memory.exact.get(normalize_question(q.text))
        if ex is not None:
            m: Match | None = memory.items[ex]
        else:
            m = decide(i, q.text, memory.nearest(i))
        if m is not None:
            ok = stream.right(q, served_text(stream, m))
            right += ok
            wrong += not ok
            exact += ex is not None
            exact_wrong += ex is not None and not ok
            continue
        memory.add(i, q.text, q.answers[0])
    served = right + wrong
    matchable = sum(q.matchable for q in stream.queries) or 1
    return {"right": right / matchable, "wrong": wrong / served if served else 0.0, "served": served, "wrong_n": wrong,
            "exact": exact, "exact_wrong": exact_wrong}


def cosine_ceiling(stream, memory: Memory, served_text) -> dict:
    rows = []
    for t in [round(0.70 + 0.01 * i, 2) for i in range(30)]:
        res = replay(stream, memory, lambda _i, _q, cands, t=t: cands[0] if cands and cands[0].similarity >= t else None,
                     served_text)
        rows.append({"threshold": t, **res})
    ok = [r for r in rows if r["wrong"] <= 0.01]
    best = max(ok, key=lambda r: r["right"]) if ok else {"threshold": None, "right": 0.0, "wrong": 0.0}
    return {"best": best, "curve": rows}


def verifier_ceiling(stream, memory: Memory, served_text, *, rounds: int = 3, target: float = 0.01) -> dict:
    verifier = Verifier.default().with_operating_point(floor=0.0, cut=0.0)
    typed_floor = {"question": Verifier.default().question.typed_floor, "runtime": Verifier.default().question.typed_floor,
                   "fact": Verifier.default().fact.typed_floor}
    cache: dict = {}

    def assessed(i: int, text: str, cands: list[Match]) -> list:
        key = (i, tuple(c.id for c in cands))
        if key not in cache:
            q = Query(clean_text(text))
            cache[key] = (q.qtype in TYPED, [(candidate_kind(c), *verifier.assess_one(q, cands, j)[:2], c.similarity)
                                              for j, c in enumerate(cands)])
        return cache[key]

    def at(point: dict) -> Callable[[int, str, list[Match]], Match | None]:
        def decide(i: int, text: str, cands: list[Match]) -> Match | None:
            typed, rows = assessed(i, text, cands)
            best = None
            for j, (head, ok, score, cos) in enumerate(rows):
                floor, cut = point[head]
                if typed and typed_floor[head] is not None:
                    floor = max(floor, typed_floor[head])
                if ok and cos >= floor and score >= cut and (best is None or score > best[0]):
                    best = (score, j)
            return cands[best[1]] if best else None
        return decide

    shipped = Verifier.default()
    point = {"question": (shipped.question.floor, shipped.question.cut), "fact": (shipped.fact.floor, shipped.fact.cut),
             "runtime": (shipped.question.floor, shipped.question.cut)}
    for _ in range(rounds):
        seen: list = []

        def record(i: int, text: str, cands: list[Match], p: dict = point, seen: list = seen) -> Match | None:
            typed, rows = assessed(i, text, cands)
            seen.append((typed, [(h, ok, s, c, stream.right(stream.queries[i], served_text(stream, m)))
                                 for (h, ok, s, c), m in zip(rows, cands)]))
            return at(p)(i, text, cands)

        res = replay(stream, memory, record, served_text)
        point = _search(seen, point, typed_floor, res["exact"], res["exact_wrong"], target)
    final = replay(stream, memory, at(point), served_text)
    return {**final, "point": {h: list(p) for h, p in point.items()}}


def _search(seen: list, point: dict, typed_floor: dict, exact: int, exact_wrong: int, target: float) -> dict:
    """Coordinate ascent per head over (floor, cut) on the candidates seen (held fixed); exact repeats are
    served at every point."""
    n = len(seen)
    head = np.full((n, 8), -1)
    ok = np.zeros((n, 8), bool)
    cos = np.zeros((n, 8))
    score = np.zeros((n, 8))
    right = np.zeros((n, 8), bool)
    typed = np.array([t for t, _ in seen])
    for a, (_t, rows) in enumerate(seen):
        for b, (h, o, s, c, r) in enumerate(rows[:8]):
            head[a, b], ok[a, b], score[a, b], cos[a, b], right[a, b] = HEADS.index(h), o, s, c, r
    def evaluate(p: dict) -> tuple[int, int]:
        floor = np.zeros_like(cos)
        cut = np.zeros_like(cos)
        for hi, h in enumerate(HEADS):
            f, c = p[h]
            tf = typed_floor[h]
            mask = head == hi
            ft = max(f, tf) if tf is not None else f
            floor[mask] = np.where(np.broadcast_to(typed[:, None], cos.shape)[mask], ft, f)
            cut[mask] = c
        passing = ok & (cos >= floor) & (score >= cut) & (head >= 0)
        pick = np.where(passing, score, -1.0).argmax(1)
        hit = passing.any(1)
        good = right[np.arange(n), pick] & hit
        return int(hit.sum()) + exact, int(good.sum()) + exact - exact_wrong

    point = dict(point)
    for _ in range(3):
        for h in HEADS:
            best = None
            for f in FLOORS:
                for c in CUTS:
                    trial = {**point, h: (float(f), float(c))}
                    served, good = evaluate(trial)
                    if served and served - good <= target * served and (best is None or good > best[0]):
                        best = (good, trial[h])
            point[h] = best[1] if best else (1.01, 1.01)
    return point
