"""LlamaIndex defaults: our adapters over the LangChain models vs the llama-index HuggingFace
integrations (installed by `make setup` as dev extras), on the same weights.

Measures, in one process, what a LlamaIndex app pays for each route: time to load, time per
query embedding and per short answer, and whether the weights end up loaded twice (when the
LangChain side is used too, as StorInfer's store does).

    python benchmarks/llamaindex_models.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = ["Who won Super Bowl 50?", "Where was Super Bowl 50 played?", "What does AFC stand for?",
             "Which network broadcast the game?", "Who headlined the halftime show?"]


def timed(fn, n: int = 20) -> float:
    fn()
    ms = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms)


def main() -> None:
    import torch
    from llama_index.core.llms import ChatMessage

    from storinfer.local import default_embedder, load_smollm2, minilm_path, prepare_smollm2
    from storinfer_llamaindex import StorInferEmbedding, StorInferLLM

    # The engine's embedder is loaded first, as in a StorInfer app (the store embeds with it).
    lc_emb = default_embedder()
    tokenizer, model = load_smollm2()
    rows = []

    t = time.perf_counter()
    ours_emb = StorInferEmbedding()
    rows.append(("embedding", "StorInfer adapter", (time.perf_counter() - t) * 1000,
                 timed(lambda i=0: ours_emb.get_query_embedding(QUESTIONS[i % 5])), ours_emb.engine_embedder is lc_emb))
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    t = time.perf_counter()
    hf_emb = HuggingFaceEmbedding(model_name=minilm_path(), device="cpu")
    rows.append(("embedding", "llama-index HuggingFaceEmbedding", (time.perf_counter() - t) * 1000,
                 timed(lambda i=0: hf_emb.get_query_embedding(QUESTIONS[i % 5])), False))

    msgs = lambda i: [ChatMessage(role="user", content=QUESTIONS[i % 5])]  # noqa: E731
    t = time.perf_counter()
    ours_llm = StorInferLLM(max_new_tokens=24)
    rows.append(("LLM (24 new tokens)", "StorInfer adapter", (time.perf_counter() - t) * 1000,
                 timed(lambda i=0: ours_llm.chat(msgs(i)), n=5), ours_llm.engine_chat.model is model))
    from llama_index.llms.huggingface import HuggingFaceLLM

    t = time.perf_counter()
    hf_llm = HuggingFaceLLM(model_name=str(prepare_smollm2()), tokenizer_name=str(prepare_smollm2()), device_map="cpu",
                            model_kwargs={"dtype": torch.bfloat16}, is_chat_model=True, max_new_tokens=24,
                            generate_kwargs={"do_sample": False})
    rows.append(("LLM (24 new tokens)", "llama-index HuggingFaceLLM", (time.perf_counter() - t) * 1000,
                 timed(lambda i=0: hf_llm.chat(msgs(i)), n=5), hf_llm._model is model))

    print(f"{'what':22} {'route':36} {'load ms':>9} {'per call ms (p50)':>18}  weights shared with the engine")
    for what, route, load, call, shared in rows:
        print(f"{what:22} {route:36} {load:9.0f} {call:18.1f}  {'yes' if shared else 'no (a second copy)'}")


if __name__ == "__main__":
    main()
