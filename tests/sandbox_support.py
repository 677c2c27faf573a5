"""Shared pieces of the sandbox tests: a scripted stand-in for the batcher, host snapshots."""

from __future__ import annotations

import os
import subprocess
import sys
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


USERNS_PROBE = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "print(0 if libc.unshare(0x10000000) == 0 else ctypes.get_errno())\n"  # CLONE_NEWUSER
)


def userns_refusal() -> str | None:
    """Why the kernel refuses this user a user namespace (tried in a fresh interpreter, not a
    fork of this threaded process), or None when it allows one."""
    out = subprocess.run([sys.executable, "-c", USERNS_PROBE], capture_output=True, text=True)
    errno = int(out.stdout.strip() or -1)
    if errno == 0:
        return None
    return os.strerror(errno) if errno > 0 else f"the probe failed: {out.stderr.strip()}"


def path_probe(paths: list[str]) -> str:
    """Program source printing one JSON object: for each path, what the sandbox let it do
    (`listed: [...]`, `read: <text>`) or the error it got."""
    return (
        "import json, os\n"
        "seen = {}\n"
        f"for p in {paths!r}:\n"
        "    try:\n"
        "        seen[p] = ['listed', sorted(os.listdir(p))] if os.path.isdir(p) else "
        "['read', open(p, 'rb').read(200).decode('latin-1')]\n"
        "    except OSError as e:\n"
        "        seen[p] = ['error', e.strerror]\n"
        "print(json.dumps(seen))\n"
    )
