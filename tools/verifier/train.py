"""Fit the hit verifier's two heads and write `storinfer/match/verifier.json` (reproducible: no randomness).

Data: *fit* parts only; the held-out parts are never read here.

- **question head** (any stored question): `question_data.py`'s streams: BANKING77
  intents at even positions, CLINC150 domains at even positions with `oos_train`/`oos_val`, and
  SQuAD dev articles at odd positions (one human question stored per answer, the others looked up).
- **fact head** (keys the answer-aware generator wrote): `fact_data.py`: each SQuAD
  article precomputed into a store of its own, its human questions looked up there, every
  candidate judged by the strict judge (the key's expected answer against the human's gold). With
  `--squad-train FILE` (SQuAD v1.1 train, gzipped; disjoint from the dev set) its articles are the
  fit data (the shipped head: 40 articles, every 4th of the file, `--fact-only`); without it, the
  dev articles at odd positions.

For each head the fit data are split again by intent / article: two thirds fit a logistic model
(hard-rule refusals left out), one third chooses the operating point: over cosine floors and score
cuts, each validation query is served as a lookup would (the best-scoring candidate that passes),
and the point serving the most right answers with an observed wrong-hit rate within the target
(1%) on every dataset wins. Its 95% Clopper-Pearson bound is printed beside it.

    python tools/verifier/train.py [--out storinfer/match/verifier.json] [--squad-train FILE] [--fact-only]
                                   [--limit N] [--stores DIR]

``--limit N`` cuts the data down to N of everything (SQuAD articles, paragraphs of each, queries per
intent): ``--limit 3`` (the suite's, with ``--out`` and ``--stores`` in a scratch folder) checks
that the script runs; heads fitted on so little are not to ship.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fact_data import articles, build_store, facts_only, first_paragraphs, look_up, train_articles  # noqa: E402
from question_data import PER_LABEL, Stream, banking, candidates, clinc, squad  # noqa: E402

from storinfer.match.bounds import clopper_pearson_upper  # noqa: E402
from storinfer.match.features import FACT_FEATURES, QUESTION_FEATURES, TYPED, Query, fact_features, question_features  # noqa: E402
from storinfer.match.verify import Head, Verifier, fact_refusal, question_refusal  # noqa: E402
from storinfer.models import default_embedder  # noqa: E402

TARGET = 0.01
K = 8
OUT = Path(__file__).resolve().parent / "out"


def rows(name: str, queries: list[str], cands: list[list], right: list[list[bool]], fact: bool) -> dict:
    """Per query: its candidates' features, hard-rule refusal and label."""
    by_q = {}
    for qi, (text, row, ok) in enumerate(zip(queries, cands, right)):
        q = Query(text)
        items = []
        for pos, c in enumerate(row):
            hard = fact_refusal(q, c) if fact else question_refusal(q, c)
            x = fact_features(q, row, pos) if fact else question_features(q, row, pos)
            items.append({"sim": c.similarity, "hard": hard is not None, "x": x, "y": bool(ok[pos]),
                          "typed": q.qtype in TYPED})
        by_q[qi] = items
    return {"name": name, "by_q": by_q, "n": len(queries)}


def stream_rows(stream: Stream, embedder) -> dict:
    cands = candidates(stream, embedder, K)
    right = [[stream.right(qi, c.metadata["stored_index"]) for c in row] for qi, row in enumerate(cands)]
    return rows(stream.name, stream.queries, cands, right, fact=False)


def split_stream(stream: Stream, fold: int) -> Stream:
    """The queries of every third label (fold 2: validation) or the others (fold 0: fitting)."""
    labels = sorted({str(x) for x in stream.query_labels if x != "oos"})
    val = set(labels[2::3])
    keep = [i for i, lab in enumerate(stream.query_labels)
            if (str(lab) in val or (lab == "oos" and i % 3 == 2)) == (fold == 2)]
    return Stream(stream.name, stream.stored, stream.stored_labels, [stream.queries[i] for i in keep],
                  [stream.query_labels[i] for i in keep], stream.same)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 60):
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


def matrices(data: dict, head: Head) -> dict:
    """A dataset as padded [query, candidate] arrays, scored by ``head`` once."""
    n, k = len(data["by_q"]), max((len(v) for v in data["by_q"].values()), default=1)
    sim, score = np.full((n, k), -1.0), np.full((n, k), -1.0)
    hard, typed, y = np.ones((n, k), bool), np.zeros((n, k), bool), np.zeros((n, k), bool)
    for i, items in enumerate(data["by_q"].values()):
        for j, it in enumerate(items):
            sim[i, j], hard[i, j], typed[i, j], y[i, j] = it["sim"], it["hard"], it["typed"], it["y"]
            score[i, j] = head.score(it["x"])
    return {"sim": sim, "score": score, "hard": hard, "typed": typed, "y": y}


