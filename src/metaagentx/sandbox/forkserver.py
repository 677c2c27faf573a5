"""The fork server: a warm interpreter that forks one confined child per execution.

Started by the host as `python -s -B -m metaagentx.sandbox.forkserver --fd N ...` with a scrubbed
environment, in a hidden root: under bubblewrap where available (it then also has no network),
else in the minimal root that `rootfs` pivots into just before exec'ing it. Either way it sees
only the interpreter, system libraries and the workflow library before it imports anything; the
host's tree (datasets, answers, the checkout) is not there to be read. (Where neither works, or
under isolation `process`/`unsafe`, it runs on the host's tree, and its layers say so.) It imports
the workflow library and common stdlib modules once; each fork then costs a few milliseconds
instead of a fresh interpreter.

Each execution runs in a child forked and confined *before* it is needed: the server keeps a
small pool of idle, already-confined children per distinct set of limits, and a spawn only hands
one of them its three fds over a private socket (the pool refills when the server is idle). A
pooled child runs exactly one execution and dies, so nothing leaks from one execution to the next;
when the pool is empty the child is forked on demand the same way.

Control socket (AF_UNIX SOCK_SEQPACKET, one JSON object per message, never pickle):
  server -> host  {"op": "ready", "layers": [...], "probe_errors": {...}}
  host -> server  {"op": "spawn", "id": str, "mode": "workflow" | "program", "limits": {...}}
                  with SCM_RIGHTS fds [io, stdout, stderr]
  host -> server  {"op": "kill", "id": str}
  server -> host  {"op": "exit", "id", "returncode", "signal", "timed_out", "cpu_s", "maxrss_kb"}
The server enforces each child's wall-clock deadline (from the hand-over) itself and SIGKILLs the
child's process group; the child is pid 1 of its own pid namespace, so everything it started dies
with it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import math
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NoReturn

from metaagentx.sandbox import confine, harness, layers
from metaagentx.sandbox import seccomp_filter as seccomp_mod

SETUP_FAILED = 121
MAX_CONTROL_BYTES = 1 << 16
HANDOFF_FD = 3  # where an idle pooled child waits for its execution's fds
MAX_POOL_KEYS = 4  # distinct limit sets kept warm (workflow, python tool, graders...)


@dataclass
class _Child:
    pid: int
    key: str
    scratch: str | None
    handoff: socket.socket | None  # the server's end, until the execution is handed over
    id: str | None = None  # set at hand-over; an idle child has none
    deadline: float = math.inf
    timed_out: bool = False
    killed: bool = False


def pool_key(limits: dict[str, Any]) -> str:
    """Children confined with equal limits are interchangeable (the deadline starts later)."""
    return json.dumps({k: v for k, v in limits.items() if k != "timeout_s"}, sort_keys=True)


class Confiner:
    """Applies a fixed set of layers in a forked child, or dies trying (never runs weaker)."""

    def __init__(self, active: list[str], uid: int, gid: int) -> None:
        self.active = set(active)
        self.uid, self.gid = uid, gid
        self.filter = seccomp_mod.build_filter() if "seccomp" in self.active else None

    def enter(self, limits: dict[str, Any], scratch: str | None) -> None:
        """Confine the calling (forked) process. Returns in the process that runs the code."""
        on = self.active.__contains__
        confine.die_with_parent()
        if on("unprivileged_uid"):
            confine.drop_root(self.uid, self.gid)
            if os.geteuid() == 0:
                raise confine.ConfineError("still root after dropping privileges")
        if on("userns"):
            confine.enter_namespaces(net=on("netns"))
            pid = os.fork()
            if pid:
                _relay(pid)
            confine.die_with_parent()
        if on("mountns"):
            confine.private_mounts(scratch_mb=int(limits["scratch_mb"]), readonly=on("fs_readonly"))
            os.chdir("/tmp")
        elif scratch is not None:
            os.chdir(scratch)
        confine.set_rlimits(limits, nproc=on("nproc"))
        confine.scrub_env()
        confine.drop_caps()
        confine.no_new_privs()
        if self.filter is not None:
            self.filter.load()


def _relay(pid: int) -> NoReturn:
    """The namespace parent: wait for pid 1 of the new namespace and exit the way it did."""
    confine.close_fds_above(-1)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(SETUP_FAILED)
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _probe(requested: list[str], uid: int, gid: int) -> tuple[list[str], dict[str, str]]:
    """Fork a throwaway child that tries each layer in turn; returns those that worked."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        ok: list[str] = list(layers.BASE_LAYERS)
        errors: dict[str, str] = {}

        def attempt(name: str, fn: Any) -> bool:
            if name not in requested:
                return False
            try:
                fn()
            except Exception as exc:
                errors[name] = str(exc)
                return False
            ok.append(name)
            return True

        def report() -> NoReturn:
            os.write(write_fd, json.dumps({"ok": ok, "errors": errors}).encode())
            os._exit(0)

        was_root = os.geteuid() == 0
        dropped = attempt("unprivileged_uid", lambda: confine.drop_root(uid, gid))
        ns = attempt("userns", lambda: confine.enter_namespaces(net="netns" in requested))
        if ns:
            ok.extend(x for x in ("pidns", "netns", "ipcns") if x in requested)
            if os.fork():
                os._exit(0)  # the grandchild is pid 1 of the new pid namespace and reports
            attempt("mountns", lambda: confine.private_mounts(scratch_mb=1, readonly=False))
            if "mountns" in ok:
                attempt("fs_readonly", confine.make_readonly)
        # RLIMIT_NPROC never binds kuid 0, and without a user namespace a non-root uid's count
        # includes every process the host user runs, so it only binds per execution in these cases.
        if os.getuid() != 0 and (ns or (dropped and was_root)):
            attempt("nproc", lambda: None)
        for name in layers.HIDDEN_FS_LAYERS:  # the host knows which root it launched us in
            attempt(name, lambda: None)
        try:
            confine.drop_caps()
            confine.no_new_privs()
        except confine.ConfineError as exc:
            errors["caps_dropped"] = str(exc)
        attempt("seccomp", lambda: seccomp_mod.build_filter().load())
        report()
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    if not chunks:
        return list(layers.BASE_LAYERS), {"probe": "the probe child died"}
    result = json.loads(b"".join(chunks))
    return result["ok"], result["errors"]


