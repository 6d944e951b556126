"""SQuAD v1.1 files and scoring: the human-question workload used by tests and benchmarks.

Scoring follows the official SQuAD v1.1 script: answers are normalised (lower case, no
punctuation, no articles a/an/the, white space folded); exact match and token F1 take the best
over the gold answers.
"""

from __future__ import annotations

from storinfer.precompute.loading import SquadQuestion, load_squad  # noqa: F401  (re-exported)
from storinfer.text import contains, f1, normalize_answer  # noqa: F401  (re-exported)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def best_f1(prediction: str, golds: tuple[str, ...] | list[str]) -> float:
    return max((f1(prediction, g) for g in golds), default=0.0)


def best_em(prediction: str, golds: tuple[str, ...] | list[str]) -> float:
    return max((exact_match(prediction, g) for g in golds), default=0.0)


def answers_agree(a: tuple[str, ...], b: tuple[str, ...], min_f1: float = 0.5) -> bool:
    """Whether two questions' gold answers name the same thing (best token F1 >= ``min_f1``)."""
    return any(f1(x, y) >= min_f1 for x in a for y in b)


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
