"""StorInfer demo: the offline LLM (Qwen2.5-1.5B on llama.cpp) behind a StorInferCache on a fresh store.

Run with `make demo` (`STORINFER_LLM=smollm2-135m make demo` for the small, fast model, as the test
suite runs it). Prints each call's latency and whether the store answered it.
"""

import tempfile
import time

from langchain_core.globals import set_llm_cache

from storinfer_langchain import StorInferCache, default_chat_model


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        cache = StorInferCache(f"{folder}/store")
        set_llm_cache(cache)
        chat = default_chat_model(max_new_tokens=48)
        questions = [
            "What does AFC stand for in American football?",
            "What does AFC stand for in American football?",  # identical: exact hit
            "In American football, what does the AFC stand for?",  # paraphrase: similar hit
            "What does NFC stand for in American football?",  # look-alike: must run the model
            "What is the capital of France?",  # unrelated: runs the model
        ]
        for q in questions:
            hits_before = cache.stats()["hits"]
            start = time.perf_counter()
            answer = chat.invoke(q).content
            ms = (time.perf_counter() - start) * 1000
            source = "store" if cache.stats()["hits"] > hits_before else "LLM  "
            print(f"{ms:8.1f} ms  {source}  {q}\n{'':17}-> {answer[:90]!r}")
            cache.flush()  # (not needed: a lookup reads the answers still queued; it keeps the timings apart)
        s = cache.stats()
        print(f"\nhits {s['hits']}  misses {s['misses']}  hit rate {s['hit_rate']:.0%}  stored {cache.store.count()} pairs")


if __name__ == "__main__":
    main()
