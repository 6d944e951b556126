"""SQuAD articles as precomputed stores and human-question lookups: the fit data of the hit
verifier's fact head (`tools/verifier/train.py`).

Each article's paragraphs are precomputed into a store of its own (one partition), the way a
user would; its human questions are then looked up in that store, and every candidate the
lookup sees is judged by the strict judge (`storinfer.evaluate.squad.answer_matches`): right only if the
key's expected answer names what the human's gold answer names.

Articles: the 24 SQuAD dev articles of `data/`; odd positions are the *fit* part (the verifier
and every generator choice were fitted on them), even positions the *held-out* part
(Super_Bowl_50 is position 0).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data"
ARTICLES = DATA / "squad-dev-v1.1-24articles" / "dev-v1.1-24articles.json"
SUPERBOWL = DATA / "squad-dev-v1.1-superbowl" / "dev-v1.1-superbowl.json"


@dataclass
class Article:
    title: str
    position: int
    paragraphs: list[str]
    questions: list[tuple[str, tuple[str, ...], int]]  # (question, gold answers, paragraph index)

    @property
    def part(self) -> str:
        return "fit" if self.position % 2 else "heldout"


def articles(part: str | None = None, titles: list[str] | None = None) -> list[Article]:
    data = json.loads(ARTICLES.read_text(encoding="utf-8"))["data"]
    out = []
    for pos, a in enumerate(data):
        art = Article(a["title"], pos, [p["context"] for p in a["paragraphs"]],
                      [(qa["question"].strip(), tuple(x["text"] for x in qa["answers"]), i)
                       for i, p in enumerate(a["paragraphs"]) for qa in p["qas"]])
        if (part is None or art.part == part) and (titles is None or art.title in titles):
            out.append(art)
    return out


def first_paragraphs(article: Article, n: int | None) -> Article:
    """``article`` cut down to its first ``n`` paragraphs and their questions (None: all of it)."""
    if n is None:
        return article
    return Article(article.title, article.position, article.paragraphs[:n], [q for q in article.questions if q[2] < n])


def train_articles(path: str | Path, count: int, *, every: int = 1) -> list[Article]:
    """``count`` articles of the SQuAD v1.1 *train* file (gzipped JSON), every ``every``-th in the
    file's order: disjoint from the dev articles every benchmark reports on."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)["data"]
    out = []
    for pos, a in enumerate(data[::every][:count]):
        out.append(Article(a["title"], pos, [p["context"] for p in a["paragraphs"]],
                           [(qa["question"].strip(), tuple(x["text"] for x in qa["answers"]), i)
                            for i, p in enumerate(a["paragraphs"]) for qa in p["qas"]]))
    return out


@dataclass
class Looked:
    """One human question's lookup candidates in its article's store, each judged."""

    question: str
    gold: tuple[str, ...]
    candidates: list[Any] = field(default_factory=list)  # storinfer Match objects, best first
    right: list[bool] = field(default_factory=list)


def judge(match: Any, gold: tuple[str, ...]) -> bool:
    """The strict judge: the key's expected answer (else its stored answer) matches a gold answer."""
    from storinfer.evaluate.squad import answer_matches

    expected = match.metadata.get("expected_answer") or match.answer
    return answer_matches(str(expected), gold)


def build_store(article: Article, folder: Path, config: Any, *, llm: Any = None, embedder: Any = None,
                answer_with: Any = None, batch_chunks: int = 8, fresh: bool = True) -> tuple[Any, Any]:
    """A store of ``article``'s paragraphs precomputed with ``config``; returns ``(store, summary)``."""
    from storinfer import Document, Precomputer, QAStore

    if fresh and folder.exists():
        shutil.rmtree(folder)
    store = QAStore(folder, embedding=embedder)
    docs = [Document(p, id=f"{article.title}-p{i:03d}") for i, p in enumerate(article.paragraphs)]
    if llm is None:
        class _NoLLM:  # answer-aware questions with span answers need no model; anything else says so
            def chat_batch(self, conversations, **_kw):
                raise RuntimeError("this configuration calls no LLM")
        llm = _NoLLM()
    pre = Precomputer(store, llm=llm, answer_with=answer_with, partition="kb", chunk_size=None, config=config,
                      batch_chunks=batch_chunks)
    summary = pre.run(docs, progress=False)
    return store, summary


def look_up(store: Any, article: Article, k: int = 10) -> list[Looked]:
    """Every human question of ``article`` searched in ``store`` (its ``k`` nearest keys, judged)."""
    out = []
    for question, gold, _p in article.questions:
        cands = store.search(question, partition="kb", k=k)
        out.append(Looked(question, gold, cands, [judge(c, gold) for c in cands]))
    return out


def facts_only(**overrides: Any) -> Any:
    """The answer-aware generator alone, answers taken from the facts: what the fact head learns on."""
    from storinfer.precompute.generate.free import GenerationConfig

    kw = dict(free_generation=False, rephrasings=0, fact_answers="span")
    kw.update(overrides)
    return GenerationConfig(**kw)
