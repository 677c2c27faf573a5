"""Run one untrusted Python program (agent code, a candidate under test) in a confined child.

The program never runs in the caller's process: it is forked from the warm sandbox fork server
with tighter limits than a workflow execution, gets its stdin from an in-memory file, and its
stdout/stderr come back capped. Graders call `run_program` once per test, so it must be cheap.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Literal

from metaagentx.sandbox.client import ForkServerClient, ForkServerDied, shared_client
from metaagentx.sandbox.settings import SandboxSettings

ProgramStatus = Literal["ok", "error", "timeout", "killed", "output_limit"]
KILL_GRACE_S = 2.0

_default_settings = SandboxSettings()


def set_default_settings(settings: SandboxSettings) -> None:
    """Settings `run_program` uses when none are passed (the trainer sets this from its config)."""
    global _default_settings
    _default_settings = settings


@dataclass
class ProgramResult:
    """How a program ended; `isolation` lists the layers that confined it."""

    status: ProgramStatus
    stdout: str
    stderr: str
    returncode: int | None
    duration_s: float
    isolation: list[str] = field(default_factory=list)


def program_limits(settings: SandboxSettings, timeout_s: float, memory_mb: int, nproc: int) -> dict[str, float | int]:
    """The limits dict the fork server applies to one child."""
    return {
        "timeout_s": timeout_s,
        "cpu_s": max(1, math.ceil(timeout_s) + 1),
        "memory_mb": memory_mb,
        "file_size_mb": settings.file_size_mb,
        "nofile": settings.nofile,
        "nproc": nproc,
        "scratch_mb": settings.scratch_mb,
    }


def _drain(fds: dict[int, str], cap: int, deadline: float) -> tuple[dict[str, bytes], bool]:
    """Read both pipes to EOF; stop early when together they pass `cap` bytes or time runs out."""
    chunks: dict[str, list[bytes]] = {name: [] for name in fds.values()}
    total = 0
    overflow = False
    with selectors.DefaultSelector() as sel:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and not overflow:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in sel.select(remaining):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    continue
                total += len(data)
                chunks[fds[key.fd]].append(data)
                if total > cap:
                    overflow = True
    return {name: b"".join(parts) for name, parts in chunks.items()}, overflow


def _decode(data: bytes, cap: int) -> str:
    return data[:cap].decode("utf-8", errors="replace")


def run_program(
    source: str,
    *,
    stdin: str = "",
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_output_bytes: int = 1 << 20,
    settings: SandboxSettings | None = None,
    client: ForkServerClient | None = None,
) -> ProgramResult:
    """Run `source` as `__main__` with `stdin`; never in this process. Thread-safe."""
    settings = settings or _default_settings
    client = client or shared_client(settings)
    started = time.monotonic()
    io_host, io_child = socket.socketpair()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        limits = program_limits(settings, timeout_s, memory_mb, settings.tool_nproc)
        exec_id, done = client.spawn("program", limits, [io_child.fileno(), out_w, err_w])
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        io_host.close()
        raise
    finally:
        io_child.close()
        os.close(out_w)
        os.close(err_w)
    try:
        with contextlib.suppress(OSError):
            io_host.settimeout(timeout_s + KILL_GRACE_S)
            io_host.sendall((json.dumps({"source": source, "stdin": stdin}) + "\n").encode())
        io_host.close()
        outputs, overflow = _drain({out_r: "stdout", err_r: "stderr"}, max_output_bytes, started + timeout_s + KILL_GRACE_S)
        if overflow or time.monotonic() > started + timeout_s + KILL_GRACE_S:
            client.kill(exec_id)
        try:
            ended = done.result(timeout=timeout_s + 2 * KILL_GRACE_S)
        except TimeoutError:
            client.kill(exec_id)
            ended = done.result(timeout=10.0)
    except ForkServerDied as exc:
        return ProgramResult("killed", "", str(exc), None, time.monotonic() - started, list(client.layers))
    finally:
        os.close(out_r)
        os.close(err_r)
    duration = time.monotonic() - started
    stdout, stderr = _decode(outputs["stdout"], max_output_bytes), _decode(outputs["stderr"], max_output_bytes)
    returncode = ended.returncode if ended.signal is None else -ended.signal
    status: ProgramStatus
    if overflow:
        status = "output_limit"
    elif ended.timed_out or ended.signal == signal.SIGXCPU:
        status = "timeout"
    elif ended.signal is not None:
        status = "killed"
    elif ended.returncode != 0:
        status = "error"
    else:
        status = "ok"
    return ProgramResult(status, stdout, stderr, returncode, duration, list(client.layers))
