"""Speculate: start the model beside the lookup, so a miss costs no lookup time.

With ``speculative=True`` a face starts the wrapped chain / query engine at once and looks the
question up meanwhile:

* a **miss** was already running the model, so the lookup added nothing to its latency;
* a **hit** returns the stored answer and cancels the model run. An asyncio task is cancelled
  at once. A thread cannot be stopped from outside, so a synchronous run is told to stop
  (``cancel`` is set) and stops at its next step where the framework offers one (LangChain
  callbacks: :mod:`storinfer_langchain.chain`); a model call already under way finishes in the
  background and its answer is dropped.

That is why it is off by default: a hit still pays for the tokens the model produced before the
lookup answered (a few milliseconds' worth on a local model; on a paid API, the prompt).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from storinfer.records import Lookup

logger = logging.getLogger(__name__)
T = TypeVar("T")
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="storinfer-speculative")
_END = object()


class Cancelled(Exception):  # noqa: N818 - it is what happened, not an error of the caller
    """Raised inside a speculative model run once the store has answered."""


def _drop(future: Future) -> None:
    """Log what a run cancelled by a hit raised, unless it is the cancellation itself."""
    if future.cancelled():
        return
    error = future.exception()
    if error is not None and not isinstance(error, Cancelled):
        logger.debug("a speculative run ended with %r after a hit; its result was dropped", error)


def _submit(fn: Callable[..., T], *args: Any) -> Future:
    ctx = contextvars.copy_context()  # callbacks and tracing follow the caller's context
    return _POOL.submit(ctx.run, fn, *args)


def speculate(lookup: Callable[[threading.Event], Lookup], run: Callable[[threading.Event], T]) -> tuple[T | None, Lookup]:
    """Start ``run(cancel)`` in a worker thread, then ``lookup(finished)`` here (``finished`` is set
    once the run has ended: a judge still deciding then stops, the run won).

    Hit: ``cancel`` is set and ``(None, lookup)`` returned at once. Miss: ``(run's result,
    lookup)``, once the run ends (its exceptions propagate)."""
    cancel, finished = threading.Event(), threading.Event()
    future = _submit(run, cancel)
    future.add_done_callback(lambda _f: finished.set())
    found = lookup(finished)
    if found.match is not None:
        cancel.set()
        future.cancel()
        future.add_done_callback(_drop)
        return None, found
    return future.result(), found


async def _lookup_beside(task: asyncio.Future, lookup: Callable[[threading.Event], Lookup]) -> Lookup:
    """``lookup(finished)`` in a worker thread while ``task`` runs (``finished`` is set when the task
    ends); the task is cancelled on a hit (or if the lookup itself fails)."""
    finished = threading.Event()
    task.add_done_callback(lambda _t: finished.set())
    try:
        found = await asyncio.to_thread(lookup, finished)
    except BaseException:
        task.cancel()
        raise
    if found.match is not None:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "exception was never retrieved"
    return found


async def aspeculate(lookup: Callable[[threading.Event], Lookup], run: Callable[[], Awaitable[T]]) -> tuple[T | None, Lookup]:
    """Async :func:`speculate`: ``run()`` is a task, cancelled on a hit; the lookup runs in a thread."""
    task = asyncio.ensure_future(run())
    found = await _lookup_beside(task, lookup)
    return (None, found) if found.match is not None else (await task, found)


def speculate_stream(lookup: Callable[[threading.Event], Lookup], stream: Callable[[threading.Event], Iterator[T]]
                     ) -> tuple[Iterator[T] | None, Lookup]:
    """Start consuming ``stream(cancel)`` in a worker thread, then ``lookup(ended)`` here (``ended``
    is set once the stream has ended).

    Hit: ``cancel`` is set, ``(None, lookup)``. Miss: an iterator over the chunks, as they come
    (the ones produced during the lookup are waiting for it)."""
    cancel = threading.Event()
    chunks: queue.Queue[Any] = queue.Queue()

    def pump() -> None:
        try:
            for chunk in stream(cancel):
                if cancel.is_set():
                    return
                chunks.put(chunk)
        except BaseException as error:  # handed to the reader, raised there
            chunks.put(_Failure(error))
        finally:
            chunks.put(_END)

    ended = threading.Event()
    future = _submit(pump)
    future.add_done_callback(lambda _f: ended.set())
    found = lookup(ended)
    if found.match is not None:
        cancel.set()
        future.add_done_callback(_drop)
        return None, found

    def read() -> Iterator[T]:
        try:
            while True:
                item = chunks.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            cancel.set()  # the reader stopped early: stop the model too (as the async reader does)

    return read(), found


async def aspeculate_stream(lookup: Callable[[threading.Event], Lookup], stream: Callable[[], AsyncIterator[T]]
                            ) -> tuple[AsyncIterator[T] | None, Lookup]:
    """Async :func:`speculate_stream`: a task pumps ``stream()``; cancelled on a hit."""
    chunks: asyncio.Queue[Any] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for chunk in stream():
                chunks.put_nowait(chunk)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            chunks.put_nowait(_Failure(error))
        finally:
            chunks.put_nowait(_END)

    task = asyncio.ensure_future(pump())
    found = await _lookup_beside(task, lookup)
    if found.match is not None:
        return None, found

    async def read() -> AsyncIterator[T]:
        try:
            while True:
                item = await chunks.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            task.cancel()  # the reader stopped early: stop the model too

    return read(), found


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
