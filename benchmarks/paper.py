"""The paper's experiment, end to end with a real chain: Super Bowl paragraphs, all their human questions.

StorInfer (2025) precomputes question-answer pairs for a RAG app's documents and serves stored
answers to matching user questions; it reports up to 17.3% lower latency. This script does the
same on the first ``--paragraphs`` paragraphs of SQuAD's Super Bowl 50 article (default 20) and
every human question about them (378 for 20), with the offline default Qwen2.5-1.5B as the RAG
chain (MiniLM retrieval of the best paragraph, then the LLM answers from it).

Two phases, each resumable (a killed run picks up where it stopped):

1. ``prepare``: precompute the paragraphs with the default ``Precomputer`` (both generators,
   rephrasings; every answer written by the plain RAG chain itself) into ``OUT/store``, then run the
   plain chain on every human question, in a fixed shuffled order (seed 0), and record its answer and
   wall time (``OUT/plain.jsonl``, one line per question, appended as it goes). This is the slow part:
   about 1.5 hours on 2 cores.
2. ``replay``: each system starts from a copy of the precomputed store and sees the questions in the
   same order through ``StoreFront``; a hit is timed as the lookup; a miss is the lookup plus the chain,
   whose answer and time are the ones the plain pass measured for that question (the chain is greedy,
   so it gives the same answer again; its time is what it took), and its answer is stored and labelled
   as an app's would be. Per system: hits (from precomputed pairs and from stored answers), wrong hits
   (the served answer scores clearly worse than the plain chain's, or the matched question asks
   something else: :class:`squad_bench.Judge`), EM/F1 against the gold answers beside the
   plain chain's, and end-to-end latency (mean, p50, p95) with its reduction against the plain chain.

    python benchmarks/paper.py prepare [--paragraphs 20] [--questions N] [precompute size options] [--out DIR]
    python benchmarks/paper.py replay  [--paragraphs 20] [--questions N] [--out DIR] [--json FILE]

``--questions N`` keeps the first N questions of the shuffled order (both phases must be given the
same); the precompute's size options are those of `storinfer precompute` (`--max-calls-per-chunk`,
...). A run that only checks the script works: `--paragraphs 1 --questions 3 --max-calls-per-chunk 1
--max-per-chunk 2 --max-facts-per-chunk 2 --rephrasings 0` with ``STORINFER_LLM=smollm2-135m``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SQUAD = ROOT / "data" / "squad-dev-v1.1-superbowl" / "dev-v1.1-superbowl.json"
OUT = ROOT / "benchmarks" / "out" / "paper"
RESULTS = ROOT / "benchmarks" / "results" / "paper.json"
PARTITION = "rag"


def load(paragraphs: int, limit: int | None = None):
    """The first ``paragraphs`` paragraphs and their questions in a fixed shuffled order (the first ``limit``)."""
    from storinfer.evaluate.squad import load_squad

    docs, questions = load_squad(SQUAD)
    docs = docs[:paragraphs]
    questions = [q for q in questions if q.paragraph < len(docs)]
    random.Random(0).shuffle(questions)
    return docs, questions[:limit]


def prepare(args) -> None:
    from squad_bench import RagAnswerer, generation_config

    from storinfer import Precomputer, QAStore, default_chat, default_embedder

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs, questions = load(args.paragraphs, args.questions)
    embedder = default_embedder()
    chat = default_chat(max_new_tokens=args.answer_tokens)
    plain = RagAnswerer(docs, embedder, chat)
    t0 = time.perf_counter()
    with QAStore(out / "store", embedding=embedder) as store:
        summary = Precomputer(store, llm=chat, answer_with=plain, partition=PARTITION,
                              config=generation_config(args)).run(docs, progress=True)
        keys = store.count()
    # One entry per run that did work: a resumed run that found every chunk done keeps the first's figures.
    runs_path = out / "precompute.json"
    runs = json.loads(runs_path.read_text()).get("runs", []) if runs_path.exists() else []
    if summary.chunks_processed or not runs:
        runs.append({"paragraphs": len(docs), "keys": keys, "summary": summary.as_dict(),
                     "wall_s_this_run": time.perf_counter() - t0})
        runs_path.write_text(json.dumps({"runs": runs}, indent=1, default=str))
    print(f"precompute: {len(docs)} paragraphs, {keys} keys ({summary.pairs_stored} pairs this run)", flush=True)
    done = set()
    path = out / "plain.jsonl"
    if path.exists():
        done = {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}
    plain(questions[0].question)  # warm-up, not timed
    with path.open("a") as fh:
        for n, q in enumerate(questions):
            if q.id in done:
                continue
            load_before = os.getloadavg()[0]
            t = time.perf_counter()
            answer = plain(q.question)
            ms = (time.perf_counter() - t) * 1000
            fh.write(json.dumps({"id": q.id, "question": q.question, "answer": answer, "ms": ms,
                                 "loadavg": round(load_before, 2)}) + "\n")
            fh.flush()
            print(f"plain {n + 1}/{len(questions)}: {ms:.0f} ms", flush=True)


def main() -> None:
    from squad_bench import add_precompute_options

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["prepare", "replay"])
    ap.add_argument("--paragraphs", type=int, default=20)
    ap.add_argument("--questions", type=int, default=None, help="only the first N questions (default all)")
    ap.add_argument("--answer-tokens", type=int, default=24)
    add_precompute_options(ap)
    ap.add_argument("--out", default=str(OUT), help=f"the store and the plain pass (default {OUT.relative_to(ROOT)})")
    ap.add_argument("--json", type=Path, default=RESULTS, help=f"replay: the results (default {RESULTS.relative_to(ROOT)})")
    ap.add_argument("--systems", nargs="*", help="replay only these (new, fixed)")
    args = ap.parse_args()
    if args.phase == "prepare":
        prepare(args)
    else:
        from paper_replay import replay

        replay(args)


if __name__ == "__main__":
    main()
