"""Replay: does each store learn an operating point that serves more, within the wrong-hit bound?

For each stream (`benchmarks/decision_data.py`) the store starts from its knowledge base and the
queries go, in a fixed shuffled order, through `storinfer.StoreFront` (the object behind every
face). A miss is answered by a *recording chain* that answers with the gold answer, so that the
answer judge's labels can be scored; its answer is stored, as an app's would be.

Systems, each on a fresh copy of the same knowledge-base store, through the same `StoreFront`:
- `learner`: the default (`storinfer.Learner`, `max_wrong_rate=0.01`), as the faces that hold the
  chain run it: a hit the learner draws for checking (`audit`) is served, then the chain answers it
  too and `remember` labels it (StoreFront.answer, StorInferChain and StorInferQueryEngine do this
  in the background);
- `unaudited`: the same learner where the app calls `remember` after misses only (a plain
  lookup/remember loop): no served answer is ever checked;
- `fixed`: the shipped verifier at its point, nothing learnt (`learner=None`).
The 0.4 and 0.3 figures in docs/benchmarks.md came from this script at 0d1204a, which ran 0.4's
grid refit and 0.3's verifier beside the learner (`git show 0d1204a:benchmarks/decision.py`).

Per stream: `right` (share of matchable queries served their own answer), `wrong` (share of
serves, with the one-sided 95% Clopper-Pearson upper bound), the first 20% of the stream apart
from the rest, checked hits per query (audited or explored), the answer judge's agreement with
the truth on its labels, lookup latency and mean end-to-end latency (lookup, plus the chain's cost,
`--llm-ms`, for every miss and explored hit; an audit runs after serving, off the user's path). The
hindsight *ceiling*: the best single cosine threshold for that stream, chosen after the fact at <= 1%
wrong, replayed the same way (nearest key, misses stored) in memory.

Which data shaped what (docs/benchmarks.md has the table): the learner's design was explored on
clinc150 and banking77 and its margin chosen on clinc150 alone; the fact head was fitted on SQuAD
v1.1 *train* articles (`tools/verifier/train.py --squad-train`); the question head on BANKING77
even intents, CLINC150 even domains and SQuAD dev odd articles.

    python benchmarks/decision.py [--streams banking77 clinc150 ...] [--acid FOLDER] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import decision_peers  # noqa: E402
from decision_ceiling import Memory, cosine_ceiling, verifier_ceiling  # noqa: E402
from decision_data import Stream, streams  # noqa: E402

from storinfer import (  # noqa: E402
    GenerationConfig,
    Learner,
    Precomputer,
    QAPair,
    QAStore,
    StoreFront,
    TextJudge,
)
from storinfer.match.bounds import clopper_pearson_upper  # noqa: E402
from storinfer.match.features import candidate_kind  # noqa: E402
from storinfer.models import default_embedder  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "benchmarks" / "out" / "decision"
ALL = ["banking77", "clinc150", "acid", "nlupp_hotels", "squad_superbowl", "squad_24"]
PARTITION = "kb"
SYSTEMS = ("learner", "fixed", "unaudited")


class _NoLLM:
    def chat_batch(self, conversations, **_kw):
        raise RuntimeError("this precompute calls no LLM")


def served_text(stream: Stream, m) -> str:
    return str(m.metadata.get("expected_answer") or m.answer) if stream.squad else m.answer


def build(stream: Stream, folder: Path, embedder) -> int:
    if folder.exists():
        shutil.rmtree(folder)
    with QAStore(folder, embedding=embedder) as store:
        if stream.squad:
            config = GenerationConfig(free_generation=False, rephrasings=0, fact_answers="span")
            Precomputer(store, llm=_NoLLM(), partition=PARTITION, chunk_size=None, config=config).run(stream.docs, progress=False)
        else:
            store.add([QAPair(q, a, partition=PARTITION, extra={"answer_id": aid}) for q, a, aid in stream.kb])
        return store.count()


class RecordingJudge(TextJudge):
    """The default judge, recording each verdict beside the truth (for the judge's accuracy)."""

    def __init__(self, stream: Stream, embedder) -> None:
        super().__init__(embedder)
        self.stream, self.query, self.verdicts = stream, None, []

    def same(self, answer: str, stored: str) -> bool:
        verdict = super().same(answer, stored)
        if self.query is not None:
            self.verdicts.append((verdict, self.stream.right(self.query, stored)))
        return verdict


def replay(stream: Stream, base: Path, system: str, embedder, args) -> dict:
    folder = base.with_name(f"{base.name}-{system}")
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(base, folder)
    judge = RecordingJudge(stream, embedder)
    rows = []
    with QAStore(folder, embedding=embedder) as store:
        front = StoreFront(store, partition=PARTITION, **system_options(system, judge, args))
        learning = front.learning(PARTITION)
        waiting = 0  # the most labels waiting to be written, sampled every 50 queries
        for n, q in enumerate(stream.queries):
            if learning is not None and n % 50 == 0:
                waiting = max(waiting, learning.stats()["labels_waiting"])
            t = time.perf_counter()
            found = front.lookup(q.text)
            ms = (time.perf_counter() - t) * 1000
            if found.match is not None:
                rows.append({"served": True, "right": stream.right(q, served_text(stream, found.match)), "ms": ms,
                             "exact": found.reason == "exact", "matchable": q.matchable, "explored": False,
                             "audited": found.audit, "kind": candidate_kind(found.match),
                             "cosine": found.match.similarity, "score": found.score})
                if found.audit and system != "unaudited":  # as StoreFront.answer does, after serving: the chain checks it
                    judge.query = q
                    front.remember(q.text, q.answers[0], lookup=found)
                    judge.query = None
                continue
            judge.query = q
            front.remember(q.text, q.answers[0], lookup=found)
            judge.query = None
            rows.append({"served": False, "right": False, "ms": ms, "exact": False, "matchable": q.matchable,
                         "explored": found.reason == "explore"})
        front.flush()
        stats = front.stats()
    agree = sum(v == t for v, t in judge.verdicts)
    false_same = sum(v and not t for v, t in judge.verdicts)
    out = {"all": summary(rows, args), "first_500": summary(rows[:500], args), "first_20": summary(rows[: len(rows) // 5], args),
           "after_20": summary(rows[len(rows) // 5:], args),
           "judge": {"labels": len(judge.verdicts), "agree": agree / len(judge.verdicts) if judge.verdicts else None,
                     "false_same": false_same, "false_different": sum(t and not v for v, t in judge.verdicts)},
           "learner": stats.get("learner", {}).get(PARTITION), "labels_waiting_max": waiting}
    shutil.rmtree(folder, ignore_errors=True)
    return out


def system_options(system: str, judge: TextJudge, args) -> dict:
    """The StoreFront arguments of each system (see the module docstring)."""
    if system in ("learner", "unaudited"):
        return {"learner": Learner(answer_judge=judge, **args.learner_options)}
    if system == "fixed":
        return {"learner": None}
    raise ValueError(f"unknown system {system!r}")


def summary(rows: list[dict], args) -> dict:
    served = [r for r in rows if r["served"]]
    wrong = sum(not r["right"] for r in served)
    matchable = sum(r["matchable"] for r in rows) or 1
    ran = sum(not r["served"] for r in rows)
    ms = [r["ms"] for r in rows]
    return {"queries": len(rows), "served": len(served), "right": (len(served) - wrong) / matchable, "wrong": wrong / len(served) if served else 0.0,
            "wrong_n": wrong, "wrong_upper": clopper_pearson_upper(wrong, len(served)),
            "wrong_out_of_scope": sum(not r["right"] and not r["matchable"] for r in served),
            "wrong_exact": sum(not r["right"] and r["exact"] for r in served),
            "wrong_by_kind": dict(Counter(r["kind"] for r in served if not r["right"])),
            "ranges": {f"{what}_{side}": spread([r[what] for r in served if r["right"] == (side == "right") and not r["exact"]])
                       for what in ("cosine", "score") for side in ("right", "wrong")},
            "explored": sum(r["explored"] for r in rows), "explore_per_query": sum(r["explored"] for r in rows) / max(1, len(rows)),
            "audited": sum(r.get("audited", False) for r in rows),
            "lookup_p50_ms": statistics.median(ms) if ms else 0.0, "lookup_mean_ms": statistics.fmean(ms) if ms else 0.0,
            "e2e_mean_ms": (statistics.fmean(ms) if ms else 0.0) + ran / max(1, len(rows)) * args.llm_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", nargs="*", default=ALL)
    ap.add_argument("--acid", help="folder with ACID's customer_training.csv and customer_testing.csv")
    ap.add_argument("--limit", type=int, default=None, help="only the first N queries of each stream")
    ap.add_argument("--llm-ms", type=float, default=2500.0, help="what a chain answer costs, for the end-to-end mean")
    ap.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--json", default=str(RESULTS / "decision.json"))
    ap.add_argument("--out", type=Path, default=OUT, help=f"the streams' stores (default {OUT.relative_to(ROOT)})")
    ap.add_argument("--quick", action="store_true", help="1,000 queries per stream")
    ap.add_argument("--redis-url", help="a Redis Stack server for RedisVL's SemanticCache (benchmarks/redis_stack.sh)")
    ap.add_argument("--no-peers", action="store_true", help="skip GPTCache and RedisVL")
    ap.add_argument("--no-verifier-ceiling", action="store_true", help="skip the verifier's hindsight ceiling (slow)")
    ap.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    help="a Learner option (e.g. margin_sd=0.5, seed=1), for studies on the fit stream")
    args = ap.parse_args()
    args.learner_options = {k: (float(v) if "." in v else int(v)) for k, v in (o.split("=", 1) for o in args.option)}
    if args.quick:
        args.limit = args.limit or 1000
    embedder = default_embedder()
    results: dict = {"config": {"limit": args.limit, "llm_ms": args.llm_ms, "max_wrong_rate": 0.01}, "streams": {}}
    for stream in streams(args.streams, acid_folder=args.acid):
        t0 = time.perf_counter()
        stream = dataclasses.replace(stream, queries=stream.queries[: args.limit])
        base = args.out / stream.name
        keys = build(stream, base, embedder)
        res: dict = {"keys": keys, "queries": len(stream.queries)}
        for system in args.systems:
            res[system] = replay(stream, base, system, embedder, args)
        memory = Memory(base, PARTITION, embedder, stream.queries)
        res["ceiling"] = cosine_ceiling(stream, memory, served_text)
        if not args.no_verifier_ceiling:
            res["verifier_ceiling"] = verifier_ceiling(stream, memory, served_text)
        if not args.no_peers:
            kb = [(m.question, served_text(stream, m)) for m in memory.matches]
            for name, make in decision_peers.systems(args.redis_url).items():
                res[name] = decision_peers.replay(stream, kb, name, make, embedder, stream.name)
        learned, fixed = (res.get(s, {}).get("all", {}) for s in ("learner", "fixed"))
        res.update(right=learned.get("right"), wrong=learned.get("wrong"), wrong_upper=learned.get("wrong_upper"),
                   ceiling_right=res["ceiling"]["best"]["right"],
                   verifier_ceiling_right=res.get("verifier_ceiling", {}).get("right"),
                   fixed_right=fixed.get("right"), fixed_wrong=fixed.get("wrong"),
                   explore_per_query=learned.get("explore_per_query"), seconds=round(time.perf_counter() - t0, 1))
        results["streams"][stream.name] = res
        print(line(stream.name, res), flush=True)
        print(wrong_line(res), flush=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(table(results))


PEERS = ("gptcache", "redisvl")


def checked_per_query(a: dict) -> float:
    """Hits the chain answered too, audited or explored, per query of one system's summary."""
    return (a["explored"] + a.get("audited", 0)) / max(1, a["queries"])


def line(name: str, r: dict) -> str:
    parts = [f"{name:16} {r['queries']:6d} q"]
    for system in SYSTEMS:
        if system in r:
            a = r[system]["all"]
            f = r[system]["first_500"]
            waiting = f"labels waiting <= {r[system].get('labels_waiting_max', '?')} " if system != "fixed" else ""
            parts.append(f"{system} right {a['right']:6.1%} wrong {a['wrong']:5.2%} (upper {a['wrong_upper']:5.2%}) "
                         f"checked/q {checked_per_query(a):.3f} {waiting}[first 500: {f['right']:.1%} / {f['wrong']:.2%}]")
    for peer in PEERS:
        if peer in r:
            parts.append(f"{peer} right {r[peer]['right']:6.1%} wrong {r[peer]['wrong']:5.2%}")
    c = r["ceiling"]["best"]
    parts.append(f"cosine ceiling {c['right']:6.1%} at {c['threshold']}")
    if "verifier_ceiling" in r:
        v = r["verifier_ceiling"]
        parts.append(f"verifier ceiling {v['right']:6.1%} ({v['wrong']:5.2%})")
    return " | ".join(parts) + f" | {r['seconds']:.0f} s"


def spread(values: list) -> list[float] | None:
    """[lowest, highest] of the values given (None where there are none)."""
    values = [v for v in values if v is not None]
    return [round(min(values), 3), round(max(values), 3)] if values else None


def wrong_line(r: dict) -> str:
    """Where each system's wrong serves come from: out-of-scope queries, exact repeats, the served key's kind;
    and the cosines and verifier scores of its wrong and right serves (exact repeats left out)."""
    def span(x: list[float] | None) -> str:
        return f"{x[0]:.2f}-{x[1]:.2f}" if x else "-"

    parts = []
    for system in SYSTEMS:
        if system in r:
            a = r[system]["all"]
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(a["wrong_by_kind"].items())) or "none"
            g = a["ranges"]
            parts.append(f"{system} {a['wrong_n']} (out of scope {a['wrong_out_of_scope']}, exact repeats {a['wrong_exact']}; "
                         f"by the served key's kind: {kinds}; cosine {span(g['cosine_wrong'])}, score {span(g['score_wrong'])}; "
                         f"right serves: cosine {span(g['cosine_right'])}, score {span(g['score_right'])})")
    return "   wrong serves: " + " | ".join(parts)


def table(results: dict) -> str:
    rows = ["", "| stream | queries | system | right | wrong (95% upper) | right after 20% | checked per query | "
            "judge agrees | lookup p50 ms | e2e mean ms |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results["streams"].items():
        for system in SYSTEMS:
            if system not in r:
                continue
            a = r[system]["all"]
            agree = r[system]["judge"]["agree"]
            rows.append(f"| {name} | {r['queries']} | {system} | {a['right']:.1%} | {a['wrong']:.2%} ({a['wrong_upper']:.2%}) | "
                        f"{r[system]['after_20']['right']:.1%} | {checked_per_query(a):.3f} | "
                        f"{'-' if agree is None else f'{agree:.3f}'} | {a['lookup_p50_ms']:.1f} | {a['e2e_mean_ms']:.0f} |")
        for peer in PEERS:
            if peer in r:
                p = r[peer]
                rows.append(f"| {name} | {r['queries']} | {peer} (default) | {p['right']:.1%} | {p['wrong']:.2%} "
                            f"({p['wrong_upper']:.2%}) | | | | | |")
        c = r["ceiling"]["best"]
        rows.append(f"| {name} | {r['queries']} | cosine ceiling (hindsight) | {c['right']:.1%} at {c['threshold']} | "
                    f"{c['wrong']:.2%} | | | | | |")
        if "verifier_ceiling" in r:
            v = r["verifier_ceiling"]
            rows.append(f"| {name} | {r['queries']} | verifier ceiling (hindsight) | {v['right']:.1%} | {v['wrong']:.2%} | "
                        "| | | | |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
