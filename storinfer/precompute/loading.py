"""Read a documents folder or file for the command line: text, Markdown, JSON lines, SQuAD JSON.

Every file is read and checked before anything is stored, so a bad file (binary, not UTF-8,
unknown JSON) stops the run with a list of what to fix, and the store stays as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from storinfer.protocols import Document

SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".jsonl", ".json"}


class DocumentLoadError(ValueError):
    """Some input files cannot be read as text documents."""


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise DocumentLoadError(f"{path}: binary file (NUL bytes); convert it to text first")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        msg = f"{path}: not UTF-8 (byte {err.start}); re-encode it, e.g. `iconv -f latin1 -t utf-8`"
        raise DocumentLoadError(msg) from None


def _documents_of(path: Path, root: Path) -> list[Document]:
    rel = str(path.relative_to(root)) if path != root else path.name
    text = _read_text(path)
    if path.suffix == ".jsonl":
        docs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as err:
                raise DocumentLoadError(f"{path}:{n}: not JSON ({err})") from None
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise DocumentLoadError(f'{path}:{n}: each line needs a "text" string (and optionally "id")')
            docs.append(Document(item["text"], id=str(item.get("id") or f"{rel}#{n}"), metadata={"source": rel}))
        return docs
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as err:
            raise DocumentLoadError(f"{path}: not JSON ({err})") from None
        if not (isinstance(data, dict) and isinstance(data.get("data"), list)):
            raise DocumentLoadError(f"{path}: JSON files must be SQuAD-format ({{'data': [...]}}); use .jsonl for others")
        return load_squad(path)[0]
    return [Document(text, id=rel, metadata={"source": rel})]


def load_documents(path: str | Path, *, skip_bad_files: bool = False) -> tuple[list[Document], list[str]]:
    """Documents under ``path`` (a file or a folder, searched recursively, in name order).

    Returns ``(documents, problems)``. Raises :class:`DocumentLoadError` listing every bad file
    unless ``skip_bad_files`` (then they are skipped and listed in ``problems``).
    """
    root = Path(path)
    if not root.exists():
        raise DocumentLoadError(f"{root} does not exist")
    if root.is_file():
        files = [root]
        base = root.parent
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        base = root
        if not files:
            raise DocumentLoadError(f"{root} holds no {', '.join(sorted(SUFFIXES))} files")
    docs: list[Document] = []
    problems: list[str] = []
    for f in files:
        try:
            docs.extend(_documents_of(f, base))
        except (DocumentLoadError, OSError) as err:
            problems.append(str(err))
    if problems and not skip_bad_files:
        listing = "\n  ".join(problems)
        raise DocumentLoadError(f"{len(problems)} file(s) cannot be used (nothing was stored):\n  {listing}\n"
                                "Fix them, or pass --skip-bad-files to leave them out.")
    return docs, problems


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    paragraph: int


def load_squad(path: str | Path) -> tuple[list[Document], list[SquadQuestion]]:
    """Paragraphs as Documents (ids ``<title>-p<index>``) and the human questions with gold answers."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    docs: list[Document] = []
    questions: list[SquadQuestion] = []
    for article in data["data"]:
        title = article.get("title", "article")
        for i, para in enumerate(article["paragraphs"]):
            doc_id = f"{title}-p{i:03d}"
            docs.append(Document(para["context"], id=doc_id, metadata={"source": doc_id, "title": title}))
            for qa in para["qas"]:
                answers = tuple(a["text"] for a in qa["answers"])
                questions.append(SquadQuestion(qa["id"], qa["question"].strip(), answers, len(docs) - 1))
    return docs, questions
