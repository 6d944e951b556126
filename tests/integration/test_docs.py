"""Every Python example in the README and docs/ runs, and prints what the text says it prints.

A file's ```python blocks run in order in one fresh interpreter (they share their names, as a
reader pastes them one after the other), in an empty folder, with the offline default LLM
(Qwen2.5-1.5B: these are the end-to-end runs of the 1.5B). A ```text block right after a python
block is what that block prints: compared line by line, where ``...`` stands for any text (an
LLM's wording, a timing).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from shown import REPO, doc_files, split_fences

FILES = doc_files()

RUNNER = r"""
import contextlib, io, json, sys, traceback
blocks = json.load(open(sys.argv[1]))
scope = {"__name__": "__main__"}
out = []
for code in blocks:
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "<example>", "exec"), scope)
    except BaseException:
        out.append({"stdout": buf.getvalue(), "error": traceback.format_exc()})
        break
    out.append({"stdout": buf.getvalue(), "error": None})
json.dump(out, open(sys.argv[2], "w"))
"""


def examples(path: Path) -> list[tuple[str, str | None]]:
    """``(code, expected output or None)`` for each python block of ``path`` (none where its fences
    do not pair up: test_every_fenced_block_is_closed_before_the_next_opens fails there)."""
    try:
        blocks = [(lang, "\n".join(lines) + "\n") for lang, lines in split_fences(path.read_text(), path.name)[0]]
    except ValueError:
        return []
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "python":
            expected = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "text" else None
            out.append((body, expected))
    return out


def matches(expected: str, actual: str) -> bool:
    want = [ln.rstrip() for ln in expected.strip("\n").splitlines()]
    got = [ln.rstrip() for ln in actual.strip("\n").splitlines()]
    pattern = "\n".join(re.escape(ln).replace(re.escape("..."), ".*?") for ln in want)
    return re.fullmatch(pattern, "\n".join(got), re.S) is not None


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_fenced_block_is_closed_before_the_next_opens(path):
    """A stray fence turns the prose after it into code and the next example into prose, which then
    nobody runs: every block opens with ```LANGUAGE (or a bare ```) and closes with a bare ```."""
    try:
        split_fences(path.read_text(), path.name)
    except ValueError as err:
        pytest.fail(str(err))


@pytest.mark.parametrize("path", [p for p in FILES if examples(p)], ids=lambda p: p.name)
def test_examples_run_and_print_what_the_text_says(path, tmp_path):
    found = examples(path)
    (tmp_path / "blocks.json").write_text(json.dumps([code for code, _ in found]))
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "STORINFER_LLM"}  # the offline default, as a reader gets it
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "blocks.json"),
                           str(tmp_path / "out.json")], cwd=work, env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "out.json").read_text())
    for (code, expected), result in zip(found, results):
        assert result["error"] is None, f"{path.name}: this example fails:\n{code}\n{result['error']}"
        if expected is not None:
            assert matches(expected, result["stdout"]), (
                f"{path.name}: the text says this example prints\n{expected}\nit printed\n{result['stdout']}")
    assert len(results) == len(found), f"{path.name}: not every example ran"
