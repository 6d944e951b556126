"""One background thread per front, running its learners' tasks in order (labels, refits, reloads)."""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections.abc import Callable

logger = logging.getLogger(__name__)
_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()


class InlineWorker:
    """Runs each task at once, on the caller's thread (a replay or a test that wants a refit to take
    effect before the next lookup); the :class:`Worker` runs them in the same order on a thread."""

    def submit(self, task: Callable[[], None]) -> None:
        task()

    def flush(self, timeout: float | None = None) -> bool:
        return True


class Worker:
    """Runs submitted tasks one after another on a daemon thread; a task that fails is logged and
    leaves the last good state (the next task still runs)."""

    def __init__(self, before_task: Callable[[], object] | None = None, name: str = "storinfer-learner") -> None:
        """``before_task`` runs before each task (the front passes the store's wait for quiet: a
        Chroma call holds the interpreter, and would stall a lookup running beside it); ``name``
        names the thread."""
        self.before_task, self.name = before_task, name
        self.tasks: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _LIVE.add(self)

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self.tasks.put(task)

    def _run(self) -> None:
        while True:
            task = self.tasks.get()
            try:
                if self.before_task is not None:
                    self.before_task()
                task()
            except Exception:
                logger.warning("StorInfer: a learning task failed; the last good state stays", exc_info=True)
            finally:
                self.tasks.task_done()

    @property
    def pending(self) -> int:
        """Tasks submitted and not yet finished (the one running included)."""
        return self.tasks.unfinished_tasks

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted task has run; True if none is left."""
        with self.tasks.all_tasks_done:
            return self.tasks.all_tasks_done.wait_for(lambda: self.tasks.unfinished_tasks == 0, timeout)


@atexit.register
def _finish_tasks(timeout: float = 30.0) -> None:
    """Let every worker finish its queued tasks at exit (a store call cut off by the interpreter's
    exit can crash it)."""
    for worker in list(_LIVE):
        worker.flush(timeout)
