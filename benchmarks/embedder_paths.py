"""The two MiniLM paths side by side: ONNX Runtime (the default after ``make setup``) and PyTorch.

Embeds every question of the 24 SQuAD dev articles both ways, then (all articles in one pool)
stores the questions at even positions and looks up those at odd positions: top-1 agreement is the share
of lookups whose nearest stored question is the same on both paths. Also times one question
at a time on each path.

    python benchmarks/embedder_paths.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from storinfer.evaluate.squad import load_squad  # noqa: E402
from storinfer.models import LocalEmbedder  # noqa: E402


def main() -> None:
    files = sorted((ROOT / "data/squad-dev-v1.1-24articles").glob("*.json"))
    articles = []
    for f in files:
        _docs, questions = load_squad(f)
        articles.append([q.question for q in questions])
    fast, slow = LocalEmbedder(backend="onnx"), LocalEmbedder(backend="torch")
    agree = total = 0
    worst = 1.0
    for qs in articles:
        a, b = np.array(fast.embed_documents(qs)), np.array(slow.embed_documents(qs))
        worst = min(worst, float(np.min(np.sum(a * b, axis=1))))
        stored, asked = slice(0, None, 2), slice(1, None, 2)
        top_a = np.argmax(a[asked] @ a[stored].T, axis=1)
        top_b = np.argmax(b[asked] @ b[stored].T, axis=1)
        agree += int(np.sum(top_a == top_b))
        total += len(top_a)
    sample = [q for qs in articles for q in qs][:300]
    timings = {}
    for name, emb in (("onnx", fast), ("torch", slow)):
        for q in sample[:20]:
            emb.embed_query(q)
        ms = []
        for q in sample:
            t0 = time.perf_counter()
            emb.embed_query(q)
            ms.append(1000 * (time.perf_counter() - t0))
        ms.sort()
        timings[name] = {"p50": statistics.median(ms), "p99": ms[int(0.99 * (len(ms) - 1))]}
    print(f"SQuAD questions: {sum(map(len, articles))} (24 articles, one pool); {total} lookups against {sum(map(len, articles)) - total} stored")
    print(f"top-1 agreement ONNX vs PyTorch: {agree}/{total} = {agree / total:.2%}; "
          f"lowest cosine between the two vectors of one question: {worst:.6f}")
    for name, t in timings.items():
        print(f"{name:<6} one question: p50 {t['p50']:.2f} ms  p99 {t['p99']:.2f} ms")
    out = ROOT / "benchmarks/results/embedder_paths.json"
    out.write_text(json.dumps({"top1_agreement": agree / total, "lookups": total, "min_cosine": worst,
                               "timings_ms": timings}, indent=1))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
