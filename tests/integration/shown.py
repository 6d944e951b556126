"""The commands README.md and docs/*.md show a user, read from the files.

What counts as a command is the rule in tests/integration/test_commands.py's docstring.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELL_BLOCKS = ("bash", "sh", "console")
SPAN_PREFIXES = ("storinfer ", "make ", "python ")
SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
COMMENT = re.compile(r"(^|\s)#.*$")


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def split_fences(text: str, name: str = "") -> tuple[list[tuple[str, list[str]]], str]:
    """The fenced blocks of a Markdown text, as ``(language, lines)``, and the prose outside them
    (each fenced line blanked, so that no span reaches across a block)."""
    blocks: list[tuple[str, list[str]]] = []
    prose: list[str] = []
    inside: tuple[str, list[str]] | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if inside is None:
                inside = ((line[3:].split() or [""])[0], [])
            elif line.strip() == "```":
                blocks.append(inside)
                inside = None
            else:
                raise ValueError(f"{name}:{n}: a fence opens ({line!r}) inside a fenced block: close the block with ``` first")
            prose.append("")
        else:
            (inside[1] if inside is not None else prose).append(line)
            if inside is not None:
                prose.append("")
    if inside is not None:
        raise ValueError(f"{name}: a fenced block is never closed")
    return blocks, "\n".join(prose)


def block_commands(language: str, lines: Iterable[str]) -> list[str]:
    """The commands of a ```bash / ```sh / ```console block (see the module docstring)."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if language == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        line = pending + line
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        command = " ".join(COMMENT.sub("", line).split())
        if command:
            out.append(command)
    return out


def span_commands(prose: str) -> list[str]:
    """The commands among a text's inline code spans (see the module docstring)."""
    out = []
    for m in SPAN.finditer(prose):
        if "\n\n" in m.group(1):
            continue
        text = " ".join(m.group(1).split())
        if text.startswith(SPAN_PREFIXES):
            out.append(f"{text} --help" if re.fullmatch(r"storinfer [a-z-]+", text) else text)
    return out


def shown_commands(files: Iterable[Path] | None = None) -> dict[str, list[str]]:
    """Every command the files show -> the names of the files that show it, in the order first shown."""
    found: dict[str, list[str]] = {}
    for path in doc_files() if files is None else files:
        blocks, prose = split_fences(path.read_text(), path.name)
        commands = [c for language, lines in blocks if language in SHELL_BLOCKS for c in block_commands(language, lines)]
        for command in commands + span_commands(prose):
            found.setdefault(command, [])
            if path.name not in found[command]:
                found[command].append(path.name)
    return found


def make_targets_named(files: Iterable[Path] | None = None) -> set[str]:
    """Every ``make TARGET`` the files name in code (spans and blocks, comments included)."""
    named: set[str] = set()
    for path in doc_files() if files is None else files:
        blocks, prose = split_fences(path.read_text(), path.name)
        code = [m.group(1) for m in SPAN.finditer(prose)] + ["\n".join(lines) for _lang, lines in blocks]
        for text in code:
            named.update(re.findall(r"(?<![\w-])make ([a-z][\w-]*)", text))
    return named
