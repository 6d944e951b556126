"""Answer-aware generation: walk each chunk's facts and ask for every one of them.

The paper's free generation (:mod:`storinfer.precompute.generate.free`) finds some facts many times and misses
others. This second generator picks the chunk's candidate answers (:mod:`storinfer.precompute.generate.facts`:
names, dates, numbers, quantities, noun phrases) and writes a question whose answer is each one,
keeping the target answer on the pair (``expected_answer``) with its entity type and sentence:

* ``writer="syntactic"`` (default): the parse-based writer of :mod:`storinfer.precompute.generate.wh_questions`.
  It needs no LLM, so it is the offline default (SmolLM2-135M does not follow "write a question
  whose answer is X": zero-shot it writes "What is the answer?", few-shot it restates the
  sentence). Its other wordings of the same question (short form, in place, active voice) are
  kept as extra keys.
* ``writer="llm"``: the chat model writes the question for the span, as the paper's generator
  would (for a capable model: any LangChain chat model or LlamaIndex LLM); a reply that is no
  question or gives the answer away falls back to the syntactic question.
* ``writer="both"``: the LLM's question, with the syntactic ones as extra keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storinfer.errors import ConfigError
from storinfer.precompute.generate.facts import Fact, chunk_facts, load_nlp, parse
from storinfer.precompute.generate.free import parse_questions
from storinfer.precompute.generate.wh_questions import write
from storinfer.precompute.generate.wh_text import same_answer
from storinfer.protocols import ChatModel

WRITERS = ("syntactic", "llm", "both")
SYSTEM = "You write one question about a sentence. The answer to the question must be the given answer. Reply with the question only."
EXAMPLES = (
    ("The Eiffel Tower was completed in 1889 for the World's Fair.", "1889", "When was the Eiffel Tower completed?"),
    ("The tower was designed by the engineer Gustave Eiffel.", "Gustave Eiffel", "Who designed the tower?"),
)


@dataclass
class FactQuestion:
    """A question about one fact of a chunk, the answer it asks for, and its other wordings."""

    question: str
    expected_answer: str
    label: str
    sentence: str
    variants: list[str] = field(default_factory=list)
    writer: str = "syntactic"


def fact_prompt(fact: Fact) -> list[dict[str, str]]:
    """The few-shot conversation asking a chat model for a question whose answer is ``fact``."""
    msgs: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]
    for sentence, answer, question in EXAMPLES:
        msgs.append({"role": "user", "content": f"Sentence: {sentence}\nAnswer: {answer}"})
        msgs.append({"role": "assistant", "content": question})
    msgs.append({"role": "user", "content": f"Sentence: {fact.sentence}\nAnswer: {fact.text}"})
    return msgs


def gives_away(question: str, answer: str) -> bool:
    """Whether ``question`` already contains its answer (then it asks nothing)."""
    return same_answer(question, answer) and len(answer.split()) <= len(question.split())


class FactQuestionWriter:
    """Writes the answer-aware questions of chunks (see the module docstring).

    Args:
        writer: ``"syntactic"``, ``"llm"`` or ``"both"``.
        llm: the chat model for ``"llm"`` / ``"both"``.
        max_per_chunk: at most this many facts asked per chunk (None: all).
        max_variants: extra wordings kept per question.
        nlp: a spaCy pipeline (default: :func:`storinfer.precompute.generate.facts.load_nlp`).
    """

    def __init__(self, writer: str = "syntactic", *, llm: ChatModel | None = None, max_per_chunk: int | None = None,
                 max_variants: int = 4, nlp: Any = None, max_new_tokens: int = 40) -> None:
        if writer not in WRITERS:
            msg = f"writer must be one of {WRITERS}, not {writer!r}"
            raise ConfigError(msg)
        if writer != "syntactic" and llm is None:
            msg = f"writer={writer!r} needs llm= (a chat model that writes the question for each answer)."
            raise ConfigError(msg)
        self.writer, self.llm, self.max_per_chunk, self.max_variants = writer, llm, max_per_chunk, max_variants
        self.nlp = nlp or load_nlp()
        self.max_new_tokens = max_new_tokens

    def write_many(self, texts: Sequence[str]) -> list[list[FactQuestion]]:
        """The fact questions of each text (one parse pass; one LLM batch for all texts)."""
        per_text: list[list[tuple[Fact, list[str]]]] = []
        for doc in parse(texts, self.nlp):
            by_fact: dict[int, tuple[Fact, list[str]]] = {}
            definitions: list[tuple[Fact, list[str]]] = []
            for question, fact, answer in write(chunk_facts(doc)):
                if answer == fact.text:
                    by_fact.setdefault(id(fact), (fact, []))[1].append(question)
                else:  # a definition question ("What does AFC stand for?") has an answer of its own
                    definitions.append((Fact(answer, "NP", fact.sentence, None), [question]))
            items = list(by_fact.values()) + definitions
            per_text.append(items[: self.max_per_chunk] if self.max_per_chunk else items)
        llm_questions: dict[tuple[int, int], str] = {}
        if self.writer != "syntactic":
            jobs = [(i, j, fact) for i, items in enumerate(per_text) for j, (fact, _qs) in enumerate(items)]
            assert self.llm is not None  # an LLM writer is only chosen with a model
            replies = self.llm.chat_batch([fact_prompt(f) for _i, _j, f in jobs], max_new_tokens=self.max_new_tokens)
            for (i, j, fact), reply in zip(jobs, replies, strict=True):
                found = [q for q in parse_questions(reply)[0] if not gives_away(q, fact.text)]
                if found:
                    llm_questions[(i, j)] = found[0]
        out: list[list[FactQuestion]] = []
        for i, items in enumerate(per_text):
            chunk_out = []
            for j, (fact, syntactic) in enumerate(items):
                llm_q = llm_questions.get((i, j))
                if llm_q and self.writer == "llm":
                    keys, writer = [llm_q], "llm"
                elif llm_q:
                    keys, writer = [llm_q, *syntactic], "llm"
                else:
                    keys, writer = syntactic, "syntactic"
                keys = list(dict.fromkeys(keys))
                chunk_out.append(FactQuestion(keys[0], fact.text, fact.label, fact.sentence,
                                              keys[1 : 1 + self.max_variants], writer))
            out.append(chunk_out)
        return out
