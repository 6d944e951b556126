"""The SQuAD benchmark (`make bench`, `benchmarks/run_benchmark.py`): hits, wrong hits, latency,
answer quality and storage on human questions.

One run (:func:`run_benchmark`):

1. builds the *plain chain*, a RAG chain over the documents (MiniLM retrieval, the offline LLM answers);
2. precomputes question-answer pairs for the documents, answered by that same chain, and runs
   :func:`storinfer.match.calibrate.calibrate`, which picks the operating point from generated data only;
3. replays the human questions, in a fixed shuffled order, through (a) the plain chain and
   (b) the same chain behind :class:`storinfer.StoreFront` (answers to misses are stored), timing
   each, and scores both with SQuAD exact match and token F1;
4. judges every hit (:class:`Judge`): a **wrong hit** is one whose served answer scores clearly
   worse against the gold answers than the plain chain's (F1 lower by 0.5 or more), or whose
   matched question asks something else (for a stored human question: its gold answers disagree
   with the query's; for a generated one: its expected answer does not name what the query's gold
   answer names);
5. sweeps the cosine floor over the precomputed pairs alone (:func:`sweep`: look-alike rules,
   the hit verifier, cosine alone) and reads off how the calibrated point does on the humans.

Results are a JSON file, a Markdown table and a PNG of the threshold curve. Tests, notebook 03 and
`benchmarks/paper.py` import its parts (``sys.path`` holds ``benchmarks/``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from storinfer.evaluate.squad import SquadQuestion, answer_matches, answers_agree, best_em, best_f1
from storinfer.match.calibrate import calibrate, served_candidate
from storinfer.match.policy import VerifierPolicy
from storinfer.match.verify import Verifier
from storinfer.precompute import Precomputer
from storinfer.precompute.generate.free import GenerationConfig
from storinfer.protocols import ChatModel, Document, Embedder
from storinfer.records import Match
from storinfer.serve import StoreFront
from storinfer.store import QAStore
from storinfer.text import normalize_question

RAG_SYSTEM = "Answer the question using the context. Reply with a short phrase only."
WRONG_F1_DROP = 0.5


class RagAnswerer:
    """The plain chain: the top-``k`` documents by embedding similarity, then the LLM answers from them.

    A function ``question -> answer`` with ``batch(questions)``, as :class:`Precomputer` takes.
    """

    def __init__(self, docs: Sequence[Document], embeddings: Embedder, chat: ChatModel, *, k: int = 1) -> None:
        import numpy as np

        self.docs, self.embeddings, self.chat, self.k = list(docs), embeddings, chat, k
        self._matrix = np.asarray(embeddings.embed_documents([d.text for d in self.docs]), dtype=np.float32)
        self._matrix /= np.linalg.norm(self._matrix, axis=1, keepdims=True) + 1e-12

    def context(self, question: str) -> str:
        import numpy as np

        q = np.asarray(self.embeddings.embed_query(question), dtype=np.float32)
        top = np.argsort(-(self._matrix @ q))[: self.k]
        return "\n\n".join(self.docs[i].text for i in top)

    def conversation(self, question: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": RAG_SYSTEM},
                {"role": "user", "content": f"Context:\n{self.context(question)}\n\nQuestion: {question}"}]

    def batch(self, questions: Sequence[str]) -> list[str]:
        return [a.strip() for a in self.chat.chat_batch([self.conversation(q) for q in questions])]

    def __call__(self, question: str) -> str:
        return self.batch([question])[0]


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "mean_ms": statistics.fmean(ms) if ms else math.nan}


# --- judging hits ------------------------------------------------------------------------------
@dataclass
class Judge:
    """Decides whether a served answer is a wrong hit (see the module docstring)."""

    paragraphs: dict[str, str]  # doc_id -> text
    gold_by_question: dict[str, tuple[str, ...]]  # normalised human question -> gold answers

    def asks_something_else(self, query: SquadQuestion, m: Match) -> bool:
        """A cached human question asks something else when its gold answers disagree with the
        query's; a precomputed pair when its expected answer (or, without one, its stored answer)
        does not name what the query's gold answer names (the strict judge,
        :func:`storinfer.evaluate.squad.answer_matches`)."""
        gold = self.gold_by_question.get(normalize_question(m.question))
        if m.metadata.get("origin") == "runtime" and gold is not None:
            return not answers_agree(query.answers, gold)
        expected = m.metadata.get("expected_answer") or m.answer
        return not answer_matches(str(expected), query.answers)

    def wrong(self, query: SquadQuestion, m: Match, plain_f1: float) -> tuple[bool, str]:
        served_f1 = best_f1(m.answer, query.answers)
        if served_f1 <= plain_f1 - WRONG_F1_DROP:
            return True, f"answer F1 {served_f1:.2f} vs plain {plain_f1:.2f}"
        if self.asks_something_else(query, m):
            return True, "matched question asks something else"
        return False, ""


# --- the threshold sweep over precomputed pairs ------------------------------------------------
def sweep(questions: Sequence[SquadQuestion], candidates: dict[str, list[Match]], plain_f1: dict[str, float],
          judge: Judge, thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Hit rate and wrong-hit rate over the precomputed pairs at each threshold (the cosine floor):
    the look-alike rules (``guard``, the default path), cosine alone (``no_guard``) and the hit
    verifier (``verifier``, at this floor for every question, its own cut)."""
    verifier = Verifier.default()
    rows = []
    for t in thresholds:
        row: dict[str, Any] = {"threshold": round(float(t), 3)}
        for key, guard, v in (("guard", True, None), ("no_guard", False, None), ("verifier", True, verifier)):
            hits = wrong = 0
            for q in questions:
                m = served_candidate(q.question, candidates[q.id], t, guard, verifier=v)
                if m is None:
                    continue
                hits += 1
                wrong += judge.wrong(q, m, plain_f1[q.id])[0]
            row[f"{key}_hits"] = hits
            row[f"{key}_wrong"] = wrong
            row[f"{key}_hit_rate"] = hits / len(questions) if questions else 0.0
            row[f"{key}_wrong_rate"] = wrong / hits if hits else 0.0
        rows.append(row)
    return rows


