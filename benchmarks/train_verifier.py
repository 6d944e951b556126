"""Fit the hit verifier and write `storinfer/verifier.json` (reproducible: no randomness).

Data: the *fit* parts of `benchmarks/verifier_data.py` only (half of BANKING77's intents, half
of CLINC150's domains with its oos_train/oos_val queries, 12 of the 24 SQuAD articles); the
held-out parts are never read here. Each query's 4 nearest stored questions at cosine >= 0.5 are
pairs, labelled right or wrong.

1. The fit parts are split again by intent / article: two thirds fit the logistic model, one
   third chooses the operating point.
2. Operating point: over cosine floors and score cuts, serve each validation query as a lookup
   would (the first candidate that passes), and keep the point that serves the most right
   answers while the observed wrong-hit rate stays within 1% on every dataset. The 95%
   Clopper-Pearson upper bound is printed beside it: with tens of hits per dataset it is wide,
   and demanding it be within 1% would leave nothing served.

    python benchmarks/train_verifier.py [--out storinfer/verifier.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from verifier_data import Stream, answer_of, banking, clinc, neighbours, runner_up, squad  # noqa: E402

from storinfer.local import default_embedder  # noqa: E402
from storinfer.lookalike import answer_mismatch, signals  # noqa: E402
from storinfer.verify import FEATURES, HARD_RULES, Verifier, clopper_pearson_upper, features  # noqa: E402

MIN_SIM = 0.5
TARGET = 0.01
FACTOID_FLOOR = 0.95


def pairs(stream: Stream, cands: list[list[tuple[int, float]]]) -> list[dict]:
    """Every (query, candidate) at cosine >= MIN_SIM, with features, hard-rule outcome and label."""
    out = []
    for qi, row in enumerate(cands):
        for pos, (si, sim) in enumerate(row):
            if sim < MIN_SIM:
                continue
            q, c = stream.queries[qi], stream.stored[si]
            found = signals(q, c)
            found["answer"] = answer_mismatch(q, answer_of(stream, si))
            out.append({"q": qi, "pos": pos, "sim": sim, "hard": any(found[r] for r in (*HARD_RULES, "answer")),
                        "found": found, "texts": (q, c),
                        "x": features(q, c, sim, runner_up(stream, qi, row, pos)),
                        "y": stream.right(qi, si)})
    return out


def split(stream: Stream, fold: int) -> Stream:
    """The queries of every third label (fold 2: validation) or the others (fold 0: fitting)."""
    labels = sorted({str(x) for x in stream.query_labels if x != "oos"})
    val = set(labels[2::3])
    keep = [i for i, lab in enumerate(stream.query_labels)
            if (str(lab) in val or (lab == "oos" and i % 3 == 2)) == (fold == 2)]
    return Stream(stream.name, stream.stored, stream.stored_labels, [stream.queries[i] for i in keep],
                  [stream.query_labels[i] for i in keep], stream.same)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-regularised logistic regression by Newton's method on standardised features."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1]), mean, scale


def serve(pairs_by_query: dict[int, list[dict]], verifier: Verifier) -> tuple[int, int]:
    """(right, wrong) when each query is served its first candidate that passes."""
    right = wrong = 0
    for cands in pairs_by_query.values():
        for p in sorted(cands, key=lambda p: p["pos"]):
            if p["sim"] < verifier.floor_for(p["texts"][0]) or p["hard"]:
                continue
            if verifier.score_features(p["x"]) >= verifier.cut:
                right += p["y"]
                wrong += not p["y"]
                break
    return right, wrong


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "storinfer" / "verifier.json"))
    args = ap.parse_args()
    embedder = default_embedder()
    fit_pairs, val = [], {}
    for stream in (banking("fit"), clinc("fit"), squad("fit")):
        for fold in (0, 2):
            part = split(stream, fold)
            ps = pairs(part, neighbours(part, embedder))
            if fold == 0:
                fit_pairs += ps
            else:
                by_q: dict[int, list[dict]] = {}
                for p in ps:
                    by_q.setdefault(p["q"], []).append(p)
                val[stream.name] = (by_q, len(part.queries))
        print(f"{stream.name}: {len(stream.stored)} stored, {len(stream.queries)} queries", file=sys.stderr)
    usable = [p for p in fit_pairs if not p["hard"]]
    x = np.array([p["x"] for p in usable], dtype=float)
    y = np.array([p["y"] for p in usable], dtype=float)
    w, b, mean, scale = fit_logistic(x, y)
    print(f"fitted on {len(usable)} pairs ({int(y.sum())} right)", file=sys.stderr)
    base = Verifier(tuple(map(float, w)), b, tuple(map(float, mean)), tuple(map(float, scale)), 0.0, 0.0)

    best = None
    for floor in np.arange(0.60, 0.951, 0.025):
        for cut in np.arange(0.30, 0.996, 0.01):
            v = Verifier(base.weights, base.bias, base.mean, base.scale, float(floor), float(cut), FACTOID_FLOOR)
            total, ok = 0, True
            for by_q, _n in val.values():
                right, wrong = serve(by_q, v)
                served = right + wrong
                if served and wrong / served > TARGET:
                    ok = False
                    break
                total += right
            if ok and (best is None or total > best[0]):
                best = (total, float(floor), float(cut))
    assert best is not None, "no operating point meets the target on the validation intents"
    _total, floor, cut = best
    # Questions asking for a typed answer keep 0.1's measured floor (0.95, benchmarks/threshold_pairs.py):
    # the score did not keep their wrong hits within 1% (README, "Verified hits").
    chosen = Verifier(base.weights, base.bias, base.mean, base.scale, floor, cut, FACTOID_FLOOR)
    print(f"operating point: floor {floor:.3f}, cut {cut:.2f}", file=sys.stderr)
    for name, (by_q, n) in val.items():
        right, wrong = serve(by_q, chosen)
        served = right + wrong
        print(f"  validation {name}: right {right}/{n} ({right / n:.1%}), wrong {wrong}/{served} "
              f"(upper bound {clopper_pearson_upper(wrong, served):.2%})", file=sys.stderr)
    data = {"features": list(FEATURES), "weights": [round(v, 6) for v in w], "bias": round(b, 6),
            "mean": [round(float(v), 6) for v in mean], "scale": [round(float(v), 6) for v in scale],
            "floor": round(floor, 3), "cut": round(cut, 3), "factoid_floor": FACTOID_FLOOR, "target_wrong_rate": TARGET,
            "fitted_on": "benchmarks/verifier_data.py fit parts: BANKING77 even intents, CLINC150 even domains "
                         "+ oos_train/oos_val, SQuAD dev articles at odd positions"}
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print(f"written {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
