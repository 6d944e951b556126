"""Does the transformers LLM path still earn its place beside llama.cpp? One run, same machine.

For SmolLM2-135M-Instruct (the same GGUF weights both ways) it measures, greedy, 48 new tokens:
one prompt (tokens/s of the reply) and a batch of 8 prompts (reply tokens/s over the batch):

* transformers 5, the GGUF de-quantised to bfloat16 (StorInfer 0.3's path: left-padded batches),
  with and without ``torch.set_flush_denormal(True)`` (flush-to-zero);
* llama.cpp (``xllamacpp``): one slot, and 8 parallel slots (StorInfer 0.4's path).

Then the offline Qwen2.5-1.5B (and 0.5B, if prepared) on llama.cpp, the default LLM of 0.4.
The transformers path needs ``pip install gguf accelerate`` (not StorInfer dependencies since 0.4).

    python benchmarks/llm_runtimes.py [--skip-transformers]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storinfer.models.llamacpp import LlamaCppChat  # noqa: E402
from storinfer.models.weights import WeightsError, gguf_path  # noqa: E402

PROMPTS = [f"Name {w} and say one thing about each." for w in
           ("three cities", "two rivers", "three painters", "two composers", "three planets", "two mountains",
            "three novels", "two films")]
NEW = 48


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def transformers_rows(gguf: Path) -> list[tuple[str, float, float]]:
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16).eval()
    tok.padding_side = "left"
    pad = tok.pad_token_id or tok.eos_token_id

    def run(texts: list[str]) -> int:
        prompts = [tok.apply_chat_template(conv(t), tokenize=False, add_generation_prompt=True) for t in texts]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            ids = model.generate(**enc, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, pad_token_id=pad)
        return int((ids.shape[1] - enc["input_ids"].shape[1]) * ids.shape[0])

    rows = []
    for ftz in (False, True):
        torch.set_flush_denormal(ftz)
        run(PROMPTS[:1])  # warm-up
        one = [timed(lambda: run(PROMPTS[:1])) for _ in range(3)]
        batch = timed(lambda: run(PROMPTS))
        name = f"transformers bf16, flush-to-zero {'on' if ftz else 'off'}"
        rows.append((name, statistics.median(one), batch))
    torch.set_flush_denormal(False)
    return rows


def timed(fn) -> float:
    t = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t)


def llamacpp_rows(gguf: Path, label: str) -> list[tuple[str, float, float]]:
    rows = []
    for parallel in (1, 8):
        t = time.perf_counter()
        chat = LlamaCppChat(gguf, parallel=parallel, max_new_tokens=NEW, priority="normal")
        load = time.perf_counter() - t

        def rate(texts: list[str], chat=chat) -> float:
            t = time.perf_counter()
            replies = chat.chat_batch([conv(x) for x in texts])
            seconds = time.perf_counter() - t
            return sum(chat.count_tokens(r) for r in replies) / seconds  # counted after the clock stops

        rate(PROMPTS[:1])
        one = [rate(PROMPTS[:1]) for _ in range(3)]
        batch = rate(PROMPTS)
        rows.append((f"llama.cpp {label}, {parallel} slot{'s' if parallel > 1 else ''} (load {load:.1f} s)",
                     statistics.median(one), batch))
        del chat
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-transformers", action="store_true")
    args = ap.parse_args()
    smol = gguf_path("smollm2-135m")
    rows = [] if args.skip_transformers else transformers_rows(smol)
    rows += llamacpp_rows(smol, "SmolLM2-135M")
    for name in ("qwen2.5-0.5b", "qwen2.5-1.5b"):
        try:
            rows += llamacpp_rows(gguf_path(name), name)
        except WeightsError as err:
            print(f"skipped {name}: {err}")
    print(f"{'runtime':58} {'one prompt tok/s':>17} {'batch of 8 tok/s':>17}")
    for name, one, batch in rows:
        print(f"{name:58} {one:17.1f} {batch:17.1f}")


if __name__ == "__main__":
    main()
