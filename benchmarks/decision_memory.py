"""The learner replayed in memory: `decision.py`'s streams, without Chroma, for design and for quick checks.

Each stream's knowledge base is `decision.py`'s store (built there first, or here), read into numpy
(`decision_ceiling.Memory`); queries replay in the same shuffled order as `StoreFront` would serve
them: an exact repeat is served, else the 8 nearest keys (of the store and of the answers stored so
far) are decided by the system, and every miss's answer (the gold one) is stored. The learner is the
product's own `PartitionLearner`, over an in-memory label and state table, its background tasks run
inline (so a refit takes effect at once: the real replay's refits land a little later).

Systems: `fixed` (the policy's point, `learner=None`) and `learner` (the default `Learner`, or with
`--option NAME=VALUE`); `--grid NAME=V1,V2` replays the learner once per value of a Learner option
(`seed` included: what one draw is worth) or of a constant of `storinfer.serve.evidence` (named in
capitals); `--runtime-point FLOOR/CUT` replays each system again with answers stored from traffic
served at a point of their own (the systems become `fixed:runtime=FLOOR/CUT`, ...), and
`--repeat-floor V` (a cosine, or `none`) with another repeat floor (`fixed:repeat=V`, ...).
Reported per stream, whole and over its first 500 queries: right (share of answerable queries
served their own answer), wrong (share of serves) with its 95% upper bound.

    python benchmarks/decision_memory.py [--streams ...] [--acid FOLDER] [--option open_confidence=0.9] [--grid seed=0,1,2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from decision import ALL, OUT, PARTITION, build, served_text  # noqa: E402
from decision_ceiling import Memory  # noqa: E402
from decision_data import streams  # noqa: E402

from storinfer import Learner, Verifier, VerifierPolicy  # noqa: E402
from storinfer.match.bounds import clopper_pearson_upper  # noqa: E402
from storinfer.match.features import Query  # noqa: E402
from storinfer.match.lookup import Candidates  # noqa: E402
from storinfer.models import default_embedder  # noqa: E402
from storinfer.serve.learner import PartitionLearner  # noqa: E402
from storinfer.serve.worker import InlineWorker  # noqa: E402
from storinfer.store.memory import MemoryStore  # noqa: E402
from storinfer.text import clean_text, normalize_question  # noqa: E402

FIRST = 500


class CachedPolicy:
    """The shipped policy, its verdicts kept per (question, candidates): the systems replayed one after
    another over a stream see mostly the same candidates."""

    def __init__(self, verifier: Verifier | None = None) -> None:
        self.policy = VerifierPolicy(verifier or Verifier.default())
        self.k, self.llm_check, self.point = self.policy.k, None, self.policy.point
        self.cache: dict = {}

    def assess(self, query, candidates):
        key = (query.text, tuple((c.id, round(c.similarity, 6)) for c in candidates))
        if key not in self.cache:
            self.cache[key] = self.policy.assess(query, candidates)
        return self.cache[key]

    def decide(self, query, found):
        return self.policy.decide(query, found)


def replay(stream, memory: Memory, system: str, options: dict, embedder, policy=None) -> list[dict]:
    memory.reset()
    policy = policy or CachedPolicy()
    learner = None
    if system == "learner":
        config = Learner(**options)
        learner = PartitionLearner(config, MemoryStore(embedder), "default", PARTITION,
                                   config.point_for(policy), InlineWorker())
        learner.reload_seconds = float("inf")
    rows = []
    for i, q in enumerate(stream.queries):
        ex = memory.exact.get(normalize_question(q.text))
        if ex is not None:
            m = memory.items[ex]
            rows.append({"served": True, "right": stream.right(q, served_text(stream, m)), "matchable": q.matchable})
            continue
        found = Candidates(clean_text(q.text), list(memory.qv[i]), memory.nearest(i))
        query = Query(found.question)
        decided = learner.decide(query, found, policy) if learner is not None else policy.decide(query, found)
        if decided.match is not None:
            rows.append({"served": True, "right": stream.right(q, served_text(stream, decided.match)), "matchable": q.matchable,
                         "audited": decided.audit})
            if decided.audit:  # as StoreFront.answer does: the chain checks the served answer, stored if it differs
                label = learner.learn(found.question, decided, q.answers[0])
                if label is not None and not label.right:
                    memory.add(i, q.text, q.answers[0])
            continue
        if learner is not None:
            learner.learn(found.question, decided, q.answers[0])
        memory.add(i, q.text, q.answers[0])
        held = decided.reason == "answer cut"  # would the candidate an answer cut held back have been right?
        rows.append({"served": False, "right": False, "matchable": q.matchable, "explored": decided.match is None
                     and decided.reason == "explore", "answer_cut": held,
                     "cut_right": held and stream.right(q, served_text(stream, decided.candidates[decided.note["pos"]]))})
    return rows, (learner.stats() if learner is not None else None)


def stream_memory(stream, out: Path, embedder) -> Memory:
    """The stream's store under ``out`` (built first if it is not there), read into memory."""
    base = out / stream.name
    if not (base / "chroma.sqlite3").exists():
        build(stream, base, embedder)
    return Memory(base, PARTITION, embedder, stream.queries)


