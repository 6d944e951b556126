"""StorInfer beside the caches people use today: same streams, same machine, one run.

Systems (each starts empty, sees the queries in order, and stores the answer of every miss):
- ``langchain-inmemory``: LangChain's ``InMemoryCache`` (exact prompt match);
- ``gptcache-0.8`` / ``gptcache-0.975``: GPTCache 0.1.44 in semantic mode (SQLite + FAISS,
  ``SearchDistanceEvaluation``), with our MiniLM as its embedding function, at its documented
  default ``similarity_threshold=0.8`` (cosine >= 0.6 on normalised vectors) and at 0.975
  (cosine >= 0.95, StorInfer's default floor);
- ``redisvl-0.2`` / ``redisvl-0.05``: RedisVL's ``SemanticCache`` (Redis Stack 7.4 with its search
  module, `--redis-url`; `benchmarks/redis_stack.sh` starts one offline), our MiniLM as its
  vectorizer, at cosine distance 0.2 (cosine >= 0.8) and 0.05 (cosine >= 0.95);
- ``storinfer-cold``: StorInfer's default (the learner, ``max_wrong_rate=0.01``) with
  runtime answers only (no precompute);
- ``storinfer-precompute``: the same after a precompute over the knowledge base;
- ``storinfer-fixed-precompute``: the shipped verifier at its point on the same precompute, nothing
  learnt (``learner=None``).
The quick run in docs/benchmarks.md came from this script at d1a3b50, which ran 0.3's verifier as
``storinfer-0.3-precompute`` (``git show d1a3b50:benchmarks/peers.py``); ``results/peers.json``
(the full run) from f322a54.

Streams:
1. ``squad``: the human questions of 5 SQuAD dev articles (Super Bowl and 4 of other kinds), in
   a fixed shuffled order; the knowledge base is their paragraphs. A hit is right when the served
   answer's question has gold answers that agree with the query's (token F1 >= 0.5 or one
   contains the other).
2. ``clinc150-zipf``: 2,000 queries drawn with a Zipf popularity (s = 1.1) over CLINC150's 150
   intents, each a random test phrasing of its intent, plus 10% out-of-scope queries (never to be
   served). The knowledge base is the intents' descriptions. A hit is right when the served
   answer belongs to the query's intent.
3. ``exact-repeats``: 300 CLINC150 test queries, then the same 300 again.

The "LLM" answers a miss with a record of what it was asked (the intent, or the question's gold
answers), so the judge knows what a served answer answers; SmolLM2's own latency is measured on
a sample of real calls of the offline model (`--llm`) and end-to-end latency is mean lookup +
miss share x mean LLM latency. StorInfer's explored hits count as misses (the chain answered).

Precompute (StorInfer): the engine's question writer (its prompt, parser and deduplication) over
each knowledge-base text with the offline model (`--llm`), in batches. For SQuAD the generated question's
answer is judged by the paragraph's gold answers that its text contains (no answer-aware
generation yet: issue 14), which is lenient; it is reported apart.

``--quick``: one SQuAD article's first 12 paragraphs, 30 intents, 300 + 100 CLINC150 queries.
``--limit N``: at most N of each of those (paragraphs, intents, queries per stream; the exact
repeats N queries twice): a check that the script runs. ``--no-redisvl`` leaves RedisVL out on a
machine without Redis Stack.

    python benchmarks/peers.py [--quick] [--limit N] [--llm NAME] [--redis-url redis://localhost:6379] [--no-redisvl]
                               [--json FILE]
"""

from __future__ import annotations

import argparse
import atexit
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storinfer.evaluate.squad import answers_agree  # noqa: E402
from storinfer.models import default_chat, default_embedder  # noqa: E402
from storinfer.precompute.deduplicate import is_duplicate  # noqa: E402
from storinfer.precompute.generate.free import GenerationConfig, QuestionGenerator, parse_questions  # noqa: E402
from storinfer.store.locks import folder_bytes  # noqa: E402

