"""Parsing of agent replies: deliveries, answers, tool calls, verdicts and routes.

Agents talk in plain text, so everything the workflow acts on (what to pass on, whether to run
a tool, whether the critic is satisfied, which branch to take) is read from the reply here, in
one place, with the same rules everywhere. All functions ignore `<think>...</think>` reasoning:
tags a model merely considered while thinking must not act.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

MAX_DELIVERY_CHARS = 4000  # a delivery longer than this keeps its head and tail
FALLBACK_TAIL_CHARS = 2000  # without a delivery or an answer, pass on the reply's tail

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_DELIVERY_TAG = re.compile(r"<(/?)delivery\s*>", re.IGNORECASE)
_CODE_BLOCK = re.compile(r"```(?:python3?|py)[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)
_ANY_CODE_BLOCK = re.compile(r"```[^\n`]*\r?\n(.*?)```", re.DOTALL)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(</tool_call>|$)", re.DOTALL | re.IGNORECASE)
_VERDICT = re.compile(
    r"verdict\s*[:=\-]?\s*[*_`\"'\[(]*\s*(incorrect|correct|wrong|fail(?:ed)?|pass(?:ed)?)\b",
    re.IGNORECASE,
)
# The MetaAgent-X authors' executors put a final program in <solution> tags (fenced or not).
SOLUTION_TAG = re.compile(r"<solution>(.*?)</solution>", re.DOTALL | re.IGNORECASE)
_ROUTE_TAG = re.compile(r"<route>\s*(.*?)\s*</route>", re.DOTALL | re.IGNORECASE)

Verdict = Literal["correct", "incorrect"]


def visible_text(text: str) -> str:
    """The reply without its `<think>` reasoning (closed blocks, a leading orphan `</think>`
    left by chat templates that open the block in the prompt, and an unclosed trailing one)."""
    text = _THINK_BLOCK.sub("", text)
    if re.search(r"</think>", text, re.IGNORECASE):
        text = re.split(r"</think>", text, flags=re.IGNORECASE)[-1]
    opened = re.search(r"<think>", text, re.IGNORECASE)
    if opened:
        text = text[: opened.start()]
    return text.strip()


def extract_delivery(text: str) -> str | None:
    """Content of the reply's last `<delivery>...</delivery>` block, or None when there is none.

    Nested blocks count as part of their outermost block (inner tags are dropped). A complete
    block wins over a trailing unclosed one; an unclosed block (reply cut by max_tokens) is used
    only when no complete block exists.
    """
    text = visible_text(text)
    depth, start, blocks = 0, 0, []
    for tag in _DELIVERY_TAG.finditer(text):
        if not tag.group(1):
            if depth == 0:
                start = tag.end()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                blocks.append(text[start : tag.start()])
    if blocks:
        return _DELIVERY_TAG.sub("", blocks[-1]).strip()
    if depth > 0:
        return _DELIVERY_TAG.sub("", text[start:]).strip()
    return None


def delivery_of(text: str, domain: str | None = None) -> str:
    """What an agent passes on: its last delivery block; without one, its final answer in the
    domain's format (`\\boxed{...}` or a fenced python block); without that, the last
    FALLBACK_TAIL_CHARS characters of its visible reply. Capped at MAX_DELIVERY_CHARS."""
    delivery = extract_delivery(text)
    if delivery is None:
        answer = extract_answer(text, domain)
        if answer is not None:
            delivery = f"```python\n{answer}\n```" if domain == "code" else f"\\boxed{{{answer}}}"
        else:
            delivery = visible_text(text)[-FALLBACK_TAIL_CHARS:].strip()
    return clip(delivery, MAX_DELIVERY_CHARS)


def clip(text: str, limit: int) -> str:
    """Cut `text` to about `limit` characters, keeping head and tail (answers sit at the end)."""
    if len(text) <= limit:
        return text
    marker = f"\n...[{len(text) - limit} characters cut]...\n"
    keep = max(limit - len(marker), 2)
    return text[: keep // 3] + marker + text[len(text) - (keep - keep // 3) :]


def extract_boxed(text: str) -> str | None:
    """Content of the last balanced `\\boxed{...}` of the visible reply, or None."""
    text = visible_text(text)
    start = text.rfind("\\boxed{")
    while start != -1:
        depth, i = 1, start + len("\\boxed{")
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len("\\boxed{") : i - 1].strip()
        start = text.rfind("\\boxed{", 0, start)
    return None


def extract_code_blocks(text: str) -> list[str]:
    """Bodies of the fenced ```python blocks of the visible reply, in order."""
    return [m.group(1).strip("\n") for m in _CODE_BLOCK.finditer(visible_text(text))]


def extract_code(text: str) -> str | None:
    """The last fenced python block (any fenced block when none is marked python), or None."""
    blocks = extract_code_blocks(text)
    if blocks:
        return blocks[-1]
    generic = _ANY_CODE_BLOCK.findall(visible_text(text))
    return generic[-1].strip("\n") if generic else None


def extract_answer(text: str, domain: str | None) -> str | None:
    """The final answer in the domain's format: code for "code", the boxed content otherwise."""
    return extract_code(text) if domain == "code" else extract_boxed(text)


def normalize_answer(answer: str) -> str:
    """Canonical form used to compare votes: "\\frac{3}{2}", "3/2" and "1.5" become equal."""
    s = answer.strip().strip("$").strip()
    s = re.sub(r"\\(?:left|right|displaystyle|,|;|!|\s)", "", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"^\\text\{(.*)\}$", r"\1", s).replace(" ", "").rstrip(".")
    frac = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s)
    if frac:
        s = f"{frac.group(1)}{frac.group(2)}/{frac.group(3)}"
    try:
        value = (
            Fraction(s.replace(",", "")) if re.fullmatch(r"-?[\d,]*\.?\d+(/-?\d+)?", s) else None
        )
    except (ValueError, ZeroDivisionError):
        value = None
    if value is not None:
        return (
            str(value.numerator)
            if value.denominator == 1
            else f"{value.numerator}/{value.denominator}"
        )
    return s


@dataclass
class ToolCallRequest:
    """One `<tool_call>` found in a reply; `error` says why it cannot be run (bad JSON...)."""

    name: str | None
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def parse_tool_calls(text: str) -> list[ToolCallRequest]:
    """Every `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` of the visible reply.

    Malformed calls come back with `error` set so the agent can be told what to fix; they never
    raise. "parameters" is accepted as a synonym of "arguments".
    """
    calls = []
    for match in _TOOL_CALL.finditer(visible_text(text)):
        body, closed = match.group(1).strip(), bool(match.group(2))
        if not closed:
            calls.append(ToolCallRequest(None, error="unterminated <tool_call>: add </tool_call>"))
            continue
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            calls.append(ToolCallRequest(None, error=f"invalid JSON in <tool_call>: {exc}"))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            calls.append(ToolCallRequest(None, error='a tool call needs a string "name" field'))
            continue
        arguments = data.get("arguments", data.get("parameters", {}))
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            calls.append(ToolCallRequest(data["name"], error='"arguments" must be a JSON object'))
            continue
        calls.append(ToolCallRequest(data["name"], arguments))
    return calls


def parse_verdict(text: str) -> Verdict | None:
    """The last explicit `VERDICT: CORRECT` / `VERDICT: INCORRECT` of the visible reply.

    PASS/PASSED count as correct, WRONG/FAIL/FAILED as incorrect; anything else is None (no
    verdict), so a critic that merely says "looks correct" does not stop a reflection loop.
    """
    matches = _VERDICT.findall(visible_text(text))
    if not matches:
        return None
    word = matches[-1].lower()
    return "correct" if word in ("correct", "pass", "passed") else "incorrect"


def parse_route(text: str, routes: list[str]) -> str | None:
    """The branch an agent picked: its last `<route>NAME</route>` naming a known route
    (case-insensitive); without a valid tag, the only route name the reply mentions; else None."""
    visible = visible_text(text)
    by_key = {r.lower(): r for r in routes}
    for tagged in reversed(_ROUTE_TAG.findall(visible)):
        if tagged.strip().lower() in by_key:
            return by_key[tagged.strip().lower()]
    mentioned = [r for r in routes if re.search(rf"(?<!\w){re.escape(r)}(?!\w)", visible, re.I)]
    return mentioned[0] if len(mentioned) == 1 else None
