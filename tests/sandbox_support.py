"""Shared pieces of the sandbox tests: a scripted stand-in for the batcher, host snapshots."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from metaagentx.llm.base import GenerationRequest, GenerationResult

REPO = Path(__file__).resolve().parent.parent


class ScriptedBatcher:
    """Stands in for RequestBatcher.agenerate: answers each request with `reply(request)`."""

    def __init__(self, reply: Callable[[GenerationRequest], str] | None = None) -> None:
        self.reply = reply or (lambda req: "echo:" + req.messages[-1]["content"])
        self.requests: list[GenerationRequest] = []

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        text = self.reply(request)
        n = len(self.requests)
        return GenerationResult(
            prompt_ids=[n, n + 1, n + 2],
            response_ids=[100 + n, 200 + n],
            logprobs=[-0.5, -0.25],
            text=text,
            finish_reason="stop",
        )


def snapshot(path: Path) -> dict[str, float]:
    """Names and mtimes of the top level of `path` (to prove the host is unchanged)."""
    return {p.name: p.stat().st_mtime for p in path.iterdir()}


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid` on the host (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out
