"""What a confined sandbox child runs: a workflow script, or a program under test.

Both read their payload (source, task, limits or stdin) as the first JSON line of the io socket
(fd 3), so large inputs never pass through the fork server. A workflow script runs through the
workflow library's own harness (`metaagentx.mas.harness.run_design`), so the sandbox and local
runs share one definition of status, final output and trace. Standard library only.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import resource
import socket
import sys
import threading
import traceback
from typing import Any, NoReturn

from metaagentx.mas.harness import run_design
from metaagentx.mas.limits import Limits
from metaagentx.mas.protocol import Message, Runtime
from metaagentx.mas.text import clip
from metaagentx.sandbox.checker import run_test
from metaagentx.sandbox.child_runtime import PipeRuntime

IO_FD = 3
MAX_ERROR_CHARS = 4000
WARM_UP_SCRIPT = (
    "from workflow import AgentNode\nAgentNode('warm_up', 'Answer.', max_turns=1).run(question)\n"
)


class _WarmUpRuntime(Runtime):
    """Answers the warm-up design at once, in-process; it never talks to the host."""

    @property
    def task(self) -> dict[str, Any]:
        return {"question": "1 + 1", "domain": "math"}

    def llm(self, agent: str, messages: list[Message], max_tokens: int | None = None) -> str:
        return "<delivery>\\boxed{2}</delivery>"

    def tool(self, agent: str, name: str, arguments: dict[str, Any]) -> str:
        return ""


def warm_up() -> None:
    """Run a trivial design (and a thread) in an idle pooled child before it gets its execution.

    A fresh fork shares the server's pages copy-on-write, so the first run of the library in it
    pays for page copies and a thread stack (~1.5 ms). Paying that here, off the critical path,
    leaves the real execution only its own work. Trusted code; each child still runs exactly one
    untrusted execution."""
    json.dumps(run_design(WARM_UP_SCRIPT, _WarmUpRuntime()).to_dict())
    thread = threading.Thread(target=sys.getrecursionlimit)  # glibc keeps the stack for reuse
    thread.start()
    thread.join()


def _exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _own_usage() -> dict[str, float]:
    """CPU seconds and peak RSS of this process tree so far (the host's view arrives later)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return {"cpu_s": round(cpu, 6), "maxrss_kb": float(max(own.ru_maxrss, kids.ru_maxrss))}


def run_workflow() -> NoReturn:
    """Run a design script with `run_design` and send the host its outcome as one final message.

    After the message the io socket and stdout/stderr are closed at once, so the host sees the
    end of the execution without waiting for this process's (slower) teardown."""
    sock = socket.socket(fileno=IO_FD)
    reader = sock.makefile("rb")
    header = json.loads(reader.readline())
    runtime = PipeRuntime(sock, reader, header.get("task") or {})
    try:
        outcome = run_design(
            header["source"],
            runtime,
            Limits.from_dict(header.get("limits")),
            dialect=str(header.get("dialect") or "auto"),
        )
        message = {"type": "final", **outcome.to_dict()}
    except BaseException as exc:  # what run_design lets through (KeyboardInterrupt, MemoryError...)
        error = clip(traceback.format_exc(), MAX_ERROR_CHARS)
        message = {
            "type": "final",
            "status": "runtime_error",
            "error_kind": type(exc).__name__,
            "error": error,
        }
    message["rusage"] = _own_usage()
    try:
        runtime.send(message)
    except OSError:
        _exit(3)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.close(fd)
    os._exit(0)


def run_program() -> NoReturn:
    """Run a program's source as __main__ with the given stdin, like `python prog.py < stdin`;
    a header carrying "program" instead is one code test (`checker.run_test`)."""
    sock = socket.socket(fileno=IO_FD)
    reader = sock.makefile("rb")
    header = json.loads(reader.readline())
    if "program" in header:
        run_test(sock, reader, header)
    reader.close()
    sock.close()
    stdin_fd = os.memfd_create("stdin")
    os.write(stdin_fd, header.get("stdin", "").encode())
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    os.dup2(stdin_fd, 0)
    os.close(stdin_fd)
    sys.argv = ["program"]
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    code = 0
    try:
        exec(compile(header["source"], "<program>", "exec"), namespace)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    _exit(code)
