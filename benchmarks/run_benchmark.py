"""The SQuAD benchmark (`make bench`): precompute, calibrate, replay human questions with and without StorInfer.

By default the Super Bowl set: precompute over its 54 paragraphs (answers from the plain RAG chain),
calibrate the operating point on generated paraphrases, replay the 810 human questions through the
plain chain and through the same chain behind StorInfer, and print the table. Results go to
benchmarks/out/superbowl/: results.json (every question), results.md, threshold_curve.png, and the
store. Takes about 1.5 hours on 2 CPU cores; `--paragraphs 2 --questions 8` is a quick look, and
`--paragraphs 1 --questions 3 --calibration-sample 3 --max-calls-per-chunk 1 --max-per-chunk 2
--max-facts-per-chunk 2 --rephrasings 0` (the suite's `make bench ARGS="..."`) a check that it runs.
What it measures: `benchmarks/squad_bench.py`.

    python benchmarks/run_benchmark.py [--squad FILE] [--out DIR] [--paragraphs N] [--questions N] [--threshold T]
                                       [--calibration-sample N] [precompute size options]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from squad_bench import BenchmarkConfig, add_precompute_options, generation_config, run_benchmark  # noqa: E402

from storinfer.errors import validate_threshold  # noqa: E402

SQUAD = ROOT / "data" / "squad-dev-v1.1-superbowl" / "dev-v1.1-superbowl.json"
OUT = ROOT / "benchmarks" / "out" / "superbowl"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", default=str(SQUAD), help="SQuAD v1.1 JSON: paragraphs are the documents, questions the workload")
    ap.add_argument("--out", default=str(OUT), help="folder for results.json, results.md, threshold_curve.png and the store")
    ap.add_argument("--paragraphs", type=int, default=None, help="only the first N paragraphs (default all)")
    ap.add_argument("--questions", type=int, default=None, help="only N of their questions (default all)")
    ap.add_argument("--threshold", type=float, default=None, help="a fixed cosine floor (default: the calibrated point)")
    ap.add_argument("--target-wrong-rate", type=float, default=0.01, help="for calibration (default 0.01)")
    ap.add_argument("--calibration-sample", type=int, default=300,
                    help="stored questions paraphrased to calibrate the operating point (default 300)")
    add_precompute_options(ap)
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        threshold = None if args.threshold is None else validate_threshold(args.threshold, "--threshold")
        target = validate_threshold(args.target_wrong_rate, "--target-wrong-rate")
    except ValueError as err:
        ap.error(str(err))
    config = BenchmarkConfig(
        paragraphs=args.paragraphs, questions=args.questions, threshold=threshold, target_wrong_rate=target,
        calibration_sample=args.calibration_sample, generation=generation_config(args),
    )
    run_benchmark(args.squad, args.out, config=config, progress=not args.quiet)
    print((Path(args.out) / "results.md").read_text())
    print(f"written: {args.out}/results.json, results.md, threshold_curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
