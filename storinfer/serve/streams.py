"""Streamed misses: pass the chain's pieces through, and hand the whole answer on at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator


def tee(pieces: Iterator[str], done: Callable[[str], None]) -> Generator[str, None, None]:
    """Pass a streamed answer's pieces through; once they end, hand the whole text to ``done``
    (to store it: a streamed miss is remembered at its end)."""
    parts: list[str] = []
    for piece in pieces:
        parts.append(piece)
        yield piece
    done("".join(parts))


async def atee(pieces: AsyncIterator[str], done: Callable[[str], None]) -> AsyncGenerator[str, None]:
    """Async :func:`tee`; ``done`` runs in a worker thread."""
    parts: list[str] = []
    async for piece in pieces:
        parts.append(piece)
        yield piece
    await asyncio.to_thread(done, "".join(parts))
