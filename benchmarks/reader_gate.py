"""The reader's gate: what share of human questions would a reader check serve at <= 1% wrong?

1. ``candidates``: each stream's store is built as `decision.py` builds it (the articles'
   paragraphs precomputed by the answer-aware generator, no LLM, ``fact_answers="span"``); every
   human question is looked up (its ``k`` nearest keys) and each candidate is written with its
   stored answer, its source sentence, that sentence's neighbours and every fact stored from it,
   and whether it is right (`answer_matches`, as decision.py judges). Streams: ``calibration`` (the SQuAD *train*
   articles `tools/reader/data.py` never trains on: the threshold is chosen there),
   ``squad_superbowl`` and ``squad_24`` (the dev articles reported on).
2. A reader scores every candidate (`tools/reader/train.py --score`, or ``score`` here with a
   shipped reader).
3. ``report``: per scoring rule, the threshold with the most right serves at <= 1% wrong *on
   calibration*, then what it serves on each dev stream (right = share of all human questions
   served an answer naming a gold one; wrong = share of serves, with its 95% upper bound).

    python benchmarks/reader_gate.py candidates --squad-train PATH/train-v1.1.json.gz [--k 32]
    python benchmarks/reader_gate.py report SCORES_DIR
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tools" / "reader"))

OUT = ROOT / "benchmarks" / "out" / "reader_gate"
PARTITION = "kb"
STREAMS = ("calibration", "squad_superbowl", "squad_24")


def articles(stream: str, squad_train: str | None) -> list[tuple[str, list[str], list[tuple[str, tuple[str, ...]]]]]:
    """(title, paragraphs, [(question, golds)]) of each article of ``stream``."""
    if stream == "calibration":
        from data import part_of, read_squad

        if not squad_train:
            raise SystemExit("the calibration stream needs --squad-train PATH (SQuAD v1.1 train)")
        data, _digest = read_squad(squad_train)
        chosen = [a for pos, a in enumerate(data) if part_of(pos) == "calibration"]
    else:
        path = ROOT / "data" / "squad-dev-v1.1-24articles" / "dev-v1.1-24articles.json"
        chosen = json.loads(path.read_text())["data"]
        if stream == "squad_superbowl":
            chosen = [a for a in chosen if a["title"] == "Super_Bowl_50"]
    return [(a["title"], [p["context"] for p in a["paragraphs"]],
             [(qa["question"].strip(), tuple(x["text"] for x in qa["answers"])) for p in a["paragraphs"] for qa in p["qas"]])
            for a in chosen]


def build(folder: Path, arts, embedder):
    from storinfer import Document, GenerationConfig, Precomputer, QAStore

    class _NoLLM:
        def chat_batch(self, conversations, **_kw):
            raise RuntimeError("this precompute calls no LLM")

    if folder.exists():
        shutil.rmtree(folder)
    store = QAStore(folder, embedding=embedder)
    docs = [Document(p, id=f"{title}-p{i:03d}") for title, paras, _q in arts for i, p in enumerate(paras)]
    config = GenerationConfig(free_generation=False, rephrasings=0, fact_answers="span")
    Precomputer(store, llm=_NoLLM(), partition=PARTITION, chunk_size=None, config=config).run(docs, progress=False)
    return store


def neighbours(arts) -> dict[tuple[str, str], tuple[str, str]]:
    """(doc id, sentence) -> (previous sentence, next sentence), parsed as precompute parses."""
    from storinfer.precompute.generate.facts import parse

    ids = [f"{title}-p{i:03d}" for title, paras, _q in arts for i in range(len(paras))]
    out = {}
    for doc_id, doc in zip(ids, parse([p for _t, paras, _q in arts for p in paras])):
        sents = [s.text for s in doc.sents]
        for i, s in enumerate(sents):
            out[(doc_id, s[:500])] = (sents[i - 1] if i else "", sents[i + 1] if i + 1 < len(sents) else "")
    return out


def candidates(args) -> None:
    from storinfer.evaluate.squad import answer_matches
    from storinfer.models import default_embedder
    from storinfer.text import clean_text

    embedder = default_embedder()
    for stream in args.streams:
        t0 = time.time()
        arts = articles(stream, args.squad_train)
        store = build(OUT / "stores" / stream, arts, embedder)
        near = neighbours(arts)
        sentences: list[dict] = []
        index: dict[tuple[str, str], int] = {}
        facts: dict[tuple[str, str], dict[str, str]] = {}  # every stored fact of each sentence: answer -> answer_id
        for m in store.iter_pairs(partition=PARTITION):
            key = (str(m.metadata.get("doc_id", "")), str(m.metadata.get("source_sentence", "")))
            facts.setdefault(key, {}).setdefault(str(m.metadata.get("expected_answer") or m.answer),
                                                 str(m.metadata.get("answer_id", "")))
        rows = []
        n = 0
        for _title, _paras, qas in arts:
            for question, golds in qas:
                exact = store.exact(clean_text(question), namespace="default", partition=PARTITION)
                found = store.search(question, partition=PARTITION, k=args.k)
                cands = []
                for m in found:
                    meta = m.metadata
                    sent = str(meta.get("source_sentence", ""))
                    key = (str(meta.get("doc_id", "")), sent)
                    if key not in index:
                        prev, nxt = near.get(key, ("", ""))
                        index[key] = len(sentences)
                        sentences.append({"text": sent, "prev": prev, "next": nxt,
                                          "facts": [[a, aid] for a, aid in facts.get(key, {}).items()]})
                    answer = str(meta.get("expected_answer") or m.answer)
                    cands.append({"key": m.question, "sim": round(m.similarity, 5), "answer": answer,
                                  "label": str(meta.get("answer_label", "")), "sentence": index[key],
                                  "answer_id": str(meta.get("answer_id", "")), "right": answer_matches(answer, golds)})
                rows.append({"id": f"{stream}-{n}", "question": question, "gold": list(golds),
                             "exact": exact is not None and answer_matches(str(exact.metadata.get("expected_answer") or exact.answer), golds),
                             "exact_found": exact is not None, "cands": cands})
                n += 1
        keys = store.count(partition=PARTITION)
        store.close()
        path = OUT / f"{stream}.jsonl.xz"
        with lzma.open(path, "wt", encoding="utf-8") as fh:
            fh.write(json.dumps({"stream": stream, "k": args.k, "keys": keys, "sentences": sentences}) + "\n")
            for r in rows:
                fh.write(json.dumps(r) + "\n")
        stored = sum(any(c["right"] for c in r["cands"]) for r in rows)
        print(f"{stream}: {len(arts)} articles, {keys} keys, {len(rows)} questions; a right key among the {args.k} "
              f"nearest for {stored / len(rows):.1%}; {time.time() - t0:.0f} s -> {path}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("candidates")
    c.add_argument("--squad-train", help="SQuAD v1.1 train (train-v1.1.json.gz), for the calibration stream")
    c.add_argument("--streams", nargs="*", default=list(STREAMS), choices=STREAMS)
    c.add_argument("--k", type=int, default=32)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.command == "candidates":
        candidates(args)


if __name__ == "__main__":
    main()