DATA = ROOT / "data"
ARTICLES = ["Super_Bowl_50", "Warsaw", "Normans", "Nikola_Tesla", "Computational_complexity_theory"]
RESULTS = ROOT / "benchmarks/results"
FULL = {"articles": 5, "paragraphs": None, "intents": None, "zipf": 2000, "repeats": 300, "llm_sample": 20}
QUICK = {"articles": 1, "paragraphs": 12, "intents": 30, "zipf": 300, "repeats": 100, "llm_sample": 3}


def sizes(quick: bool, limit: int | None) -> dict[str, int | None]:
    """How much of each stream a run takes (see the module docstring)."""
    if limit is None:
        return QUICK if quick else FULL
    return {name: limit if n is None else min(n, limit) for name, n in QUICK.items()}


# --- the systems ---------------------------------------------------------------------------
class System:
    name = ""

    def lookup(self, query: str) -> str | None:  # the stored record key, or None
        raise NotImplementedError

    def store(self, query: str, key: str) -> None:
        raise NotImplementedError

    def disk_bytes(self) -> int | None:
        return None


class InMemoryExact(System):
    name = "langchain-inmemory"

    def __init__(self) -> None:
        from langchain_core.caches import InMemoryCache
        from langchain_core.outputs import Generation

        self.cache, self.gen = InMemoryCache(), Generation

    def lookup(self, query: str) -> str | None:
        hit = self.cache.lookup(query, "llm")
        return hit[0].text if hit else None

    def store(self, query: str, key: str) -> None:
        self.cache.update(query, "llm", [self.gen(text=key)])


class GPTCacheSemantic(System):
    def __init__(self, folder: Path, threshold: float, embed: Callable[[str], list[float]]) -> None:
        import numpy as np
        from gptcache import Cache, Config
        from gptcache.manager import CacheBase, VectorBase, get_data_manager
        from gptcache.processor.pre import get_prompt
        from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

        folder.mkdir(parents=True)
        self.folder, self.name = folder, f"gptcache-{threshold}"
        manager = get_data_manager(CacheBase("sqlite", sql_url=f"sqlite:///{folder}/sqlite.db"),
                                   VectorBase("faiss", dimension=384, index_path=str(folder / "faiss.index")))
        self.cache = Cache()
        self.cache.init(pre_embedding_func=get_prompt, data_manager=manager,
                        embedding_func=lambda text, **_: np.asarray(embed(text), dtype=np.float32),
                        similarity_evaluation=SearchDistanceEvaluation(), config=Config(similarity_threshold=threshold))

    def lookup(self, query: str) -> str | None:
        from gptcache.adapter.api import get

        return get(query, cache_obj=self.cache)

    def store(self, query: str, key: str) -> None:
        from gptcache.adapter.api import put

        put(query, key, cache_obj=self.cache)

    def disk_bytes(self) -> int | None:
        self.cache.data_manager.flush()
        return folder_bytes(self.folder)


class RedisVLSemantic(System):
    """RedisVL's SemanticCache (Redis Stack's vector search), our MiniLM as its vectorizer."""

    def __init__(self, url: str, distance: float, embed: Callable[[str], list[float]], tag: str) -> None:
        from redisvl.extensions.cache.llm import SemanticCache
        from redisvl.utils.vectorize import CustomTextVectorizer

        self.name = f"redisvl-{distance}"
        vectorizer = CustomTextVectorizer(embed=embed, embed_many=lambda texts, **_: [embed(t) for t in texts])
        self.cache = SemanticCache(name=f"peers-{tag}-{distance}", distance_threshold=distance, vectorizer=vectorizer,
                                   redis_url=url, overwrite=True)

    def lookup(self, query: str) -> str | None:
        hits = self.cache.check(prompt=query, num_results=1)
        return hits[0]["response"] if hits else None

    def store(self, query: str, key: str) -> None:
        self.cache.store(query, key)