# --- the whole benchmark ---------------------------------------------------------------------
PARTITION = "rag"
SWEEP_FLOORS = [round(0.80 + 0.01 * i, 2) for i in range(20)]


@dataclass
class BenchmarkConfig:
    paragraphs: int | None = None  # None: all
    questions: int | None = None  # None: all
    threshold: float | None = None  # None: the calibrated one
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    answer_tokens: int = 24
    calibration_sample: int = 300
    target_wrong_rate: float = 0.01
    seed: int = 0


def add_precompute_options(ap: argparse.ArgumentParser) -> None:
    """The precompute's size options of `run_benchmark.py` and `paper.py`, named as `storinfer precompute` names them."""
    ap.add_argument("--max-per-chunk", type=int, default=12, help="questions kept per chunk (default 12)")
    ap.add_argument("--max-calls-per-chunk", type=int, default=4, help="question-writing LLM calls per chunk (default 4)")
    ap.add_argument("--max-facts-per-chunk", type=int, default=None, help="facts asked about per chunk (default: all)")
    ap.add_argument("--rephrasings", type=int, default=3, help="LLM rephrasings stored as extra keys per question (default 3)")


def generation_config(args: argparse.Namespace) -> GenerationConfig:
    """The precompute options of :func:`add_precompute_options` as a ``GenerationConfig``."""
    return GenerationConfig(max_per_chunk=args.max_per_chunk, max_calls_per_chunk=args.max_calls_per_chunk,
                            max_facts_per_chunk=args.max_facts_per_chunk, rephrasings=args.rephrasings)


@dataclass
class Precomputed:
    """What the offline step left in the store, before any human question was replayed."""

    summary: dict[str, Any]  # PrecomputeSummary.as_dict()
    pairs: int
    keys: int
    disk_bytes: int
    calibration: Any  # storinfer.match.calibrate.Calibration


