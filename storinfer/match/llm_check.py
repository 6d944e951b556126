"""An optional LLM check of doubtful candidates: those the verifier refuses by a little.

A candidate that breaks no hard rule and scores within ``band`` below its head's cut is
*doubtful*. With a check model (any :class:`~storinfer.protocols.ChatModel`; the faces adapt a
LangChain chat model or a LlamaIndex LLM: ``VerifierPolicy(llm_check=LLMCheck(model))``), the store
asks it whether the user's question and the top one or two doubtful stored questions ask for the
same thing (a short prompt whose fixed prefix a local model caches; three tokens of reply). "Yes"
serves that stored answer; anything else is a miss. With speculation (``with_speculation()`` on a
face) the check runs while the chain already runs: whichever decides first wins (a "yes" cancels the
chain; the chain's answer stops the check).

It is used only where the engine's own measurements say it pays: after ``measure`` calls, only
while ``acceptance rate x miss cost > check cost`` (the miss cost is the time the app's chain
takes, as the store measures it between a miss and its answer). Its verdicts are labels too
(``source="llm check"``), kept apart: the learner fits on the chain's answers only.
Off by default: a small local model is no verifier (the offline Qwen2.5-1.5B accepted 77 of 100
look-alike pairs of a medical set at 56% precision), and an app's own large model could not be
measured here.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from storinfer.errors import ConfigError
from storinfer.match.features import Query
from storinfer.protocols import ChatModel
from storinfer.records import Match

SYSTEM = "You compare two questions. Reply with yes or no only."
PROMPT = "Do these two questions ask for the same information?\nA: {query}\nB: {stored}"
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="storinfer-llm-check")


class LLMCheck:
    """Ask a model about candidates just below the verifier's cut.

    Setup:
        ```bash
        pip install 'storinfer[local]'     # or any chat model of yours
        ```

    Instantiate:
        ```python
        from storinfer import LLMCheck, VerifierPolicy, default_chat

        policy = VerifierPolicy(llm_check=LLMCheck(default_chat()))
        ```

    Usage:
        ```python
        front = StoreFront(store, policy=policy)
        front.stats()["llm_check"]        # calls, acceptance, whether it pays
        ```

    Args:
        model: the check model (a :class:`~storinfer.protocols.ChatModel`).
        band: how far below a head's cut a candidate's score may be to be asked about.
        top: doubtful candidates asked about per lookup (one call each, best first).
        measure: calls before the pays-off test applies.
    """

    def __init__(self, model: ChatModel, *, band: float = 0.15, top: int = 2, measure: int = 20) -> None:
        if not callable(getattr(model, "chat_batch", None)):
            msg = (f"LLMCheck needs a storinfer ChatModel (with chat_batch), not {type(model).__name__}: adapt a "
                   "LangChain model with storinfer_langchain.as_chat_model, a LlamaIndex LLM with storinfer_llamaindex.as_chat_model.")
            raise ConfigError(msg)
        if not 0.0 < band < 1.0 or top < 1:
            msg = f"band must be in (0, 1) and top >= 1, got band={band!r}, top={top!r}"
            raise ConfigError(msg)
        self.model, self.band, self.top, self.measure = model, float(band), int(top), int(measure)
        self._lock = threading.Lock()
        self.counts = {"calls": 0, "yes": 0, "cancelled": 0, "skipped_not_paying": 0}
        self.check_ms = 0.0
        self.miss_ms = 0.0
        self._misses = 0

    # --- does it pay? ----------------------------------------------------------------------------
    def record_miss(self, ms: float) -> None:
        """The time the app's chain took for a miss (a running mean)."""
        with self._lock:
            self._misses += 1
            self.miss_ms += (ms - self.miss_ms) / self._misses

    @property
    def acceptance(self) -> float:
        return self.counts["yes"] / self.counts["calls"] if self.counts["calls"] else 0.0

    def pays(self) -> bool:
        """Whether asking is worth it: still measuring, or accepted share x miss cost > check cost."""
        if self.counts["calls"] < self.measure or not self._misses:
            return True
        return self.acceptance * self.miss_ms > self.check_ms

    # --- asking --------------------------------------------------------------------------------
    def doubtful(self, policy: Any, question: str, candidates: Sequence[Match]) -> list[tuple[Match, float]]:
        """The candidates within the band below their head's cut (rules kept), best first (a
        :class:`~storinfer.match.policy.VerifierPolicy`'s; another policy has none)."""
        verifier = getattr(policy, "active", None)
        if verifier is None:
            return []
        q = Query(question)
        out = []
        for i, cand in enumerate(candidates):
            head = verifier.head_of(cand)
            ok, score, _why = verifier.assess_one(q, candidates, i)
            if ok and cand.similarity >= head.floor - self.band and head.cut - self.band <= score < head.cut:
                out.append((cand, score))
        return sorted(out, key=lambda t: -t[1])[: self.top]

    def ask(self, question: str, stored: str, race: threading.Event | None = None) -> bool | None:
        """The model's verdict (None: ``race`` was set first: the chain answered before the check)."""
        cancel = threading.Event()
        conv = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT.format(query=question, stored=stored)}]
        kwargs: dict[str, Any] = {"max_new_tokens": 3}
        if "cancel" in inspect.signature(self.model.chat_batch).parameters:  # the llama.cpp model stops at once
            kwargs["cancel"] = cancel
        started = time.perf_counter()
        future: Future = _POOL.submit(lambda: self.model.chat_batch([conv], **kwargs)[0])
        while not future.done():
            if race is not None and race.wait(0.005):
                cancel.set()
                self.counts["cancelled"] += 1
                return None
            if race is None:
                future.result()
        reply = str(future.result()).strip().lower()
        with self._lock:
            self.counts["calls"] += 1
            n = self.counts["calls"]
            self.check_ms += ((time.perf_counter() - started) * 1000 - self.check_ms) / n
            yes = reply.startswith("yes")
            self.counts["yes"] += yes
        return yes

    def stats(self) -> dict[str, Any]:
        return {**self.counts, "acceptance": round(self.acceptance, 4), "check_ms": round(self.check_ms, 1),
                "miss_ms": round(self.miss_ms, 1), "pays": self.pays()}
