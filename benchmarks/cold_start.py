"""Does a cold start from the store's own keys help the learner? (issue 28: measure it; keep it only if it does.)

Before any traffic, the store can label itself (no LLM): the key probes of ``storinfer calibrate``
(an answer stored under several keys is looked up by one key with that key hidden, where another
key of its answer is right; and with all its keys hidden, where any candidate is wrong). Each probe's
least risky candidate, described as the learner describes a lookup's (``match.risk.describe``), becomes
a label in the partition before the replay, so the learner's first refit (after 10 real labels) fits
the probes with the traffic's labels, loosening or tightening, with the answer's crowding in it.

Per stream, the default learner replays the stream (exactly as ``decision.py`` does) from the same
store twice: without probe labels (the default) and with them. Not in the engine: it is kept only if
it helps.

    python benchmarks/cold_start.py --streams clinc150 [--probes 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from decision import OUT, PARTITION, build, replay  # noqa: E402
from decision_data import streams  # noqa: E402

from storinfer import QAStore, VerifierPolicy, default_embedder  # noqa: E402
from storinfer.match.calibrate import key_probes  # noqa: E402
from storinfer.match.features import Query, answer_key, candidate_kind, same_answer_key  # noqa: E402
from storinfer.match.risk import RiskModel, describe  # noqa: E402
from storinfer.records import DEFAULT_NAMESPACE  # noqa: E402
from storinfer.serve.learner import MIN_COSINE  # noqa: E402
from storinfer.store import Label  # noqa: E402


def seed_probe_labels(folder: Path, embedder, sample: int) -> dict:
    """Write the key probes' labels into the store at ``folder``; return how many, and how many right."""
    policy, prior = VerifierPolicy(), RiskModel.prior()
    with QAStore(folder, embedding=embedder) as store:
        pairs = list(store.iter_pairs(namespace=DEFAULT_NAMESPACE, partition=PARTITION))
        random.Random(0).shuffle(pairs)
        probes = key_probes(store, DEFAULT_NAMESPACE, PARTITION, pairs, sample, 8)
        labels = []
        for probe in probes:
            query = Query(probe.query)
            verdicts = policy.assess(query, probe.candidates)
            ok = [i for i, (c, v) in enumerate(zip(probe.candidates, verdicts)) if v.ok and c.similarity >= MIN_COSINE]
            if not ok:
                continue
            rows = {i: describe(query, probe.candidates, i, verdicts[i].score) for i in ok}
            best = min(ok, key=lambda i: prior.risk(rows[i]))
            cand = probe.candidates[best]
            labels.append(Label(DEFAULT_NAMESPACE, PARTITION, candidate_kind(cand), round(float(verdicts[best].score), 5),
                                round(cand.similarity, 5), probe.answer is not None and answer_key(cand) == probe.answer,
                                source="miss", answer=same_answer_key(cand), typed=bool(rows[best][4]),
                                features=list(rows[best])))
        store.labels.add(labels)
    return {"probes": len(probes), "labels": len(labels), "right": sum(lb.right for lb in labels)}


def line_for(name: str, r: dict) -> str:
    a, late = r["all"], r["after_20"]
    return (f"{name} right {a['right']:6.1%} wrong {a['wrong']:5.2%} (upper {a['wrong_upper']:5.2%}) "
            f"after 20% {late['right']:6.1%} explore/q {a['explore_per_query']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", nargs="*", default=["clinc150"])
    ap.add_argument("--acid", help="folder with ACID's csv files")
    ap.add_argument("--probes", type=int, default=300, help="answers probed (two probes each)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "cold_start.json"))
    args = ap.parse_args()
    args.learner_options, args.llm_ms, args.explore_rate = {}, 2500.0, 0.05
    embedder = default_embedder()
    results = {}
    for stream in streams(args.streams, acid_folder=args.acid):
        t0 = time.perf_counter()
        stream = dataclasses.replace(stream, queries=stream.queries[: args.limit])
        base = OUT / stream.name
        build(stream, base, embedder)
        seeded = base.with_name(f"{base.name}-probes")
        if seeded.exists():
            shutil.rmtree(seeded)
        shutil.copytree(base, seeded)
        seeding = seed_probe_labels(seeded, embedder, args.probes)
        res = {"queries": len(stream.queries), "seeding": seeding,
               "off": replay(stream, base, "new", embedder, args), "probes": replay(stream, seeded, "new", embedder, args)}
        shutil.rmtree(seeded, ignore_errors=True)
        results[stream.name] = res
        print(f"{stream.name}: {seeding['labels']} probe labels ({seeding['right']} right) from {seeding['probes']} probes | "
              f"{line_for('off', res['off'])} | {line_for('probes', res['probes'])} | {time.perf_counter() - t0:.0f} s", flush=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
