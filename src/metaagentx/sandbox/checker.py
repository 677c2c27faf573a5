"""One code test inside the sandbox, with the candidate and the test in different processes.

The confined program child first receives only the candidate program, forks the candidate
process, and only then asks the host for the test. So the candidate's memory never holds the test
source, the expected values or the channel the verdict goes back on: frame and `gc` inspection,
printed fake verdicts, exit codes, `atexit` hooks and writes to other descriptors reach nothing.
The checker (the parent, made non-dumpable so the candidate cannot read its memory) runs the test
with proxies in place of the candidate's functions and classes; every call crosses a socket as
plain data (`plaindata`), so a return value whose `__eq__` always says yes cannot exist on the
checker's side. Helpers the test itself relies on (HumanEval's `poly`, LeetCode's `list_node`)
come from the trusted prelude and the task's starter code, never from the candidate.

Host <-> checker, JSON lines on the io socket (fd 3):
  host -> child   {"prelude": str, "program": str}            (the candidate's part)
  child -> host   {"ready": true}                             (the candidate is forked)
  host -> child   {"kind": "call" | "functional", "prelude", "setup", "fn_name", "args", "test"}
  child -> host   {"status": "returned", "value": ...} | {"status": "passed"}
                  | {"status": "failed", "reason": str}
Checker <-> candidate: {"op": "names" | "call" | "new", ...} and {"ok": ..., ...} lines.
Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import signal
import socket
import traceback
from typing import Any, BinaryIO, NoReturn

from metaagentx.sandbox import confine, plaindata

IO_FD = 3
MAX_LINE_BYTES = 64 << 20
MAX_REASON_CHARS = 500


class CandidateFailed(Exception):
    """The candidate raised, died, or answered with something that is not plain data."""


def read_line(reader: BinaryIO) -> Any:
    """One bounded JSON line (EOF, an over-long line or bad JSON raise CandidateFailed)."""
    line = reader.readline(MAX_LINE_BYTES + 1)
    if not line.endswith(b"\n"):
        raise CandidateFailed("connection closed" if not line else "message too large")
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise CandidateFailed(f"malformed message: {type(exc).__name__}") from exc


def write_line(sock: socket.socket, message: Any) -> None:
    sock.sendall((json.dumps(message) + "\n").encode())


def run_test(io: socket.socket, reader: BinaryIO, first: dict[str, Any]) -> NoReturn:
    """Run one test in a program child whose first io line was `first` (the candidate's part):
    see the module docstring."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        io.detach()
        os.dup2(theirs.detach(), IO_FD)  # replaces the io socket: the host is out of reach
        confine.close_fds_above(IO_FD)
        _serve_candidate(first["prelude"], first["program"])
    theirs.close()
    del first
    confine.prctl(confine.PR_SET_DUMPABLE, 0)
    write_line(io, {"ready": True})
    spec = read_line(reader)
    link = _Link(ours)
    try:
        outcome = _check(spec, link)
    except CandidateFailed as exc:
        outcome = {"status": "failed", "reason": str(exc)[:MAX_REASON_CHARS]}
    with contextlib.suppress(OSError):
        write_line(io, outcome)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os._exit(0)


# -- the checker's side ------------------------------------------------------------------------


class _Link:
    """Requests to the candidate process; every reply is untrusted and checked."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.list_node: Any = None
        self.tree_node: Any = None

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            write_line(self.sock, message)
        except OSError as exc:
            raise CandidateFailed("the program's process is gone") from exc
        reply = read_line(self.reader)
        if type(reply) is not dict:
            raise CandidateFailed("malformed reply")
        if reply.get("ok") is not True:
            error = reply.get("error")
            raise _raised(error if type(error) is list and len(error) == 2 else ["Error", ""])
        return reply

    def call(self, target: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             op: str = "call") -> Any:
        try:
            payload = {"op": op, "target": target, "args": plaindata.encode(list(args)),
                       "kwargs": plaindata.encode(kwargs)}
        except plaindata.PlainDataError as exc:
            raise CandidateFailed(f"the test passes a non-plain argument: {exc}") from exc
        reply = self.request(payload)
        if op == "new":
            return reply.get("handle")
        try:
            return plaindata.decode(reply.get("value"), list_node=self.list_node,
                                    tree_node=self.tree_node)
        except (plaindata.PlainDataError, RecursionError, TypeError, ValueError) as exc:
            raise CandidateFailed(f"the program returned a value that is not plain data: {exc}") from exc


def _raised(error: list[Any]) -> BaseException:
    """The candidate's exception as the checker sees it: a builtin class keeps its type (a test
    may expect ValueError), anything else becomes CandidateFailed."""
    name, message = str(error[0]), str(error[1])[:MAX_REASON_CHARS]
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls is not AssertionError:
        with contextlib.suppress(Exception):
            return cls(message)
    return CandidateFailed(f"the program raised {name}: {message}")


class _RemoteFunction:
    def __init__(self, link: _Link, target: list[Any]) -> None:
        self._link, self._target = link, target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._link.call(self._target, args, kwargs)


class _RemoteInstance:
    def __init__(self, link: _Link, handle: int) -> None:
        self._link, self._handle = link, handle

    def __getattr__(self, name: str) -> _RemoteFunction:
        if name.startswith("__"):
            raise AttributeError(name)
        return _RemoteFunction(self._link, ["attr", self._handle, name])


class _RemoteClass:
    def __init__(self, link: _Link, name: str) -> None:
        self._link, self._name = link, name

    def __call__(self, *args: Any, **kwargs: Any) -> _RemoteInstance:
        handle = self._link.call(["name", self._name], args, kwargs, op="new")
        if type(handle) is not int:
            raise CandidateFailed("malformed reply")
        return _RemoteInstance(self._link, handle)


def _check(spec: dict[str, Any], link: _Link) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__test__"}
    exec(compile(spec["prelude"], "<prelude>", "exec"), namespace)
    link.list_node, link.tree_node = namespace.get("list_node"), namespace.get("tree_node")
    if spec.get("setup"):
        # the task's own starter code (trusted helpers such as HumanEval's `poly`); a LeetCode
        # starter is an unfinished class and does not compile, which is fine
        with contextlib.suppress(Exception):
            exec(compile(spec["setup"], "<setup>", "exec"), namespace)
    fn_name = spec.get("fn_name")
    names = link.request({"op": "names"}).get("names")
    if type(names) is not dict:
        raise CandidateFailed("malformed reply")
    for name, kind in names.items():
        if type(name) is not str or (name in namespace and name not in (fn_name, "Solution")):
            continue
        remote = _RemoteClass(link, name) if kind == "class" else None
        namespace[name] = remote or _RemoteFunction(link, ["name", name])
    if spec["kind"] == "call":
        try:
            args = plaindata.decode(spec["args"], list_node=link.list_node,
                                    tree_node=link.tree_node)
        except plaindata.PlainDataError as exc:
            raise CandidateFailed(f"malformed test arguments: {exc}") from exc
        value = link.call(["name", fn_name], tuple(args), {})
        return {"status": "returned", "value": plaindata.encode(value)}
    try:
        exec(compile(spec["test"], "<test>", "exec"), namespace)
    except CandidateFailed:
        raise
    except Exception as exc:
        reason = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return {"status": "failed", "reason": reason[:MAX_REASON_CHARS]}
    return {"status": "passed"}


# -- the candidate's side ----------------------------------------------------------------------


def _serve_candidate(prelude: str, program: str) -> NoReturn:
    """Run the program, then answer the checker's calls until it hangs up. Everything here is
    the candidate's to tamper with; the checker trusts none of its replies."""
    sock = socket.socket(fileno=IO_FD)
    reader = sock.makefile("rb")
    pre: dict[str, Any] = {"__name__": "__candidate__"}
    exec(compile(prelude, "<prelude>", "exec"), pre)
    namespace = dict(pre)
    failure = None
    try:
        exec(compile(program, "<candidate>", "exec"), namespace)
    except BaseException as exc:  # SystemExit included: the program never defined its answer
        failure = [type(exc).__name__, f"while loading the program: {exc}"]
    objects: dict[int, Any] = {}
    while True:
        try:
            request = read_line(reader)
        except CandidateFailed:
            os._exit(0)
        try:
            if failure is not None:
                raise _Failure(failure)
            reply = {"ok": True, **_answer(request, pre, namespace, objects)}
        except _Failure as exc:
            reply = {"ok": False, "error": exc.error}
        except BaseException as exc:
            reply = {"ok": False, "error": [type(exc).__name__, str(exc)[:MAX_REASON_CHARS]]}
        try:
            write_line(sock, reply)
        except (OSError, TypeError, ValueError):
            os._exit(1)


