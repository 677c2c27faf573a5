"""The host's handle on a fork server: start it, spawn children, learn how they ended.

Thread-safe and loop-agnostic: `spawn` returns a `concurrent.futures.Future` that a reader thread
completes when the server reports the child's exit, so both the synchronous `run_program` and the
asyncio `Runner` use one client. A dead server fails its pending futures and is restarted on the
next spawn; the children it held die with it (bwrap pid namespace / parent-death signal).

The server starts in a hidden root: bubblewrap's where it works, else its own pivot_root'ed one
(`rootfs`), else (only in `auto`, saying so in `layers` and `probe_errors`) on the host's tree.
`require_hidden_filesystem` is the gate grading calls so that last case never earns a reward.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import socket
import subprocess
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from metaagentx.sandbox import launch
from metaagentx.sandbox import seccomp_filter as seccomp_mod
from metaagentx.sandbox.layers import (
    FS_BWRAP,
    FS_PIVOT_ROOT,
    SandboxUnavailable,
    missing_for_strict,
    requested_layers,
    require_hidden_filesystem,
)
from metaagentx.sandbox.settings import SandboxSettings

READY_TIMEOUT_S = 60.0
LAUNCHERS: dict[str | None, str] = {FS_BWRAP: "bwrap", FS_PIVOT_ROOT: "pivot_root", None: "plain"}


class ForkServerDied(RuntimeError):
    """The fork server exited while a child was running; the child is gone with it."""


@dataclass(frozen=True)
class ChildExit:
    """How a sandbox child ended, as the fork server saw it."""

    returncode: int | None
    signal: int | None
    timed_out: bool
    cpu_s: float
    maxrss_kb: int


class ForkServerClient:
    """One running fork server with a fixed set of isolation layers."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.layers: list[str] = []
        self.probe_errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[str, Future[ChildExit]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the server is started (it may still die; `spawn` then restarts it)."""
        return self._sock is not None

    def start(self) -> None:
        """Start the server (idempotent); raises SandboxUnavailable if strict cannot be met."""
        with self._lock:
            if self._sock is None:
                self._start_locked()

    def require_hidden_filesystem(self) -> None:
        """Start the server and refuse (HiddenFilesystemMissing) if executions could read the
        host's files; what grading calls before it trusts a verdict."""
        self.start()
        require_hidden_filesystem(self.layers, self.settings, self.probe_errors)

    def _hidden_fs_options(self) -> tuple[list[str | None], dict[str, str]]:
        """The hidden roots to try, best first (None: the host's tree, read-only at best), and
        why the others are out of reach."""
        s = self.settings
        if s.isolation in ("process", "unsafe"):
            return [None], {}
        if os.access(s.bwrap_path, os.X_OK):
            return [FS_BWRAP, FS_PIVOT_ROOT, None], {}
        return [FS_PIVOT_ROOT, None], {FS_BWRAP: f"bubblewrap not usable at {s.bwrap_path}"}

    def _start_locked(self) -> None:
        s = self.settings
        is_root = os.geteuid() == 0
        want_seccomp = s.isolation != "process" and s.seccomp and seccomp_mod.available()
        options, failures = self._hidden_fs_options()
        for hidden_fs in options:
            layers = requested_layers(
                s.isolation, is_root=is_root, hidden_fs=hidden_fs, seccomp=want_seccomp
            )
            try:
                self._launch(layers, hidden_fs, is_root)
                break
            except RuntimeError as exc:
                failures[hidden_fs or "plain"] = " ".join(str(exc).split())
        else:
            raise RuntimeError(
                "the sandbox fork server did not start: " + " | ".join(failures.values())
            )
        self.probe_errors.update(failures)
        if s.isolation == "strict":
            missing = missing_for_strict(self.layers)
            if missing:
                details = "; ".join(f"{k}: {v}" for k, v in self.probe_errors.items())
                self._shutdown_locked()
                raise SandboxUnavailable(missing, details)

    def _launch(self, layers: list[str], hidden_fs: str | None, is_root: bool) -> None:
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = launch.server_command(
            self.settings, child.fileno(), layers, hidden_fs=hidden_fs, is_root=is_root
        )
        with tempfile.TemporaryFile() as errlog:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errlog,
                env=launch.server_env(hidden_root=False),
                cwd="/",
                pass_fds=(child.fileno(),),
                start_new_session=True,
            )
            child.close()
            host.settimeout(READY_TIMEOUT_S)
            try:
                ready = json.loads(host.recv(1 << 16) or b"null")
            except (OSError, ValueError):
                ready = None
            if not isinstance(ready, dict) or ready.get("op") != "ready":
                proc.kill()
                proc.wait()
                host.close()
                errlog.seek(0)
                tail = errlog.read()[-2000:].decode(errors="replace").strip()
                kind = LAUNCHERS[hidden_fs]
                raise RuntimeError(f"{kind} fork server failed: {tail or 'no ready message'}")
        host.settimeout(None)
        self.layers = list(ready["layers"])
        self.probe_errors = dict(ready.get("probe_errors") or {})
        self._proc, self._sock = proc, host
        threading.Thread(
            target=self._read_loop, args=(host,), name="forkserver-reader", daemon=True
        ).start()

    def close(self) -> None:
        """Stop the server; its children are killed by it (or by the kernel with it)."""
        with self._lock:
            self._shutdown_locked()

    def _shutdown_locked(self) -> None:
        sock, proc = self._sock, self._proc
        self._sock = self._proc = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- children --------------------------------------------------------------------------
    def spawn(
        self, mode: str, limits: dict[str, Any], fds: list[int]
    ) -> tuple[str, Future[ChildExit]]:
        """Fork a confined child running `mode` ("workflow" | "program") on fds [io, out, err]."""
        future: Future[ChildExit] = Future()
        with self._lock:
            if self._sock is None:
                self._start_locked()
            exec_id = f"x{next(self._ids)}"
            self._pending[exec_id] = future
            msg = json.dumps(
                {"op": "spawn", "id": exec_id, "mode": mode, "limits": limits}
            ).encode()
            try:
                socket.send_fds(self._sock, [msg], fds)  # type: ignore[arg-type]
            except OSError as exc:
                self._pending.pop(exec_id, None)
                self._shutdown_locked()
                raise ForkServerDied(f"could not reach the fork server: {exc}") from exc
        return exec_id, future

    def kill(self, exec_id: str) -> None:
        """SIGKILL a child's whole process group (no-op if it already ended)."""
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.send(json.dumps({"op": "kill", "id": exec_id}).encode())

    def _read_loop(self, sock: socket.socket) -> None:
        try:
            while data := sock.recv(1 << 16):
                msg = json.loads(data)
                if msg.get("op") != "exit":
                    continue
                with self._lock:
                    future = self._pending.pop(str(msg["id"]), None)
                if future is not None:
                    future.set_result(
                        ChildExit(msg["returncode"], msg["signal"], bool(msg["timed_out"]),
                                  float(msg["cpu_s"]), int(msg["maxrss_kb"]))
                    )  # fmt: skip
        except (OSError, ValueError):
            pass
        with self._lock:
            if self._sock is sock:
                self._sock = None
                if self._proc is not None:
                    self._proc.kill()
                    self._proc.wait()
                    self._proc = None
            waiting, self._pending = list(self._pending.values()), {}
        for future in waiting:
            if not future.done():
                future.set_exception(ForkServerDied("the sandbox fork server exited"))


_shared: dict[str, ForkServerClient] = {}
_shared_lock = threading.Lock()


def shared_client(settings: SandboxSettings) -> ForkServerClient:
    """One started client per distinct settings, reused across calls and threads."""
    key = settings.model_dump_json()
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            client = _shared[key] = ForkServerClient(settings)
    client.start()
    return client


@atexit.register
def _close_shared() -> None:
    with _shared_lock:
        clients = list(_shared.values())
        _shared.clear()
    for client in clients:
        client.close()
