"""Hit-path latency and disk size as the store grows: 1k, 10k, 100k, 150k pairs.

The pairs are synthetic (templates x invented company names x years, answers of about 150
characters, like the precomputed ones), embedded with the real MiniLM and stored in one
partition of a real local store. At each size, 500 lookups of stored questions: half re-typed
(exact path), half reworded (embedding path), on the new path (MiniLM through ONNX Runtime);
then the same reworded lookups on the old path (MiniLM through PyTorch), side by side. The paper
stored 150K pairs in 830 MB. The largest size's figures go to ``benchmarks/results/latency.json``;
with ``--json OUT``, every size's row goes to OUT instead.

    python benchmarks/scaling.py [--sizes 1000,10000,100000,150000] [--json OUT] [--png OUT] [--plain-upsert]

``add s`` is the time to embed and write each size's new pairs; ``--plain-upsert`` writes them with one
unchecked upsert (as before 0.6) instead of the product's write, which searches each pair written by
its own vector (``storinfer.store.integrity.upsert_indexed``), to show what that check costs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_lookup import FIRST, SECOND, pct, record_latency  # noqa: E402

from storinfer import QAPair, QAStore, StoreFront  # noqa: E402
from storinfer.models import LocalEmbedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TEMPLATES = [
    ("What was the revenue of {n} in {y}?", "How much revenue did {n} make in {y}?",
     "In {y}, {n} reported revenue of about 41 million dollars, most of it from its domestic market and long-term contracts."),
    ("Who was the CEO of {n} in {y}?", "Who led {n} as CEO in {y}?",
     "The CEO of {n} in {y} was its co-founder, who had run the company since it was set up and stepped down a decade later."),
    ("How many employees worked at {n} in {y}?", "In {y}, how many employees worked at {n}?",
     "About 1,200 employees worked at {n} in {y}, spread over three sites, with a third of them in research and development."),
    ("Where was {n} headquartered in {y}?", "In {y}, where was {n} headquartered?",
     "In {y}, {n} was headquartered in Springfield, in a former textile mill it bought and renovated when it moved from its first office."),
]


def rows(n: int) -> list[tuple[str, str, str]]:
    names = [f"{a} {b}" for a, b in itertools.product(FIRST, SECOND)]
    out = []
    for y in range(1901, 2025):
        for name in names:
            for q, r, a in TEMPLATES:
                out.append((q.format(n=name, y=y), r.format(n=name, y=y), a.format(n=name, y=y)))
                if len(out) == n:
                    return out
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000,150000")
    ap.add_argument("--lookups", type=int, default=500)
    ap.add_argument("--json")
    ap.add_argument("--png", help="also draw latency and disk size against store size here")
    ap.add_argument("--plain-upsert", action="store_true", help="write with one unchecked upsert (before 0.6)")
    args = ap.parse_args()
    if args.plain_upsert:
        from store_index import use_plain_upsert

        use_plain_upsert()
    sizes = [int(s) for s in args.sizes.split(",")]
    data = rows(max(sizes))
    rng = random.Random(0)
    results = []
    print(f"{'pairs':>8} {'MB on disk':>10} {'bytes/pair':>10} | {'exact p50':>9} {'p99':>7} | "
          f"{'reworded p50':>12} {'p99':>7} {'hits':>9} | {'old p50':>8} {'p99':>7} | {'add s':>6}")
    onnx, torch = LocalEmbedder(backend="onnx"), LocalEmbedder(backend="torch")
    with tempfile.TemporaryDirectory() as tmp:
        store = QAStore(Path(tmp) / "store", embedding=onnx)
        stored = 0
        for size in sizes:
            t0 = time.perf_counter()
            store.add([QAPair(q, a) for q, _r, a in data[stored:size]], batch_size=2048)
            add_s = time.perf_counter() - t0
            stored = size
            sample = rng.sample(data[:size], args.lookups)
            half = len(sample) // 2
            front = StoreFront(store, learner=None, write_behind=False)  # the shipped verifier at its point
            for q, r, _a in sample[:10]:  # warm-up
                front.lookup(q)
                front.lookup(r)
            exact, embed, hits = [], [], 0
            for i, (q, r, a) in enumerate(sample):
                query = q.lower().rstrip("?") if i < half else r
                t = time.perf_counter()
                found = front.lookup(query)
                ms = (time.perf_counter() - t) * 1000
                (exact if i < half else embed).append(ms)
                hits += bool(found.hit and found.match.answer == a)
            store.embedding = torch  # the old path: same vectors, PyTorch MiniLM
            old = []
            for _q, r, _a in sample[half:]:
                t = time.perf_counter()
                front.lookup(r)
                old.append((time.perf_counter() - t) * 1000)
            store.embedding = onnx
            disk = store.disk_bytes() or 0
            row = {"pairs": size, "disk_bytes": disk, "bytes_per_pair": disk / size,
                   "exact_p50_ms": pct(exact, 50), "exact_p99_ms": pct(exact, 99),
                   "embedding_p50_ms": pct(embed, 50), "embedding_p99_ms": pct(embed, 99),
                   "old_embedding_p50_ms": pct(old, 50), "old_embedding_p99_ms": pct(old, 99),
                   "right_hits": hits, "lookups": len(sample), "add_seconds": add_s}
            results.append(row)
            print(f"{size:>8} {disk / 1e6:>10.1f} {disk / size:>10.0f} | {row['exact_p50_ms']:>9.2f} {row['exact_p99_ms']:>7.2f} | "
                  f"{row['embedding_p50_ms']:>12.2f} {row['embedding_p99_ms']:>7.2f} {hits:>4}/{len(sample):<4} | "
                  f"{row['old_embedding_p50_ms']:>8.2f} {row['old_embedding_p99_ms']:>7.2f} | {add_s:>6.0f}", flush=True)
        store.close()
    print("\npaper: 150K pairs in 830 MB (5,533 bytes per pair)")
    largest = results[-1]
    if args.json:  # the rows there, and benchmarks/results/ left as it is
        Path(args.json).write_text(json.dumps(results, indent=2))
    else:
        record_latency("scaling", largest, pairs=largest["pairs"], reworded_hit_ms_p50=largest["embedding_p50_ms"],
                       reworded_hit_ms_p99=largest["embedding_p99_ms"], exact_hit_ms_p50=largest["exact_p50_ms"])
    if args.png:
        plot(results, Path(args.png))


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["pairs"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(sizes, [r["embedding_p50_ms"] for r in results], "o-", label="reworded p50 (ONNX)")
    left.plot(sizes, [r["embedding_p99_ms"] for r in results], "o--", label="reworded p99 (ONNX)")
    left.plot(sizes, [r["old_embedding_p50_ms"] for r in results], "^:", label="reworded p50 (old: PyTorch)")
    left.plot(sizes, [r["exact_p50_ms"] for r in results], "s-", label="exact path p50")
    left.set(xscale="log", xlabel="stored pairs", ylabel="lookup latency (ms)", title="Hit path latency")
    left.grid(alpha=0.3)
    left.legend()
    right.plot(sizes, [r["disk_bytes"] / 1e6 for r in results], "o-", label="StorInfer (Chroma, MiniLM 384-d)")
    right.plot([150_000], [830], "r*", markersize=12, label="paper: 150K pairs, 830 MB")
    right.set(xscale="log", yscale="log", xlabel="stored pairs", ylabel="MB on disk", title="Store size")
    right.grid(alpha=0.3)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