def summary(rows: list[dict]) -> dict:
    served = [r for r in rows if r["served"]]
    wrong = sum(not r["right"] for r in served)
    matchable = sum(r["matchable"] for r in rows) or 1
    return {"queries": len(rows), "served": len(served), "right": (len(served) - wrong) / matchable,
            "wrong": wrong / len(served) if served else 0.0, "wrong_upper": clopper_pearson_upper(wrong, len(served)),
            "explored": sum(r.get("explored", False) for r in rows), "audited": sum(r.get("audited", False) for r in rows),
            "answer_cut": sum(r.get("answer_cut", False) for r in rows), "cut_right": sum(r.get("cut_right", False) for r in rows)}


def admissible(run: dict, fixed: dict, bound: float = 0.01) -> bool:
    """The issue's rule on one stream: wrong within the bound (or no worse than the fixed point's, where
    that is over it), and right at least the fixed point's where the fixed point is within the bound."""
    return run["wrong"] <= max(bound, fixed["wrong"]) and (fixed["wrong"] > bound or run["right"] >= fixed["right"])


def rank(streams: dict, names: list[str], system: str) -> tuple[int, float]:
    """How many of ``names`` the system is admissible on, then its mean right over them."""
    ok = sum(admissible(streams[n][system]["all"], streams[n]["fixed"]["all"]) for n in names)
    return ok, sum(streams[n][system]["all"]["right"] for n in names) / max(1, len(names))


def leave_one_out(streams: dict) -> dict:
    """For each stream, the learner system chosen on the other streams (admissible on the most of them, then
    the most right on average), and what it does on the stream left out."""
    systems = sorted({s for r in streams.values() for s in r if s.startswith("learner")})
    out = {}
    for held in streams:
        others = [n for n in streams if n != held]

        chosen = max(systems, key=lambda system, others=others: rank(streams, others, system))
        out[held] = {"chosen": chosen, "all": streams[held][chosen]["all"], "first_500": streams[held][chosen]["first_500"],
                     "fixed": streams[held]["fixed"]["all"]}
    return out


