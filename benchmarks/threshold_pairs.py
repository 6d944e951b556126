"""Measure where the similarity threshold should sit, and what the look-alike guard buys.

Data: the 810 human questions of the SQuAD Super Bowl article. Every pair of distinct
questions is labelled by its gold answers: *same* when they agree (best token F1 >= 0.5: a
stored answer to one is a right answer to the other), *different* otherwise. For each
threshold t we count the pairs at cosine >= t (what a store holding one question would serve
for the other), how many of those are wrong, and the same with the guard on.

    python benchmarks/threshold_pairs.py [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storinfer.evaluate.squad import answers_agree, load_squad  # noqa: E402
from storinfer.match.lookalike import conflict  # noqa: E402
from storinfer.models import default_embedder as default_embeddings  # noqa: E402
from storinfer.text import normalize_question  # noqa: E402

DEFAULT_SQUAD = Path(__file__).resolve().parents[1] / "data/squad-dev-v1.1-superbowl/dev-v1.1-superbowl.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", default=str(DEFAULT_SQUAD))
    ap.add_argument("--json", help="also write the table as JSON here")
    args = ap.parse_args()

    _docs, questions = load_squad(args.squad)
    texts = [q.question for q in questions]
    vecs = np.array(default_embeddings().embed_documents(texts))
    sims = vecs @ vecs.T

    rows = []  # (similarity, same_answer, guard_rejects)
    for i, j in itertools.combinations(range(len(questions)), 2):
        if sims[i, j] < 0.70 or normalize_question(texts[i]) == normalize_question(texts[j]):
            continue
        same = answers_agree(questions[i].answers, questions[j].answers)
        rows.append((float(sims[i, j]), same, conflict(texts[i], texts[j]) is not None))
    positives_total = sum(1 for r in rows if r[1])
    print(f"{len(questions)} questions; {len(rows)} distinct pairs at cosine >= 0.70 "
          f"({positives_total} with agreeing gold answers)\n")
    header = f"{'threshold':>9} | {'served':>6} {'wrong':>5} {'wrong%':>6} | {'guard: served':>13} {'wrong':>5} {'wrong%':>6} {'right kept':>10}"
    print(header)
    print("-" * len(header))
    table = []
    for t in np.round(np.arange(0.70, 0.99, 0.01), 2):
        served = [r for r in rows if r[0] >= t]
        wrong = sum(1 for r in served if not r[1])
        g_served = [r for r in served if not r[2]]
        g_wrong = sum(1 for r in g_served if not r[1])
        right = sum(1 for r in served if r[1])
        g_right = sum(1 for r in g_served if r[1])
        entry = {
            "threshold": float(t), "served": len(served), "wrong": wrong,
            "guard_served": len(g_served), "guard_wrong": g_wrong, "right": right, "guard_right": g_right,
        }
        table.append(entry)
        pct = 100 * wrong / len(served) if served else 0.0
        gpct = 100 * g_wrong / len(g_served) if g_served else 0.0
        kept = f"{g_right}/{right}"
        print(f"{t:9.2f} | {len(served):6d} {wrong:5d} {pct:5.1f}% | {len(g_served):13d} {g_wrong:5d} {gpct:5.1f}% {kept:>10}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
