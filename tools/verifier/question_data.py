"""Streams of (stored questions, queries): the fit data of the hit verifier's question head
(`tools/verifier/train.py`).

Each dataset is served the way the cache serves: one question per intent (or per answer) is
stored, the others are looked up against it. A served candidate is right when it wants the same
answer: the same intent (BANKING77, CLINC150), or agreeing gold answers (SQuAD: token F1 >= 0.5,
`storinfer.evaluate.squad.answers_agree`). CLINC150's out-of-scope queries have no stored
answer: any serve is wrong.

Splits, fixed and disjoint, so that nothing measured was seen in fitting:
- BANKING77: intents in sorted order, even positions fit, odd positions are held out.
- CLINC150: domains in sorted order, even positions fit, odd positions held out; out-of-scope:
  `oos_train` + `oos_val` fit, `oos_test` held out.
- SQuAD (24 dev articles): odd positions fit, even positions held out (Super_Bowl_50 is 0).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "data"
PER_LABEL = 30  # queries per intent in a stream


@dataclass
class Stream:
    name: str
    stored: list[str]
    stored_labels: list[object]
    queries: list[str]
    query_labels: list[object]
    same: object = None  # (query_label, stored_label) -> bool; default equality
    extra: dict = field(default_factory=dict)

    def right(self, qi: int, si: int) -> bool:
        q, s = self.query_labels[qi], self.stored_labels[si]
        return bool(self.same(q, s)) if self.same else q == s


def _intent_stream(name: str, items: list[tuple[str, str]], keep: set[str], extra_queries=(),
                   per_label: int = PER_LABEL) -> Stream:
    by: dict[str, list[str]] = defaultdict(list)
    for text, label in items:
        if label in keep:
            by[label].append(text)
    stored, stored_labels, queries, labels = [], [], [], []
    for label in sorted(by):
        texts = by[label]
        stored.append(texts[0])
        stored_labels.append(label)
        for t in texts[1 : 1 + per_label]:
            queries.append(t)
            labels.append(label)
    for text in extra_queries:
        queries.append(text)
        labels.append("oos")
    return Stream(name, stored, stored_labels, queries, labels)


def banking(part: str, per_label: int = PER_LABEL) -> Stream:
    rows = []
    for fname in ("train.csv", "test.csv"):
        with open(DATA / "banking77" / fname, newline="", encoding="utf-8") as fh:
            rows += [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    intents = sorted({label for _t, label in rows})
    keep = set(intents[0::2] if part == "fit" else intents[1::2])
    return _intent_stream(f"banking77-{part}", rows, keep, per_label=per_label)


def clinc(part: str, per_label: int = PER_LABEL) -> Stream:
    data = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    domains = json.loads((DATA / "clinc150" / "domains.json").read_text())
    names = sorted(domains)
    chosen = names[0::2] if part == "fit" else names[1::2]
    keep = {intent for d in chosen for intent in domains[d]}
    items = [(t, label) for t, label in data["train"] + data["val"] + data["test"]]
    oos = [t for t, _ in (data["oos_train"] + data["oos_val"] if part == "fit" else data["oos_test"])]
    return _intent_stream(f"clinc150-{part}", items, keep, oos, per_label=per_label)


def squad(part: str, *, only: str | None = None, limit: int | None = None) -> Stream:
    """The part's articles (``limit``: only the first N, and the first N paragraphs of each)."""
    from storinfer.evaluate.squad import answers_agree

    data = json.loads((DATA / "squad-dev-v1.1-24articles" / "dev-v1.1-24articles.json").read_text())["data"]
    articles = (data[1::2] if part == "fit" else data[0::2])[:limit]
    if only:
        articles = [a for a in articles if a["title"] == only]
    stored, stored_gold, queries, query_gold = [], [], [], []
    for article in articles:
        qas = [(qa["question"].strip(), tuple(a["text"] for a in qa["answers"]))
               for p in article["paragraphs"][:limit] for qa in p["qas"]]
        groups: list[list[int]] = []  # greedy: a question joins the first group whose first member agrees
        for i, (_q, gold) in enumerate(qas):
            for g in groups:
                if answers_agree(gold, qas[g[0]][1]):
                    g.append(i)
                    break
            else:
                groups.append([i])
        for g in groups:
            stored.append(qas[g[0]][0])
            stored_gold.append(qas[g[0]][1])
            for i in g[1:]:
                queries.append(qas[i][0])
                query_gold.append(qas[i][1])
    # A question is its own article's; the store holds every article of the part (more look-alikes).
    return Stream(f"squad-{only or part}", stored, stored_gold, queries, query_gold, same=answers_agree)


def embed(embedder, texts: list[str]) -> np.ndarray:
    m = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-12)


def neighbours(stream: Stream, embedder, k: int = 4) -> list[list[tuple[int, float]]]:
    """For every query, its ``k`` nearest stored questions ``(index, cosine)``, best first."""
    s, q = embed(embedder, stream.stored), embed(embedder, stream.queries)
    sims = q @ s.T
    top = np.argsort(-sims, axis=1)[:, :k]
    return [[(int(j), float(sims[i, j])) for j in row] for i, row in enumerate(top)]


def answer_of(stream: Stream, si: int) -> str | None:
    """The stored answer's text where the stream has one (SQuAD: the stored question's first gold
    answer); None for intent streams, whose answers are not texts."""
    label = stream.stored_labels[si]
    return label[0] if isinstance(label, tuple) and label else None


def candidates(stream: Stream, embedder, k: int = 8) -> list[list]:
    """Each query's ``k`` nearest stored questions as the store's ``Match`` records, best first.

    A stored question's answer is its answer text where the stream has one (SQuAD: its first gold
    answer), else empty; ``answer_id`` names the intent / answer, so candidates with one answer
    are known to agree, as keys of one stored answer do."""
    from storinfer.records import Match

    out = []
    for row in neighbours(stream, embedder, k):
        out.append([Match(str(si), stream.stored[si], answer_of(stream, si) or "", sim,
                          {"answer_id": repr(stream.stored_labels[si]), "stored_index": si}) for si, sim in row])
    return out
