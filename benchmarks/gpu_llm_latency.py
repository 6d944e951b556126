"""What a hit saves against GPU inference: latency of realistic-size LLMs on one GPU.

No model hub can be reached from the GPU machine and no 8B weights ship on PyPI, so the models
are built from their published architectures with random bf16 weights. For a fixed number of
tokens, the weights' values do not change the work, so the timing is that of the real model;
generation is forced to exactly N new tokens (EOS off). Plain transformers ``generate``
(no vLLM / TensorRT), batch 1 (one user waiting) and batch 8.

Run on the borrowed GPU (see README): ``python3 benchmarks/gpu_llm_latency.py``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

MODELS = {
    # Llama-3.1-8B's published config.
    "llama-3.1-8b-architecture": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                      rope_theta=500000.0, max_position_embeddings=8192),
    # SmolLM2-135M's published config: the model the CPU benchmarks use.
    "smollm2-135m-architecture": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                      num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                                      rope_theta=100000.0, max_position_embeddings=8192, tie_word_embeddings=True),
}
PROMPT_TOKENS = 350  # a RAG prompt: one ~250-token paragraph, instructions and the question
OUTPUTS = (32, 64, 128)
REPEATS = 10


def time_generate(model: LlamaForCausalLM, vocab: int, batch: int, new_tokens: int) -> list[float]:
    ids = torch.randint(0, vocab, (batch, PROMPT_TOKENS), device="cuda")
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0)
    model.generate(ids, **kwargs)  # warm-up
    out = []
    for _ in range(REPEATS):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(ids, **kwargs)
        torch.cuda.synchronize()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    print(f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"python {platform.python_version()}")
    rows = []
    for name, cfg in MODELS.items():
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = LlamaForCausalLM(LlamaConfig(**cfg)).to(torch.bfloat16).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e9
        for batch in (1, 8):
            for n in OUTPUTS:
                ms = time_generate(model, cfg["vocab_size"], batch, n)
                row = {"model": name, "params_b": round(params, 2), "batch": batch, "prompt_tokens": PROMPT_TOKENS,
                       "new_tokens": n, "p50_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}
                rows.append(row)
                print(f"{name:28} {params:5.2f}B  batch {batch}  {PROMPT_TOKENS}+{n:3d} tokens  "
                      f"p50 {row['p50_ms']:8.1f} ms  (min {row['min_ms']:.1f}, max {row['max_ms']:.1f})", flush=True)
        del model
        torch.cuda.empty_cache()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
