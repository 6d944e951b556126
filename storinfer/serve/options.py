"""What every face takes the same way: the store to open, and options renamed since 0.2."""

from __future__ import annotations

import warnings

from storinfer.errors import StoreConfigError
from storinfer.protocols import Embedder
from storinfer.store import QAStore


def open_store(store: QAStore | None, path: str | None, host: str | None, port: int, embedding: Embedder | None) -> QAStore:
    """``store`` if given, else a :class:`QAStore` at ``path`` or on the server ``host``."""
    if store is not None:
        return store
    if path is None and host is None:
        msg = "Pass store=QAStore(...), path= (a local folder) or host= (a Chroma server)."
        raise StoreConfigError(msg)
    return QAStore(path, host=host, port=port, embedding=embedding)


def store_misses_option(store_misses: bool, **old: bool | None) -> bool:
    """The value of ``store_misses``, taking a deprecated old name (``cache_misses=``...) if one was given."""
    given = {name: value for name, value in old.items() if value is not None}
    if len(given) > 1:
        msg = f"Pass only store_misses= (not {', '.join(given)})."
        raise TypeError(msg)
    for name, value in given.items():
        warnings.warn(f"{name}= is renamed store_misses= and will be removed in the next release.",
                      DeprecationWarning, stacklevel=3)
        return bool(value)
    return store_misses
