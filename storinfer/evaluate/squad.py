"""SQuAD v1.1 files and scoring: the human-question workload used by tests and benchmarks.

Scoring follows the official SQuAD v1.1 script: answers are normalised (lower case, no
punctuation, no articles a/an/the, white space folded); exact match and token F1 take the best
over the gold answers.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from storinfer.protocols import Document


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


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def best_f1(prediction: str, golds: tuple[str, ...] | list[str]) -> float:
    return max((f1(prediction, g) for g in golds), default=0.0)


def best_em(prediction: str, golds: tuple[str, ...] | list[str]) -> float:
    return max((exact_match(prediction, g) for g in golds), default=0.0)


def answers_agree(a: tuple[str, ...], b: tuple[str, ...], min_f1: float = 0.5) -> bool:
    """Whether two questions' gold answers name the same thing (best token F1 >= ``min_f1``)."""
    return any(f1(x, y) >= min_f1 for x in a for y in b)


def contains(longer: list[str], part: list[str]) -> bool:
    """Whether the token list ``part`` occurs, in order and contiguous, in ``longer``."""
    return bool(part) and any(longer[i:i + len(part)] == part for i in range(len(longer) - len(part) + 1))


def answer_matches(answer: str, golds: tuple[str, ...] | list[str], min_f1: float = 0.5) -> bool:
    """The strict judge: ``answer`` (a stored pair's expected answer) names what one of the gold
    answers names: token F1 >= ``min_f1``, or one contains the other (as whole normalised tokens,
    so "10" is not inside "2010")."""
    a = normalize_answer(answer).split()
    for g in golds:
        b = normalize_answer(g).split()
        if a and b and (f1(answer, g) >= min_f1 or contains(a, b) or contains(b, a)):
            return True
    return False
