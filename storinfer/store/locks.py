"""A local store's folder: checks before opening it, and one lock per folder and process.

Chroma's local mode keeps its vector index in memory and does not see other processes' writes,
so a local store is single-process: the second process to open it gets
:class:`~storinfer.errors.StoreLockedError`, whose message says how to share it (a Chroma server).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from storinfer.errors import StoreError, StoreLockedError

_PROCESS_LOCKS: dict[str, list[Any]] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def acquire_path_lock(path: str) -> None:
    """Hold ``path`` for this process (re-entrant within the process), or raise StoreLockedError."""
    from filelock import FileLock, Timeout

    with _PROCESS_LOCKS_GUARD:
        entry = _PROCESS_LOCKS.get(path)
        if entry is not None:
            entry[1] += 1
            return
        lock = FileLock(os.path.join(path, ".storinfer.lock"), thread_local=False, is_singleton=False)
        owner = os.path.join(path, ".storinfer.owner")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            try:
                with open(owner, encoding="utf-8") as fh:
                    who = fh.read().strip()
            except OSError:
                who = "unknown"
            msg = (
                f"The store {path} is open in another process ({who}). Chroma's local mode is "
                "single-process: close that process, or serve the store with "
                f"`chroma run --path {path} --port 8000` and open it with "
                "QAStore(host='localhost', port=8000) from every process."
            )
            raise StoreLockedError(msg) from None
        with open(owner, "w", encoding="utf-8") as fh:
            fh.write(f"pid {os.getpid()}")
        _PROCESS_LOCKS[path] = [lock, 1]


def release_path_lock(path: str) -> None:
    with _PROCESS_LOCKS_GUARD:
        entry = _PROCESS_LOCKS.get(path)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            entry[0].release()
            del _PROCESS_LOCKS[path]


def folder_bytes(path: str) -> int:
    """Bytes the files under ``path`` take on disk."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def check_local_path(path: str, *, create: bool = True) -> str:
    """The absolute store folder, made if missing and ``create``; a clear error when it cannot serve."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path) and not os.path.isdir(path):
        msg = f"The store path {path} is a file. Pass a directory (it is created if missing)."
        raise StoreError(msg)
    if not create and not os.path.isfile(os.path.join(path, "chroma.sqlite3")):
        msg = f"No store at {path}: check the path, or build one with `storinfer precompute DOCS --store PATH`."
        raise StoreError(msg)
    if os.path.isdir(path):
        if not os.access(path, os.W_OK | os.X_OK):
            msg = (
                f"The store directory {path} is not writable. Chroma writes its SQLite journal "
                "there even to read: fix the permissions, or copy the store somewhere writable."
            )
            raise StoreError(msg)
        sqlite = os.path.join(path, "chroma.sqlite3")
        if os.path.exists(sqlite) and not os.access(sqlite, os.W_OK):
            msg = f"{sqlite} is read-only. Fix its permissions or copy the store somewhere writable."
            raise StoreError(msg)
        return path
    parent = os.path.dirname(path) or "."
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        msg = f"Cannot create the store directory {path}: {parent} is not a writable directory."
        raise StoreError(msg)
    os.makedirs(path, exist_ok=True)
    return path
