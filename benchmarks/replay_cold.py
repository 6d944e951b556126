"""End to end at a 0% precomputed hit rate: is StorInfer free when it cannot help?

The Super Bowl human questions, each answered by the plain RAG chain (MiniLM retrieval, then the
offline SmolLM2) and by the same chain behind ``StorInferChain`` on an empty store (precompute
off: every question is a miss, unless it repeats one asked before, whose answer was stored).
All run one after the other for each question, in alternating order, so all see the same
machine state. Reported: mean and p50 end-to-end latency of each, over the misses. The plain
chain runs twice (the control row shows the noise); ``store_misses=False`` shows what storing
the answers costs the model that runs meanwhile.

    python benchmarks/replay_cold.py [--questions 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_lookup import record_latency  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402

from storinfer.evaluate.benchmark import build_rag_chain, percentile  # noqa: E402
from storinfer.evaluate.squad import load_squad  # noqa: E402
from storinfer.models import default_chat, default_embedder  # noqa: E402
from storinfer_langchain import QAStore, StorInferChain  # noqa: E402

SQUAD = ROOT / "data/squad-dev-v1.1-superbowl/dev-v1.1-superbowl.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=60)
    args = ap.parse_args()
    docs, questions = load_squad(SQUAD)
    embedder = default_embedder()
    rag = build_rag_chain(docs, embedder, default_chat(max_new_tokens=24))
    plain = RunnableLambda(rag)
    asked = [q.question for q in questions[:: max(1, len(questions) // args.questions)]][: args.questions]
    rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = QAStore(Path(tmp) / "s", embedding=embedder)
        systems = {"plain chain": plain, "plain chain (control)": plain,
                   "StorInferChain": StorInferChain(plain, store, namespace="a"),
                   "StorInferChain speculative": StorInferChain(plain, store, namespace="b").with_speculation(),
                   "StorInferChain, store_misses=False": StorInferChain(plain, store, namespace="c", store_misses=False)}
        rag("warm up")
        for i, q in enumerate(asked):
            order = list(systems.items())
            order = order if i % 2 == 0 else order[::-1]
            for name, system in order:
                t = time.perf_counter()
                if isinstance(system, StorInferChain):
                    _answer, found = system.invoke_with_lookup(q)
                    hit = found.hit
                else:
                    system.invoke(q)
                    hit = False
                ms = (time.perf_counter() - t) * 1000
                rows.setdefault(name, {"miss": [], "hit": []})["hit" if hit else "miss"].append(ms)
        for s in systems.values():
            if isinstance(s, StorInferChain):
                s.flush()
        store.close()
    base = statistics.fmean(rows["plain chain"]["miss"])
    print(f"{len(asked)} Super Bowl questions, empty store (precompute off), SmolLM2 answers of up to 24 tokens")
    print(f"{'system':<36} {'misses':>6} {'hits':>5} | {'mean ms':>8} {'p50 ms':>8} | vs plain (mean)")
    result = {}
    for name, r in rows.items():
        mean, p50 = statistics.fmean(r["miss"]), percentile(r["miss"], 50)
        print(f"{name:<36} {len(r['miss']):>6} {len(r['hit']):>5} | {mean:>8.1f} {p50:>8.1f} | {100 * (mean / base - 1):+.1f}%")
        result[name] = {"misses": len(r["miss"]), "hits": len(r["hit"]), "mean_ms": mean, "p50_ms": p50,
                        "vs_plain": mean / base - 1}
    print(f"written {record_latency('replay_cold', result).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
