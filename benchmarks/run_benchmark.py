"""The StorInfer benchmark on the SQuAD Super Bowl set (`make bench`).

Precompute over the 54 paragraphs (answers from the plain RAG chain), calibrate the threshold
on generated paraphrases, replay the 810 human questions through the plain chain and through
the same chain with StorInfer, and print the table. Results go to benchmarks/out/: results.json
(every question), results.md, threshold_curve.png. Takes about 1.5 hours on 2 CPU cores.

    python benchmarks/run_benchmark.py [--paragraphs N] [--questions N] [--threshold T]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storinfer.cli import main  # noqa: E402

SQUAD = Path(__file__).resolve().parents[1] / "data/squad-dev-v1.1-superbowl/dev-v1.1-superbowl.json"
OUT = Path(__file__).resolve().parent / "out" / "superbowl"

if __name__ == "__main__":
    sys.exit(main(["eval", "--squad", str(SQUAD), "--out", str(OUT), *sys.argv[1:]]))
