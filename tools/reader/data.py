"""SQuAD v1.1 train, parsed once the way precompute parses a chunk: the reader's training data.

Each paragraph is parsed with the product's spaCy pipeline (`storinfer.precompute.generate.facts`):
its sentences, and each sentence's facts (the entity and noun-phrase spans precompute asks about,
so the reader learns to tell apart exactly the spans a store holds). Each question keeps its gold
answer and the sentence that holds it (questions whose answer crosses a sentence boundary are
left out).

Articles are split by position in the file: every 20th (positions 10, 30, ...: 22 articles) is the
*calibration* part, never trained on (the reader's serving threshold is chosen there,
`benchmarks/reader_gate.py`); the rest is the *train* part. The dev articles every benchmark
reports on are another file altogether.

    python tools/reader/data.py --squad-train PATH/train-v1.1.json.gz --out tools/reader/out/squad_train.jsonl.gz

Writes one JSON line per paragraph: {"part", "article", "title", "paragraph", "sents": [...],
"facts": [[[start, end, label], ...] per sentence], "qas": [[question, answer, sentence, start, end], ...]},
offsets in characters within the sentence; and prints the input's sha256.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storinfer.precompute.generate.facts import load_nlp, sentence_facts  # noqa: E402

CALIBRATION_EVERY, CALIBRATION_AT = 20, 10
SQUAD_TRAIN_SHA256 = "f984acd1ac3ee5f7488c63473a3a867485da6cdd5e080591b3dfff1346e27e9e"
"""sha256 of the `train-v1.1.json.gz` the gate's reader was trained on (87,599 questions)."""


def part_of(position: int) -> str:
    return "calibration" if position % CALIBRATION_EVERY == CALIBRATION_AT else "train"


def read_squad(path: str | Path) -> tuple[list[dict], str]:
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    text = gzip.decompress(raw) if str(path).endswith(".gz") else raw
    return json.loads(text)["data"], digest


def paragraph_record(doc, context: str, qas: list[dict]) -> dict:
    sents, facts, bounds = [], [], []
    for sent in doc.sents:
        sents.append(sent.text)
        bounds.append((sent.start_char, sent.end_char))
        facts.append([[f.span.start_char - sent.start_char, f.span.end_char - sent.start_char, f.label]
                      for f in sentence_facts(sent)])
    out_qas = []
    for qa in qas:
        answer = qa["answers"][0]
        start, text = answer["answer_start"], answer["text"]
        end = start + len(text)
        for i, (s, e) in enumerate(bounds):
            if s <= start and end <= e:
                out_qas.append([qa["question"].strip(), text, i, start - s, end - s])
                break
    return {"sents": sents, "facts": facts, "qas": out_qas}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad-train", required=True, help="SQuAD v1.1 train, train-v1.1.json(.gz)")
    ap.add_argument("--out", default=str(ROOT / "tools" / "reader" / "out" / "squad_train.jsonl.gz"))
    ap.add_argument("--articles", type=int, default=None, help="only the first N articles (a quick check)")
    args = ap.parse_args()
    data, digest = read_squad(args.squad_train)
    print(f"input sha256 {digest}" + ("" if digest == SQUAD_TRAIN_SHA256 else " (not the file the gate's reader was trained on)"))
    data = data[: args.articles] if args.articles else data
    nlp = load_nlp()
    jobs = [(pos, a["title"], i, p) for pos, a in enumerate(data) for i, p in enumerate(a["paragraphs"])]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    kept = dropped = 0
    with gzip.open(args.out, "wt", encoding="utf-8") as fh:
        docs = nlp.pipe((p["context"] for _pos, _t, _i, p in jobs), batch_size=64)
        for (pos, title, i, p), doc in zip(jobs, docs):
            rec = {"part": part_of(pos), "article": pos, "title": title, "paragraph": i,
                   **paragraph_record(doc, p["context"], p["qas"])}
            kept += len(rec["qas"])
            dropped += len(p["qas"]) - len(rec["qas"])
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"{len(jobs)} paragraphs, {kept} questions kept, {dropped} left out (answer across sentences) -> {args.out}")


if __name__ == "__main__":
    main()
