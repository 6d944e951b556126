"""Latency on the caller's path: old (0.1) and new serving paths side by side, one run, one store.

The store holds 10k synthetic pairs (templates x invented company names), embedded with the
real MiniLM. Both paths read the same store (the ONNX and PyTorch MiniLM give the same vectors:
docs/serving.md):

* **old**: MiniLM through PyTorch, and a miss's answer embedded again and written before the
  caller gets it back (``write_behind=False``, no vector reuse);
* **the fixed point** (``learner=None``: the verifier at its shipped point) and **the learner**
  (the default): MiniLM through ONNX Runtime, the write queued for the background writer, the
  lookup's vector reused. The learner is first taught from 150 labelled misses and refit, so that
  its lookups are those of a learner past its first refit (it evaluates its risk model per candidate).
  The figures of 0.4's learner (the grid refit) in docs/benchmarks.md came from this script at
  ddb50a6 (``git show ddb50a6:benchmarks/bench_lookup.py``).
  Then the fixed point and the taught learner take the same reworded questions in turn (alternating
  which goes first), so that the machine's drift during the run falls on both alike.

Measured per path: exact hits (re-typed questions), reworded hits (on the new path also through
the opt-in hit verifier), and misses (lookup, then the
caller's share of storing the answer; a 50 ms pause after each miss stands in for the model,
which runs on every miss). Then, new path only, a miss through ``StorInferChain``
with and without speculation (``with_speculation()``) over a chain that waits 100 ms (a model that takes no CPU,
so the overhead is not hidden by a slow LLM), the time to first token when streaming the
offline LLM (Qwen2.5-1.5B unless STORINFER_LLM says otherwise; plain, behind StorInfer on a miss with and without speculation, and on a hit),
and the model's own latency. Writes ``benchmarks/results/latency.json`` (section ``bench_lookup``;
``--json`` another file).

    python benchmarks/bench_lookup.py [--pairs 10000] [--lookups 1000] [--misses 200] [--taught 150] [--llm-sample 10]
                                      [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402

from storinfer import QAPair, StoreFront, ThresholdPolicy  # noqa: E402
from storinfer.models import LocalEmbedder  # noqa: E402
from storinfer_langchain import QAStore, StorInferChain, default_chat_model  # noqa: E402

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
MISS = "What colour is the logo of {n}?"  # never stored: a miss for every company
SIMULATED_MODEL_S = 0.1
MODEL_GAP_S = 0.05
LATENCY = ROOT / "benchmarks/results/latency.json"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(name: str, ms: list[float]) -> str:
    return f"{name:<44} n={len(ms):5d}  p50 {pct(ms, 50):8.2f} ms  p99 {pct(ms, 99):8.2f} ms  mean {statistics.mean(ms):8.2f} ms"


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def record_latency(section: str, values: object, out: Path = LATENCY, **top: object) -> Path:
    """Write ``values`` as ``section`` of ``out`` (``benchmarks/results/latency.json``; and ``top`` at its
    top level), keeping what the other latency benchmarks wrote there."""
    data = json.loads(out.read_text()) if out.exists() else {}
    data[section] = values
    data.update(top)
    out.write_text(json.dumps(data, indent=1))
    return out


def first_chunk_ms(stream: Callable[[], Iterator[object]]) -> float:
    t = time.perf_counter()
    it = stream()
    next(it)
    ms = (time.perf_counter() - t) * 1000
    for _ in it:  # let it finish (and store) before the next one starts
        pass
    return ms


OLD_RULES = ThresholdPolicy(0.95, rules=True, k=4)  # 0.2's serving: the look-alike rules at 0.95, 4 candidates


def serving_path(name: str, store: QAStore, embedder: LocalEmbedder, *, new: bool, retyped: list, reworded: list,
                 misses: list[str], learner: object = None, teach: list[str] = ()) -> dict[str, float]:
    store.embedding = embedder
    store.symmetric_embedder = new  # old: the key is embedded again
    # old: 0.2's serving; new: the hit verifier, 8 candidates, with or without a learner
    front = (StoreFront(store, write_behind=True, learner=learner) if new
             else StoreFront(store, write_behind=False, policy=OLD_RULES, learner=None))
    if teach:  # labelled misses, then a refit: the learner is past its prior phase
        for q in teach:
            found = front.lookup(q)
            front.remember(q, "The logo is blue and white, redrawn in 2019.", lookup=found)
        front.flush()
        front.learning().refit_now()
    for q, _a in retyped[:20] + reworded[:20]:  # warm up
        front.lookup(q)
    exact, exact_hits = [], 0
    for q, _a in retyped:
        t = time.perf_counter()
        exact_hits += front.lookup(q).reason == "exact"
        exact.append((time.perf_counter() - t) * 1000)
    sim, right = [], 0
    for q, a in reworded:
        t = time.perf_counter()
        found = front.lookup(q)
        sim.append((time.perf_counter() - t) * 1000)
        right += bool(found.hit and found.match.answer == a)
    verified = []
    if new:  # the same reworded lookups on 0.2's path: look-alike rules, 4 candidates (issue 10: the verifier adds <= 2 ms)
        rules = StoreFront(store, write_behind=False, policy=OLD_RULES, learner=None)
        for q, _a in reworded:
            t = time.perf_counter()
            rules.lookup(q)
            verified.append((time.perf_counter() - t) * 1000)
    miss_lookup, miss_write = [], []
    for q in misses:
        t0 = time.perf_counter()
        found = front.lookup(q)
        t1 = time.perf_counter()
        front.remember(q, "The logo is blue and white, redrawn in 2019.", lookup=found)
        t2 = time.perf_counter()
        assert not found.hit, (q, found.match.question, found.score)
        miss_lookup.append((t1 - t0) * 1000)
        miss_write.append((t2 - t1) * 1000)
        time.sleep(MODEL_GAP_S)  # every miss runs the model; back-to-back misses do not happen
    front.close()
    stored = sum(m is not None for m in store.get([QAPair(q, "x", origin="runtime").id for q in misses]))
    overhead = [a + b for a, b in zip(miss_lookup, miss_write)]
    print(f"\n## {name}")
    print(summary("exact hit (re-typed question)", exact) + f"  exact hits {exact_hits}/{len(retyped)}")
    print(summary("reworded hit" + (" (hit verifier, 8 candidates)" if new else ""), sim) + f"  right {right}/{len(reworded)}")
    if verified:
        print(summary("reworded, 0.2's look-alike rules (4 candidates)", verified)
              + f"  (the verifier adds {pct(sim, 50) - pct(verified, 50):+.2f} ms p50)")
    print(summary("miss: lookup", miss_lookup))
    print(summary("miss: storing the answer (caller's share)", miss_write))
    print(summary("miss: total overhead on the caller's path", overhead) + f"  stored {stored}/{len(misses)}")
    return {"exact_hit_ms_p50": pct(exact, 50), "exact_hit_ms_p99": pct(exact, 99),
            "reworded_hit_ms_p50": pct(sim, 50), "reworded_hit_ms_p99": pct(sim, 99),
            "reworded_right": right / len(reworded), "miss_lookup_ms_p50": pct(miss_lookup, 50),
            "miss_write_ms_p50": pct(miss_write, 50), "miss_overhead_ms_p50": pct(overhead, 50),
            "miss_overhead_ms_p99": pct(overhead, 99),
            "rules_lookup_ms_p50": pct(verified, 50) if verified else None,
            "verifier_adds_ms_p50": pct(sim, 50) - pct(verified, 50) if verified else None}


def interleaved(store: QAStore, reworded: list) -> dict[str, float]:
    """The fixed point and the taught learner (its state is the store's) on the same reworded questions,
    one after the other per question, in alternating order: the machine's drift falls on both alike."""
    fronts = {"fixed point": StoreFront(store, learner=None), "learner": StoreFront(store)}
    ms: dict[str, list[float]] = {name: [] for name in fronts}
    for i, (q, _a) in enumerate(reworded):
        for name in (list(fronts) if i % 2 == 0 else list(fronts)[::-1]):
            ms[name].append(timed(lambda f=fronts[name], q=q: f.lookup(q)))
    for f in fronts.values():
        f.close()
    print("\n## interleaved: the same reworded questions, each through both, in alternating order")
    for name, values in ms.items():
        print(summary(f"reworded lookup, {name}", values))
    ratio = pct(ms["learner"], 50) / pct(ms["fixed point"], 50)
    print(f"reworded lookup p50, the learner / the fixed point (interleaved): {ratio:.2f}x")
    return {"fixed_ms_p50": pct(ms["fixed point"], 50), "learner_ms_p50": pct(ms["learner"], 50), "ratio_p50": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--lookups", type=int, default=1_000)
    ap.add_argument("--misses", type=int, default=200,
                    help="misses per serving path, 1 to 200 (default 200); the chain section takes a quarter as many")
    ap.add_argument("--taught", type=int, default=150,
                    help="labelled misses the learner is taught before its refit, 1 to 150 (default 150)")
    ap.add_argument("--llm-sample", type=int, default=10)
    ap.add_argument("--json", type=Path, default=LATENCY, help=f"the results file (default {LATENCY.relative_to(ROOT)})")
    args = ap.parse_args()
    if not (1 <= args.misses <= 200 and 1 <= args.taught <= 150 and 1 <= args.lookups <= args.pairs):
        ap.error("--misses must be 1 to 200, --taught 1 to 150, --lookups 1 to --pairs")
    chained = max(1, args.misses // 4)
    rng = random.Random(0)
    names = [f"{a} {b}" for a, b in itertools.product(FIRST, SECOND)]
    rows = [(t[0].format(n=n), t[1].format(n=n), t[2].format(n=n)) for n in names for t in TEMPLATES][: args.pairs]
    miss_names = rng.sample(names, len(names))
    results: dict[str, object] = {"pairs": args.pairs}

    with tempfile.TemporaryDirectory() as tmp:
        onnx, torch = LocalEmbedder(backend="onnx"), LocalEmbedder(backend="torch")
        store = QAStore(Path(tmp) / "store", embedding=onnx)
        t0 = time.perf_counter()
        store.add([QAPair(q, a) for q, _r, a in rows], batch_size=1024)
        disk = store.disk_bytes() or 0
        print(f"store: {store.count()} pairs added in {time.perf_counter() - t0:.1f} s; {disk / 1e6:.1f} MB on disk")
        sample = rng.sample(rows, args.lookups)
        half = len(sample) // 2
        retyped = [(q.upper().rstrip("?") + " ?", a) for q, _r, a in sample[:half]]
        reworded = [(r, a) for _q, r, a in sample[half:]]
        old = serving_path("old: PyTorch MiniLM, answer stored on the caller's path", store, torch, new=False,
                           retyped=retyped, reworded=reworded, misses=[MISS.format(n=n) for n in miss_names[:args.misses]])
        fixed = serving_path("the fixed point: ONNX MiniLM, write-behind, the shipped verifier (learner=None)", store, onnx,
                             new=True, retyped=retyped, reworded=reworded,
                             misses=[MISS.format(n=n) for n in miss_names[600:600 + args.misses]])
        new = serving_path(f"the learner (the default), taught {args.taught} misses", store, onnx, new=True, retyped=retyped,
                           reworded=reworded, misses=[MISS.format(n=n) for n in miss_names[200:200 + args.misses]],
                           learner=StoreFront.__init__.__kwdefaults__["learner"],
                           teach=[MISS.format(n=n) + " (taught)" for n in miss_names[1150:1150 + args.taught]])
        ratio = new["reworded_hit_ms_p50"] / fixed["reworded_hit_ms_p50"]
        print(f"\nreworded lookup p50, the learner / the fixed point (sections above): {ratio:.2f}x")
        ab = interleaved(store, reworded)
        results.update(old=old, fixed_point=fixed, new=new, learner_over_fixed_p50=ratio, interleaved=ab)

        # A miss through StorInferChain over a model that waits 100 ms and uses no CPU.
        model = RunnableLambda(lambda q: time.sleep(SIMULATED_MODEL_S) or "The logo is green.")
        plain = [timed(lambda: model.invoke("q")) for _ in range(chained)]
        chains = {False: StorInferChain(model, store), True: StorInferChain(model, store).with_speculation()}
        extra: dict[bool, list[float]] = {}
        questions = iter(MISS.format(n=n) + " (chain)" for n in miss_names[400:])
        print(f"\n## a miss through StorInferChain, model = sleep {SIMULATED_MODEL_S * 1000:.0f} ms (no CPU)")
        print(summary("plain chain", plain))
        for speculative, chain in chains.items():
            ms = [timed(lambda c=chain: c.invoke(next(questions))) for _ in range(chained)]
            extra[speculative] = [m - pct(plain, 50) for m in ms]
            chain.flush()
            print(summary(f"StorInferChain speculative={speculative}: overhead", extra[speculative]))
        results["chain_miss_overhead_ms_p50"] = pct(extra[False], 50)
        results["speculative_miss_overhead_ms_p50"] = pct(extra[True], 50)

        # Streaming the offline LLM: time to the first token.
        chat = default_chat_model(max_new_tokens=48)
        llm = chat | StrOutputParser()
        fixed_front = StoreFront(store, learner=None, write_behind=False)
        hit_q = next(q for q, _a in reworded + retyped if fixed_front.lookup(q).hit)  # a small run may serve no rewording
        ttft = {"plain, miss": [], "StorInfer, miss": [], "StorInfer speculative, miss": [], "StorInfer, hit": []}
        wrapped = {"StorInfer, miss": StorInferChain(llm, store),
                   "StorInfer speculative, miss": StorInferChain(llm, store).with_speculation()}
        llm_ms = []
        streamed = iter(MISS.format(n=n) + " (stream)" for n in miss_names[600:])
        first_chunk_ms(lambda: llm.stream("warm up"))
        for _ in range(args.llm_sample):
            ttft["plain, miss"].append(first_chunk_ms(lambda: llm.stream(next(streamed))))
            for label, chain in wrapped.items():
                ttft[label].append(first_chunk_ms(lambda c=chain: c.stream(next(streamed))))
                chain.flush()
            ttft["StorInfer, hit"].append(first_chunk_ms(lambda: wrapped["StorInfer, miss"].stream(hit_q)))
            llm_ms.append(timed(lambda: llm.invoke(next(streamed))))
        print(f"\n## streaming {chat.model_id} (CPU), time to first token, {args.llm_sample} questions each")
        for label, ms in ttft.items():
            print(summary(label, ms))
        print(summary("the model's whole answer (invoke)", llm_ms))
        results["ttft_ms_p50"] = {label: pct(ms, 50) for label, ms in ttft.items()}
        results["llm_ms_p50"] = pct(llm_ms, 50)
        store.close()

    out = record_latency("bench_lookup", results, args.json, miss_overhead_ms_p50=new["miss_overhead_ms_p50"],
                         miss_overhead_beyond_lookup_ms_p50=new["miss_write_ms_p50"])
    print(f"\nwritten {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
