"""Phase 2 of `benchmarks/paper.py`: each system replays the human questions over a copy of the precomputed store.

Systems (the same `StoreFront`, the same store copy, the same order):
- ``new``: the default learner (`storinfer.Learner`, ``max_wrong_rate=0.01``);
- ``fixed``: the shipped verifier at its point, nothing learnt (``learner=None``).
The 0.4 row in docs/benchmarks.md (0.4's grid refit) came from this script at d2739f4
(``git show d2739f4:benchmarks/paper_replay.py``).

A miss costs the lookup, the chain (the answer and wall time the plain pass recorded for that
question) and storing its answer (the caller's share, measured); a hit costs the lookup.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from squad_bench import Judge, latency_summary  # noqa: E402

from storinfer import QAStore, StoreFront, default_embedder  # noqa: E402
from storinfer.evaluate.squad import best_em, best_f1  # noqa: E402
from storinfer.text import normalize_question  # noqa: E402

SYSTEMS = {"new": {}, "fixed": {"learner": None}}


def replay(args) -> None:
    from paper import PARTITION, load

    out = Path(args.out)
    docs, questions = load(args.paragraphs, args.questions)
    plain = {}
    for line in (out / "plain.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            plain[rec["id"]] = rec
    missing = [q.id for q in questions if q.id not in plain]
    if missing:
        raise SystemExit(f"{len(missing)} questions have no plain-chain answer yet: run `paper.py prepare` to the end")
    judge = Judge(paragraphs={str(d.id): d.text for d in docs},
                  gold_by_question={normalize_question(q.question): q.answers for q in questions})
    embedder = default_embedder()
    plain_ms = [plain[q.id]["ms"] for q in questions]
    plain_f1 = {q.id: best_f1(plain[q.id]["answer"], q.answers) for q in questions}
    plain_em = {q.id: best_em(plain[q.id]["answer"], q.answers) for q in questions}
    report: dict = {"paragraphs": len(docs), "questions": len(questions),
                    "plain": {"em": statistics.fmean(plain_em.values()), "f1": statistics.fmean(plain_f1.values()),
                              **latency_summary(plain_ms)},
                    "systems": {}}
    for name, options in SYSTEMS.items():
        if args.systems and name not in args.systems:
            continue
        folder = out / f"replay-{name}"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(out / "store", folder)
        records = []
        with QAStore(folder, embedding=embedder) as store:
            front = StoreFront(store, partition=PARTITION, **options)
            front.lookup("warm up the embedder")
            for q in questions:
                t0 = time.perf_counter()
                found = front.lookup(q.question)
                lookup_ms = (time.perf_counter() - t0) * 1000
                rec = {"id": q.id, "hit": found.hit, "reason": str(found.reason), "lookup_ms": lookup_ms}
                if found.match is not None:
                    m = found.match
                    wrong, why = judge.wrong(q, m, plain_f1[q.id])
                    rec.update(answer=m.answer, ms=lookup_ms, origin=m.metadata.get("origin"), wrong=wrong, why=why,
                               matched=m.question)
                else:
                    answer = plain[q.id]["answer"]
                    t1 = time.perf_counter()
                    front.remember(q.question, answer, lookup=found)
                    rec.update(answer=answer, ms=lookup_ms + plain[q.id]["ms"] + (time.perf_counter() - t1) * 1000)
                rec.update(f1=best_f1(rec["answer"], q.answers), em=best_em(rec["answer"], q.answers))
                records.append(rec)
            front.flush()
            stats = front.stats()
        report["systems"][name] = summarize(records, plain_f1, plain_em, plain_ms, stats)
        print(row(name, report["systems"][name]), flush=True)
    (out / "replay.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    path = args.json
    path.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(f"\nplain chain: EM {report['plain']['em']:.3f} F1 {report['plain']['f1']:.3f}, mean {report['plain']['mean_ms']:.0f} ms, "
          f"p50 {report['plain']['p50_ms']:.0f} ms, p95 {report['plain']['p95_ms']:.0f} ms ({len(questions)} questions)")
    print(f"written {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def summarize(records: list[dict], plain_f1: dict, plain_em: dict, plain_ms: list[float], stats: dict) -> dict:
    hits = [r for r in records if r["hit"]]
    e2e = [r["ms"] for r in records]
    lat = latency_summary(e2e)
    base = latency_summary(plain_ms)
    return {"hits": len(hits), "hit_rate": len(hits) / len(records),
            "hits_precomputed": sum(r.get("origin") == "precomputed" for r in hits),
            "hits_stored_from_traffic": sum(r.get("origin") == "runtime" for r in hits),
            "wrong": sum(bool(r.get("wrong")) for r in hits),
            "wrong_rate": sum(bool(r.get("wrong")) for r in hits) / len(hits) if hits else 0.0,
            "em": statistics.fmean(r["em"] for r in records), "f1": statistics.fmean(r["f1"] for r in records),
            "served_em": statistics.fmean(r["em"] for r in hits) if hits else None,
            "served_f1": statistics.fmean(r["f1"] for r in hits) if hits else None,
            "plain_em_on_served": statistics.fmean(plain_em[r["id"]] for r in hits) if hits else None,
            "plain_f1_on_served": statistics.fmean(plain_f1[r["id"]] for r in hits) if hits else None,
            **lat, "reduction_mean": 1 - lat["mean_ms"] / base["mean_ms"],
            "reduction_p50": 1 - lat["p50_ms"] / base["p50_ms"], "reduction_p95": 1 - lat["p95_ms"] / base["p95_ms"],
            "hit_lookup_p50_ms": latency_summary([r["lookup_ms"] for r in hits])["p50_ms"] if hits else None,
            "explore_per_query": stats.get("explore_per_query", 0.0),
            "records": records}


def row(name: str, s: dict) -> str:
    served = f"served EM/F1 {s['served_em']:.3f}/{s['served_f1']:.3f} (plain chain on them {s['plain_em_on_served']:.3f}/" \
             f"{s['plain_f1_on_served']:.3f})" if s["hits"] else "served nothing"
    return (f"{name:6} hits {s['hits']:4d} ({s['hit_rate']:.1%}; {s['hits_precomputed']} precomputed, "
            f"{s['hits_stored_from_traffic']} stored from traffic) wrong {s['wrong']} ({s['wrong_rate']:.1%}) | "
            f"EM/F1 {s['em']:.3f}/{s['f1']:.3f} | {served} | latency mean {s['mean_ms']:.0f} ms p50 {s['p50_ms']:.0f} "
            f"p95 {s['p95_ms']:.0f} | reduction mean {s['reduction_mean']:.1%} p50 {s['reduction_p50']:.1%} "
            f"p95 {s['reduction_p95']:.1%} | explore/q {s['explore_per_query']:.3f}")