class ForkServer:
    """The server loop: spawn requests in, exit reports out, deadlines enforced, pools refilled."""

    def __init__(
        self, control: socket.socket, active: list[str], uid: int, gid: int, pool_size: int
    ) -> None:
        self.control = control
        self.confiner = Confiner(active, uid, gid)
        self.children: dict[int, _Child] = {}
        self.by_id: dict[str, _Child] = {}
        self.pools: OrderedDict[str, tuple[dict[str, Any], list[_Child]]] = OrderedDict()
        # Without a per-execution user namespace every child shares one uid's process budget
        # (RLIMIT_NPROC), which idle children would eat into: no pool then.
        self.pool_size = pool_size if "userns" in active else 0
        self.is_root = os.geteuid() == 0
        self.uid, self.gid = uid, gid

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        sel = selectors.DefaultSelector()
        sel.register(self.control, selectors.EVENT_READ, "control")
        sel.register(wake_r, selectors.EVENT_READ, "wake")
        try:
            while True:
                short = self._short_pool()
                events = sel.select(0 if short is not None else self._next_timeout())
                for key, _ in events:
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake_r, 4096)
                    elif not self._handle_control():
                        return
                self._reap()
                self._enforce_deadlines()
                if not events and short is not None:  # idle: refill one pool slot
                    self._add_idle(short)
        finally:
            for child in list(self.children.values()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)

    def _next_timeout(self) -> float | None:
        pending = [c.deadline for c in self.children.values() if not c.killed and c.id is not None]
        return max(0.0, min(pending) - time.monotonic()) if pending else None

    def _short_pool(self) -> str | None:
        """A pool key to refill (the most recently used first). While executions run, only an
        empty pool is refilled: forking competes with them for the CPU."""
        running = len(self.by_id) > 0
        for key in reversed(self.pools):
            idle = len(self.pools[key][1])
            if idle < self.pool_size and (idle == 0 or not running):
                return key
        return None

    def _handle_control(self) -> bool:
        try:
            data, fds, _, _ = socket.recv_fds(self.control, MAX_CONTROL_BYTES, 8)
        except OSError:
            return False
        if not data:
            return False
        try:
            msg = json.loads(data)
            if msg.get("op") == "spawn":
                self._spawn(msg, fds)
            elif msg.get("op") == "kill":
                child = self.by_id.get(str(msg.get("id")))
                if child is not None:
                    self._kill(child)
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return True

    def _spawn(self, msg: dict[str, Any], fds: list[int]) -> None:
        limits = msg["limits"]
        key = pool_key(limits)
        if key not in self.pools:
            self.pools[key] = (limits, [])
            while len(self.pools) > MAX_POOL_KEYS:
                _, (_, stale) = self.pools.popitem(last=False)
                for child in stale:
                    self._kill(child)
        self.pools.move_to_end(key)
        idle = self.pools[key][1]
        payload = json.dumps({"mode": msg.get("mode")}).encode()
        while True:
            child = idle.pop(0) if idle else self._fork(key, limits, warm=False)
            assert child.handoff is not None
            try:
                socket.send_fds(child.handoff, [payload], fds)
                break
            except OSError:  # it died idle; its exit is reaped (and ignored) later
                self._kill(child)
            finally:
                child.handoff.close()
                child.handoff = None
        child.id = str(msg["id"])
        child.deadline = time.monotonic() + float(limits["timeout_s"])
        self.by_id[child.id] = child

    def _add_idle(self, key: str) -> None:
        limits, idle = self.pools[key]
        idle.append(self._fork(key, limits, warm=True))

    def _fork(self, key: str, limits: dict[str, Any], *, warm: bool) -> _Child:
        """Fork a child that confines itself (and, if `warm`, warms up: it has time to spare) and
        then waits for an execution to be handed over."""
        scratch = None
        if "mountns" not in self.confiner.active:
            scratch = tempfile.mkdtemp(prefix="mx-")
            if self.is_root and "unprivileged_uid" in self.confiner.active:
                os.chown(scratch, self.uid, self.gid)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            self._child(theirs.fileno(), limits, scratch, warm)
        theirs.close()
        child = _Child(pid, key, scratch, ours)
        self.children[pid] = child
        return child

    def _child(
        self, handoff_fd: int, limits: dict[str, Any], scratch: str | None, warm: bool
    ) -> NoReturn:
        setup_error = None
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            os.setsid()
            os.dup2(handoff_fd, HANDOFF_FD)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            confine.close_fds_above(HANDOFF_FD)
            self.confiner.enter(limits, scratch)
            if warm:
                harness.warm_up()
        except BaseException as exc:  # reported on the execution's stderr, below
            setup_error = f"sandbox setup failed: {exc}\n"
        mode = _receive_execution()
        if setup_error is not None:
            with contextlib.suppress(OSError):
                os.write(2, setup_error.encode())
            os._exit(SETUP_FAILED)
        if mode == "program":
            harness.run_program()
        harness.run_workflow()

    def _kill(self, child: _Child, *, timed_out: bool = False) -> None:
        child.timed_out = child.timed_out or timed_out
        child.killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if not child.killed and now >= child.deadline:
                self._kill(child, timed_out=True)

    def _reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # stragglers that stayed in the group
            if child.scratch:
                shutil.rmtree(child.scratch, ignore_errors=True)
            if child.id is None:  # died while idle: drop it from its pool
                if child.handoff is not None:
                    child.handoff.close()
                pool = self.pools.get(child.key)
                if pool is not None and child in pool[1]:
                    pool[1].remove(child)
                continue
            self.by_id.pop(child.id, None)
            report = {
                "op": "exit",
                "id": child.id,
                "returncode": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                "timed_out": child.timed_out,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,
            }
            with contextlib.suppress(OSError):
                self.control.send(json.dumps(report).encode())


