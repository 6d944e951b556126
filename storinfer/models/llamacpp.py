"""A GGUF chat model run by llama.cpp in-process (``xllamacpp``, from ``storinfer[local]``).

:class:`LlamaCppChat` speaks the engine's :class:`~storinfer.protocols.ChatModel` protocol:

* ``chat_batch``: the conversations go to llama.cpp's *parallel slots* at once and are decoded
  together (continuous batching); each is formatted with the model's own chat template;
* ``stream``: one reply token by token; closing the iterator stops the generation at its next token;
* ``cancel``: a ``threading.Event`` passed to ``chat_batch`` / ``stream`` stops every request at
  its next token (a speculative run the store answered first);
* threads: llama.cpp's worker threads sleep when idle (``poll=0``, not its default busy-wait), so
  a lookup beside an idle model is not slowed; while it generates, the model's threads run at low
  scheduling priority (``priority="low"``), so a lookup on the same cores goes first.

A prompt prefix shared with the previous request of a slot (one chunk's questions, one system
prompt) is not evaluated again (llama.cpp's prompt cache).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import threading
import urllib.request
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from storinfer.errors import ConfigError, require
from storinfer.protocols import Conversation

logger = logging.getLogger(__name__)
_END = object()
PRIORITIES = ("low", "normal", "medium", "high")


class LlamaCppChat:
    """A GGUF chat model on llama.cpp, as a :class:`~storinfer.protocols.ChatModel`.

    Setup:
        ```bash
        pip install 'storinfer[local]'      # xllamacpp: a prebuilt llama.cpp wheel, no compiling
        storinfer prepare-models            # the offline GGUF files (`make setup` does both)
        ```

    Instantiate:
        ```python
        from storinfer.models import LlamaCppChat

        chat = LlamaCppChat("/path/to/model.gguf", parallel=4, max_new_tokens=128)
        ```

    Usage:
        ```python
        chat.chat_batch([[{"role": "user", "content": "Name a primary colour."}]])
        for piece in chat.stream([{"role": "user", "content": "Count to five."}]):
            print(piece, end="")
        ```

    Args:
        model_path: the GGUF file.
        model_id: a name for it (``llm_string``, stats); default: the file name.
        context: tokens each conversation may use (prompt and reply).
        parallel: conversations decoded together (llama.cpp slots).
        threads: CPU threads (default: ``$STORINFER_LLM_THREADS``, else all cores); ``batch_threads``
            for prompt evaluation.
        priority: scheduling priority of the model's threads while they work (``"low"`` lets a
            lookup on the same cores go first).
        max_new_tokens: default reply length; ``repetition_penalty``: llama.cpp's repeat penalty.
    """

    def __init__(self, model_path: str | os.PathLike[str], *, model_id: str | None = None, context: int = 4096,
                 parallel: int = 4, threads: int | None = None, batch_threads: int | None = None,
                 priority: str = "low", max_new_tokens: int = 128, repetition_penalty: float = 1.0) -> None:
        require("xllamacpp", "local", "The llama.cpp chat model")
        path = Path(model_path)
        if not path.is_file():
            msg = f"No GGUF file at {path}: run `storinfer prepare-models`, or point STORINFER_LLM at a .gguf file."
            raise FileNotFoundError(msg)
        if priority not in PRIORITIES:
            msg = f"priority must be one of {PRIORITIES}, not {priority!r}"
            raise ConfigError(msg)
        if parallel < 1 or context < 256:
            msg = f"parallel must be >= 1 and context >= 256, got parallel={parallel}, context={context}"
            raise ConfigError(msg)
        cores = int(os.environ.get("STORINFER_LLM_THREADS", 0)) or os.cpu_count() or 2
        self._server = _engine(str(path.resolve()), int(context), int(parallel), int(threads or cores),
                               int(batch_threads or threads or cores), priority)
        self.path = path
        self.model_id = model_id or path.stem
        self.context = int(context)
        self.parallel = int(parallel)
        self.threads = int(threads or cores)
        self.settings: dict[str, Any] = {"max_new_tokens": int(max_new_tokens), "repetition_penalty": repetition_penalty}
        self._pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="storinfer-llamacpp")
        self.stream_stopped = False
        self._sequential = 0

    def __repr__(self) -> str:
        return f"LlamaCppChat({self.model_id!r}, parallel={self.parallel}, threads={self.threads})"

    @property
    def context_window(self) -> int:
        """Tokens one conversation may use (prompt and reply)."""
        return self.context

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in this model's vocabulary (llama.cpp's tokenizer)."""
        req = urllib.request.Request(f"{self._server.listening_address}/tokenize", data=json.dumps({"content": text}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # loopback, in-process server
            return len(json.loads(resp.read())["tokens"])

    def _request(self, conversation: Conversation, temperature: float | None, top_p: float | None, seed: int | None,
                 max_new_tokens: int | None) -> dict[str, Any]:
        req: dict[str, Any] = {"messages": [dict(m) for m in conversation],
                               "max_tokens": int(max_new_tokens or self.settings["max_new_tokens"]),
                               "repeat_penalty": self.settings["repetition_penalty"]}
        if temperature is not None and temperature > 0:
            req.update(temperature=float(temperature), top_p=float(top_p or 1.0), top_k=0)
        else:
            req.update(temperature=0.0, top_k=1)
        if seed is not None:
            req["seed"] = int(seed)
        return req

    def _one(self, request: dict[str, Any], cancel: threading.Event | None) -> str:
        if cancel is None:
            reply = self._server.handle_chat_completions(request)
            if "error" in reply:
                raise RuntimeError(f"llama.cpp: {reply['error']}")
            return str(reply["choices"][0]["message"]["content"] or "").strip()
        return "".join(self._pieces(request, cancel)).strip()

    def chat_batch(self, conversations: Sequence[Conversation], *, temperature: float | None = None,
                   top_p: float | None = None, seed: int | None = None, max_new_tokens: int | None = None,
                   cancel: threading.Event | None = None) -> list[str]:
        """One reply per conversation, decoded together in llama.cpp's parallel slots.

        ``seed`` makes sampling repeatable (each conversation gets ``seed + its position``);
        ``cancel``, once set, stops every request at its next token (what was written is returned)."""
        requests = [self._request(c, temperature, top_p, None if seed is None else seed + i, max_new_tokens)
                    for i, c in enumerate(conversations)]
        if self._sequential:  # and each prompt evaluated whole: a reused cached prefix changes the numerics
            return [self._one({**r, "cache_prompt": False}, cancel) for r in requests]
        return list(self._pool.map(lambda r: self._one(r, cancel), requests))

    def _pieces(self, request: dict[str, Any], stop: threading.Event) -> Iterator[str]:
        """The reply's text pieces as llama.cpp streams them, until it ends or ``stop`` is set."""
        pieces: queue.Queue[Any] = queue.Queue()

        def on_chunk(chunk: Any) -> bool:
            if isinstance(chunk, dict):
                for choice in chunk.get("choices", ()):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        pieces.put(text)
                if "error" in chunk:
                    pieces.put(RuntimeError(f"llama.cpp: {chunk['error']}"))
            return stop.is_set()  # True stops the generation

        def run() -> None:
            try:
                self._server.handle_chat_completions({**request, "stream": True}, on_chunk)
            except BaseException as error:  # handed to the reader
                pieces.put(error)
            finally:
                pieces.put(_END)

        worker = threading.Thread(target=run, name="storinfer-llamacpp-stream", daemon=True)
        _OPEN_STREAMS[worker] = stop
        worker.start()
        try:
            while True:
                item = pieces.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if worker.is_alive():
                stop.set()
                self.stream_stopped = True
            worker.join(60)
            _OPEN_STREAMS.pop(worker, None)

    @contextlib.contextmanager
    def sequential(self) -> Iterator[None]:
        """Within this block, ``chat_batch`` decodes its conversations one at a time, in order.

        Decoding several conversations together is faster but not bit-for-bit repeatable (which
        requests share a batch step depends on timing); one at a time, greedy and seeded replies
        repeat exactly. Precompute uses it for ``batch_chunks=1``, whose resumed run must repeat
        an uninterrupted one."""
        self._sequential += 1
        try:
            yield
        finally:
            self._sequential -= 1

    def stream(self, conversation: Conversation, *, max_new_tokens: int | None = None, temperature: float | None = None,
               top_p: float | None = None, seed: int | None = None, cancel: threading.Event | None = None) -> Generator[str, None, None]:
        """One reply, piece by piece as the tokens come (leading and trailing white space dropped,
        as ``chat_batch`` strips). Closing the iterator early, or setting ``cancel``, stops the
        generation at its next token."""
        self.stream_stopped = False
        stop = cancel or threading.Event()
        yield from trimmed(self._pieces(self._request(conversation, temperature, top_p, seed, max_new_tokens), stop))


_OPEN_STREAMS: dict[threading.Thread, threading.Event] = {}


@atexit.register
def _stop_open_streams() -> None:
    """Stop generations whose stream was never closed: a llama.cpp call still running when the
    interpreter exits aborts the process."""
    for worker, stop in list(_OPEN_STREAMS.items()):
        stop.set()
        worker.join(60)


_ENGINES: dict[tuple[Any, ...], Any] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(path: str, context: int, parallel: int, threads: int, batch_threads: int, priority: str) -> Any:
    """One llama.cpp server per model file and settings, shared by every wrapper (so a process
    loads the weights once, whatever default reply length each wrapper has)."""
    key = (path, context, parallel, threads, batch_threads, priority)
    with _ENGINES_LOCK:
        if key in _ENGINES:
            return _ENGINES[key]
        xlc = require("xllamacpp", "local", "The llama.cpp chat model")
        p = xlc.CommonParams()
        p.model.path = path
        p.n_parallel = parallel
        p.n_ctx = context * parallel
        p.kv_unified = True  # slots share one KV pool; each may use up to `context`
        p.n_predict = -1
        p.verbosity = 0  # llama.cpp logs nothing but errors
        prio = getattr(xlc.ggml_sched_priority, f"GGML_SCHED_PRIO_{priority.upper()}")
        for cpu, n in ((p.cpuparams, threads), (p.cpuparams_batch, batch_threads)):
            cpu.n_threads = n
            cpu.poll = 0  # sleep when idle instead of spinning
            cpu.priority = prio
        p.sampling.temp = 0.0
        p.sampling.top_k = 1
        _ENGINES[key] = xlc.Server(p)
        return _ENGINES[key]


def trimmed(pieces: Iterator[str]) -> Iterator[str]:
    """``pieces`` without leading or trailing whitespace overall (as the batch path strips its
    reply): whitespace is held back until something follows it."""
    started, held = False, ""
    try:
        for piece in pieces:
            if not started:
                piece = piece.lstrip()
                if not piece:
                    continue
                started = True
            body = piece.rstrip()
            if body:
                yield held + body
                held = piece[len(body):]
            else:
                held += piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
