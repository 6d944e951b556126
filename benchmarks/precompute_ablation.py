"""Unique questions per LLM call: the paper's masking and adaptive sampling, ablated, same budget.

For each SQuAD Super Bowl paragraph, every mode makes exactly ``--calls`` question-writing calls
(early stopping off, so the budget is equal) with the same seeds, paragraphs 8 at a time in one
batch (as precompute does):

* context mask (the default, as in the paper): the accepted questions of the chunk (newest first)
  and the stored ones nearest to it are shown back to the generator, as many as fit the model's
  context; temperature / top-p follow the duplicate and junk rates (adaptive sampling, from 0.7);
* mask of 15: the same with at most 15 questions shown (StorInfer 0.2);
* facts known, not shown: the answer-aware generator's questions of the chunk count as known
  (a duplicate of one is rejected), as precompute does with both generators on;
* facts known and shown: the same, and they are shown in the mask too (``mask_known=True``);
* naive: the same prompt every call, fixed temperature 0.7 / top-p 0.9.

Both keep a candidate only if it is a well-formed, on-topic question that is not a duplicate
(cosine >= 0.90 and the guard finds no difference) of one already accepted for the corpus, the
same rule as precompute. Answering costs one call per accepted question in both, so pairs per
LLM call = unique / (generation calls + unique).

    python benchmarks/precompute_ablation.py [--calls 3] [--paragraphs 54] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storinfer.evaluate.squad import load_squad  # noqa: E402
from storinfer.match.lookalike import conflict  # noqa: E402
from storinfer.models import default_chat, default_embedder  # noqa: E402
from storinfer.precompute.generate.free import ChunkJob, GenerationConfig, QuestionGenerator  # noqa: E402
from storinfer.text import sha  # noqa: E402

DEFAULT_SQUAD = Path(__file__).resolve().parents[1] / "data/squad-dev-v1.1-superbowl/dev-v1.1-superbowl.json"


def run_mode(name: str, config: GenerationConfig, docs, chat, emb, *, facts: bool = False, batch: int = 8) -> dict:
    gen = QuestionGenerator(chat, emb, config)
    accepted: list[str] = []
    vectors: list[np.ndarray] = []
    totals = dict(calls=0, candidates=0, duplicates=0, junk=0, off_topic=0)
    masks: list[int] = []
    chunk_vecs = emb.embed_documents([d.text for d in docs])
    known_by_doc: list[list[tuple[str, list[float]]]] = [[] for _ in docs]
    if facts:
        from storinfer.precompute.generate.fact_questions import FactQuestionWriter

        written = FactQuestionWriter().write_many([d.text for d in docs])
        for i, fqs in enumerate(written):
            qs = [fq.question for fq in fqs]
            known_by_doc[i] = list(zip(qs, emb.embed_documents(qs) if qs else []))
    started = time.perf_counter()
    for start in range(0, len(docs), batch):
        mat = np.array(vectors) if vectors else np.zeros((0, len(chunk_vecs[0])))

        def stored_duplicate(q: str, v: list[float], mat=mat) -> bool:
            if not len(mat):
                return False
            sims = mat @ np.array(v)
            return any(sims[j] >= config.dedup_threshold and conflict(q, accepted[j]) is None
                       for j in np.flatnonzero(sims >= config.dedup_threshold))

        jobs = []
        for i in range(start, min(start + batch, len(docs))):
            cv = np.array(chunk_vecs[i])
            near = [accepted[j] for j in np.argsort(-(mat @ cv))[: config.store_neighbours]] if vectors else []
            jobs.append(ChunkJob(docs[i].text, sha(docs[i].id, docs[i].text, length=24), chunk_vecs[i], near,
                                 known_by_doc[i], stored_duplicate))
        for out in gen.generate_many(jobs):
            for q in out.accepted:
                accepted.append(q.question)
                vectors.append(np.array(emb.embed_query(q.question)))
            for k in totals:
                totals[k] += getattr(out, k) if k != "calls" else out.calls
            masks += out.mask_sizes
        print(f"  [{name}] paragraphs {min(start + batch, len(docs))}/{len(docs)}: total {len(accepted)}", file=sys.stderr)
    unique = len(accepted)
    return {
        "mode": name, "generation_calls": totals["calls"], "unique_questions": unique,
        "unique_per_generation_call": unique / totals["calls"],
        "pairs_per_llm_call": unique / (totals["calls"] + unique),
        "candidates": totals["candidates"], "rejected_duplicates": totals["duplicates"],
        "rejected_junk": totals["junk"], "rejected_off_topic": totals["off_topic"],
        "duplicate_rate": totals["duplicates"] / max(1, totals["candidates"]),
        "mean_mask": sum(masks) / max(1, len(masks)), "max_mask": max(masks, default=0),
        "wall_seconds": round(time.perf_counter() - started, 1), "sample": accepted[:12],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", default=str(DEFAULT_SQUAD))
    ap.add_argument("--calls", type=int, default=6, help="question-writing calls per paragraph, every mode")
    ap.add_argument("--paragraphs", type=int, default=24)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--llm", default=None, help="offline model (default: Qwen2.5-1.5B; 'smollm2-135m' for 0.3's)")
    ap.add_argument("--modes", nargs="*", default=None, help="only these modes (default: all five)")
    args = ap.parse_args()

    docs = load_squad(args.squad)[0][: args.paragraphs]
    chat, emb = default_chat(model=args.llm), default_embedder()
    base = GenerationConfig(max_calls_per_chunk=args.calls, max_per_chunk=100, patience=10**6)
    modes = {"context mask": (base, False), "mask of 15": (replace(base, max_mask=15), False),
             "facts known, not shown": (base, True), "facts known and shown": (replace(base, mask_known=True), True),
             "naive sampling": (replace(base, masking=False, adaptive=False), False)}
    results = [run_mode(name, cfg, docs, chat, emb, facts=facts) for name, (cfg, facts) in modes.items()
               if args.modes is None or name in args.modes]
    print(f"\n{chat.model_id}: {len(docs)} SQuAD paragraphs, {args.calls} question-writing calls each, same seeds\n")
    cols = ["generation_calls", "unique_questions", "unique_per_generation_call", "pairs_per_llm_call",
            "candidates", "rejected_duplicates", "duplicate_rate", "rejected_junk", "rejected_off_topic", "mean_mask",
            "max_mask", "wall_seconds"]
    print(f"{'':28}" + "".join(f"{r['mode']:>22}" for r in results))
    for c in cols:
        vals = [r[c] for r in results]
        print(f"{c:28}" + "".join(f"{v:>22.3f}" if isinstance(v, float) else f"{v:>22}" for v in vals))
    for r in results:
        print(f"\n{r['mode']}, first questions:\n  " + "\n  ".join(r["sample"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
