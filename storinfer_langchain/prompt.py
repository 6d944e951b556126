"""What the LLM cache matches on: the user's question inside the prompt LangChain passes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from storinfer.text import clean_text

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def stable_llm_string(llm_string: str) -> str:
    """Drop per-process object addresses (``<... at 0x7f...>``) so partitions survive restarts."""
    return _ADDRESS.sub("", llm_string)


@dataclass(frozen=True)
class ParsedPrompt:
    """What the cache matches on, pulled out of the prompt LangChain passes to ``lookup``.

    ``question`` is None when the prompt must not be matched (``reason`` says why).
    ``context`` is everything else the answer depends on (system prompt, earlier turns); it is
    folded into the partition, so only identical contexts can share answers. ``setting`` is the
    part of it that stays the same across conversations (the leading system messages): the
    conversations of one model and setting share one learner.
    """

    question: str | None
    context: str
    is_chat: bool
    reason: str = ""
    setting: str = ""


def _message_text(content: object) -> str | None:
    """Text of a message's content; None when it holds anything but text (images, audio...)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
            else:
                return None
        return "\n".join(parts)
    return None


def _serialized_messages(prompt: str) -> list[tuple[str, object]] | None:
    """``[(class name, content), ...]`` if ``prompt`` is LangChain's ``dumps(messages)``."""
    if not prompt.startswith("["):
        return None
    try:
        data = json.loads(prompt)
    except ValueError:
        return None
    if not isinstance(data, list) or not data:
        return None
    out: list[tuple[str, object]] = []
    for item in data:
        if not (isinstance(item, dict) and item.get("lc") == 1 and isinstance(item.get("id"), list)):
            return None
        kwargs = item.get("kwargs") or {}
        role = str(item["id"][-1])
        if role == "ChatMessage":
            role = f"ChatMessage:{kwargs.get('role', '')}"
        out.append((role, kwargs.get("content")))
    return out


def parse_prompt(prompt: object) -> ParsedPrompt:
    """Split a cache prompt into the user's question and the context the answer depends on.

    * a text LLM's prompt is the question itself;
    * a chat model's prompt is ``dumps(messages)``: the question is the last human message, and
      the system prompt and earlier turns become the context.
    """
    if not isinstance(prompt, str):
        return ParsedPrompt(None, "", False, f"prompt is {type(prompt).__name__}, not str")
    messages = _serialized_messages(prompt)
    if messages is None:
        question = clean_text(prompt)
        return ParsedPrompt(question or None, "", False, "" if question else "empty prompt")
    role, content = messages[-1]
    if role not in ("HumanMessage", "HumanMessageChunk", "ChatMessage:user"):
        return ParsedPrompt(None, "", True, f"last message is a {role}, not the user's question")
    text = _message_text(content)
    if text is None:
        return ParsedPrompt(None, "", True, "the question holds non-text content")
    context_items = []
    for r, c in messages[:-1]:
        t = _message_text(c)
        context_items.append([r, t if t is not None else json.dumps(c, sort_keys=True, default=str)])
    context = json.dumps(context_items, sort_keys=True) if context_items else ""
    leading = 0
    while leading < len(context_items) and context_items[leading][0] in ("SystemMessage", "ChatMessage:system"):
        leading += 1
    setting = json.dumps(context_items[:leading], sort_keys=True) if leading else ""
    question = clean_text(text)
    return ParsedPrompt(question or None, context, True, "" if question else "empty question", setting)
