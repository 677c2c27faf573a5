"""The command line that starts the fork server: the interpreter, and bubblewrap around it.

bwrap wraps the fork server once (its namespaces and mounts cost 5-8 ms, paid at start-up, not
per execution). Inside it the server sees only the system libraries, the interpreter and the
exposed modules, read-only; no /work, no datasets, no home, no network. The exposed modules are
mounted at a fixed path (`SANDBOX_LIB`), whatever the host path of the checkout or virtual
environment is (under /tmp, say, which the sandbox replaces with its own tmpfs). Each execution
then adds its own user/pid/net/mount namespaces with a fresh tmpfs scratch.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import metaagentx
from metaagentx.sandbox.settings import SandboxSettings

_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf")
SERVER_ENV_PATH = "/usr/local/bin:/usr/bin:/bin"
SANDBOX_LIB = "/opt/metaagentx-sandbox"
# bindings the seccomp layer may use (see seccomp_filter): shown to the server wherever installed
SECCOMP_MODULES = ("pyseccomp", "seccomp")


def package_root() -> Path:
    """The directory that holds the `metaagentx` package (what PYTHONPATH must name)."""
    return Path(metaagentx.__file__).resolve().parent.parent


def _module_path(name: str) -> Path | None:
    """The file or package directory of an importable module, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve() if spec.origin else None


def server_argv(
    settings: SandboxSettings, fd: int, layers: list[str], *, bwrapped: bool
) -> list[str]:
    """`python -s -B -m metaagentx.sandbox.forkserver ...` (no user site, no bytecode writes).

    Under bwrap the real interpreter binary runs (a virtual environment's path may be hidden);
    without bwrap, `sys.executable` keeps a virtual environment's packages visible.
    """
    python = os.path.realpath(sys.executable) if bwrapped else sys.executable
    return [
        python,
        "-s",
        "-B",
        "-m",
        "metaagentx.sandbox.forkserver",
        "--fd",
        str(fd),
        "--layers",
        ",".join(layers),
        "--uid",
        str(settings.unprivileged_uid),
        "--gid",
        str(settings.unprivileged_gid),
        "--preimport",
        ",".join(settings.preimport),
        "--pool",
        str(settings.pool_size),
    ]


def server_env(*, bwrapped: bool) -> dict[str, str]:
    """The fork server's whole environment: nothing of the host's survives."""
    path = SANDBOX_LIB if bwrapped else str(package_root())
    return {"PYTHONPATH": path, "PATH": SERVER_ENV_PATH, "LANG": "C.UTF-8"}


def exposed_modules(settings: SandboxSettings) -> list[tuple[Path, str]]:
    """(host path, path inside the sandbox) of every module the fork server may import."""
    pkg = Path(metaagentx.__file__).resolve().parent
    out = [(pkg / "__init__.py", f"{SANDBOX_LIB}/metaagentx/__init__.py")]
    for name in (*settings.expose_modules, *SECCOMP_MODULES):
        path = _module_path(name)
        if path is None or not path.exists():
            continue
        parent = name.rpartition(".")[0].replace(".", "/")
        out.append((path, f"{SANDBOX_LIB}/{parent + '/' if parent else ''}{path.name}"))
    return out


def bwrap_argv(settings: SandboxSettings, *, is_root: bool) -> list[str]:
    """bubblewrap options: a minimal read-only file system and fresh namespaces."""
    args = [settings.bwrap_path, "--ro-bind", "/usr", "/usr"]
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    # /tmp first: later binds may live under it (a checkout or venv in /tmp stays reachable)
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    for prefix in sorted(prefixes):
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
    # Only the exposed modules, at a fixed path; the rest of the package (tasks, rollout, ...)
    # and the checkout around it are not in the sandbox at all.
    for host_path, inside in exposed_modules(settings):
        args += ["--ro-bind", str(host_path), inside]
    args += [
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if (
        is_root
    ):  # no user namespace: keep just what is needed to drop each child to nobody and kill it
        args += [
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--cap-add",
            "CAP_KILL",
        ]
    else:
        args += ["--unshare-user"]
    # No --die-with-parent: its death signal fires when the *thread* that started bwrap exits
    # (e.g. an asyncio.to_thread worker), which killed a healthy server. The server exits by
    # itself when the host's end of its control socket closes, which a dying host always does.
    args += ["--new-session", "--clearenv", "--chdir", "/tmp"]
    for key, value in server_env(bwrapped=True).items():
        args += ["--setenv", key, value]
    return [*args, "--"]
