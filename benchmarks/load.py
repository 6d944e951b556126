"""Under load: 8 client processes against one Chroma server store for 60 s, lookups and
write-backs mixed.

A real ``chroma run`` server holds 2,000 seed pairs (the templates of ``bench_lookup.py``). Each
client process opens the store through the server and, until the time is up, asks either a
reworded seed question (70%: a hit) or a question nobody asked before (30%: a miss, whose answer
goes to the background writer). Every client then flushes and closes. Reported: operations per
second over all clients, lookup latency p50 / p99, errors, and whether every answer written
back is in the store exactly once (none missing, no question stored twice).

Each client's embedder uses one thread (``STORINFER_EMBED_THREADS=1``): 8 processes share 2 cores.

    python benchmarks/load.py [--clients 8] [--seconds 60]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # chroma_server(): `chroma run` on a free port

from bench_lookup import FIRST, SECOND, TEMPLATES, pct, record_latency  # noqa: E402

SEED_PAIRS = 2000


def seed_rows() -> list[tuple[str, str, str]]:
    names = [f"{a} {b}" for a, b in itertools.product(FIRST, SECOND)]
    return [(t[0].format(n=n), t[1].format(n=n), t[2].format(n=n)) for n in names for t in TEMPLATES][:SEED_PAIRS]


def client(number: int, port: int, seconds: float, out: mp.Queue) -> None:
    os.environ["STORINFER_EMBED_THREADS"] = "1"
    from storinfer import QAStore
    from storinfer.serve import StoreFront

    rows = seed_rows()
    rng = random.Random(number)
    store = QAStore(host="127.0.0.1", port=port)
    front = StoreFront(store)
    front.lookup(rows[0][1])  # warm up
    lookups_ms, written, i = [], [], 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if rng.random() < 0.7:
            question = rng.choice(rows)[1]
        else:
            question = f"What colour is the logo of client {number}'s company number {i}?"
            i += 1
        t = time.perf_counter()
        found = front.lookup(question)
        lookups_ms.append((time.perf_counter() - t) * 1000)
        if not found.hit:
            front.remember(question, f"The logo of company {i} of client {number} is blue.", lookup=found)
            written.append(question)
    front.close()
    stats = front.stats()
    store.close()
    out.put({"client": number, "lookups_ms": lookups_ms, "written": written, "errors": stats["errors"],
             "hits": stats["hits"], "writes_inline": stats["writes_inline"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    from helpers import chroma_server

    from storinfer import QAPair, QAStore

    with tempfile.TemporaryDirectory() as tmp, chroma_server(Path(tmp) / "server") as port:
        seed = QAStore(host="127.0.0.1", port=port)
        seed.add([QAPair(q, a) for q, _r, a in seed_rows()], batch_size=500)
        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()
        procs = [ctx.Process(target=client, args=(n, port, args.seconds, out)) for n in range(args.clients)]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        reports = [out.get(timeout=args.seconds + 600) for _ in procs]
        for p in procs:
            p.join()
        wall = time.perf_counter() - t0
        lookups = [ms for r in reports for ms in r["lookups_ms"]]
        written = sorted({q for r in reports for q in r["written"]})  # two clients may miss the same question
        errors = sum(r["errors"] for r in reports) + sum(p.exitcode != 0 for p in procs)
        found = seed.get([QAPair(q, "x", origin="runtime").id for q in written])
        missing = sum(m is None for m in found)
        questions = Counter(m.question for m in seed.iter_pairs())
        duplicated = sum(n - 1 for n in questions.values() if n > 1)
        runtime = seed.count(origin="runtime")
        result = {"clients": args.clients, "seconds": args.seconds, "operations": len(lookups),
                  "ops_per_s": len(lookups) / args.seconds, "lookup_ms_p50": pct(lookups, 50),
                  "lookup_ms_p99": pct(lookups, 99), "errors": errors, "written_back": len(written),
                  "stored_runtime": runtime, "missing": missing, "duplicated": duplicated,
                  "hits": sum(r["hits"] for r in reports), "writes_inline": sum(r["writes_inline"] for r in reports),
                  "wall_s": wall}
        seed.close()
    print(f"{args.clients} clients x {args.seconds:.0f} s against one Chroma server ({SEED_PAIRS} seed pairs)")
    print(f"operations {result['operations']} ({result['ops_per_s']:.1f}/s), hits {result['hits']}, "
          f"lookup p50 {result['lookup_ms_p50']:.1f} ms p99 {result['lookup_ms_p99']:.1f} ms, errors {errors}")
    print(f"answers written back {len(written)}; in the store {runtime}; missing {missing}; duplicated {duplicated}; "
          f"written on the caller's path (queue full) {result['writes_inline']}")
    print(f"written {record_latency('load', result).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
