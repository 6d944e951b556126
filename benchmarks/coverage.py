"""Coverage: how many real human questions precomputed pairs answer, and how many of those wrongly.

For each SQuAD article (the Super Bowl article, and held-out articles of other kinds), its
paragraphs are precomputed with StorInfer's defaults (both generators, rephrasings, answers from
the plain RAG chain: MiniLM top-1 paragraph + the offline LLM, Qwen2.5-1.5B unless --llm), `storinfer.match.calibrate` picks the operating
point from probes the store makes of itself, and the article's human questions (never seen by any
generator) are looked up the way every face looks up (`QAStore.lookup`, the hit verifier at the
recorded point). Only precomputed pairs are in the store: no runtime answers are added.

The strict judge: a hit is right only if the matched key asks for the fact the human asks for,
judged by answers: the key's expected answer (answer-aware keys) or its stored answer (others)
agrees with a gold answer (SQuAD token F1 >= 0.5, or one contains the other as whole tokens).
`old path`: StorInfer 0.2's serving (cosine >= 0.95 + look-alike rules) on the same store.

Answer quality of what is served, as the paper reports it: ROUGE-L of the served answer against
the plain chain's answer to the human question and against gold, and EM / F1 against gold for
both (on the questions served).

Throughput: precompute pairs (answered questions) per hour of the new path and of 0.2's
sequential path (the free generator alone, one chunk at a time, a fixed mask of 15), both on the
same paragraphs in this run. Ablation (Super Bowl): free generation only, + answer-aware,
+ rephrasings. Articles reported are held out: every generator and verifier choice was fitted on
the odd-position articles of `data/squad-dev-v1.1-24articles` (`benchmarks/coverage_data.py`).

    python benchmarks/coverage.py [--quick] [--articles A B ...] [--no-ablation] [--throughput-only]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from coverage_data import Article, articles, judge  # noqa: E402

from storinfer import Document, GenerationConfig, Precomputer, QAStore, StoreFront, ThresholdPolicy  # noqa: E402
from storinfer.evaluate.benchmark import build_rag_chain  # noqa: E402
from storinfer.evaluate.squad import best_em, best_f1  # noqa: E402
from storinfer.match.calibrate import calibrate  # noqa: E402
from storinfer.models import default_chat, default_embedder  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "benchmarks" / "out" / "coverage"
OTHERS = ["Normans", "Computational_complexity_theory", "Oxygen", "Amazon_rainforest", "Fresno,_California"]
BASELINE = GenerationConfig(free_generation=True, answer_aware=False, rephrasings=0, max_mask=15)
ABLATION = {"free generation only (0.2)": dict(answer_aware=False, rephrasings=0),
            "+ answer-aware": dict(rephrasings=0),
            "+ rephrasings (default)": {},
            "+ rephrasings of facts too": dict(rephrase_facts=True),
            "answer-aware by the LLM (SmolLM2)": dict(fact_writer="both")}


def rouge_l(a: str, b: str) -> float:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"]).score(b, a)["rougeL"].fmeasure


def documents(article: Article, paragraphs: int | None) -> list[Document]:
    paras = article.paragraphs[:paragraphs] if paragraphs else article.paragraphs
    return [Document(p, id=f"{article.title}-p{i:03d}") for i, p in enumerate(paras)]


_RUNS = iter(range(10**6))


def precompute(article: Article, docs: list[Document], folder: Path, config: GenerationConfig, chat, embedder, rag,
               batch_chunks: int) -> tuple[QAStore, dict]:
    # a fresh folder per run: Chroma keeps a client per path for the life of the process
    folder = folder.with_name(f"{folder.name}-{next(_RUNS)}")
    if folder.exists():
        shutil.rmtree(folder)
    store = QAStore(folder, embedding=embedder)
    pre = Precomputer(store, llm=chat, answer_with=rag, partition="kb", chunk_size=None, config=config,
                      batch_chunks=batch_chunks)
    summary = pre.run(docs, progress=False)
    return store, summary.as_dict()


def serve(store: QAStore, questions: list[tuple[str, tuple[str, ...], int]], policy=None) -> list[dict]:
    """The stored pairs only, each question at the policy's point (the shipped verifier; nothing learnt or stored)."""
    front = StoreFront(store, partition="kb", policy=policy, learner=None, store_misses=False, write_behind=False)
    out = []
    for q, gold, _p in questions:
        found = front.lookup(q)
        rec = {"question": q, "gold": list(gold), "hit": found.hit}
        if found.hit:
            m = found.match
            rec.update(right=judge(m, gold), matched=m.question, answer=m.answer,
                       expected=m.metadata.get("expected_answer"), similarity=round(m.similarity, 4),
                       score=found.score, generator=m.metadata.get("generator"), key_kind=m.metadata.get("key_kind"))
        out.append(rec)
    return out