def number(text: str) -> float | int:
    return float(text) if "." in text else int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", nargs="*", default=ALL)
    ap.add_argument("--acid", help="folder with ACID's customer_training.csv and customer_testing.csv")
    ap.add_argument("--option", action="append", default=[], metavar="NAME=VALUE", help="a Learner option")
    ap.add_argument("--systems", nargs="*", default=["fixed", "learner"])
    ap.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                    help="replay the learner once per value of a Learner option, or of a constant of "
                         "storinfer.serve.evidence named in capitals (the systems become learner:NAME=V)")
    ap.add_argument("--runtime-point", action="append", default=[], metavar="FLOOR/CUT",
                    help="replay each system again with a point of their own for answers stored from traffic "
                         "(the systems become SYSTEM:runtime=FLOOR/CUT)")
    ap.add_argument("--repeat-floor", action="append", default=[], metavar="V",
                    help="replay each system again with another repeat floor (a cosine, or none) "
                         "(the systems become SYSTEM:repeat=V)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--out", type=Path, default=OUT, help=f"the streams' stores (default {OUT.relative_to(ROOT)}, decision.py's)")
    args = ap.parse_args()
    options = {k: number(v) for k, v in (o.split("=", 1) for o in args.option)}
    options.setdefault("seed", 0)
    from storinfer.serve import evidence

    shipped = Verifier.default()
    variants = [(f"runtime={value}", shipped.with_operating_point(*(float(x) for x in value.split("/")), head="runtime"))
                for value in args.runtime_point]
    variants += [(f"repeat={value}", replace(shipped, repeat_floor=None if value == "none" else float(value)))
                 for value in args.repeat_floor]
    embedder = default_embedder()
    results = {}
    for stream in streams(args.streams, acid_folder=args.acid):
        t0 = time.perf_counter()
        memory = stream_memory(stream, args.out, embedder)
        res = {}
        policy = CachedPolicy()
        runs = [(system, options, {}) for system in args.systems if system != "learner" or not args.grid]
        for name, values in (g.split("=", 1) for g in args.grid):
            for v in values.split(","):
                if name.isupper():  # a constant of storinfer.serve.evidence
                    runs.append((f"learner:{name}={v}", options, {name: float(v)}))
                else:  # a Learner option
                    runs.append((f"learner:{name}={v}", {**options, name: number(v)}, {}))
        policies = {system: policy for system, _o, _c in runs}
        for suffix, verifier in variants:  # each system again with another verifier
            moved = CachedPolicy(verifier)
            for system in args.systems:
                runs.append((f"{system}:{suffix}", options, {}))
                policies[f"{system}:{suffix}"] = moved
        for system, opts, constants in runs:
            saved = {name: getattr(evidence, name) for name in constants}
            for name, value in constants.items():
                setattr(evidence, name, value)
            try:
                rows, state = replay(stream, memory, system.split(":")[0], opts, embedder, policies[system])
            finally:
                for name, value in saved.items():
                    setattr(evidence, name, value)
            res[system] = {"all": summary(rows), "first_500": summary(rows[:FIRST]), "state": state}
        results[stream.name] = res
        parts = [f"{stream.name:16} {len(stream.queries):6d} q"]
        for system, r in res.items():
            a, f = r["all"], r["first_500"]
            parts.append(f"{system} {a['right']:6.1%} / {a['wrong']:5.2%} ({a['wrong_upper']:5.2%}) "
                         f"[500: {f['right']:5.1%} / {f['wrong']:5.2%}]")
        print(" | ".join(parts) + f" | {time.perf_counter() - t0:.0f} s", flush=True)
        for system, r in res.items():
            st = r.get("state")
            if not st:
                continue
            a = r["all"]
            print(f"   {system}: " + " ".join(f"{h}: cut {c['cut']:+.3f} in {c['inside_wrong']:.0f}/{c['inside_labels']:.0f} "
                                   f"out {c['outside_wrong']:.0f}/{c['outside_labels']:.0f}"
                                   for h, c in st["cuts"].items()) + f" | labels {st['labels']} explored {st['explored']}"
                  f" audited {st['audited']} | answer cuts {st['answer_cuts']} held back {a['answer_cut']} lookups,"
                  f" {a['cut_right']} of them right", flush=True)
    if len(results) > 2 and (args.grid or args.runtime_point or args.repeat_floor) and "fixed" in args.systems:
        print("\nleave one stream out: the learner chosen on the other streams")
        for name, r in leave_one_out(results).items():
            a, f = r["all"], r["fixed"]
            print(f"{name:16} {r['chosen']:32} right {a['right']:6.1%} wrong {a['wrong']:5.2%} (upper {a['wrong_upper']:5.2%})"
                  f" | fixed {f['right']:6.1%} / {f['wrong']:5.2%} | admissible {admissible(a, f)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"options": options, "streams": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