def run_benchmark(
    squad_path: str | Path,
    out_dir: str | Path,
    *,
    config: BenchmarkConfig | None = None,
    embeddings: Embedder | None = None,
    chat: ChatModel | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole benchmark (see the module docstring); write results into ``out_dir``."""
    from storinfer.models import default_chat, default_embedder

    cfg = config or BenchmarkConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    embeddings = embeddings or default_embedder()
    chat = chat or default_chat(max_new_tokens=cfg.answer_tokens)
    docs, questions = load_questions(squad_path, cfg)
    plain = RagAnswerer(docs, embeddings, chat)
    judge = Judge(paragraphs={str(d.id): d.text for d in docs},
                  gold_by_question={normalize_question(q.question): q.answers for q in questions})

    store = fresh_store(out / "store", embeddings)
    pre = precompute(store, docs, chat=chat, plain=plain, cfg=cfg, progress=progress)
    # precomputed-only candidates for the sweep (before runtime answers are added)
    candidates = {q.id: store.search(q.question, partition=PARTITION, k=10) for q in questions}
    front = StoreFront(store, partition=PARTITION, policy=fixed_floor(cfg.threshold))
    records = replay(questions, plain=plain, front=front, judge=judge, progress=progress)
    store.purge_expired()
    plain_f1 = {r["id"]: r["plain_f1"] for r in records}
    sweep_rows = sweep(questions, candidates, plain_f1, judge, SWEEP_FLOORS)
    results = summarize(records, pre=pre, pairs_final=store.count(), disk_final=store.disk_bytes() or 0,
                        threshold=cfg.threshold, sweep_rows=sweep_rows, chain_stats=front.stats())
    results["config"] = {"paragraphs": len(docs), "questions": len(questions), "threshold": cfg.threshold,
                         "generation": asdict(cfg.generation), "answer_tokens": cfg.answer_tokens, "seed": cfg.seed}
    write_results(out, results, records)
    store.close()
    return results


def load_questions(squad_path: str | Path, cfg: BenchmarkConfig) -> tuple[list[Document], list[SquadQuestion]]:
    """The first ``cfg.paragraphs`` paragraphs and ``cfg.questions`` of their questions, shuffled (``cfg.seed``)."""
    from storinfer.evaluate.squad import load_squad

    docs, questions = load_squad(squad_path)
    docs = docs[: cfg.paragraphs] if cfg.paragraphs else docs
    questions = [q for q in questions if q.paragraph < len(docs)]
    random.Random(cfg.seed).shuffle(questions)
    return docs, questions[: cfg.questions] if cfg.questions else questions


def fresh_store(folder: Path, embeddings: Embedder) -> QAStore:
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    return QAStore(folder, embedding=embeddings)


def precompute(store: QAStore, docs: Sequence[Document], *, chat: ChatModel, plain: RagAnswerer,
               cfg: BenchmarkConfig, progress: bool) -> Precomputed:
    """Precompute ``docs``, answered by the plain chain; then calibrate on generated data only and
    record the operating point in the store (the replay serves with it)."""
    pre = Precomputer(store, llm=chat, answer_with=plain, partition=PARTITION, config=cfg.generation)
    summary = pre.run(docs, progress=progress)
    pairs, keys, disk = summary.pairs_stored, store.count(), store.disk_bytes() or 0
    calibration = calibrate(store, chat, partition=PARTITION, target_wrong_rate=cfg.target_wrong_rate,
                            sample=cfg.calibration_sample, record=True)
    return Precomputed(summary=summary.as_dict(), pairs=pairs, keys=keys, disk_bytes=disk, calibration=calibration)


def fixed_floor(threshold: float | None) -> VerifierPolicy | None:
    """``None``: the verifier at the calibrated operating point; else the verifier at this cosine floor."""
    return None if threshold is None else VerifierPolicy(Verifier.default().with_operating_point(floor=threshold))


def replay(questions: Sequence[SquadQuestion], *, plain: RagAnswerer, front: StoreFront, judge: Judge,
           progress: bool) -> list[dict[str, Any]]:
    """Every question through the plain chain, then every question through the same chain behind
    StorInfer; one record per question. Two passes, not the two calls back to back: an engine that
    caches prompts (llama.cpp keeps them in its slots) would answer the second call of a pair from
    the first one's prompt, and a miss behind StorInfer would look faster than the plain chain."""
    from tqdm.auto import tqdm

    plain(questions[0].question)  # warm-up, not timed
    plain_runs = []
    for q in tqdm(questions, desc="replay, plain", unit="question", disable=not progress):
        t0 = time.perf_counter()
        a = plain(q.question)
        plain_runs.append((a, (time.perf_counter() - t0) * 1000))
    records = []
    for q, (a, plain_ms) in zip(tqdm(questions, desc="replay, StorInfer", unit="question", disable=not progress),
                                plain_runs):
        records.append(replay_one(q, plain_answer=a, plain_ms=plain_ms, plain=plain, front=front, judge=judge))
    return records


def replay_one(q: SquadQuestion, *, plain_answer: str, plain_ms: float, plain: RagAnswerer, front: StoreFront,
               judge: Judge) -> dict[str, Any]:
    """One question behind StorInfer: timed, scored, and its hit judged."""
    ran: list[str] = []  # what the chain answered behind StorInfer (a miss), for the record

    def chain(question: str) -> str:
        ran.append(plain(question))
        return ran[-1]

    t1 = time.perf_counter()
    b, found = front.answer(q.question, chain)
    t2 = time.perf_counter()
    rec: dict[str, Any] = {
        "id": q.id, "question": q.question, "gold": list(q.answers), "paragraph": q.paragraph,
        "plain_answer": plain_answer, "plain_ms": plain_ms, "plain_f1": best_f1(plain_answer, q.answers),
        "plain_em": best_em(plain_answer, q.answers),
        "storinfer_answer": b, "storinfer_ms": (t2 - t1) * 1000, "hit": found.hit, "reason": found.reason,
        "storinfer_f1": best_f1(b, q.answers), "storinfer_em": best_em(b, q.answers),
        "chain_answer": ran[-1] if ran else None,
    }
    if found.match is not None:
        m = found.match
        wrong, why = judge.wrong(q, m, rec["plain_f1"])
        rec.update(similarity=m.similarity, matched_question=m.question, matched_origin=m.metadata.get("origin"),
                   matched_doc=m.metadata.get("doc_id"), wrong_hit=wrong, wrong_why=why)
    return rec


def summarize(records: list[dict[str, Any]], *, pre: Precomputed, pairs_final: int, disk_final: int,
              threshold: float | None, sweep_rows: list[dict[str, Any]], chain_stats: dict[str, Any]) -> dict[str, Any]:
    n = len(records)
    hits = [r for r in records if r["hit"]]
    misses = [r for r in records if not r["hit"]]
    wrong = [r for r in hits if r.get("wrong_hit")]
    plain_ms = [r["plain_ms"] for r in records]
    si_ms = [r["storinfer_ms"] for r in records]
    calibration = pre.calibration
    return {
        "questions": n,
        "threshold": threshold,
        "plain": {"em": statistics.fmean(r["plain_em"] for r in records), "f1": statistics.fmean(r["plain_f1"] for r in records),
                  **latency_summary(plain_ms)},
        "storinfer": {"em": statistics.fmean(r["storinfer_em"] for r in records),
                      "f1": statistics.fmean(r["storinfer_f1"] for r in records),
                      **latency_summary(si_ms),
                      "hit_rate": len(hits) / n, "hits": len(hits),
                      "hits_precomputed": sum(r.get("matched_origin") == "precomputed" for r in hits),
                      "hits_runtime": sum(r.get("matched_origin") == "runtime" for r in hits),
                      "wrong_hits": len(wrong), "wrong_hit_rate": len(wrong) / len(hits) if hits else 0.0,
                      "wrong_hits_of_all_questions": len(wrong) / n,
                      "hit_path": latency_summary([r["storinfer_ms"] for r in hits]),
                      "miss_overhead_ms": (statistics.fmean(r["storinfer_ms"] for r in misses)
                                           - statistics.fmean(r["plain_ms"] for r in misses)) if misses else math.nan,
                      "guard_rejections": chain_stats["guard_rejections"]},
        "latency_reduction": 1 - sum(si_ms) / sum(plain_ms),
        "storage": {"precomputed_pairs": pre.pairs, "pairs_after_replay": pairs_final,
                    "bytes_after_precompute": pre.disk_bytes, "bytes_final": disk_final,
                    "bytes_per_pair": disk_final / pairs_final if pairs_final else math.nan,
                    "precomputed_keys": pre.keys},
        "precompute": pre.summary,
        "calibration": {"threshold": calibration.threshold, "target_wrong_rate": calibration.target_wrong_rate,
                        "fallback": calibration.fallback,
                        "paraphrase_probes": calibration.probes, "table": calibration.table,
                        "heads": {h.head: {"floor": h.floor, "cut": h.cut, "served": h.hits, "wrong": h.wrong,
                                           "upper_95": h.upper_bound, "fallback": h.fallback}
                                  for h in calibration.heads.values()},
                        "on_human_questions": next((r for r in sweep_rows if r["threshold"] == calibration.threshold),
                                                   None)},
        "sweep": sweep_rows,
    }


def write_results(out: Path, results: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """``results.json`` (with every record), ``results.md`` and ``threshold_curve.png`` in ``out``."""
    (out / "results.json").write_text(json.dumps({**results, "records": records}, indent=2, default=str))
    (out / "results.md").write_text(markdown(results, records))
    plot_threshold_curve(results["sweep"], results["calibration"]["threshold"], out / "threshold_curve.png")


def markdown(results: dict[str, Any], records: list[dict[str, Any]]) -> str:
    p, s = results["plain"], results["storinfer"]
    lines = [
        f"# StorInfer benchmark: {results['questions']} human questions, threshold {results['threshold']}",
        "",
        "| system | EM | F1 | p50 ms | p95 ms | mean ms | hit rate | wrong hits |",
        "|---|---|---|---|---|---|---|---|",
        f"| plain chain | {p['em']:.3f} | {p['f1']:.3f} | {p['p50_ms']:.0f} | {p['p95_ms']:.0f} | {p['mean_ms']:.0f} | - | - |",
        f"| with StorInfer | {s['em']:.3f} | {s['f1']:.3f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['mean_ms']:.0f} | "
        f"{s['hit_rate']:.1%} ({s['hits_precomputed']} precomputed, {s['hits_runtime']} cached) | "
        f"{s['wrong_hits']} ({s['wrong_hit_rate']:.1%} of hits) |",
        "",
        f"End-to-end latency reduction: **{results['latency_reduction']:.1%}**. "
        f"Hit path p50 {s['hit_path']['p50_ms']:.1f} ms, p95 {s['hit_path']['p95_ms']:.1f} ms; "
        f"miss overhead {s['miss_overhead_ms']:.1f} ms on average.",
        "",
        f"Storage: {results['storage']['pairs_after_replay']} pairs ({results['storage']['precomputed_pairs']} precomputed), "
        f"{results['storage']['bytes_final'] / 1e6:.1f} MB, {results['storage']['bytes_per_pair']:.0f} bytes per pair.",
        f"Precompute: {results['precompute']['pairs_stored']} pairs in {results['precompute']['wall_seconds']:.0f} s, "
        f"{results['precompute']['pairs_per_llm_call']:.2f} pairs per LLM call.",
        "",
        f"Calibrated threshold (generated paraphrases only, target wrong-hit rate "
        f"{results['calibration']['target_wrong_rate']:.0%}, {results['calibration']['paraphrase_probes']} probes): "
        + ", ".join(f"{name} head floor {h['floor']}, cut {h['cut']}" for name, h in results["calibration"]["heads"].items())
        + (" (too few probes to choose: the measured default)." if results["calibration"].get("fallback") else "."),
        "",
        "## Threshold sweep over precomputed pairs (human questions)",
        "",
        "| threshold | hits (guard) | wrong (guard) | hits (verifier) | wrong (verifier) | hits (no guard) | wrong (no guard) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["sweep"]:
        lines.append(f"| {r['threshold']:.2f} | {r['guard_hits']} | {r['guard_wrong']} | {r.get('verifier_hits', '')} | "
                     f"{r.get('verifier_wrong', '')} | {r['no_guard_hits']} | {r['no_guard_wrong']} |")
    lines += ["", "## Every hit", "", "| query | matched | sim | origin | wrong? |", "|---|---|---|---|---|"]
    for r in records:
        if r["hit"]:
            flag = f"**yes**: {r['wrong_why']}" if r.get("wrong_hit") else "no"
            lines.append(f"| {r['question']} | {r['matched_question']} | {r['similarity']:.3f} | {r['matched_origin']} | {flag} |")
    return "\n".join(lines) + "\n"


def plot_threshold_curve(rows: list[dict[str, Any]], calibrated: float, path: Path) -> None:
    """Hit rate against wrong-hit rate, one point per threshold, guard on and off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label, style in (("guard", "old: look-alike rules", "o-"), ("verifier", "new: hit verifier", "^-"),
                              ("no_guard", "cosine only", "s--")):
        if f"{key}_hit_rate" not in rows[0]:
            continue
        xs = [100 * r[f"{key}_wrong_rate"] for r in rows]
        ys = [100 * r[f"{key}_hit_rate"] for r in rows]
        ax.plot(xs, ys, style, label=label, markersize=4)
        for r, x, y in zip(rows, xs, ys):
            if r["threshold"] in (0.8, 0.85, 0.9, 0.95, calibrated):
                ax.annotate(f"{r['threshold']:.2f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("wrong hits (% of hits)")
    ax.set_ylabel("hit rate (% of human questions)")
    ax.set_title(f"Precomputed pairs vs human questions; calibrated threshold {calibrated:.2f}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
