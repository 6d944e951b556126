"""Does every pair a precompute run stores stay findable by its own vector?

Replays the scenario of tests/integration/test_precompute.py's crash-and-resume test many times: a
batched run (two chunks per batch) over five Super Bowl paragraphs crashes on its third model
call, and a second run resumes it, each in a fresh store on disk (the real MiniLM, real Chroma; the
chat model is the test's scripted one: this is about the store, not what the model writes). After
each run, ``store.check()`` looks for every pair in the vector index. Reported: runs in which a pair
was stored but not in the index (or not found by its own vector), the pairs lost, and, where any
was, how many ``store.repair()`` wrote again and how many a check after it still misses.

``--plain-upsert`` writes as before 0.6 (one upsert, not checked); the default is the product's
write (``storinfer.store.integrity.upsert_indexed``: the write, then each pair written searched by
its own vector, then any id the index lacks written again).

    python benchmarks/store_index.py --runs 60 [--plain-upsert]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storinfer.store import qastore  # noqa: E402

LOST = re.compile(r"is not in the vector index|is not found by its own vector")
SQUAD = ROOT / "data" / "squad-dev-v1.1-superbowl" / "dev-v1.1-superbowl.json"


def use_plain_upsert() -> None:
    """Make ``QAStore.add`` write as before 0.6: one upsert, not checked (here and in scaling.py)."""

    def plain_upsert(col, ids, vectors, answers, metadatas) -> int:  # type: ignore[no-untyped-def]
        col.upsert(ids=ids, embeddings=vectors, documents=answers, metadatas=metadatas)
        return 0

    qastore.upsert_indexed = plain_upsert  # type: ignore[assignment]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--plain-upsert", action="store_true", help="write with one unchecked upsert (before 0.6)")
    args = ap.parse_args()
    if args.plain_upsert:
        use_plain_upsert()
    sys.path.insert(0, str(ROOT / "tests" / "integration"))  # the scripted chat models of the test
    from langchain_core.documents import Document
    from test_precompute import SMALL, Crashing, NamesChat

    from storinfer.precompute.generate.free import GenerationConfig
    from storinfer_langchain import QAStore, default_embeddings
    from storinfer_langchain.precompute import Precomputer

    rewrites: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            rewrites.append(record.getMessage())

    logging.getLogger("storinfer.store").addHandler(Count(level=logging.WARNING))
    embedding = default_embeddings()
    article = json.loads(SQUAD.read_text())["data"][0]
    docs = [Document(page_content=article["paragraphs"][i]["context"], id=f"p{i:03d}") for i in range(5)]
    config = GenerationConfig(**SMALL, min_relevance=0.0)
    lost_runs, lost_pairs, pairs, started = 0, 0, 0, time.perf_counter()
    repaired = after_repair = 0
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            with QAStore(Path(tmp) / f"s{run}", embedding=embedding) as store:
                try:
                    Precomputer(store, llm=Crashing(n=3), answer_with=lambda q: f"about {q}", config=config,
                                batch_chunks=2).run(docs, progress=False)
                except RuntimeError:
                    pass
                Precomputer(store, llm=NamesChat(), answer_with=lambda q: f"about {q}", config=config,
                            batch_chunks=2).run(docs, progress=False)
                lost = [p for p in store.check() if LOST.search(p)]
                pairs += sum(1 for _ in store.iter_pairs())
                lost_runs += bool(lost)
                lost_pairs += len(lost)
                if lost:
                    repaired += store.repair()
                    after_repair += sum(bool(LOST.search(p)) for p in store.check())
    write = "one unchecked upsert" if args.plain_upsert else "upsert_indexed"
    print(f"write: {write} | runs {args.runs} | pairs stored {pairs} | runs with a pair missing from the index "
          f"{lost_runs} | pairs missing {lost_pairs} | writes repeated by the check {len(rewrites)} | "
          f"store.repair() wrote {repaired} again, missing after it {after_repair} | {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
