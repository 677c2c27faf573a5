"""The command line that starts the fork server: the interpreter, and bubblewrap around it.

bwrap wraps the fork server once (its namespaces and mounts cost 5-8 ms, paid at start-up, not
per execution). Inside it the server sees only the system libraries, the interpreter and the
exposed workflow-library modules, read-only; no /work, no datasets, no home, no network. Each
execution then adds its own user/pid/net/mount namespaces with a fresh tmpfs scratch.
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


def server_argv(settings: SandboxSettings, fd: int, layers: list[str]) -> list[str]:
    """`python -s -B -m metaagentx.sandbox.forkserver ...` (no user site, no bytecode writes)."""
    return [
        os.path.realpath(sys.executable),
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


def server_env() -> dict[str, str]:
    """The fork server's whole environment: nothing of the host's survives."""
    return {"PYTHONPATH": str(package_root()), "PATH": SERVER_ENV_PATH, "LANG": "C.UTF-8"}


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
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    for prefix in sorted(prefixes):
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
    pkg = Path(metaagentx.__file__).resolve().parent
    # Hide the rest of the package (tasks, rollout, ...): an empty tmpfs, then only what runs inside.
    args += ["--tmpfs", str(pkg), "--ro-bind", str(pkg / "__init__.py"), str(pkg / "__init__.py")]
    for name in settings.expose_modules:
        path = _module_path(name)
        if path is not None and path.exists():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--remount-ro", str(pkg)]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
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
    args += ["--die-with-parent", "--new-session", "--clearenv", "--chdir", "/tmp"]
    for key, value in server_env().items():
        args += ["--setenv", key, value]
    return [*args, "--"]