def _receive_execution() -> str:
    """In an idle child: block until the server hands over [io, stdout, stderr]; put them on
    fds 3, 1, 2 and return the mode. Exits quietly if the server drops the child instead."""
    with socket.socket(fileno=HANDOFF_FD) as sock:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 4096, 3)
        except OSError:
            os._exit(SETUP_FAILED)
    if not data or len(fds) != 3:
        os._exit(SETUP_FAILED)
    io_fd, out_fd, err_fd = fds
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.dup2(io_fd, harness.IO_FD)
    for fd in fds:
        if fd not in (1, 2, harness.IO_FD):
            os.close(fd)
    return str(json.loads(data).get("mode"))


def _preimport(names: list[str]) -> list[str]:
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # a module missing here just is not preloaded
            continue
    return loaded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--layers", default="")
    parser.add_argument("--uid", type=int, default=65534)
    parser.add_argument("--gid", type=int, default=65534)
    parser.add_argument("--preimport", default="")
    parser.add_argument("--pool", type=int, default=2, help="idle confined children per limit set")
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.fd)
    confine.prctl(confine.PR_SET_DUMPABLE, 0)  # no same-uid process may read our memory
    # No parent-death signal: it fires when the host *thread* that started us exits (an
    # asyncio.to_thread worker at the end of an event loop), killing a healthy server. The serve
    # loop ends when the host's end of the control socket closes, which a dying host always does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requested = [x for x in args.layers.split(",") if x]
    loaded = _preimport([x for x in args.preimport.split(",") if x])
    if "seccomp" in requested:
        seccomp_mod.available()  # load the binding now: children cannot run ldconfig to find it
    ok, errors = _probe(requested, args.uid, args.gid)
    active = [x for x in requested if x in ok]
    gc.freeze()  # children's garbage collector then leaves the shared heap alone: fewer copied pages
    control.send(
        json.dumps(
            {"op": "ready", "layers": active, "probe_errors": errors, "preloaded": loaded}
        ).encode()
    )
    ForkServer(control, active, args.uid, args.gid, max(0, args.pool)).serve()
    sys.exit(0)


if __name__ == "__main__":
    main()
