"""StorInfer's own errors (each message says what to do) and argument checks shared by every part."""

from __future__ import annotations

import importlib
from types import ModuleType


class StorInferError(Exception):
    """Base class of StorInfer's own errors; each message says what to do."""


class ConfigError(StorInferError, ValueError):
    """A StorInfer class or face was configured with an argument it cannot use (a rate, a TTL, a
    namespace, a threshold, a store or model of the wrong kind...). Raised when the object is built,
    the same error on every face; the message names the argument and the fix."""


class StoreError(StorInferError):
    """The store cannot be opened, read or written as asked; the message says what to do."""


class EmbeddingMismatchError(StoreError):
    """The store was built with another embedding model; its vectors would not compare."""


class SchemaVersionError(StoreError):
    """The store was written by a StorInfer with another schema version."""


class StoreLockedError(StoreError):
    """Another process has this local store open (Chroma's local mode is single-process)."""


class MissingExtraError(StorInferError, ImportError):
    """An optional part of StorInfer is used without its dependencies installed."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming the ``pip install`` to run."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        msg = f"{what} needs {module.split('.')[0]!r}, which is not installed. Run: pip install 'storinfer[{extra}]'"
        raise MissingExtraError(msg) from err


def validate_threshold(value: object, name: str = "threshold") -> float:
    """Return ``value`` as a float in [0, 1], or raise a :class:`ConfigError` that says so."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        msg = f"{name} must be a number in [0, 1], got {value!r}"
        raise ConfigError(msg) from err
    if not (0.0 <= v <= 1.0):  # also rejects NaN
        msg = f"{name} must be in [0, 1] (cosine similarity), got {value!r}"
        raise ConfigError(msg)
    return v