def rates(records: list[dict]) -> dict:
    hits = [r for r in records if r["hit"]]
    wrong = sum(not r["right"] for r in hits)
    from storinfer.match.verify import clopper_pearson_upper

    return {"questions": len(records), "served": len(hits), "right": len(hits) - wrong, "wrong": wrong,
            "hit_rate": len(hits) / len(records) if records else 0.0,
            "wrong_rate": wrong / len(hits) if hits else 0.0,
            "wrong_upper_95": clopper_pearson_upper(wrong, len(hits))}


def quality(records: list[dict], rag) -> dict:
    """Answer quality on the served questions: served answer vs the plain chain's and vs gold."""
    hits = [r for r in records if r["hit"]]
    if not hits:
        return {}
    plain = rag.batch([r["question"] for r in hits])
    return {"served": len(hits),
            "rougeL_vs_plain": statistics.fmean(rouge_l(r["answer"], p) for r, p in zip(hits, plain)),
            "rougeL_vs_gold": statistics.fmean(max(rouge_l(r["answer"], g) for g in r["gold"]) for r in hits),
            "plain_rougeL_vs_gold": statistics.fmean(max(rouge_l(p, g) for g in r["gold"]) for r, p in zip(hits, plain)),
            "em": statistics.fmean(best_em(r["answer"], r["gold"]) for r in hits),
            "f1": statistics.fmean(best_f1(r["answer"], r["gold"]) for r in hits),
            "plain_em": statistics.fmean(best_em(p, r["gold"]) for r, p in zip(hits, plain)),
            "plain_f1": statistics.fmean(best_f1(p, r["gold"]) for r, p in zip(hits, plain))}


def article_run(article: Article, config: GenerationConfig, chat, embedder, args, *, label: str) -> dict:
    docs = documents(article, args.paragraphs)
    questions = [q for q in article.questions if q[2] < len(docs)]
    rag = build_rag_chain(docs, embedder, chat)
    t0 = time.perf_counter()
    store, summary = precompute(article, docs, OUT / label, config, chat, embedder, rag, args.batch_chunks)
    cal = calibrate(store, chat, partition="kb", record=True, sample=args.calibration_sample)
    t1 = time.perf_counter()
    new = serve(store, questions)
    old = serve(store, questions, policy=ThresholdPolicy(0.95))  # 0.2's path: look-alike rules at 0.95
    res = {"title": article.title, "paragraphs": len(docs), **rates(new), "old_path": rates(old),
           "precompute": {k: summary[k] for k in ("pairs_stored", "keys_stored", "fact_accepted", "accepted",
                                                   "rephrasings_kept", "llm_calls", "wall_seconds", "pairs_per_hour")},
           "bytes_per_key": (store.disk_bytes() or 0) / max(1, store.count()),
           "calibration": {h.head: {"floor": h.floor, "cut": h.cut, "probes": h.probes, "served": h.hits,
                                    "wrong": h.wrong, "upper_95": round(h.upper_bound, 4), "tightened": h.tightened,
                                    "fallback": h.fallback} for h in cal.heads.values()},
           "calibrate_seconds": round(time.perf_counter() - t0 - summary["wall_seconds"], 1),
           "serve_seconds": round(time.perf_counter() - t1, 1)}
    res["quality"] = quality(new, rag) if args.quality else {}
    res["records"] = new
    store.close()
    return res


