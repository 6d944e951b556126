"""A lookup while the LLM generates on the same cores: does the model starve it?

A store of 2,000 pairs; 200 reworded lookups (ONNX MiniLM + Chroma + the hit verifier) timed
alone, then while the offline Qwen2.5-1.5B generates long replies in another thread, for several
llama.cpp thread settings (threads, scheduling priority). One process, one run.

    python benchmarks/lookup_beside_llm.py [--model qwen2.5-1.5b]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storinfer import QAPair, QAStore  # noqa: E402
from storinfer.models import default_embedder  # noqa: E402
from storinfer.models.llamacpp import LlamaCppChat  # noqa: E402
from storinfer.models.weights import resolve  # noqa: E402

TOPICS = ["card", "loan", "mortgage", "savings", "transfer", "pin", "account", "fee", "refund", "statement"]


def lookups(store: QAStore, n: int) -> list[float]:
    from storinfer import StoreFront

    front = StoreFront(store, learner=None, write_behind=False)
    ms = []
    for i in range(n):
        q = f"how can I change the {TOPICS[i % 10]} limit number {i % 200} please"
        t = time.perf_counter()
        front.lookup(q)
        ms.append((time.perf_counter() - t) * 1000)
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-1.5b")
    ap.add_argument("--lookups", type=int, default=200)
    args = ap.parse_args()
    path, model_id = resolve(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        store = QAStore(tmp, embedding=default_embedder())
        store.add([QAPair(f"How do I change the {TOPICS[i % 10]} limit number {i}?", f"Answer {i}.") for i in range(2000)])
        lookups(store, 50)  # warm-up
        rows = [("alone (the model loaded, idle)", lookups(store, args.lookups))]
        for threads, priority in ((2, "normal"), (2, "low"), (1, "normal")):
            chat = LlamaCppChat(path, model_id=model_id, parallel=1, threads=threads, priority=priority, max_new_tokens=400)
            stop = threading.Event()

            def generate(chat=chat, stop=stop) -> None:
                while not stop.is_set():
                    chat.chat_batch([[{"role": "user", "content": "Write a long story about a lighthouse."}]], cancel=stop)

            worker = threading.Thread(target=generate, daemon=True)
            worker.start()
            time.sleep(2.0)  # generating by now
            rows.append((f"beside generation: threads={threads}, priority={priority}", lookups(store, args.lookups)))
            stop.set()
            worker.join(60)
        store.close()
    print(f"{'lookup (reworded, 2k pairs)':50} {'p50 ms':>8} {'p90 ms':>8} {'mean ms':>8}")
    for name, ms in rows:
        q = statistics.quantiles(ms, n=10)
        print(f"{name:50} {statistics.median(ms):8.2f} {q[8]:8.2f} {statistics.fmean(ms):8.2f}")


if __name__ == "__main__":
    main()
