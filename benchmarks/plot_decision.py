"""The README's plot, from `benchmarks/results/decision.json`: served right and wrong per stream,
the learner beside the fixed point (`learner=None`), the hindsight ceilings and the peers; and the README's table.

    python benchmarks/plot_decision.py [--json FILE] [--png FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(RESULTS / "decision.json"), help="decision.py's results (default: the README's)")
    ap.add_argument("--png", default=str(RESULTS / "decision.png"), help="where the plot goes (default: the README's)")
    args = ap.parse_args()
    data = json.loads(Path(args.json).read_text())["streams"]
    names = list(data)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    systems = [(s, label) for s, label in (("learner", "the learner (default, max_wrong_rate=0.01)"),
                                           ("unaudited", "the learner, no audit answered"),
                                           ("fixed", "the fixed point (learner=None)")) if all(s in data[n] for n in names)]
    width = 0.8 / (len(systems) + 2)
    xs = range(len(names))
    for k, (system, label) in enumerate(systems):
        ax1.bar([x + (k - 1) * width for x in xs], [100 * data[n][system]["all"]["right"] for n in names], width, label=label)
        ax2.bar([x + (k - 1) * width for x in xs], [100 * data[n][system]["all"]["wrong"] for n in names], width, label=label)
    k = len(systems)
    ax1.bar([x + (k - 1) * width for x in xs], [100 * data[n]["ceiling"]["best"]["right"] for n in names], width,
            label="best cosine threshold, with hindsight (<= 1% wrong)")
    if all("verifier_ceiling" in data[n] for n in names):
        ver = [data[n]["verifier_ceiling"] for n in names]  # none within 1% (exact repeats alone over it): no bar
        ax1.bar([x + k * width for x in xs], [100 * v["right"] if v["wrong"] <= 0.01 else 0.0 for v in ver], width,
                label="best verifier point, with hindsight (<= 1% wrong)")
    ax1.set_ylabel("served right (% of matchable queries)")
    ax2.set_ylabel("wrong (% of serves)")
    ax2.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="max_wrong_rate")
    for ax in (ax1, ax2):
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names, rotation=30, ha="right")
    ax1.set_ylim(0, 1.5 * ax1.get_ylim()[1])  # room for the legend above the bars
    ax2.set_ylim(0, 1.5 * ax2.get_ylim()[1])
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"written {args.png}")
    print(summary_table(data))


def summary_table(data: dict) -> str:
    """The README's table: each system's right and wrong (95% upper), the ceilings, and the peers."""
    def cell(r: dict | None, upper: bool = True) -> str:
        if not r:
            return "-"
        extra = f" ({100 * r['wrong_upper']:.2f})" if upper and "wrong_upper" in r else ""
        return f"{100 * r['right']:.1f}% / {100 * r['wrong']:.2f}%{extra}"

    rows = ["| stream (queries) | the learner | unaudited | the fixed point | verifier ceiling | cosine ceiling | "
            "GPTCache 0.8 | RedisVL 0.1 | checked per query |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in data.items():
        c = r["ceiling"]["best"]
        cos = f"{100 * c['right']:.1f}% at {c['threshold']}" if c["threshold"] is not None else "none within 1%"
        v = r.get("verifier_ceiling")
        ver = "-" if not v else (f"{100 * v['right']:.1f}% / {100 * v['wrong']:.2f}%" if v["wrong"] <= 0.01
                                 else f"none within 1% (exact repeats alone: {100 * v['wrong']:.1f}% wrong)")
        learner = r.get("learner", {}).get("all")
        checked = (learner["explored"] + learner.get("audited", 0)) / learner["queries"] if learner else 0.0
        rows.append(f"| {name} ({r['queries']}) | {cell(learner)} | {cell(r.get('unaudited', {}).get('all'))} | "
                    f"{cell(r.get('fixed', {}).get('all'))} | {ver} | {cos} | {cell(r.get('gptcache'), False)} | "
                    f"{cell(r.get('redisvl'), False)} | {checked:.3f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
