"""What a precompute run did: counts of both generators, answers, keys, calls, and time."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from storinfer.records import QAPair


@dataclass
class PrecomputeSummary:
    """What a precompute run did; ``str()`` gives a readable table.

    ``pairs_stored`` counts answers (question-answer pairs, each answered once); ``keys_stored``
    counts the records they are stored under (each answer's question, its other wordings and
    rephrasings).
    """

    documents: int = 0
    chunks: int = 0
    chunks_already_done: int = 0
    chunks_processed: int = 0
    stale_chunks_removed: int = 0
    stale_pairs_removed: int = 0
    generation_calls: int = 0
    fact_writer_calls: int = 0
    answer_calls: int = 0
    rephrase_calls: int = 0
    candidates: int = 0
    accepted: int = 0
    rejected_duplicate: int = 0
    rejected_junk: int = 0
    rejected_off_topic: int = 0
    fact_questions: int = 0
    """Answer-aware questions written (one per fact asked about)."""
    fact_accepted: int = 0
    fact_duplicates: int = 0
    empty_answers: int = 0
    rejected_key_duplicates: int = 0
    """Answered questions whose own key was a kept key of another answer (0.99 apart): left out."""
    pairs_stored: int = 0
    keys_stored: int = 0
    rephrasings_kept: int = 0
    wall_seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    """Where the time went: ``facts``, ``free``, ``answers``, ``rephrasings``, ``store``."""
    stop_reasons: dict[str, int] = field(default_factory=dict)
    emitted: list[QAPair] = field(default_factory=list, repr=False)
    """The key records this run stored (left out of :meth:`as_dict`)."""

    @property
    def llm_calls(self) -> int:
        return self.generation_calls + self.fact_writer_calls + self.answer_calls + self.rephrase_calls

    @property
    def pairs_per_llm_call(self) -> float:
        return self.pairs_stored / self.llm_calls if self.llm_calls else 0.0

    @property
    def unique_questions_per_generation_call(self) -> float:
        return self.accepted / self.generation_calls if self.generation_calls else 0.0

    @property
    def pairs_per_hour(self) -> float:
        return self.pairs_stored / self.wall_seconds * 3600 if self.wall_seconds else 0.0

    def timed(self, phase: str, started: float) -> None:
        """Add the seconds since ``started`` (``time.perf_counter()``) to ``phase``."""
        import time

        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + time.perf_counter() - started

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "emitted"}
        d["stop_reasons"] = dict(self.stop_reasons)
        d["phase_seconds"] = {k: round(v, 1) for k, v in self.phase_seconds.items()}
        d.update(
            llm_calls=self.llm_calls,
            pairs_per_llm_call=round(self.pairs_per_llm_call, 3),
            unique_questions_per_generation_call=round(self.unique_questions_per_generation_call, 3),
            pairs_per_hour=round(self.pairs_per_hour, 1),
        )
        return d

    def __str__(self) -> str:
        rows = [
            ("documents", self.documents),
            ("chunks (done before / processed)", f"{self.chunks} ({self.chunks_already_done} / {self.chunks_processed})"),
            ("stale chunks removed (pairs)", f"{self.stale_chunks_removed} ({self.stale_pairs_removed})"),
            ("answer-aware questions (accepted / duplicates)", f"{self.fact_questions} ({self.fact_accepted} / {self.fact_duplicates})"),
            ("free candidate questions", self.candidates),
            ("free accepted", self.accepted),
            ("free rejected as duplicates", self.rejected_duplicate),
            ("free rejected as junk (unparsable / off-topic)", f"{self.rejected_junk + self.rejected_off_topic} "
             f"({self.rejected_junk} / {self.rejected_off_topic})"),
            ("empty answers dropped", self.empty_answers),
            ("pairs stored (answers)", self.pairs_stored),
            ("keys stored (rephrasings kept)", f"{self.keys_stored} ({self.rephrasings_kept})"),
            ("LLM calls (questions + facts + answers + rephrasings)",
             f"{self.llm_calls} ({self.generation_calls} + {self.fact_writer_calls} + {self.answer_calls} + {self.rephrase_calls})"),
            ("pairs per LLM call", f"{self.pairs_per_llm_call:.2f}"),
            ("unique questions per generation call", f"{self.unique_questions_per_generation_call:.2f}"),
            ("wall time (pairs per hour)", f"{self.wall_seconds:.1f} s ({self.pairs_per_hour:.0f})"),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