class _Failure(Exception):
    def __init__(self, error: list[str]) -> None:
        super().__init__(error[1])
        self.error = error


def _answer(request: dict[str, Any], pre: dict[str, Any], namespace: dict[str, Any],
            objects: dict[int, Any]) -> dict[str, Any]:
    if request["op"] == "names":
        names = {k: "class" if isinstance(v, type) else "other" for k, v in namespace.items()
                 if not k.startswith("__") and v is not pre.get(k, _MISSING)}
        return {"names": names}
    builders = {"list_node": pre.get("list_node"), "tree_node": pre.get("tree_node")}
    args = plaindata.decode(request["args"], **builders)
    kwargs = plaindata.decode(request["kwargs"], **builders)
    target = _resolve(request["target"], pre, namespace, objects)
    if request["op"] == "new":
        handle = len(objects) + 1
        objects[handle] = target(*args, **kwargs)
        return {"handle": handle}
    return {"value": plaindata.encode(target(*args, **kwargs))}


_MISSING = object()


def _resolve(target: list[Any], pre: dict[str, Any], namespace: dict[str, Any],
             objects: dict[int, Any]) -> Any:
    """A top-level name of the program (a method of `Solution` when no such function), or an
    attribute of an object made earlier."""
    if target[0] == "attr":
        return getattr(objects[int(target[1])], str(target[2]))
    name = str(target[1])
    found = namespace.get(name)
    if found is not None and found is pre.get(name):
        found = None  # a prelude name (e.g. operator.add), not the program's own
    if found is None and isinstance(namespace.get("Solution"), type):
        found = getattr(namespace["Solution"](), name, None)
    if found is None:
        raise NameError(f"the program defines no function {name}")
    return found
