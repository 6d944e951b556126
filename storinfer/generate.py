"""Question generation for one chunk: adaptive query masking and adaptive sampling (the paper's
method), with the filters a small model needs.

Per chunk, each LLM call asks for ``questions_per_call`` questions. The output is parsed line by
line; a line is kept as a *candidate* only if it reads as a question a user would ask (see
:func:`question_problem`) and is about the chunk (cosine to the chunk >= ``min_relevance``).

* **Masking**: the questions accepted so far for the chunk, and the stored questions nearest to
  the chunk, are shown to the generator as "already written, write different ones"; every
  candidate at cosine >= ``dedup_threshold`` to an accepted or stored question (and that the
  look-alike guard cannot tell apart from it) is rejected before it costs an answer.
* **Adaptive sampling**: after each call, a high duplicate rate raises temperature and top-p
  (more diverse), a high junk rate lowers them (more careful), within bounds; the chunk stops
  when the unique yield stays under ``min_yield`` for ``patience`` calls, or the call budget
  is spent. Each accepted question records the temperature and top-p that produced it.

``masking=False`` / ``adaptive=False`` switch both off (fixed sampling, no mask in the prompt,
the whole budget spent) for the ablation in ``benchmarks/precompute_ablation.py``. Duplicates
are still never stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from storinfer.deduplicate import is_duplicate
from storinfer.protocols import ChatModel, Embedder, Message
from storinfer.text import clean_text, sha

SYSTEM = "You write short questions that a text answers. Reply with a numbered list of questions only."
MASK_INTRO = "These questions were already written; write different ones:"
# One worked example: a 135M model follows a shown format far better than a described one.
EXAMPLE_TEXT = (
    "The Eiffel Tower is a wrought-iron tower in Paris, France. It was designed by the engineer Gustave "
    "Eiffel and completed in 1889 for the World's Fair. The tower is 330 metres tall and was the tallest "
    "man-made structure in the world until 1930."
)
EXAMPLE_QUESTIONS = (
    "1. Who designed the Eiffel Tower?\n2. When was the Eiffel Tower completed?\n3. How tall is the Eiffel "
    "Tower?\n4. In which city is the Eiffel Tower?\n5. Until what year was the Eiffel Tower the tallest "
    "structure in the world?"
)

_PREFIX = re.compile(r"^\s*(?:\(?\d+\s*[.):\]]|[-*•]+|\*?\s*(?:Q|Question)\s*\d*\s*\*?\s*[:.)-]|\*\*)\s*", re.I)
_STARTS = {
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was", "were",
    "do", "does", "did", "can", "could", "will", "would", "should", "has", "have", "had", "in", "on", "at",
    "for", "to", "from", "by", "during", "after", "before", "according", "name", "approximately", "about",
    "under", "since", "with", "as", "of", "until", "between",
}
# "US" (the country) and "I" (a Roman numeral) in capitals are not pronouns; "Us" opening a question is
_PERSONAL = re.compile(r"\b(?i:you|your|yours|yourself|me|my|mine|we|our)\b|\b(?:i|[Uu]s)\b|^I\b"
                       r"|\bI (?:am|was|have|had|do|did|should|can|could|would|will|need|know|think|find|get|learn)\b")
_META = re.compile(r"\b(the|this|that|above|given|following) (text|passage|paragraph|sentence|article|document|excerpt)\b", re.I)


def question_problem(question: str) -> str:
    """Why ``question`` is junk rather than a question a user would ask ("" if it is fine)."""
    words = question.split()
    if not question.endswith("?"):
        return "not a question"
    if len(words) < 3:
        return "too short"
    if len(words) > 30:
        return "too long"
    first = words[0].strip("\"'“”(").lower()
    if first not in _STARTS:
        return "does not start like a question"
    if _PERSONAL.search(question):
        return "addressed to the assistant"
    if _META.search(question):
        return "about the text rather than its content"
    if sum(ch.isalpha() for ch in question) < 0.6 * len(question.replace(" ", "")):
        return "mostly symbols"
    return ""


def parse_questions(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Split an LLM reply into question candidates and rejected junk ``(line, reason)``.

    Handles numbering, bullets, "Q:" labels, several questions on one line, and answers after
    the question mark ("Who won? - The Broncos").
    """
    questions: list[str] = []
    junk: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = clean_text(raw)
        if not line:
            continue
        line = _PREFIX.sub("", line).strip(" *\"'“”`")
        if "?" not in line:
            junk.append((line, "not a question"))
            continue
        for piece in re.findall(r"[^?]*\?", line):
            # Text before a question on the same line is an answer to the previous one: keep
            # only the last sentence of the piece.
            piece = re.split(r"(?<=[.!;:])\s+|\s+[-–]\s+", piece)[-1]
            q = _PREFIX.sub("", clean_text(piece)).strip(" *\"'“”`-–:")
            if not q.endswith("?"):
                q += "?"
            why = question_problem(q)
            if why:
                junk.append((q, why))
            elif q not in questions:
                questions.append(q)
    return questions, junk