def serve(m: dict, floor: float, cut: float, typed_floor: float | None) -> tuple[int, int]:
    """(right, wrong) when each query is served its best-scoring candidate that passes."""
    floors = np.where(m["typed"], max(floor, typed_floor) if typed_floor is not None else floor, floor)
    ok = (m["sim"] >= floors) & ~m["hard"] & (m["score"] >= cut)
    masked = np.where(ok, m["score"], -np.inf)
    served = ok.any(axis=1)
    pick = masked.argmax(axis=1)
    chosen = m["y"][np.arange(len(pick)), pick] & served
    right = int(chosen.sum())
    return right, int(served.sum()) - right


def fit_head(names: tuple[str, ...], fit_sets: list[dict], val_sets: list[dict], floors, cuts, typed_floors) -> Head:
    usable = [it for d in fit_sets for items in d["by_q"].values() for it in items if not it["hard"]]
    x = np.array([it["x"] for it in usable], dtype=float)
    y = np.array([it["y"] for it in usable], dtype=float)
    w, b, mean, scale = fit_logistic(x, y)
    print(f"  fitted on {len(usable)} pairs ({int(y.sum())} right)", file=sys.stderr)
    base = Head(names, tuple(map(float, w)), b, tuple(map(float, mean)), tuple(map(float, scale)), 0.0, 0.0)
    mats = [(d, matrices(d, base)) for d in val_sets]
    best = None
    for typed in typed_floors:
        for floor in floors:
            for cut in cuts:
                total, ok = 0, True
                for _d, m in mats:
                    right, wrong = serve(m, float(floor), float(cut), typed)
                    if right + wrong and wrong / (right + wrong) > TARGET:
                        ok = False
                        break
                    total += right
                if ok and (best is None or total > best[0]):
                    best = (total, float(floor), float(cut), typed)
    assert best is not None, "no operating point meets the target on the validation part"
    _t, floor, cut, typed = best
    head = Head(names, base.weights, b, base.mean, base.scale, floor, cut, typed)
    print(f"  operating point: floor {floor:.3f}, cut {cut:.3f}, typed floor {typed}", file=sys.stderr)
    for d, m in mats:
        right, wrong = serve(m, floor, cut, typed)
        print(f"  validation {d['name']}: right {right}/{d['n']} ({right / d['n']:.1%}), wrong {wrong}/{right + wrong} "
              f"(95% upper bound {clopper_pearson_upper(wrong, right + wrong):.1%})", file=sys.stderr)
    return head


def squad_pairs(embedder, limit: int | None = None) -> list[tuple[float, float, bool, bool, bool]]:
    """Every pair of human questions of the SQuAD fit articles at cosine >= 0.8, as a lookup of one
    for the other would see it: (cosine, typed, refused by a rule, answers agree, features)."""
    import itertools

    from storinfer.evaluate.squad import answers_agree
    from storinfer.records import Match

    out = []
    for art in (first_paragraphs(a, limit) for a in articles("fit")[:limit]):
        qs = [(q, gold) for q, gold, _p in art.questions]
        vecs = np.asarray(embedder.embed_documents([q for q, _g in qs]), dtype=np.float32)
        sims = vecs @ vecs.T
        for i, j in itertools.permutations(range(len(qs)), 2):
            if sims[i, j] < 0.8 or qs[i][0].lower() == qs[j][0].lower():
                continue
            q = Query(qs[i][0])
            cands = [Match("c", qs[j][0], qs[j][1][0], float(sims[i, j]), {"answer_id": str(j)})]
            out.append((float(sims[i, j]), q.qtype in TYPED, question_refusal(q, cands[0]) is not None,
                        answers_agree(qs[i][1], qs[j][1]), question_features(q, cands, 0)))
    return out


def typed_floor(head: Head, pairs: list) -> float | None:
    """The lowest floor for typed questions from which every higher one keeps the wrong pairs served
    within the target (pairs of human questions, scored by the head at its cut)."""
    served = sorted(((sim, ok) for sim, typed, hard, ok, x in pairs
                     if typed and not hard and sim >= head.floor and head.score(x) >= head.cut), reverse=True)
    best, right, wrong = None, 0, 0
    for sim, ok in served:
        right += ok
        wrong += not ok
        if wrong / (right + wrong) <= TARGET:
            best = sim
    print(f"  typed floor from {len(served)} served pairs of human questions: {best}", file=sys.stderr)
    return None if best is None or best <= head.floor else round(float(best), 3)


