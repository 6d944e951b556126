"""The command line's precompute, killed with SIGKILL and resumed, equals an uninterrupted run.

Its own module, so that `make test`'s second worker runs it beside the rest of precompute's tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from storinfer_langchain import QAStore

DATA = Path(__file__).resolve().parents[1] / "data" / "superbowl"

# One question written per chunk, one fact asked about, one rephrasing: every step of a chunk, a few calls each.
OPTIONS = ["--max-per-chunk", "1", "--max-calls-per-chunk", "1", "--max-facts-per-chunk", "1", "--rephrasings", "1",
           "--batch-chunks", "1"]


def _short_documents(folder: Path) -> Path:
    """The three test paragraphs cut to their first sentence (three chunks, short prompts)."""
    folder.mkdir()
    for path in sorted(DATA.glob("*.txt")):
        (folder / path.name).write_text(re.split(r"(?<=\.)\s", path.read_text().strip())[0] + "\n")
    return folder


def _cli(docs: Path, store: Path) -> list[str]:
    return [sys.executable, "-m", "storinfer.cli", "precompute", str(docs), *OPTIONS, "--store", str(store)]


def _pairs(store_path: Path, embeddings) -> set[tuple[str, str, str]]:
    with QAStore(store_path, embedding=embeddings) as s:
        return {(m.question, m.answer, m.metadata["chunk_id"]) for m in s.iter_pairs()}


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, embeddings):
    docs = _short_documents(tmp_path / "docs")
    # the uninterrupted reference runs beside the run that is killed (two processes, two stores)
    ref_log = open(tmp_path / "ref.log", "wb")  # noqa: SIM115 (closed below)
    ref = subprocess.Popen(_cli(docs, tmp_path / "ref"), stdout=subprocess.DEVNULL, stderr=ref_log)
    proc = subprocess.Popen(_cli(docs, tmp_path / "killed"), stderr=subprocess.PIPE)
    seen = b""
    done = threading.Event()

    def read() -> None:
        nonlocal seen
        while chunk := proc.stderr.read1(4096):
            seen += chunk
            if re.search(rb"chunks:[^\r\n]*\b1/3\b", seen):
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(600), "the first chunk never finished"
    time.sleep(0.5)  # now inside the second chunk (a chunk takes seconds: a question-writing call, answers, a rephrasing)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    ref.wait(timeout=900)
    ref_log.close()
    assert ref.returncode == 0, (tmp_path / "ref.log").read_text()[-3000:]
    reference = _pairs(tmp_path / "ref", embeddings)
    assert reference

    partial = _pairs(tmp_path / "killed", embeddings)
    assert partial < reference or partial == set()  # some, not all
    check = subprocess.run([sys.executable, "-m", "storinfer.cli", "check", "--store", str(tmp_path / "killed")],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr[-2000:]
    resumed = subprocess.run(_cli(docs, tmp_path / "killed"), capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "(1 / 2)" in resumed.stdout  # one chunk was done before, two processed now
    assert _pairs(tmp_path / "killed", embeddings) == reference
