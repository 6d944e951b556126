"""Old path vs verifier, on held-out intents, domains and articles; writes results/verifier.json.

Each stream stores one question per intent (or per answer) and looks the others up, as the cache
does (`benchmarks/verifier_data.py`). Only the *held-out* parts are read: the verifier was fitted
on the other half (`benchmarks/train_verifier.py`).

- old: cosine >= 0.95, then StorInfer 0.1's look-alike guard (`benchmarks/legacy_guard.py`).
- new: cosine >= the verifier's floor, hard rules, learned score >= cut (`storinfer/verify.py`),
  the operating point shipped in `storinfer/verifier.json`.

`right` is a share of the queries (served and right), `wrong` a share of what was served.

    python benchmarks/verifier_bench.py [--json benchmarks/results/verifier.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from legacy_guard import conflict as legacy_conflict  # noqa: E402
from verifier_data import Stream, banking, candidates, clinc, squad  # noqa: E402

from storinfer.match.features import Query  # noqa: E402
from storinfer.match.verify import Verifier, clopper_pearson_upper  # noqa: E402
from storinfer.models import default_embedder  # noqa: E402

OLD_THRESHOLD = 0.95


def evaluate(stream: Stream, cands: list[list], verifier: Verifier) -> dict:
    out = {}
    oos = [i for i, lab in enumerate(stream.query_labels) if lab == "oos"]
    for path in ("old", "new"):
        right = wrong = oos_served = 0
        for qi, row in enumerate(cands):
            served = None
            if path == "old":
                for c in row:
                    if c.similarity < OLD_THRESHOLD:
                        break
                    if legacy_conflict(stream.queries[qi], c.question) is None:
                        served = c
                        break
            else:
                pos, _verdicts = verifier.choose(stream.queries[qi], row)
                served = row[pos] if pos is not None else None
            if served is None:
                continue
            ok = stream.right(qi, served.metadata["stored_index"])
            right += ok
            wrong += not ok
            oos_served += stream.query_labels[qi] == "oos"
        served_n = right + wrong
        out[path] = {"right": right / len(cands), "wrong": wrong / served_n if served_n else 0.0,
                     "right_n": right, "wrong_n": wrong, "queries": len(cands),
                     "wrong_upper_95": clopper_pearson_upper(wrong, served_n)}
        if oos:
            out[path]["oos_queries"] = len(oos)
            out[path]["oos_served"] = oos_served
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "verifier.json"))
    args = ap.parse_args()
    embedder = default_embedder()
    verifier = Verifier.default()
    streams = [banking("heldout"), clinc("heldout"), squad("heldout"), squad("heldout", only="Super_Bowl_50")]
    results: dict = {"datasets": {}, "verifier": {"question": {"floor": verifier.question.floor, "cut": verifier.question.cut,
                                                               "typed_floor": verifier.question.typed_floor},
                                                  "fact": {"floor": verifier.fact.floor, "cut": verifier.fact.cut}},
                     "old_path": f"cosine >= {OLD_THRESHOLD} + 0.1 look-alike guard"}
    names = {"banking77-heldout": "banking77", "clinc150-heldout": "clinc150", "squad-heldout": "squad",
             "squad-Super_Bowl_50": "squad_superbowl"}
    for stream in streams:
        t = time.perf_counter()
        res = evaluate(stream, candidates(stream, embedder), verifier)
        results["datasets"][names[stream.name]] = res
        print(f"{stream.name}: {len(stream.stored)} stored, {len(stream.queries)} queries "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    # the verifier's cost per lookup (every candidate checked, the best chosen), on the Super Bowl stream
    sb = streams[-1]
    cands = candidates(sb, embedder)
    t = time.perf_counter()
    for qi, row in enumerate(cands):
        verifier.choose(Query(sb.queries[qi]), row)
    results["verifier"]["ms_per_lookup"] = (time.perf_counter() - t) * 1000 / len(cands)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    qh = verifier.question
    print(f"verifier question head: floor {qh.floor}, cut {qh.cut}, typed floor {qh.typed_floor}; "
          f"{results['verifier']['ms_per_lookup']:.3f} ms per lookup ({len(cands[0])} candidates checked)")
    print(f"{'dataset (held out)':22} {'queries':>8} | {'old right':>9} {'old wrong':>9} | {'new right':>9} {'new wrong':>9} "
          f"{'(95% upper)':>11} | {'right x':>7}")
    for name, r in results["datasets"].items():
        o, nw = r["old"], r["new"]
        ratio = nw["right"] / o["right"] if o["right"] else float("inf")
        print(f"{name:22} {o['queries']:8d} | {o['right']:9.1%} {o['wrong']:9.1%} | {nw['right']:9.1%} {nw['wrong']:9.1%} "
              f"{nw['wrong_upper_95']:11.1%} | {ratio:7.1f}")
        if "oos_queries" in nw:
            print(f"{'':22} out-of-scope served: old {o['oos_served']}/{o['oos_queries']}, new {nw['oos_served']}/{nw['oos_queries']}")
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
