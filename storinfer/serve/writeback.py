"""Write-back: store the answers of misses off the caller's path.

A miss's answer is embedded (unless the lookup's vector can be reused) and upserted into Chroma
by one background thread per :class:`~storinfer.serve.StoreFront`, through a bounded queue:

* the caller only enqueues (microseconds);
* the writer waits for a moment when no lookup is running (at most :data:`QUIET_WAIT_S`): a
  Chroma write holds the Python interpreter for 10-20 ms and would stall a lookup beside it;
* a full queue never drops a pair: the caller writes it itself (counted as ``writes_inline``),
  which is the old, slower path, so a burst of misses slows down instead of losing answers;
* :meth:`WriteBehind.flush` waits for the queue; :meth:`WriteBehind.close`, ``QAStore.close()``
  and interpreter exit (``atexit``) flush it;
* a crash (``kill -9``, power loss) loses at most the pairs still queued, ``stats()["pending_writes"]``
  of them. Each is only a remembered answer, which the next ask of that question recomputes; the
  store itself stays consistent, as every write is one Chroma upsert.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

from storinfer.errors import ConfigError
from storinfer.records import QAPair

logger = logging.getLogger(__name__)

_STOP = object()
_LIVE: weakref.WeakSet[WriteBehind] = weakref.WeakSet()
BATCH = 64
QUIET_WAIT_S = 0.25
"""The writer waits up to this long for a moment when no lookup runs (then writes anyway)."""


class WriteBehind:
    """A bounded queue of pairs and the thread that stores them.

    Args:
        store: where the pairs go.
        max_pending: queue bound; when full, :meth:`submit` writes on the caller's thread.
        on_written: called with the number of pairs each successful write stored.
        on_error: called with the number of pairs a failing write did not store (logged too).
    """

    def __init__(self, store: Any, *, max_pending: int = 1024, on_written: Callable[[int], None] | None = None,
                 on_error: Callable[[int], None] | None = None) -> None:
        if max_pending < 1:
            msg = f"max_pending must be at least 1, got {max_pending}"
            raise ConfigError(msg)
        self.store = store
        self.queue: queue.Queue[object] = queue.Queue(max_pending)
        self.on_written = on_written or (lambda n: None)
        self.on_error = on_error or (lambda n: None)
        self.inline = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._queued: dict[str, QAPair] = {}
        self._queued_lock = threading.Lock()
        _LIVE.add(self)
        store.register_writer(self)

    @property
    def pending(self) -> int:
        """Pairs submitted and not yet stored (queued or being written)."""
        return self.queue.unfinished_tasks

    def queued(self, pid: str) -> QAPair | None:
        """The pair with id ``pid`` if it waits in the queue (so an exact repeat is served at once)."""
        with self._queued_lock:
            return self._queued.get(pid)

    def queued_pairs(self) -> list[QAPair]:
        """The pairs waiting in the queue (a lookup reads them too: read your own writes)."""
        with self._queued_lock:
            return list(self._queued.values())

    def submit(self, pair: QAPair) -> None:
        """Queue ``pair`` for storing; write it now if the queue is full or the writer is closed."""
        if not self._closed:
            self._ensure_thread()
            with self._queued_lock:
                self._queued[pair.id] = pair
            try:
                self.queue.put_nowait(pair)
                return
            except queue.Full:
                pass
        self.inline += 1
        self._write([pair])

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted pair is stored (or ``timeout`` seconds); True if none is left."""
        with self.queue.all_tasks_done:
            return self.queue.all_tasks_done.wait_for(lambda: self.queue.unfinished_tasks == 0, timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, then stop the thread. Later submits write on the caller's thread."""
        done = self.flush(timeout)
        self._closed = True
        if self._thread is not None and self._thread.is_alive():
            self.queue.put(_STOP)
            self._thread.join(timeout)
        return done

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="storinfer-writeback", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[QAPair] = []
            item = self.queue.get()
            while True:
                if item is _STOP:
                    stop = True
                    self.queue.task_done()
                else:
                    batch.append(item)  # type: ignore[arg-type]
                if stop or len(batch) >= BATCH:
                    break
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
            if not batch:
                continue
            self.store.wait_for_quiet(QUIET_WAIT_S)
            try:
                self._write(batch)
            finally:
                for _ in batch:
                    self.queue.task_done()

    def _write(self, pairs: list[QAPair]) -> None:
        try:
            write_pairs(self.store, pairs, self.on_written, self.on_error)
        finally:
            with self._queued_lock:
                for p in pairs:
                    if self._queued.get(p.id) is p:
                        del self._queued[p.id]


def write_pairs(store: Any, pairs: list[QAPair], on_written: Callable[[int], None],
                on_error: Callable[[int], None]) -> None:
    """Store ``pairs`` now; never raises: a failure is logged and counted through ``on_error``."""
    try:
        store.add(pairs)
        on_written(len(pairs))
    except Exception:
        logger.warning("StorInfer could not store %d answer(s); they were still returned", len(pairs), exc_info=True)
        on_error(len(pairs))


@atexit.register
def flush_all(timeout: float = 30.0) -> None:
    """Flush every live writer (run at interpreter exit)."""
    for writer in list(_LIVE):
        writer.flush(timeout)