class StorInferSystem(System):
    def __init__(self, folder: Path, name: str, *, learn: bool = True, pairs: list[tuple[str, str]] = ()) -> None:
        from storinfer import QAPair, QAStore, StoreFront

        self.name, self.folder = name, folder
        self.store_ = QAStore(folder, embedding=default_embedder())
        if pairs:
            self.store_.add([QAPair(q, key) for q, key in pairs])
        # Synchronous writes: the next query sees every earlier answer, as with the other systems.
        # learn=False: the shipped verifier at its point, nothing learnt; else the default learner.
        if learn:
            self.front = StoreFront(self.store_, write_behind=False)
        else:
            self.front = StoreFront(self.store_, write_behind=False, learner=None)
        self.last = None

    def lookup(self, query: str) -> str | None:
        found = self.last = self.front.lookup(query)
        return found.match.answer if found.hit else None

    def store(self, query: str, key: str) -> None:
        self.front.remember(query, key, lookup=self.last)  # an explored hit or a miss: the chain's answer labels it

    def disk_bytes(self) -> int | None:
        return folder_bytes(self.folder)


# --- the streams ---------------------------------------------------------------------------
def squad_stream(titles: list[str], rng: random.Random) -> tuple[list[tuple[str, object]], list[tuple[str, object]]]:
    """(queries with gold answers, knowledge-base paragraphs with their gold answers)."""
    data = json.loads((DATA / "squad-dev-v1.1-24articles/dev-v1.1-24articles.json").read_text())["data"]
    queries, kb = [], []
    for article in (a for a in data if a["title"] in titles):
        for p in article["paragraphs"]:
            golds = [tuple(a["text"] for a in qa["answers"]) for qa in p["qas"]]
            kb.append((p["context"], golds))
            queries += [(qa["question"].strip(), g) for qa, g in zip(p["qas"], golds)]
    rng.shuffle(queries)
    return queries, kb


def clinc_intents(n_intents: int | None, rng: random.Random) -> dict[str, list[str]]:
    """CLINC150 test phrasings by intent (``n_intents`` of them, drawn at random; None: all 150)."""
    data = json.loads((DATA / "clinc150/data_full.json").read_text())
    by: dict[str, list[str]] = {}
    for text, label in data["test"]:
        by.setdefault(label, []).append(text)
    keep = sorted(by) if n_intents is None else sorted(rng.sample(sorted(by), n_intents))
    return {k: by[k] for k in keep}


def intent_kb(intents) -> list[tuple[str, object]]:
    return [(f"A user asks an assistant about: {intent.replace('_', ' ')}.", intent) for intent in sorted(intents)]


def clinc_stream(n: int, by: dict[str, list[str]], rng: random.Random) -> tuple[list[tuple[str, object]], list[tuple[str, object]]]:
    data = json.loads((DATA / "clinc150/data_full.json").read_text())
    intents = sorted(by)
    rng.shuffle(intents)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(intents))]
    oos = [t for t, _ in data["oos_test"]]
    queries = []
    for _ in range(n):
        if rng.random() < 0.1:
            queries.append((rng.choice(oos), "oos"))
        else:
            intent = rng.choices(intents, weights)[0]
            queries.append((rng.choice(by[intent]), intent))
    return queries, intent_kb(by)


def repeats_stream(n: int, by: dict[str, list[str]], rng: random.Random) -> tuple[list[tuple[str, object]], list[tuple[str, object]]]:
    """``n`` CLINC150 test phrasings (of the same intents as the Zipf stream), then the same again;
    its knowledge base is the Zipf stream's, so StorInfer reuses that precompute."""
    first = rng.sample([(t, label) for label, texts in by.items() for t in texts], n)
    return first * 2, intent_kb(by)


# --- precompute: the engine's question writer, batched over the knowledge base --------------
def precompute(kb: list[tuple[str, object]], chat, embedder, *, batch: int = 8) -> tuple[list[tuple[str, object]], float]:
    """Generated (question, label) pairs: one question-writing call per knowledge-base text."""
    gen = QuestionGenerator(chat, embedder, GenerationConfig())
    t0 = time.perf_counter()
    replies: list[str] = []
    for start in range(0, len(kb), batch):
        convs = [gen.prompt(text[:1500], []) for text, _label in kb[start:start + batch]]
        replies += chat.chat_batch(convs, temperature=0.7, top_p=0.95, seed=start, max_new_tokens=160)
    pairs: list[tuple[str, object]] = []
    for (text, label), reply in zip(kb, replies):
        questions, _junk = parse_questions(reply)
        known: list = []
        for q, vec in zip(questions, embedder.embed_documents(questions) if questions else []):
            if not is_duplicate(q, vec, known, 0.99):
                known.append((q, vec))
                pairs.append((q, ("paragraph", text) if isinstance(label, list) else label))
    return pairs, time.perf_counter() - t0