def throughput(article: Article, chat, embedder, args) -> dict:
    """Pairs per hour, old sequential path vs the new one, on the same paragraphs."""
    docs = documents(article, args.throughput_paragraphs)
    rag = build_rag_chain(docs, embedder, chat)
    out = {}
    for name, config, batch in (("baseline (0.2: free generator, one chunk at a time)", BASELINE, 1),
                                ("new (both generators, rephrasings, batches)", GenerationConfig(), args.batch_chunks)):
        store, summary = precompute(article, docs, OUT / "throughput", config, chat, embedder, rag, batch)
        store.close()
        out[name] = {k: summary[k] for k in ("pairs_stored", "keys_stored", "llm_calls", "generation_calls",
                                             "fact_writer_calls", "answer_calls", "rephrase_calls", "wall_seconds",
                                             "pairs_per_hour", "phase_seconds")}
        out[name]["keys_per_hour"] = summary["keys_stored"] / summary["wall_seconds"] * 3600
    return out


def storage(embedder) -> dict:
    """Bytes on disk per key at scale: the answer-aware keys of all 24 articles' paragraphs in one
    store (answers are the facts themselves, about as long as SmolLM2's 24-token answers)."""
    from storinfer.store.locks import folder_bytes

    docs = [Document(p, id=f"{a.title}-p{i:03d}") for a in articles() for i, p in enumerate(a.paragraphs)]
    folder = OUT / "storage"
    if folder.exists():
        shutil.rmtree(folder)
    store = QAStore(folder, embedding=embedder)
    config = GenerationConfig(free_generation=False, rephrasings=0, fact_answers="span")

    class _NoLLM:
        def chat_batch(self, conversations, **_kw):
            raise RuntimeError("this configuration calls no LLM")

    summary = Precomputer(store, llm=_NoLLM(), partition="kb", chunk_size=None, config=config).run(docs, progress=False)
    keys = store.count()
    store.close()
    total = folder_bytes(str(folder))
    index = sum(folder_bytes(str(d)) for d in folder.iterdir() if d.is_dir())
    return {"paragraphs": len(docs), "answers": summary.pairs_stored, "keys": keys, "bytes": total,
            "bytes_per_key": total / keys, "vector_index_bytes_per_key": index / keys}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="12 paragraphs per article, 2 other articles, no ablation")
    ap.add_argument("--articles", nargs="*", default=None, help=f"other held-out articles (default: {OTHERS})")
    ap.add_argument("--paragraphs", type=int, default=None, help="first N paragraphs of each article")
    ap.add_argument("--throughput-paragraphs", type=int, default=8)
    ap.add_argument("--batch-chunks", type=int, default=8)
    ap.add_argument("--calibration-sample", type=int, default=300)
    ap.add_argument("--throughput-only", action="store_true", help="only the throughput comparison (printed, no JSON)")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--ablation-paragraphs", type=int, default=20)
    ap.add_argument("--no-storage", action="store_true", help="skip the store-size run over all 24 articles")
    ap.add_argument("--no-quality", dest="quality", action="store_false")
    ap.add_argument("--json", default=str(RESULTS / "coverage.json"))
    ap.add_argument("--llm", default=None, help="the offline model writing questions, rephrasings and answers "
                    "(default: the offline default, Qwen2.5-1.5B; 'smollm2-135m' for 0.3's model)")
    args = ap.parse_args()
    if args.quick:
        args.paragraphs = args.paragraphs or 12
        args.articles = args.articles if args.articles is not None else OTHERS[:2]
        args.no_ablation = args.no_storage = True
        args.throughput_paragraphs = min(args.throughput_paragraphs, 4)
    others = OTHERS if args.articles is None else args.articles
    embedder, chat = default_embedder(), default_chat(max_new_tokens=24, model=args.llm)
    superbowl = articles(titles=["Super_Bowl_50"])[0]
    held = {a.title: a for a in articles("heldout")}
    for title in others:
        if title not in held:
            raise SystemExit(f"{title!r} is not a held-out article (even position in the 24): {sorted(held)}")
    started = time.perf_counter()
    results: dict = {"model": chat.model_id, "config": {"paragraphs": args.paragraphs, "batch_chunks": args.batch_chunks, "quick": args.quick,
                                "throughput_paragraphs": args.throughput_paragraphs}}
    print("## throughput", flush=True)
    results["throughput"] = throughput(superbowl, chat, embedder, args)
    for name, r in results["throughput"].items():
        print(f"{name:55} {r['pairs_stored']:5d} pairs {r['keys_stored']:6d} keys {r['wall_seconds']:7.1f} s "
              f"{r['pairs_per_hour']:8.0f} pairs/h {r['keys_per_hour']:8.0f} keys/h", flush=True)
    base, new = results["throughput"].values()
    results["pairs_per_hour"], results["baseline_pairs_per_hour"] = new["pairs_per_hour"], base["pairs_per_hour"]
    print(f"speed-up: {new['pairs_per_hour'] / base['pairs_per_hour']:.1f}x pairs per hour", flush=True)
    for name, r in results["throughput"].items():
        calls = ", ".join(f"{k.removesuffix('_calls')} {r[k]}" for k in ("generation_calls", "fact_writer_calls",
                                                                         "answer_calls", "rephrase_calls"))
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in r["phase_seconds"].items())
        print(f"  {name}: LLM calls {r['llm_calls']} ({calls}); time: {phases}", flush=True)
    if args.throughput_only:
        return

    print("## Super Bowl", flush=True)
    sb = article_run(superbowl, GenerationConfig(), chat, embedder, args, label="Super_Bowl_50")
    results["superbowl"] = sb
    results["hit_rate"], results["wrong_rate"] = sb["hit_rate"], sb["wrong_rate"]
    q = sb.get("quality") or {}
    results["answer_f1"] = {"served": q.get("f1"), "plain": q.get("plain_f1"), "served_questions": q.get("served")}
    results["bytes_per_key"] = sb["bytes_per_key"]
    print(line(sb), flush=True)
    results["articles"] = []
    for title in others:
        r = article_run(held[title], GenerationConfig(), chat, embedder, args, label=title)
        results["articles"].append(r)
        print(line(r), flush=True)
    if not args.no_ablation:
        print(f"## ablation (Super Bowl, first {args.ablation_paragraphs} paragraphs)", flush=True)
        results["ablation"] = {"paragraphs": args.ablation_paragraphs}
        sub = argparse.Namespace(**{**vars(args), "quality": False, "paragraphs": args.ablation_paragraphs})
        for name, kw in ABLATION.items():
            r = article_run(superbowl, replace(GenerationConfig(), **kw), chat, embedder, sub, label="ablation")
            results["ablation"][name] = {k: r[k] for k in ("served", "right", "wrong", "hit_rate", "wrong_rate",
                                                           "old_path", "precompute", "calibration")}
            print(f"{name:32} " + line(r), flush=True)
    if not args.no_storage:
        results["storage"] = storage(embedder)
        st = results["storage"]
        print(f"## storage: {st['keys']} keys of {st['paragraphs']} paragraphs in one store: {st['bytes'] / 1e6:.1f} MB, "
              f"{st['bytes_per_key']:.0f} bytes per key ({st['vector_index_bytes_per_key']:.0f} of them the vector index)",
              flush=True)
        results["bytes_per_key"] = st["bytes_per_key"]
    results["wall_seconds"] = time.perf_counter() - started
    Path(args.json).write_text(json.dumps(slim(results), indent=1, default=str) + "\n")
    (OUT / "coverage_records.json").write_text(json.dumps(results, indent=1, default=str))
    print(table(results))
    print(f"written {args.json} ({results['wall_seconds'] / 60:.0f} min)")


