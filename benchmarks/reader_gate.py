"""The reader's gate: what share of human questions would a reader check serve at <= 1% wrong?

1. ``candidates``: each stream's store is built as `decision.py` builds it (the articles'
   paragraphs precomputed by the answer-aware generator, no LLM, ``fact_answers="span"``); every
   human question is looked up (its ``k`` nearest keys) and each candidate is written with its
   stored answer, its source sentence, that sentence's neighbours and every fact stored from it,
   and whether it is right (`answer_matches`, as decision.py judges). Streams: ``calibration`` (the SQuAD *train*
   articles `tools/reader/data.py` never trains on: the threshold is chosen there),
   ``squad_superbowl`` and ``squad_24`` (the dev articles reported on).
2. A reader scores every candidate (`tools/reader/train.py --score`, or ``score`` here with the
   int8 ONNX file `tools/reader/export.py` writes, as it would ship).
3. ``report``: per scoring rule, the threshold with the most right serves at <= 1% wrong *on
   calibration*, then what it serves on each dev stream (right = share of all human questions
   served an answer naming a gold one; wrong = share of serves, with its 95% upper bound).

    python benchmarks/reader_gate.py candidates --squad-train PATH/train-v1.1.json.gz [--k 32]
    python benchmarks/reader_gate.py score --reader EXPORTED_DIR [--out SCORES_DIR]
    python benchmarks/reader_gate.py report SCORES_DIR [--target 0.01]
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


def score(args) -> None:
    """Score each stream's candidates with an exported reader (`tools/reader/onnx_reader.py`), in the
    format `tools/reader/train.py --score` writes: per question, per sentence read, P(not here) and per
    stored fact [P(exactly its span), P(inside its span)]."""
    import gzip

    from onnx_reader import OnnxReader
    from train import span_target  # the span the reader was trained to find

    reader = OnnxReader(args.reader)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stream in args.streams:
        t0 = time.time()
        with lzma.open(OUT / f"{stream}.jsonl.xz", "rt", encoding="utf-8") as fh:
            sentences = json.loads(fh.readline())["sentences"]
            rows = [json.loads(line) for line in fh][: args.limit]
        scores = {}
        for r in rows:
            ids = list(dict.fromkeys(c["sentence"] for c in r["cands"]))[: args.max_sentences]
            if not ids:
                scores[r["id"]] = []
                continue
            encodings, ps, pe = reader.read(r["question"], [sentences[i]["text"] for i in ids])
            per = []
            for b, (si, enc) in enumerate(zip(ids, encodings)):
                text = sentences[si]["text"]
                facts = []
                for answer, _aid in sentences[si]["facts"]:
                    at = text.find(answer)
                    ts, te = span_target(enc.type_ids, enc.offsets, at, at + len(answer))  # (0, 0): not found
                    facts.append([round(float(ps[b, ts] * pe[b, te]), 5),
                                  round(float(ps[b, ts:te + 1].sum() * pe[b, ts:te + 1].sum()), 5)]
                                 if ts else [0.0, 0.0])
                per.append([si, round(float(ps[b, 0] * pe[b, 0]), 5), facts])
            scores[r["id"]] = per
        with gzip.open(out_dir / f"{stream}-scores-{args.name}.json.gz", "wt", encoding="utf-8") as fh:
            json.dump(scores, fh)
        print(f"{stream}: {len(rows)} questions scored in {time.time() - t0:.0f} s", flush=True)


def load(stream: str, scores_dir: Path, name: str) -> tuple[dict, list[dict], dict] | None:
    """The candidates file of ``stream`` and the scores ``name`` gave it, if both exist."""
    import gzip

    cands, scored = OUT / f"{stream}.jsonl.xz", scores_dir / f"{stream}-scores-{name}.json.gz"
    if not cands.exists() or not scored.exists():
        return None
    with lzma.open(cands, "rt", encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        rows = [json.loads(line) for line in fh]
    with gzip.open(scored, "rt", encoding="utf-8") as fh:
        return header, rows, json.load(fh)


def refused(header: dict, r: dict, keys: int) -> set[str]:
    """The answer ids whose keys among the ``keys`` nearest all break a hard rule of the fact head."""
    from storinfer.match.features import Query
    from storinfer.match.verify import fact_refusal
    from storinfer.records import Match

    q = Query(r["question"])
    ok, seen = set(), set()
    for c in r["cands"][:keys]:
        meta = {"expected_answer": c["answer"], "answer_label": c["label"],
                "source_sentence": header["sentences"][c["sentence"]]["text"]}
        seen.add(c["answer_id"])
        if fact_refusal(q, Match(c["answer_id"], c["key"], c["answer"], c["sim"], meta)) is None:
            ok.add(c["answer_id"])
    return seen - ok


def decisions(header: dict, rows: list[dict], scores: dict, *, rule: int, sentences: int,
              keys: int | None = None, rules: bool = False) -> list[tuple[float, bool]]:
    """Per question: (the best fact's score, whether that fact is right); (0, False) when none.
    ``rule`` picks the score of a fact (0: P(exactly its span), 1: P(inside its span); the marked
    classifier has one), ``sentences`` how many of the nearest keys' sentences are read, ``keys``
    (if given) keeps only the facts whose own key is among that many nearest keys, ``rules`` drops
    the facts whose keys break the fact head's hard rules."""
    from storinfer.evaluate.squad import answer_matches

    out = []
    for r in rows:
        best, right = 0.0, False
        near = {c["answer_id"] for c in r["cands"][:keys]} if keys else None
        if rules and near is not None:
            near -= refused(header, r, keys or 8)
        for si, _null, facts in scores.get(r["id"], [])[:sentences]:
            for (answer, aid), fs in zip(header["sentences"][si]["facts"], facts):
                if near is not None and aid not in near:
                    continue
                x = fs[min(rule, len(fs) - 1)]
                if x > best:
                    best, right = x, answer_matches(answer, r["gold"])
        out.append((best, right))
    return out


def threshold(decided: list[tuple[float, bool]], target: float) -> float:
    """The lowest score cut whose serves are wrong at most ``target`` of the time (most right serves)."""
    ranked = sorted(decided, key=lambda d: -d[0])
    best_cut, best_right, wrong = 1.01, 0, 0
    for n, (score, right) in enumerate(ranked, 1):
        wrong += not right
        if score > 0 and wrong / n <= target and n - wrong > best_right and (n == len(ranked) or ranked[n][0] < score):
            best_cut, best_right = score, n - wrong
    return best_cut


def served(decided: list[tuple[float, bool]], cut: float) -> dict:
    from storinfer.match.bounds import clopper_pearson_upper

    hits = [right for score, right in decided if score >= cut]
    wrong = sum(not h for h in hits)
    return {"questions": len(decided), "served": len(hits), "right": (len(hits) - wrong) / max(1, len(decided)),
            "wrong": wrong / len(hits) if hits else 0.0, "wrong_n": wrong, "wrong_upper": clopper_pearson_upper(wrong, len(hits))}


def report(args) -> None:
    results = {}
    for name in args.scores:
        calib = load("calibration", Path(args.scores_dir), name)
        if calib is None:
            print(f"{name}: no calibration scores in {args.scores_dir}")
            continue
        rules = (0, 1) if name.startswith("reader") else (0,)
        for rule in rules:
            variants = [(m, keys, rules) for m in args.sentences for keys in (None, *args.keys)
                        for rules in ((False, True) if keys else (False,))]
            for m, keys, rules in variants:
                kw = {"rule": rule, "sentences": m, "keys": keys, "rules": rules}
                cut = threshold(decisions(*calib, **kw), args.target)
                row = {"cut": cut, "calibration": served(decisions(*calib, **kw), cut)}
                for stream in ("squad_superbowl", "squad_24"):
                    got = load(stream, Path(args.scores_dir), name)
                    if got is not None:
                        row[stream] = served(decisions(*got, **kw), cut)
                label = (f"{name} {'exact' if rule == 0 and name.startswith('reader') else 'inside' if rule else 'p'} "
                         f"{m} sentences, {'every fact' if keys is None else f'facts of the {keys} nearest keys'}"
                         f"{', hard rules' if rules else ''}")
                results[label] = row
                print(f"{label:72} cut {cut:.3f} | " + " | ".join(
                    f"{k} right {v['right']:6.1%} wrong {v['wrong']:5.2%} (upper {v['wrong_upper']:5.2%}, n={v['served']})"
                    for k, v in row.items() if k != "cut"), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("candidates")
    c.add_argument("--squad-train", help="SQuAD v1.1 train (train-v1.1.json.gz), for the calibration stream")
    c.add_argument("--streams", nargs="*", default=list(STREAMS), choices=STREAMS)
    c.add_argument("--k", type=int, default=32)
    sc = sub.add_parser("score")
    sc.add_argument("--reader", required=True, help="an exported reader's folder (tools/reader/export.py --target)")
    sc.add_argument("--name", default="reader-sentence", help="the scores' name in the report")
    sc.add_argument("--out", default=str(OUT / "scores"))
    sc.add_argument("--streams", nargs="*", default=list(STREAMS), choices=STREAMS)
    sc.add_argument("--max-sentences", type=int, default=8)
    sc.add_argument("--limit", type=int, default=None)
    r = sub.add_parser("report")
    r.add_argument("scores_dir")
    r.add_argument("--scores", nargs="*", default=["reader-sentence", "reader-neighbours", "marked-sentence"])
    r.add_argument("--sentences", nargs="*", type=int, default=[1, 2, 4, 8])
    r.add_argument("--keys", nargs="*", type=int, default=[8])
    r.add_argument("--target", type=float, default=0.01)
    r.add_argument("--json", default=None)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.command == "candidates":
        candidates(args)
    elif args.command == "score":
        score(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
