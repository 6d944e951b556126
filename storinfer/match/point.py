"""The operating point: where each verifier head serves (a cosine floor and a score cut).

``storinfer calibrate`` records one in the store (every client then serves with it when no learner
runs); the shipped one is in ``storinfer/match/verifier.json``. Every reader uses
:class:`OperatingPoint`, never a loose dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from storinfer.errors import ConfigError, validate_threshold
from storinfer.match.features import HEADS

POINT_RATE = 0.01
"""The share of wrong serves every shipped or calibrated point is chosen for."""
REPEAT_FLOOR = 0.95
"""The shipped repeat floor: an answer stored from traffic is served when its question is this close
(cosine) to the new one, whatever its verifier score (docs/serve-decision.md, "Near-repeats of traffic")."""


def is_repeat(repeat_floor: float | None, kind: str, cosine: float) -> bool:
    """Whether a candidate of ``kind`` (see :func:`storinfer.match.features.candidate_kind`) at ``cosine`` is a
    near-repeat of traffic: an answer stored from traffic at or above the repeat floor."""
    return kind == "runtime" and repeat_floor is not None and cosine >= repeat_floor


@dataclass(frozen=True)
class HeadPoint:
    """One head's point: serve a candidate at cosine >= ``floor`` (``typed_floor`` for a question
    asking for a typed answer, if higher) that scores >= ``cut``."""

    floor: float
    cut: float
    typed_floor: float | None = None

    def floor_for(self, typed: bool) -> float:
        return max(self.floor, self.typed_floor) if typed and self.typed_floor is not None else self.floor

    def to_dict(self) -> dict[str, float | None]:
        return {"floor": self.floor, "cut": self.cut, "typed_floor": self.typed_floor}

    @classmethod
    def from_dict(cls, data: dict[str, Any], default: HeadPoint | None = None) -> HeadPoint:
        """A recorded point; without a ``typed_floor``, ``default``'s typed floor (at least the floor) is kept."""
        floor = validate_threshold(float(data["floor"]), "floor")
        typed = data.get("typed_floor")
        if "typed_floor" not in data and default is not None and default.typed_floor is not None:
            typed = max(default.typed_floor, floor)
        return cls(floor, validate_threshold(float(data["cut"]), "cut"), None if typed is None else float(typed))


@dataclass(frozen=True)
class OperatingPoint:
    """Each head's :class:`HeadPoint`; ``runtime`` None: answers stored from traffic use the question head's.
    ``repeat_floor``: an answer stored from traffic whose question is at least this close (cosine) to
    the new one is also served whatever its verifier score, unless a rule refuses it (None: never)."""

    question: HeadPoint
    fact: HeadPoint
    runtime: HeadPoint | None = None
    repeat_floor: float | None = None

    def head(self, name: str) -> HeadPoint:
        if name not in HEADS:
            msg = f"head must be one of {HEADS}, not {name!r}"
            raise ConfigError(msg)
        point: HeadPoint | None = getattr(self, name)
        return point if point is not None else self.question

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"question": self.question.to_dict(), "fact": self.fact.to_dict()}
        if self.runtime is not None:
            out["runtime"] = self.runtime.to_dict()
        out["repeat_floor"] = self.repeat_floor
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], default: OperatingPoint) -> OperatingPoint:
        """A recorded point; heads it does not name, and its repeat floor if it does not name one, keep ``default``'s."""
        heads = {name: HeadPoint.from_dict(data[name], default.head(name)) for name in HEADS if isinstance(data.get(name), dict)}
        repeat = data.get("repeat_floor", default.repeat_floor)
        return cls(heads.get("question", default.question), heads.get("fact", default.fact),
                   heads.get("runtime", default.runtime),
                   None if repeat is None else validate_threshold(repeat, "repeat_floor"))


class Settings(Protocol):
    """What a store offers for recording settings every client reads (:class:`storinfer.QAStore` has it)."""

    def setting(self, name: str) -> Any: ...

    def record_setting(self, name: str, value: Any) -> None: ...


def recorded_point(store: Settings, default: OperatingPoint) -> OperatingPoint | None:
    """The point ``storinfer calibrate`` recorded in ``store`` (None: none)."""
    data = store.setting("operating_point")
    return OperatingPoint.from_dict(data, default) if isinstance(data, dict) else None


def record_point(store: Settings, head: str, point: HeadPoint, default: OperatingPoint, **info: Any) -> None:
    """Record one head's point in ``store`` for every client (the other heads' recorded points are kept)."""
    default.head(head)  # checks the name
    recorded = store.setting("operating_point")
    data = dict(recorded) if isinstance(recorded, dict) else {}
    data[head] = {**point.to_dict(), **info}
    store.record_setting("operating_point", data)