# --- the run --------------------------------------------------------------------------------
def right(stream: str, query_label: object, served_label: object) -> bool:
    """Whether a served answer answers the query (see the module docstring)."""
    if isinstance(served_label, tuple) and served_label[:1] == ("paragraph",):  # a precomputed SQuAD pair
        return any(a in served_label[1] for a in query_label)  # lenient: its paragraph holds a gold answer
    if stream == "squad":
        return answers_agree(query_label, served_label)
    return query_label != "oos" and query_label == served_label


def run_stream(stream: str, queries, kb, systems: list[System], labels: dict[str, object]) -> dict[str, dict]:
    out = {}
    for system in systems:
        ms, served, good = [], 0, 0
        for i, (query, label) in enumerate(queries):
            t = time.perf_counter()
            key = system.lookup(query)
            ms.append((time.perf_counter() - t) * 1000)
            if key is None:
                record = f"{stream}-{i}"
                labels[record] = label
                system.store(query, record)
                continue
            served += 1
            good += right(stream, label, labels[key])
        ms.sort()
        out[system.name] = {"right": good / len(queries), "wrong": (served - good) / served if served else 0.0,
                            "served": served, "queries": len(queries), "lookup_ms_p50": statistics.median(ms),
                            "lookup_ms_p99": ms[int(0.99 * (len(ms) - 1))], "lookup_ms_mean": statistics.fmean(ms),
                            "disk_bytes": system.disk_bytes()}
    return out


