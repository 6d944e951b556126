"""Hit-path latency on a store of 10k pairs, against the LLM's latency for the same questions.

The 10k questions are synthetic (templates x invented company names), each with its answer.
The 1,000 lookups are half re-typed copies (other case and punctuation: the exact path, no
embedding) and half reworded questions (the embedding path). The LLM is the offline SmolLM2,
timed on a sample of the same reworded questions (one call takes seconds on 2 cores).

    python benchmarks/bench_lookup.py [--pairs 10000] [--lookups 1000] [--llm-sample 30]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.globals import set_llm_cache  # noqa: E402

from storinfer_langchain import QAPair, QAStore, StorInferCache, default_chat_model, partition_for_model  # noqa: E402

FIRST = ["Northwind", "Blue River", "Silver Oak", "Redwood", "Granite", "Harbor", "Summit", "Aurora", "Cedar",
         "Falcon", "Juniper", "Lakeside", "Maple", "Orion", "Pioneer", "Quartz", "Sierra", "Tidewater", "Vertex",
         "Willow", "Beacon", "Cobalt", "Delta", "Evergreen", "Frontier", "Golden Gate", "Highland", "Ironwood",
         "Keystone", "Lighthouse", "Meridian", "Nimbus", "Oakridge", "Pinecrest", "Riverside", "Sapphire",
         "Timber", "Unity", "Valley", "Westbrook", "Yellowstone", "Zenith", "Amber", "Bristol", "Crescent",
         "Driftwood", "Echo", "Foxglove", "Glacier", "Horizon"]
SECOND = ["Analytics", "Foods", "Robotics", "Logistics", "Pharma", "Energy", "Textiles", "Airlines", "Motors",
          "Studios", "Bank", "Insurance", "Hotels", "Telecom", "Mining", "Software", "Chemicals", "Shipping",
          "Foundry", "Brewery", "Bakery", "Clinics", "Publishing", "Games", "Security", "Semiconductors",
          "Outfitters", "Farms", "Cement", "Optics", "Aerospace", "Media", "Retail", "Water", "Solar", "Steel",
          "Paper", "Glassworks", "Furniture", "Toys", "Cosmetics", "Dairy", "Fisheries", "Railways", "Ceramics",
          "Vineyards", "Instruments", "Marine", "Labs", "Holdings"]
# (stored question, reworded question, answer) templates; rewordings keep names and numbers.
TEMPLATES = [
    ("Who founded {n}?", "who was the founder of {n}", "{n} was founded by its first CEO."),
    ("When was {n} founded?", "In what year was {n} founded?", "{n} was founded in 1987."),
    ("Where is the headquarters of {n}?", "Where is {n} headquartered?", "{n} is headquartered in Springfield."),
    ("What does {n} sell?", "What products does {n} sell?", "{n} sells industrial goods."),
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(name: str, ms: list[float]) -> str:
    return f"{name:<34} n={len(ms):5d}  p50 {pct(ms, 50):8.2f} ms  p99 {pct(ms, 99):8.2f} ms  mean {statistics.mean(ms):8.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--lookups", type=int, default=1_000)
    ap.add_argument("--llm-sample", type=int, default=30)
    args = ap.parse_args()
    rng = random.Random(0)

    names = [f"{a} {b}" for a, b in itertools.product(FIRST, SECOND)]
    rows = [(t[0].format(n=n), t[1].format(n=n), t[2].format(n=n)) for n in names for t in TEMPLATES][: args.pairs]
    chat = default_chat_model(max_new_tokens=64)
    partition = partition_for_model(chat)

    with tempfile.TemporaryDirectory() as tmp:
        store = QAStore(Path(tmp) / "store")
        t0 = time.perf_counter()
        store.add([QAPair(q, a, partition=partition) for q, _r, a in rows], batch_size=1024)
        build = time.perf_counter() - t0
        disk = store.disk_bytes() or 0
        print(f"store: {store.count()} pairs added in {build:.1f} s; {disk / 1e6:.1f} MB on disk "
              f"({disk / store.count():.0f} bytes/pair)\n")

        sample = rng.sample(rows, args.lookups)
        half = len(sample) // 2
        retyped = [(q.upper().rstrip("?") + " ?", a) for q, _r, a in sample[:half]]
        reworded = [(r, a) for _q, r, a in sample[half:]]
        cache = StorInferCache(store)
        for q, _a in retyped[:20] + reworded[:20]:  # warm up
            store.lookup(q, partition=partition)

        def timed(items: list[tuple[str, str]]) -> tuple[list[float], int, int]:
            ms, hits, right = [], 0, 0
            for q, a in items:
                t = time.perf_counter()
                found = store.lookup(q, partition=partition, threshold=cache.similarity_threshold)
                ms.append((time.perf_counter() - t) * 1000)
                hits += found.hit
                right += bool(found.hit and found.match.answer == a)
            return ms, hits, right

        exact_ms, exact_hits, exact_right = timed(retyped)
        sim_ms, sim_hits, sim_right = timed(reworded)
        print(f"threshold {cache.similarity_threshold}")
        print(summary("lookup, re-typed (exact path)", exact_ms) + f"  hits {exact_hits}/{len(retyped)} right {exact_right}")
        print(summary("lookup, reworded (embedding path)", sim_ms) + f"  hits {sim_hits}/{len(reworded)} right {sim_right}")
        print(summary("lookup, all 1,000", exact_ms + sim_ms))

        # End to end through LangChain: the same chat model, cache on, questions that hit.
        set_llm_cache(cache)
        hit_questions = [q for q, _a in retyped[:100]]
        e2e = []
        for q in hit_questions:
            t = time.perf_counter()
            chat.invoke(q)
            e2e.append((time.perf_counter() - t) * 1000)
        print(summary("chat.invoke served from the store", e2e))

        # The LLM itself, cache off, on a sample of the reworded questions.
        set_llm_cache(None)
        llm_ms = []
        for q, _a in reworded[: args.llm_sample]:
            t = time.perf_counter()
            chat.invoke(q)
            llm_ms.append((time.perf_counter() - t) * 1000)
        print(summary(f"chat.invoke, SmolLM2-135M (CPU, {args.llm_sample} q)", llm_ms))
        print(f"\nA hit through LangChain is {statistics.median(llm_ms) / statistics.median(e2e):.0f}x faster "
              "than the LLM at the median.")
        store.close()


if __name__ == "__main__":
    main()
