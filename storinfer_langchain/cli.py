"""The ``storinfer`` command line: the offline job and store maintenance.

    storinfer prepare-models                 convert the offline LLM once (make setup runs it)
    storinfer stats --store PATH             what the store holds
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


def _open_store(args: argparse.Namespace) -> Any:
    from storinfer_langchain.store import QAStore

    if getattr(args, "host", None):
        return QAStore(host=args.host, port=args.port, collection_name=args.collection)
    return QAStore(args.store, collection_name=args.collection)


def _add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="local store folder")
    p.add_argument("--host", help="Chroma server host (instead of --store)")
    p.add_argument("--port", type=int, default=8000, help="Chroma server port (default 8000)")
    p.add_argument("--collection", default="storinfer", help="collection name (default storinfer)")


def cmd_prepare_models(args: argparse.Namespace) -> int:
    from storinfer_langchain.embeddings import default_embeddings
    from storinfer_langchain.llms import prepare_smollm2

    folder = prepare_smollm2(force=args.force)
    print(f"LLM ready: {folder}")
    dim = len(default_embeddings().embed_query("ready?"))
    print(f"Embeddings ready: all-MiniLM-L6-v2 ({dim} dims)")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        print(json.dumps(store.stats(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storinfer", description="StorInfer: answer LLM questions from storage.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare-models", help="convert the offline SmolLM2 GGUF to a bfloat16 folder once")
    p.add_argument("--force", action="store_true", help="convert again even if done")
    p.set_defaults(func=cmd_prepare_models)

    p = sub.add_parser("stats", help="what a store holds: pairs by namespace, partition, origin; bytes on disk")
    _add_store_args(p)
    p.set_defaults(func=cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from storinfer_langchain.store import StorInferError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if getattr(args, "store", "unset") is None and not getattr(args, "host", None):
        parser.error("pass --store PATH (a local store folder) or --host HOST (a Chroma server)")
    try:
        return int(args.func(args))
    except (StorInferError, ValueError, OSError) as err:
        print(f"storinfer {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
