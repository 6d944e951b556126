"""The caches people use today, on `decision.py`'s streams, in the same run.

* ``gptcache``: GPTCache 0.1.44 in semantic mode (SQLite + FAISS, ``SearchDistanceEvaluation``) at its
  default ``similarity_threshold=0.8``;
* ``redisvl``: RedisVL's ``SemanticCache`` at its default ``distance_threshold=0.1`` (cosine >= 0.9), on
  a Redis Stack server (``--redis-url``; ``benchmarks/redis_stack.sh`` starts one offline).

Both use our MiniLM vectors (computed once per text: the same vectors StorInfer stores), start from the
stream's knowledge base (its stored questions and answers; for SQuAD the precomputed fact keys), see the
queries in the same order, and store each miss's answer, as StorInfer does. Right and wrong as
`decision.py` counts them.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import GPTCacheSemantic, RedisVLSemantic  # noqa: E402

from storinfer.match.bounds import clopper_pearson_upper  # noqa: E402
from storinfer.text import clean_text  # noqa: E402


class Vectors:
    """Each text's MiniLM vector, computed once (knowledge base and queries in batches)."""

    def __init__(self, embedder, texts: list[str]) -> None:
        unique = list(dict.fromkeys(clean_text(t) for t in texts))
        self.embedder = embedder
        self.known = dict(zip(unique, embedder.embed_documents(unique)))

    def __call__(self, text: str) -> list[float]:
        key = clean_text(text)
        if key not in self.known:
            self.known[key] = self.embedder.embed_query(key)
        return self.known[key]


def systems(redis_url: str | None) -> dict[str, Callable[[Path, Vectors, str], object]]:
    out: dict[str, Callable[[Path, Vectors, str], object]] = {
        "gptcache": lambda folder, vec, _tag: GPTCacheSemantic(folder, 0.8, vec)}
    if redis_url:
        out["redisvl"] = lambda _folder, vec, tag: RedisVLSemantic(redis_url, 0.1, vec, tag)
    return out


def replay(stream, kb: list[tuple[str, str]], name: str, make, embedder, tag: str) -> dict:
    """One peer on one stream (see the module docstring)."""
    vectors = Vectors(embedder, [q for q, _a in kb] + [q.text for q in stream.queries])
    folder = Path(tempfile.mkdtemp(prefix="storinfer-decision-peer-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # after GPTCache's own exit flush
    cache = make(folder / "cache", vectors, f"{tag}-{uuid.uuid4().hex[:8]}")  # a fresh index every run
    answers: dict[str, str] = {}
    for i, (q, a) in enumerate(kb):
        key = f"kb-{i}"
        answers[key] = a
        cache.store(q, key)
    right = wrong = 0
    for i, q in enumerate(stream.queries):
        key = cache.lookup(q.text)
        if key is not None:
            ok = stream.right(q, answers[key])
            right += ok
            wrong += not ok
            continue
        answers[f"q-{i}"] = q.answers[0]
        cache.store(q.text, f"q-{i}")
    served = right + wrong
    matchable = sum(q.matchable for q in stream.queries) or 1
    return {"system": name, "right": right / matchable, "wrong": wrong / served if served else 0.0, "served": served,
            "wrong_n": wrong, "wrong_upper": clopper_pearson_upper(wrong, served)}