def line(r: dict) -> str:
    o = r["old_path"]
    return (f"{r['title']:32} {r['questions']:4d} q | served {r['served']:4d} ({r['hit_rate']:6.1%}) wrong {r['wrong']:3d} "
            f"({r['wrong_rate']:5.1%}, 95% upper {r['wrong_upper_95']:5.1%}) | old path {o['served']:3d} ({o['hit_rate']:5.1%}) "
            f"wrong {o['wrong_rate']:5.1%} | {r['precompute']['pairs_stored']} pairs, {r['precompute']['keys_stored']} keys, "
            f"{r['bytes_per_key']:.0f} B/key")


def slim(results: dict) -> dict:
    """The JSON written to results/: everything but the per-question records."""
    out = json.loads(json.dumps(results, default=str))
    out.get("superbowl", {}).pop("records", None)
    for a in out.get("articles", []):
        a.pop("records", None)
    out["articles"] = [{"title": a["title"], "hit_rate": a["hit_rate"], "wrong_rate": a["wrong_rate"],
                        **{k: v for k, v in a.items() if k not in ("title", "hit_rate", "wrong_rate")}}
                       for a in out.get("articles", [])]
    return out


def table(results: dict) -> str:
    rows = ["", "| article | questions | served (hit rate) | wrong (of served, 95% upper) | old path served / wrong |",
            "|---|---|---|---|---|"]
    for r in [results["superbowl"], *results["articles"]]:
        o = r["old_path"]
        rows.append(f"| {r['title']} | {r['questions']} | {r['served']} ({r['hit_rate']:.1%}) | {r['wrong']} "
                    f"({r['wrong_rate']:.1%}, {r['wrong_upper_95']:.1%}) | {o['served']} / {o['wrong_rate']:.1%} |")
    ab = results.get("ablation")
    if ab:
        rows += ["", f"Ablation, Super Bowl, first {ab['paragraphs']} paragraphs:", "",
                 "| generation | pairs | keys | served (hit rate) | wrong (of served) | precompute s |", "|---|---|---|---|---|---|"]
        for name, r in ab.items():
            if name == "paragraphs":
                continue
            p = r["precompute"]
            rows.append(f"| {name} | {p['pairs_stored']} | {p['keys_stored']} | {r['served']} ({r['hit_rate']:.1%}) | "
                        f"{r['wrong']} ({r['wrong_rate']:.1%}) | {p['wall_seconds']:.0f} |")
    base, new = results["throughput"].values()
    rows += ["", f"Throughput ({results['config'].get('throughput_paragraphs', '')} Super Bowl paragraphs, same run): "
             f"0.2's path {base['pairs_per_hour']:.0f} pairs/h, new {new['pairs_per_hour']:.0f} pairs/h "
             f"({new['pairs_per_hour'] / base['pairs_per_hour']:.1f}x; {new['keys_per_hour']:.0f} keys/h)"]
    if results.get("storage"):
        st = results["storage"]
        rows.append(f"Storage: {st['keys']} keys in one store, {st['bytes_per_key']:.0f} bytes per key "
                    f"({st['vector_index_bytes_per_key']:.0f} in the vector index)")
    q = results["superbowl"].get("quality") or {}
    if q:
        rows += ["", f"Super Bowl answer quality on the {q['served']} served: ROUGE-L vs plain chain {q['rougeL_vs_plain']:.3f}; "
                 f"vs gold {q['rougeL_vs_gold']:.3f} (plain chain {q['plain_rougeL_vs_gold']:.3f}); EM / F1 {q['em']:.3f} / "
                 f"{q['f1']:.3f} (plain chain {q['plain_em']:.3f} / {q['plain_f1']:.3f})"]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