def main() -> None:
    scratch = Path(tempfile.gettempdir())
    atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in scratch.glob("storinfer-peers-*")])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smaller run (see above)")
    ap.add_argument("--limit", type=int, help="at most N paragraphs, intents and queries per stream (see above)")
    ap.add_argument("--llm", default=None, help="the model writing the precomputed questions and timed per miss "
                    "(default: the offline default, Qwen2.5-1.5B)")
    ap.add_argument("--redis-url", help="a Redis Stack server (search module) for RedisVL's SemanticCache: "
                    "benchmarks/redis_stack.sh starts one offline")
    ap.add_argument("--no-redisvl", action="store_true", help="leave RedisVL out, even with --redis-url")
    ap.add_argument("--json", type=Path, help="the results (default benchmarks/results/peers.json, with --quick "
                    "peers_quick.json); the plot of a run without --quick goes beside it (.png)")
    args = ap.parse_args()
    size = sizes(args.quick, args.limit)
    rng = random.Random(0)
    embedder, chat = default_embedder(), default_chat(max_new_tokens=160, model=args.llm)
    by_intent = clinc_intents(size["intents"], rng)
    streams = {
        "squad": squad_stream(ARTICLES[: size["articles"]], rng),
        "clinc150-zipf": clinc_stream(size["zipf"], by_intent, rng),
        "exact-repeats": repeats_stream(size["repeats"], by_intent, rng),
    }
    if size["paragraphs"]:  # the first paragraphs of the Super Bowl article and their questions
        queries, kb = streams["squad"]
        kb = kb[: size["paragraphs"]]
        golds = {g for _text, gs in kb for g in gs}
        streams["squad"] = ([(q, g) for q, g in queries if g in golds][: args.limit], kb)
    # SmolLM2's latency on a miss, from a sample of real calls.
    sample = [q for q, _l in streams["clinc150-zipf"][0][: size["llm_sample"]]]
    llm_ms = []
    for q in sample:
        t = time.perf_counter()
        chat.chat_batch([[{"role": "user", "content": q}]], max_new_tokens=64)
        llm_ms.append((time.perf_counter() - t) * 1000)
    llm_mean = statistics.fmean(llm_ms)
    report: dict = {"streams": {}, "llm_ms_mean": llm_mean, "llm": chat.model_id, "quick": args.quick, "limit": args.limit,
                    "precompute": {}}
    embed = embedder.embed_query
    shared = {"exact-repeats": "clinc150-zipf"}  # same knowledge base: that precompute is reused
    generated: dict[str, tuple[list, float]] = {}
    for stream, (queries, kb) in streams.items():
        source = shared.get(stream, stream)
        if source not in generated:
            generated[source] = precompute(streams[source][1], chat, embedder)
        pairs, seconds = generated[source]
        labels: dict[str, object] = {}
        keyed = []
        for j, (q, label) in enumerate(pairs):
            labels[f"pre-{stream}-{j}"] = label
            keyed.append((q, f"pre-{stream}-{j}"))
        report["precompute"][stream] = {"texts": len(kb), "pairs": len(pairs), "seconds": seconds, "from": source}
        root = Path(tempfile.mkdtemp(prefix="storinfer-peers-"))  # removed at exit, after GPTCache's own exit flush
        systems: list[System] = [
            InMemoryExact(), GPTCacheSemantic(root / "g8", 0.8, embed), GPTCacheSemantic(root / "g975", 0.975, embed),
            StorInferSystem(root / "cold", "storinfer-cold"),
            StorInferSystem(root / "pre", "storinfer-precompute", pairs=keyed),
            StorInferSystem(root / "fixed", "storinfer-fixed-precompute", learn=False, pairs=keyed),
        ]
        if args.redis_url and not args.no_redisvl:
            systems[3:3] = [RedisVLSemantic(args.redis_url, d, embed, stream) for d in (0.2, 0.05)]
        rows = run_stream(stream, queries, kb, systems, labels)
        for row in rows.values():
            row["e2e_ms_mean"] = row["lookup_ms_mean"] + (1 - row["served"] / row["queries"]) * llm_mean
        report["streams"][stream] = rows
        print_table(stream, rows, report["precompute"][stream])
    out = args.json or RESULTS / ("peers_quick.json" if args.quick else "peers.json")
    out.write_text(json.dumps(report, indent=1))
    print(f"\n{chat.model_id} mean latency per miss: {llm_mean:.0f} ms ({len(llm_ms)} calls); "
          f"written {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if not args.quick:
        plot(report, out.with_suffix(".png"))


def print_table(stream: str, rows: dict, pre: dict) -> None:
    reused = f" (reused from {pre['from']})" if pre["from"] != stream else ""
    print(f"\n## {stream}: {next(iter(rows.values()))['queries']} queries; precompute: {pre['pairs']} pairs from "
          f"{pre['texts']} texts in {pre['seconds']:.0f} s{reused}")
    print(f"{'system':<32} {'right':>7} {'wrong':>7} {'served':>6} | {'p50 ms':>7} {'p99 ms':>7} | {'e2e ms':>7} | {'disk MB':>7}")
    for name, r in rows.items():
        disk = "memory" if r["disk_bytes"] is None else f"{r['disk_bytes'] / 1e6:.1f}"
        print(f"{name:<32} {100 * r['right']:>6.1f}% {100 * r['wrong']:>6.1f}% {r['served']:>6} | {r['lookup_ms_p50']:>7.2f} "
              f"{r['lookup_ms_p99']:>7.2f} | {r['e2e_ms_mean']:>7.0f} | {disk:>7}")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = list(report["streams"])
    systems = list(report["streams"][streams[0]])
    fig, axes = plt.subplots(1, len(streams), figsize=(5 * len(streams), 4.5), sharey=False)
    for ax, stream in zip(axes, streams):
        rows = report["streams"][stream]
        r = [100 * rows[s]["right"] for s in systems]
        w = [100 * rows[s]["wrong"] * rows[s]["served"] / rows[s]["queries"] for s in systems]
        ax.barh(systems, r, color="tab:green", label="right hits (% of queries)")
        ax.barh(systems, w, left=r, color="tab:red", label="wrong hits (% of queries)")
        ax.set_title(stream)
        ax.set_xlabel("% of queries served")
        ax.invert_yaxis()
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
