"""What the steps pass along: a pair to store, a match found, and a lookup's outcome with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from storinfer.text import pair_id

DEFAULT_NAMESPACE = "default"
DEFAULT_PARTITION = "default"

Origin = Literal["precomputed", "runtime"]
MetaValue = str | int | float | bool


@dataclass
class QAPair:
    """One question-answer pair to store."""

    question: str
    answer: str
    partition: str = DEFAULT_PARTITION
    namespace: str = DEFAULT_NAMESPACE
    origin: Origin = "precomputed"
    doc_id: str = ""
    chunk_id: str = ""
    chunk_hash: str = ""
    generations: str = ""
    expires_at: float = 0.0
    extra: dict[str, MetaValue] = field(default_factory=dict)
    vector: list[float] | None = field(default=None, repr=False, compare=False)
    """The key's embedding if already computed (a miss's lookup vector); None: embedded on add."""

    @property
    def id(self) -> str:
        return pair_id(self.namespace, self.partition, self.question)


@dataclass
class Match:
    """A stored pair found for a question."""

    id: str
    question: str
    answer: str
    similarity: float
    metadata: dict[str, Any]
    exact: bool = False


class Reason(str, Enum):
    """Why a lookup served what it served, or why it served nothing.

    A ``str`` enum: ``Reason.EXACT == "exact"``, and ``str(reason)`` is the value, for logs and metadata.
    """

    EXACT = "exact"
    """The same question (after normalisation) is stored: served."""
    SIMILAR = "similar"
    """A stored question asking the same thing: served."""
    NEAR_REPEAT = "near repeat"
    """An answer stored from traffic whose question is at or above the point's repeat floor (cosine):
    served although its verifier score is below the cut, or below what the learner serves (the hard
    rules still apply)."""
    LLM_CHECK = "llm check"
    """A doubtful candidate the LLM check accepted: served."""
    EXPLORE = "explore"
    """A would-be hit held back and answered by the chain, to check it (``Lookup.explored``)."""
    TOO_RISKY = "too risky"
    """Inside the policy's point, but where this partition's labels show serving wrong too often."""
    ANSWER_CUT = "answer cut"
    """That stored answer was found wrong for a question scored like this one."""
    BELOW_THRESHOLD = "below threshold"
    """No candidate reaches the policy's cosine floor (or score cut), nor what the learner opened beyond it."""
    REFUSED = "refused"
    """Every candidate close enough broke a hard rule or scored below the cut (``Lookup.rejected`` says why)."""
    EMPTY_PARTITION = "empty partition"
    EMPTY_QUESTION = "empty question"
    NOT_TEXT = "not text"
    TOO_LONG = "too long"
    """Longer than the store matches safely (``max_query_chars``, or what the embedder reads)."""
    STORE_ERROR = "store error"
    """The store failed; the chain ran instead."""

    @property
    def served(self) -> bool:
        return self in (Reason.EXACT, Reason.SIMILAR, Reason.NEAR_REPEAT, Reason.LLM_CHECK)

    @property
    def skipped(self) -> bool:
        """A question the store does not match at all (counted as skipped, not as a miss)."""
        return self in (Reason.EMPTY_QUESTION, Reason.NOT_TEXT, Reason.TOO_LONG)

    def __str__(self) -> str:
        return self.value


@dataclass
class Lookup:
    """The outcome of a lookup: a match, or why there is none (and what was refused, and why)."""

    match: Match | None
    reason: Reason
    best_similarity: float | None = None
    rejected: list[tuple[Match, str]] = field(default_factory=list)
    """Candidates refused before the match (or all of them, on a miss), with the reason."""
    score: float | None = None
    """The verifier's score of the match, or of the best candidate on a miss (None for an exact hit)."""
    vector: list[float] | None = field(default=None, repr=False, compare=False)
    """The question's embedding, when the lookup computed one (reused to store a miss's answer)."""
    candidates: list[Match] = field(default_factory=list, repr=False, compare=False)
    """The nearest keys the lookup checked, best first (empty for an exact hit)."""
    explored: Match | None = None
    """A would-be hit held back to test it (exploration): the chain answers, and its answer says
    whether this stored one would have been right."""
    audit: bool = False
    """A hit served and to be checked: the caller that holds the chain runs it afterwards, off the
    user's path, and hands its answer to ``StoreFront.remember`` (the faces that hold a chain do)."""
    note: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """What the learner keeps to turn the chain's answer into a label (its own business)."""

    @property
    def hit(self) -> bool:
        return self.match is not None