@dataclass
class GenerationConfig:
    """Settings of question generation for one chunk (defaults measured on SQuAD with SmolLM2)."""

    questions_per_call: int = 5
    max_per_chunk: int = 12
    max_calls_per_chunk: int = 4
    dedup_threshold: float = 0.90
    dedup_guard: bool = True
    """A candidate above ``dedup_threshold`` is still kept when the look-alike guard finds it asks
    something else (AFC vs NFC). False: pure cosine."""
    min_relevance: float = 0.35
    """Cosine of question and chunk below which a question is off-topic (5% of SQuAD's human
    questions score under 0.365 against their own paragraph; invented ones mostly under 0.34)."""
    masking: bool = True
    adaptive: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    temperature_bounds: tuple[float, float] = (0.3, 1.3)
    top_p_bounds: tuple[float, float] = (0.7, 1.0)
    min_yield: float = 0.2
    patience: int = 2
    max_mask: int = 15
    store_neighbours: int = 5
    max_new_tokens: int = 120

    def __post_init__(self) -> None:
        for name in ("dedup_threshold", "min_relevance", "top_p", "min_yield"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                msg = f"{name} must be in [0, 1], got {v!r}"
                raise ValueError(msg)
        if not (isinstance(self.temperature, (int, float)) and self.temperature >= 0):
            msg = f"temperature must be >= 0, got {self.temperature!r}"
            raise ValueError(msg)
        for name in ("questions_per_call", "max_per_chunk", "max_calls_per_chunk", "patience"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                msg = f"{name} must be a whole number >= 1, got {getattr(self, name)!r}"
                raise ValueError(msg)


@dataclass
class GeneratedQuestion:
    question: str
    temperature: float
    top_p: float
    call: int


@dataclass
class ChunkGeneration:
    """What generation did for one chunk."""

    accepted: list[GeneratedQuestion] = field(default_factory=list)
    calls: int = 0
    candidates: int = 0
    duplicates: int = 0
    junk: int = 0
    off_topic: int = 0
    stopped: str = ""


def seed_for(chunk_id: str, call: int) -> int:
    """Seed of one call: the same chunk and call sample the same way in every run."""
    return int(sha(chunk_id, str(call), length=8), 16)


class QuestionGenerator:
    """Generates deduplicated questions for one chunk at a time (see the module docstring).

    Args:
        llm: the chat model that writes questions.
        embeddings: the store's embeddings (dedup and relevance are measured with them).
        config: :class:`GenerationConfig`.
    """

    def __init__(self, llm: ChatModel, embeddings: Embedder, config: GenerationConfig | None = None) -> None:
        self.llm = llm
        self.embeddings = embeddings
        self.config = config or GenerationConfig()

    def prompt(self, chunk: str, mask: Sequence[str]) -> list[Message]:
        system = SYSTEM
        if mask:
            system += f"\n{MASK_INTRO}\n" + "\n".join(f"- {q}" for q in mask)
        n = self.config.questions_per_call
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Text: {EXAMPLE_TEXT}\n\nWrite 5 questions."},
            {"role": "assistant", "content": EXAMPLE_QUESTIONS},
            {"role": "user", "content": f"Text: {chunk}\n\nWrite {n} questions."},
        ]

    def generate(
        self,
        chunk: str,
        chunk_id: str,
        *,
        chunk_vector: list[float] | None = None,
        neighbours: Sequence[str] = (),
        stored_duplicate: Callable[[str, list[float]], bool] | None = None,
    ) -> ChunkGeneration:
        """Generate questions for ``chunk``.

        ``neighbours`` are stored questions near the chunk (shown in the mask);
        ``stored_duplicate(question, vector)`` says whether the store already has it.
        """
        cfg = self.config
        out = ChunkGeneration()
        temp, top_p = cfg.temperature, cfg.top_p
        chunk_vec = chunk_vector or self.embeddings.embed_query(chunk)
        known: list[tuple[str, list[float]]] = []  # accepted in this chunk
        low_yield = 0
        for call in range(cfg.max_calls_per_chunk):
            if len(out.accepted) >= cfg.max_per_chunk:
                out.stopped = "enough questions"
                break
            mask: list[str] = []
            if cfg.masking:
                mask = [q for q, _v in known][-cfg.max_mask :] + list(neighbours)[: cfg.store_neighbours]
            reply = self.llm.chat_batch(
                [self.prompt(chunk, mask)],
                temperature=temp,
                top_p=top_p,
                seed=seed_for(chunk_id, call),
                max_new_tokens=cfg.max_new_tokens,
            )[0]
            out.calls += 1
            questions, junk = parse_questions(reply)
            accepted_now = dupes = off = 0
            vectors = self.embeddings.embed_documents(questions) if questions else []
            for q, vec in zip(questions, vectors, strict=True):
                if len(out.accepted) >= cfg.max_per_chunk:
                    break
                out.candidates += 1
                if sum(a * b for a, b in zip(vec, chunk_vec)) < cfg.min_relevance:
                    off += 1
                    continue
                if is_duplicate(q, vec, known, cfg.dedup_threshold, guard=cfg.dedup_guard) or (stored_duplicate is not None and stored_duplicate(q, vec)):
                    dupes += 1
                    continue
                known.append((q, vec))
                out.accepted.append(GeneratedQuestion(q, temp, top_p, call))
                accepted_now += 1
            out.duplicates += dupes
            out.off_topic += off
            out.junk += len(junk)
            if not cfg.adaptive:
                continue
            items = len(questions) + len(junk)
            dup_rate = dupes / items if items else 0.0
            junk_rate = (len(junk) + off) / items if items else 1.0
            lo_t, hi_t = cfg.temperature_bounds
            lo_p, hi_p = cfg.top_p_bounds
            if dup_rate >= 0.5:  # repeating itself: sample wider
                temp, top_p = min(hi_t, temp + 0.15), min(hi_p, top_p + 0.03)
            elif junk_rate >= 0.5:  # rambling: sample narrower
                temp, top_p = max(lo_t, temp - 0.15), max(lo_p, top_p - 0.05)
            low_yield = low_yield + 1 if accepted_now / cfg.questions_per_call < cfg.min_yield else 0
            if low_yield >= cfg.patience:
                out.stopped = "low yield"
                break
        out.stopped = out.stopped or ("enough questions" if len(out.accepted) >= cfg.max_per_chunk else "budget spent")
        return out
