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
the whole budget spent), for ablations (docs/benchmarks.md, "The masking ablation"). Duplicates
are still never stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from storinfer.errors import ConfigError
from storinfer.precompute.deduplicate import is_duplicate
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
    max_mask: int | None = None
    """At most this many questions in the mask; None (the paper's way): as many as fit the
    model's context (``context_tokens``)."""
    mask_known: bool = False
    """Also show the answer-aware generator's questions of the chunk in the mask (they are always
    rejected as duplicates; shown, they lengthen every prompt: see the ablation in the README)."""
    context_tokens: int | None = None
    """The question writer's context window in tokens; None: the model's ``context_window``
    (8192 for the offline models), else 2048."""
    store_neighbours: int = 5
    max_new_tokens: int = 120
    free_generation: bool = True
    """The paper's generator above (False: answer-aware questions only)."""
    answer_aware: bool = True
    """Also ask about every fact of the chunk (:mod:`storinfer.precompute.generate.fact_questions`; needs ``storinfer[nlp]``)."""
    fact_writer: str = "syntactic"
    """Who writes the answer-aware questions: ``"syntactic"`` (no LLM), ``"llm"`` (the chat model,
    for a capable one) or ``"both"``."""
    max_facts_per_chunk: int | None = None
    fact_variants: int = 4
    """Other wordings of each answer-aware question stored as extra keys (short form, in place...)."""
    fact_answers: str = "chain"
    """``"chain"``: answer-aware questions are answered like every other (``answer_with``, or the LLM
    reading the chunk); ``"span"``: the fact itself is stored as the answer (no LLM call)."""
    rephrasings: int = 3
    """LLM rewordings ("other ways to ask") stored as extra keys of each answered question."""
    rephrase_facts: bool = False
    """Also ask the LLM to reword the answer-aware questions (they already have the writer's own
    wordings as keys; worth it with a capable model, one more LLM call per fact)."""
    key_dedup_threshold: float = 0.99
    """A key this close to a kept key of the chunk adds nothing and is dropped (the paper keeps
    questions below 0.99). Which questions get an answer is decided by ``dedup_threshold``."""

    def __post_init__(self) -> None:
        if self.fact_writer not in ("syntactic", "llm", "both"):
            msg = f"fact_writer must be 'syntactic', 'llm' or 'both', got {self.fact_writer!r}"
            raise ConfigError(msg)
        if self.fact_answers not in ("chain", "span"):
            msg = f"fact_answers must be 'chain' or 'span', got {self.fact_answers!r}"
            raise ConfigError(msg)
        for name in ("rephrasings", "fact_variants"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0):
                msg = f"{name} must be a whole number >= 0, got {getattr(self, name)!r}"
                raise ConfigError(msg)
        for name in ("dedup_threshold", "min_relevance", "top_p", "min_yield", "key_dedup_threshold"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                msg = f"{name} must be in [0, 1], got {v!r}"
                raise ConfigError(msg)
        if not (isinstance(self.temperature, (int, float)) and self.temperature >= 0):
            msg = f"temperature must be >= 0, got {self.temperature!r}"
            raise ConfigError(msg)
        for name in ("questions_per_call", "max_per_chunk", "max_calls_per_chunk", "patience"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                msg = f"{name} must be a whole number >= 1, got {getattr(self, name)!r}"
                raise ConfigError(msg)


@dataclass
class GeneratedQuestion:
    question: str
    temperature: float
    top_p: float
    call: int
    vector: list[float] | None = field(default=None, repr=False, compare=False)


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
    mask_sizes: list[int] = field(default_factory=list)
    """How many questions each call's mask showed."""


@dataclass
class ChunkJob:
    """One chunk to write questions for, with what the generator must know about it.

    ``neighbours``: stored questions near the chunk (shown in the mask). ``known``: questions of
    this chunk already accepted elsewhere (the answer-aware generator's), with their vectors: shown
    in the mask and never asked again. ``stored_duplicate(question, vector)``: whether the store
    already has it.
    """

    text: str
    chunk_id: str
    vector: list[float] | None = None
    neighbours: Sequence[str] = ()
    known: Sequence[tuple[str, list[float]]] = ()
    stored_duplicate: Callable[[str, list[float]], bool] | None = None


def seed_for(chunk_id: str, call: int) -> int:
    """Seed of one call: the same chunk and call sample the same way in every run."""
    return int(sha(chunk_id, str(call), length=8), 16)


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` for a model that cannot count them (about four characters a token)."""
    return len(text) // 4 + 1


class _Run:
    """The state of one chunk across its calls: what is known, the sampling, when to stop."""

    def __init__(self, job: ChunkJob, cfg: GenerationConfig, vector: list[float]) -> None:
        self.job, self.cfg, self.vector = job, cfg, vector
        self.out = ChunkGeneration()
        self.temp, self.top_p = cfg.temperature, cfg.top_p
        self.known: list[tuple[str, list[float]]] = []  # accepted in this chunk
        self.outside = list(job.known)  # accepted for this chunk by the other generator
        self.low_yield = 0
        self.done = False

    def mask(self, budget: int, count: Callable[[str], int]) -> list[str]:
        """Questions to show: this chunk's accepted ones (newest first), the store's nearest (and,
        with ``mask_known``, the other generator's), as many as fit ``budget`` tokens (at most
        ``max_mask`` when set)."""
        if not self.cfg.masking:
            return []
        pool = [q for q, _v in reversed(self.known)] + list(self.job.neighbours)[: self.cfg.store_neighbours]
        if self.cfg.mask_known:
            pool += [q for q, _v in self.outside]
        out: list[str] = []
        used = 0
        for q in dict.fromkeys(pool):
            cost = count(f"- {q}\n")
            if used + cost > budget or (self.cfg.max_mask is not None and len(out) >= self.cfg.max_mask):
                break
            out.append(q)
            used += cost
        return out

    def take(self, reply: str, questions_vectors: list[list[float]], questions: list[str], junk: list) -> None:
        cfg, out = self.cfg, self.out
        out.calls += 1
        accepted_now = dupes = off = 0
        for q, vec in zip(questions, questions_vectors, strict=True):
            if len(out.accepted) >= cfg.max_per_chunk:
                break
            out.candidates += 1
            if sum(a * b for a, b in zip(vec, self.vector)) < cfg.min_relevance:
                off += 1
                continue
            if (is_duplicate(q, vec, self.known + self.outside, cfg.dedup_threshold, guard=cfg.dedup_guard)
                    or (self.job.stored_duplicate is not None and self.job.stored_duplicate(q, vec))):
                dupes += 1
                continue
            self.known.append((q, vec))
            out.accepted.append(GeneratedQuestion(q, self.temp, self.top_p, out.calls - 1, vec))
            accepted_now += 1
        out.duplicates += dupes
        out.off_topic += off
        out.junk += len(junk)
        if len(out.accepted) >= cfg.max_per_chunk:
            self.finish("enough questions")
            return
        if cfg.adaptive:
            self.adapt(len(questions) + len(junk), len(junk) + off, dupes, accepted_now)
        if out.calls >= cfg.max_calls_per_chunk:
            self.finish("budget spent")

    def adapt(self, items: int, junk: int, dupes: int, accepted_now: int) -> None:
        """Adaptive sampling after a call: wider when repeating, narrower when rambling; stop on low yield."""
        cfg = self.cfg
        dup_rate = dupes / items if items else 0.0
        junk_rate = junk / items if items else 1.0
        lo_t, hi_t = cfg.temperature_bounds
        lo_p, hi_p = cfg.top_p_bounds
        if dup_rate >= 0.5:  # repeating itself: sample wider
            self.temp, self.top_p = min(hi_t, self.temp + 0.15), min(hi_p, self.top_p + 0.03)
        elif junk_rate >= 0.5:  # rambling: sample narrower
            self.temp, self.top_p = max(lo_t, self.temp - 0.15), max(lo_p, self.top_p - 0.05)
        self.low_yield = self.low_yield + 1 if accepted_now / cfg.questions_per_call < cfg.min_yield else 0
        if self.low_yield >= cfg.patience:
            self.finish("low yield")

    def finish(self, why: str) -> None:
        if not self.done:
            self.done, self.out.stopped = True, why


class QuestionGenerator:
    """Generates deduplicated questions for chunks (see the module docstring).

    Chunks are worked on together: each round, every unfinished chunk's next call goes to the
    model in one ``chat_batch`` (grouped by sampling settings), so a local model fills its
    batches and a served one gets concurrent calls. A chunk's calls depend only on its own earlier
    calls, so the questions are those of one chunk at a time (up to batched decoding's numerics).

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

    def mask_budget(self, chunk: str) -> tuple[int, Callable[[str], int]]:
        """Tokens left for the mask in a call about ``chunk`` (the model's context, less the prompt
        and the reply), and how tokens are counted."""
        count = getattr(self.llm, "count_tokens", None) or estimate_tokens
        window = self.config.context_tokens or getattr(self.llm, "context_window", None) or 2048
        used = sum(count(m["content"]) + 4 for m in self.prompt(chunk, []))
        return max(0, int(window) - used - self.config.max_new_tokens - 16), count

    def generate(
        self,
        chunk: str,
        chunk_id: str,
        *,
        chunk_vector: list[float] | None = None,
        neighbours: Sequence[str] = (),
        stored_duplicate: Callable[[str, list[float]], bool] | None = None,
        known: Sequence[tuple[str, list[float]]] = (),
    ) -> ChunkGeneration:
        """Generate questions for one chunk (see :meth:`generate_many`)."""
        job = ChunkJob(chunk, chunk_id, chunk_vector, neighbours, known, stored_duplicate)
        return self.generate_many([job])[0]

    def generate_many(self, jobs: Sequence[ChunkJob]) -> list[ChunkGeneration]:
        """Generate questions for several chunks at once; one :class:`ChunkGeneration` each, in order."""
        cfg = self.config
        missing = [j.text for j in jobs if j.vector is None]
        fresh = iter(self.embeddings.embed_documents(missing) if missing else [])
        runs = [_Run(j, cfg, j.vector if j.vector is not None else next(fresh)) for j in jobs]
        budgets = [self.mask_budget(j.text) for j in jobs]
        call = 0
        while True:
            active = [i for i, r in enumerate(runs) if not r.done]
            if not active:
                break
            groups: dict[tuple[float, float], list[int]] = {}
            for i in active:
                groups.setdefault((round(runs[i].temp, 4), round(runs[i].top_p, 4)), []).append(i)
            for (temp, top_p), members in groups.items():
                masks = [runs[i].mask(*budgets[i]) for i in members]
                convs = [self.prompt(runs[i].job.text, m) for i, m in zip(members, masks)]
                seed = seed_for("|".join(runs[i].job.chunk_id for i in members), call)
                replies = self.llm.chat_batch(convs, temperature=temp, top_p=top_p, seed=seed,
                                              max_new_tokens=cfg.max_new_tokens)
                parsed = [parse_questions(r) for r in replies]
                flat = [q for qs, _junk in parsed for q in qs]
                vectors = iter(self.embeddings.embed_documents(flat) if flat else [])
                for i, mask, reply, (qs, junk) in zip(members, masks, replies, parsed, strict=True):
                    runs[i].out.mask_sizes.append(len(mask))
                    runs[i].take(reply, [next(vectors) for _ in qs], qs, junk)
            call += 1
        return [r.out for r in runs]
