"""What limits coverage: is the fact stored, is a right key among the nearest, is it the nearest?

Reads the stores `benchmarks/coverage.py` leaves in `benchmarks/out/coverage/` (the latest one of
each article) and, for every human question of the article, reports the share for which

* **stored**: some key of the store asks for the gold fact (strict judge: its expected answer,
  else its stored answer, names what a gold answer names), anywhere in the store;
* **in the 8 nearest**: a right key is among the 8 candidates a lookup checks;
* **nearest**: the nearest key is right;

and, among the questions whose nearest key is right or wrong, the cosine of that key (a verifier
can only serve at <= 1% wrong where the two groups separate). Nothing here is fitted.

    python benchmarks/coverage.py ...          # first: writes the stores
    python benchmarks/coverage_limits.py [TITLE ...] [--json benchmarks/results/coverage_limits.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from coverage_data import articles, look_up  # noqa: E402

from storinfer import QAStore  # noqa: E402
from storinfer.evaluate.squad import answer_matches  # noqa: E402
from storinfer.models import default_embedder  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "coverage"


def latest_stores() -> dict[str, Path]:
    """The newest store folder of each article (`TITLE-N`, highest N), ablation and throughput left out."""
    best: dict[str, tuple[int, Path]] = {}
    for d in OUT.iterdir():
        m = re.fullmatch(r"(.+)-(\d+)", d.name)
        if not d.is_dir() or not m or m.group(1) in ("ablation", "throughput", "storage"):
            continue
        n = int(m.group(2))
        if m.group(1) not in best or n > best[m.group(1)][0]:
            best[m.group(1)] = (n, d)
    return {t: p for t, (_n, p) in best.items()}


def quantiles(xs: list[float]) -> str:
    if len(xs) < 4:
        return "n/a"
    q = statistics.quantiles(xs, n=4)
    return f"{q[0]:.3f} / {statistics.median(xs):.3f} / {q[2]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("titles", nargs="*", help="only these articles (default: every store found)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    embedder = default_embedder()
    by_title = {a.title: a for a in articles()}
    results = {}
    print(f"{'article':30} {'questions':>9} {'keys':>6} | {'stored':>7} {'in 8 nearest':>12} {'nearest':>8} | "
          "cosine of the nearest key (quartiles): when right | when wrong")
    for title, folder in sorted(latest_stores().items()):
        if args.titles and title not in args.titles:
            continue
        article = by_title[title]
        store = QAStore(folder, embedding=embedder)
        answers = [str(m.metadata.get("expected_answer") or m.answer) for m in store.iter_pairs(partition="kb")]
        looked = look_up(store, article, k=8)
        stored = [any(answer_matches(a, gold) for a in answers) for _q, gold, _p in article.questions]
        in8 = [any(lk.right) for lk in looked]
        top = [bool(lk.right) and lk.right[0] for lk in looked]
        right_cos = [lk.candidates[0].similarity for lk, t in zip(looked, top) if lk.candidates and t]
        wrong_cos = [lk.candidates[0].similarity for lk, t in zip(looked, top) if lk.candidates and not t]
        n = len(looked)
        r = {"questions": n, "keys": len(answers), "stored": sum(stored) / n, "in_8_nearest": sum(in8) / n,
             "nearest": sum(top) / n, "nearest_right_cosine_quartiles": quantiles(right_cos),
             "nearest_wrong_cosine_quartiles": quantiles(wrong_cos),
             "wrong_nearest_at_or_above_0.9": sum(c >= 0.9 for c in wrong_cos),
             "right_nearest_at_or_above_0.9": sum(c >= 0.9 for c in right_cos)}
        results[title] = r
        print(f"{title:30} {n:9d} {len(answers):6d} | {r['stored']:7.1%} {r['in_8_nearest']:12.1%} {r['nearest']:8.1%} | "
              f"{r['nearest_right_cosine_quartiles']} | {r['nearest_wrong_cosine_quartiles']}")
        print(f"{'':30} nearest key at cosine >= 0.90: {r['right_nearest_at_or_above_0.9']} right, "
              f"{r['wrong_nearest_at_or_above_0.9']} wrong")
        store.close()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
