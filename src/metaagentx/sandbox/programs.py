"""Run one untrusted Python program (agent code, a candidate under test) in a confined child.

The program never runs in the caller's process: it is forked from the warm sandbox fork server
with tighter limits than a workflow execution, gets its stdin from an in-memory file, and its
stdout/stderr come back capped. Graders call `run_program` (stdin/stdout tests) or `run_test`
(call and functional tests, judged by a checker process the candidate cannot reach: see
`metaagentx.sandbox.checker`) once per test, so both must be cheap.
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
from typing import Any, Literal

from metaagentx.sandbox.client import ChildExit, ForkServerClient, ForkServerDied, shared_client
from metaagentx.sandbox.settings import SandboxSettings

ProgramStatus = Literal["ok", "error", "timeout", "killed", "output_limit"]
KILL_GRACE_S = 2.0
MAX_OUTCOME_BYTES = 64 << 20  # a code test's verdict line (a returned value)

@dataclass
class ProgramResult:
    """How a program ended; `isolation` lists the layers that confined it."""

    status: ProgramStatus
    stdout: str
    stderr: str
    returncode: int | None
    duration_s: float
    isolation: list[str] = field(default_factory=list)
    outcome: Any = None  # a code test's verdict, as the checker process sent it (run_test)


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


class _Exchange:
    """The io socket's side of a run: the first message goes at once, each later one after the
    child's next line (its "ready"); the line after the last message is the child's outcome."""

    def __init__(self, sock: socket.socket, messages: list[dict[str, Any]]) -> None:
        self.sock = sock
        self.pending = [(json.dumps(m) + "\n").encode() for m in messages]
        self.buffer = bytearray()
        self.outcome: Any = None

    def send_next(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(self.pending.pop(0))

    def receive(self, data: bytes) -> bool:
        """Take bytes the child wrote; False once nothing more is wanted from it. Only the new
        bytes are searched for a line end (an outcome line may be megabytes long)."""
        start = len(self.buffer)
        self.buffer += data
        while (end := self.buffer.find(b"\n", start)) >= 0:
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            start = 0
            if self.pending:
                self.send_next()
                continue
            try:
                self.outcome = json.loads(line)
            except (ValueError, RecursionError):
                self.outcome = None
            return False
        return len(self.buffer) <= MAX_OUTCOME_BYTES


def _drain(fds: dict[int, str], cap: int, deadline: float,
           exchange: _Exchange) -> tuple[dict[str, bytes], bool]:
    """Read both pipes to EOF (and the io socket until the outcome); stop early when the pipes
    together pass `cap` bytes or time runs out."""
    chunks: dict[str, list[bytes]] = {name: [] for name in fds.values()}
    total = 0
    overflow = False
    io_fd = exchange.sock.fileno()
    with selectors.DefaultSelector() as sel:
        for fd in (*fds, io_fd):
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and not overflow:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in sel.select(remaining):
                try:
                    data = os.read(key.fd, 65536)
                except OSError:
                    data = b""
                if key.fd == io_fd:
                    if not data or not exchange.receive(data):
                        sel.unregister(io_fd)
                    continue
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
    return _run([{"source": source, "stdin": stdin}], timeout_s, memory_mb, max_output_bytes,
                settings, client)


def run_test(
    program: str,
    check: dict[str, Any],
    *,
    prelude: str = "",
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_output_bytes: int = 1 << 20,
    settings: SandboxSettings | None = None,
    client: ForkServerClient | None = None,
) -> ProgramResult:
    """Run one code test with `program` and the test in separate processes
    (`metaagentx.sandbox.checker`); the checker's verdict is `ProgramResult.outcome`. The
    program never receives `check`. Thread-safe."""
    messages = [{"prelude": prelude, "program": program}, check]
    return _run(messages, timeout_s, memory_mb, max_output_bytes, settings, client)


def _run(
    messages: list[dict[str, Any]],
    timeout_s: float,
    memory_mb: int,
    max_output_bytes: int,
    settings: SandboxSettings | None,
    client: ForkServerClient | None,
) -> ProgramResult:
    settings = settings or SandboxSettings()  # the grading environment passes its own
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
    deadline = started + timeout_s + KILL_GRACE_S
    exchange = _Exchange(io_host, messages)
    try:
        io_host.settimeout(timeout_s + KILL_GRACE_S)
        exchange.send_next()
        outputs, overflow = _drain({out_r: "stdout", err_r: "stderr"}, max_output_bytes,
                                   deadline, exchange)
        if overflow or time.monotonic() > deadline:
            client.kill(exec_id)
        try:
            ended = done.result(timeout=timeout_s + 2 * KILL_GRACE_S)
        except TimeoutError:
            client.kill(exec_id)
            ended = done.result(timeout=10.0)
    except ForkServerDied as exc:
        return ProgramResult("killed", "", str(exc), None, time.monotonic() - started,
                             list(client.layers))
    finally:
        io_host.close()
        os.close(out_r)
        os.close(err_r)
    stdout = _decode(outputs["stdout"], max_output_bytes)
    stderr = _decode(outputs["stderr"], max_output_bytes)
    return ProgramResult(_status(ended, overflow), stdout, stderr,
                         ended.returncode if ended.signal is None else -ended.signal,
                         time.monotonic() - started, list(client.layers), exchange.outcome)


def _status(ended: ChildExit, overflow: bool) -> ProgramStatus:
    if overflow:
        return "output_limit"
    if ended.timed_out or ended.signal == signal.SIGXCPU:
        return "timeout"
    if ended.signal is not None:
        return "killed"
    return "error" if ended.returncode != 0 else "ok"