def fact_sets(embedder, source: list, stores: Path, reuse: bool = False) -> tuple[list[dict], list[dict]]:
    """Article lookups for the fact head: two thirds of the articles fit, one third validates."""
    from storinfer import QAStore

    fit, val = [], []
    for i, art in enumerate(source):
        t = time.perf_counter()
        folder = stores / art.title
        if reuse and folder.exists():
            store, summary = QAStore(folder, embedding=embedder), None
        else:
            store, summary = build_store(art, folder, facts_only(), embedder=embedder)
        looked = look_up(store, art, k=K)
        store.close()
        d = rows(art.title, [x.question for x in looked], [x.candidates for x in looked], [x.right for x in looked], fact=True)
        (val if i % 3 == 2 else fit).append(d)
        keys = summary.keys_stored if summary else "reused"
        print(f"{art.title}: {keys} keys, {len(looked)} questions ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    return fit, val


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "storinfer" / "match" / "verifier.json"))
    ap.add_argument("--reuse-stores", action="store_true", help="reuse the fit articles' stores of an earlier run")
    ap.add_argument("--squad-train", help="SQuAD v1.1 train (train-v1.1.json.gz): the fact head's fit data")
    ap.add_argument("--train-articles", type=int, default=40)
    ap.add_argument("--fact-only", action="store_true", help="refit the fact head only; keep the shipped question head")
    ap.add_argument("--limit", type=int, default=None, help="only N SQuAD articles, N paragraphs of each and N queries "
                    f"per intent (default: all, {PER_LABEL} per intent)")
    ap.add_argument("--stores", type=Path, default=OUT / "stores",
                    help=f"the fact head's article stores (default {(OUT / 'stores').relative_to(ROOT)})")
    args = ap.parse_args()
    if args.limit is not None and args.limit < 3:
        ap.error("--limit must be at least 3: every third article validates the fact head")
    embedder = default_embedder()
    if args.fact_only:
        question = Verifier.default().question
    else:
        question = question_head(embedder, args.limit)
    source = (train_articles(args.squad_train, args.train_articles, every=4) if args.squad_train
              else articles("fit"))
    source = [first_paragraphs(a, args.limit) for a in source[: args.limit]]
    f_fit, f_val = fact_sets(embedder, source, args.stores, args.reuse_stores)
    print("fact head", file=sys.stderr)
    # the validation articles are judged together: each alone has too few hits to tell 1% from 0%
    merged = {"name": "squad fit articles (validation third)", "n": sum(d["n"] for d in f_val),
              "by_q": {(d["name"], k): v for d in f_val for k, v in d["by_q"].items()}}
    fact = fit_head(FACT_FEATURES, f_fit, [merged], np.arange(0.50, 0.951, 0.025), np.arange(0.30, 0.996, 0.005), (None,))
    fitted_on = (f"fact head: {len(source)} SQuAD v1.1 train articles (every 4th; disjoint from the dev set)" if args.squad_train
                 else "fact head: tools/verifier/fact_data.py, SQuAD dev articles at odd positions")
    data = {**Verifier(question, fact).to_dict(), "target_wrong_rate": TARGET,
            "fitted_on": "question head: tools/verifier/question_data.py fit parts (BANKING77 even intents, CLINC150 even "
                         "domains + oos_train/oos_val, SQuAD dev articles at odd positions); " + fitted_on
                         + (f"; cut down by --limit {args.limit}" if args.limit is not None else "")}
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print(f"written {args.out}", file=sys.stderr)


def question_head(embedder, limit: int | None) -> Head:
    q_fit, q_val = [], []
    per_label = limit or PER_LABEL
    for stream in (banking("fit", per_label), clinc("fit", per_label), squad("fit", limit=limit)):
        q_fit.append(stream_rows(split_stream(stream, 0), embedder))
        q_val.append(stream_rows(split_stream(stream, 2), embedder))
        print(f"{stream.name}: {len(stream.stored)} stored, {len(stream.queries)} queries", file=sys.stderr)
    print("question head", file=sys.stderr)
    question = fit_head(QUESTION_FEATURES, q_fit, q_val, np.arange(0.60, 0.951, 0.025), np.arange(0.30, 0.996, 0.01),
                        (None,))
    # Factoid look-alikes ("Margaret's husband" / "brother") are few in the streams above; every pair of
    # the fit articles' human questions sets the typed-question floor.
    question = Head(question.features, question.weights, question.bias, question.mean, question.scale, question.floor,
                    question.cut, typed_floor(question, squad_pairs(embedder, limit)))
    for d in q_val:
        right, wrong = serve(matrices(d, question), question.floor, question.cut, question.typed_floor)
        print(f"  with it, validation {d['name']}: right {right}/{d['n']}, wrong {wrong}/{right + wrong}", file=sys.stderr)
    return question


if __name__ == "__main__":
    main()
