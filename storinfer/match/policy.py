"""Policies: how a lookup's candidates are decided.

* :class:`VerifierPolicy` (the default): the hit verifier (:mod:`storinfer.match.verify`), hard rules and
  a learned score per kind of key, at an operating point (the shipped one, or the one ``storinfer
  calibrate`` recorded in the store). With a learner (:mod:`storinfer.serve.learner`), the learner
  decides among the candidates the rules let through, from their scores; without one, the point does.
* :class:`ThresholdPolicy`: the nearest key at or above a cosine threshold, with (``rules=True``) or
  without the look-alike rules: what plain semantic caches do, kept for measurement.

A policy is configuration: one instance may serve many faces and stores. ``bind(store)`` gives the
policy a store's recorded settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from storinfer.errors import ConfigError, validate_threshold
from storinfer.match.features import Query, candidate_kind
from storinfer.match.lookalike import conflict
from storinfer.match.lookup import DEFAULT_K, Candidates
from storinfer.match.point import HeadPoint, OperatingPoint, Settings, recorded_point
from storinfer.match.verify import Verdict, Verifier
from storinfer.records import Lookup, Match, Reason


class SecondOpinion(Protocol):
    """An optional model asked about candidates the policy refuses by a little
    (:class:`storinfer.match.llm_check.LLMCheck`)."""

    def doubtful(self, policy: Policy, query: str, candidates: Sequence[Match]) -> list[tuple[Match, float]]: ...


class Policy(Protocol):
    """How candidates are decided (see the module docstring)."""

    @property
    def k(self) -> int:
        """Nearest stored keys checked per lookup."""
        ...

    @property
    def llm_check(self) -> SecondOpinion | None: ...

    @property
    def point(self) -> OperatingPoint:
        """Where the policy serves: each head's cosine floor and score cut (what a learner starts from)."""
        ...

    def bind(self, store: Settings) -> Policy: ...

    def assess(self, query: Query, candidates: Sequence[Match]) -> list[Verdict]:
        """Every candidate judged by the rules and scored, at no operating point."""
        ...

    def decide(self, query: Query, found: Candidates) -> Lookup:
        """The candidate served at the policy's own operating point, or why none is."""
        ...


def _outcome(found: Candidates, pos: int | None, rejected: list[tuple[Match, str]], score: float | None,
             served: Reason = Reason.SIMILAR) -> Lookup:
    if pos is not None:
        return found.hit(pos, served, rejected=rejected, score=score)
    reason = Reason.REFUSED if rejected else (Reason.EMPTY_PARTITION if not found.matches else Reason.BELOW_THRESHOLD)
    return found.miss(reason, rejected=rejected)


@dataclass(frozen=True)
class VerifierPolicy:
    """The hit verifier decides: hard rules, then a learned score per kind of key.

    Setup:
        ```bash
        pip install storinfer        # the verifier's weights ship in the package
        ```

    Instantiate:
        ```python
        from storinfer import VerifierPolicy

        policy = VerifierPolicy()                                   # the store's point, else the shipped one
        strict = VerifierPolicy(Verifier.default().with_operating_point(cut=0.99))
        ```

    Usage:
        ```python
        StorInferCache("./storinfer_db", policy=policy)
        ```

    Args:
        verifier: the :class:`~storinfer.match.verify.Verifier` (None: the shipped one, at the point
            ``storinfer calibrate`` recorded in the store if there is one).
        k: nearest stored keys checked per lookup.
        llm_check: a model asked about candidates just below the cut (off by default; see
            :mod:`storinfer.match.llm_check`).
    """

    verifier: Verifier | None = None
    k: int = DEFAULT_K
    llm_check: SecondOpinion | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.verifier is not None and not isinstance(self.verifier, Verifier):
            msg = f"verifier must be a storinfer Verifier or None, not {type(self.verifier).__name__}"
            raise ConfigError(msg)
        if not isinstance(self.k, int) or not 1 <= self.k <= 100:
            msg = f"k must be a whole number of candidates from 1 to 100, got {self.k!r}"
            raise ConfigError(msg)

    def bind(self, store: Settings) -> VerifierPolicy:
        if self.verifier is not None:
            return self
        shipped = Verifier.default()
        point = recorded_point(store, shipped.point)
        return replace(self, verifier=shipped.at(point) if point is not None else shipped)

    @property
    def active(self) -> Verifier:
        return self.verifier or Verifier.default()

    @property
    def point(self) -> OperatingPoint:
        return self.active.point

    def assess(self, query: Query, candidates: Sequence[Match]) -> list[Verdict]:
        return self.active.assess(query, candidates)

    def decide(self, query: Query, found: Candidates) -> Lookup:
        v = self.active
        pos, verdicts = v.choose(query, found.matches)
        floor = v.floor
        if pos is not None:
            refused = [(c, vd.reason) for c, vd in zip(found.matches, verdicts) if not vd.ok and c.similarity >= floor]
            served = Reason.NEAR_REPEAT if verdicts[pos].reason == Reason.NEAR_REPEAT else Reason.SIMILAR
            return _outcome(found, pos, refused, verdicts[pos].score, served)
        refused = [(c, vd.reason) for c, vd in zip(found.matches, verdicts) if c.similarity >= floor]
        return _outcome(found, None, refused, None)


@dataclass(frozen=True)
class ThresholdPolicy:
    """The nearest key at cosine >= ``threshold`` is served: a plain semantic cache, for measurement.

    Setup:
        ```bash
        pip install storinfer          # nothing else: no verifier weights are read
        ```

    Instantiate:
        ```python
        from storinfer import ThresholdPolicy

        plain = ThresholdPolicy(0.9, rules=False)      # what a cosine-threshold cache serves
        ```

    Usage:
        ```python
        StoreFront(store, policy=plain, learner=None)
        ```

    Args:
        threshold: the cosine similarity a key must reach.
        rules: refuse look-alikes (other numbers, names, negation, question type...;
            :func:`storinfer.match.lookalike.conflict`); False: cosine alone.
        k: nearest stored keys checked per lookup.
    """

    threshold: float = 0.95
    rules: bool = True
    k: int = DEFAULT_K
    llm_check: SecondOpinion | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        validate_threshold(self.threshold)

    def bind(self, store: Settings) -> ThresholdPolicy:
        return self

    @property
    def point(self) -> OperatingPoint:
        """Every head at the threshold (its score is the cosine)."""
        head = HeadPoint(self.threshold, 0.0)
        return OperatingPoint(head, head, head)

    def assess(self, query: Query, candidates: Sequence[Match]) -> list[Verdict]:
        out = []
        for c in candidates:
            why = conflict(query.text, c.question) if self.rules else None
            out.append(Verdict(why is None, c.similarity, f"rule: {why}" if why else "", candidate_kind(c)))
        return out

    def decide(self, query: Query, found: Candidates) -> Lookup:
        rejected: list[tuple[Match, str]] = []
        for pos, cand in enumerate(found.matches):
            if cand.similarity < self.threshold:
                break
            why = conflict(query.text, cand.question) if self.rules else None
            if why is None:
                return _outcome(found, pos, rejected, cand.similarity)
            rejected.append((cand, f"rule: {why}"))
        return _outcome(found, None, rejected, None)
