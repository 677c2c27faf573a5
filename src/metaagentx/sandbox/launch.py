"""The command line that starts the fork server: the interpreter, inside a hidden root.

The fork server sees only the system libraries, the interpreter and the exposed modules,
read-only; no /work, no datasets, no home, no reference answers. `mount_plan` says what that root
holds, and either bubblewrap builds it (`bwrap_argv`: also no network, own pid namespace) or,
when bubblewrap is missing or unusable, the server's own pre-stage does (`rootfs_argv`: a mount
namespace, plus a user namespace when not root, and pivot_root). Both are paid once, at server
start, not per execution. The exposed modules are mounted at a fixed path (`SANDBOX_LIB`),
whatever the host path of the checkout or virtual environment is (under /tmp, say, which the
sandbox replaces with its own tmpfs). Each execution then adds its own user/pid/net/mount
namespaces with a fresh tmpfs scratch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path, PurePosixPath

import metaagentx
from metaagentx.sandbox.layers import FS_BWRAP, FS_PIVOT_ROOT
from metaagentx.sandbox.settings import SandboxSettings

_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf")
SERVER_ENV_PATH = "/usr/local/bin:/usr/bin:/bin"
SANDBOX_LIB = "/opt/metaagentx-sandbox"
# bindings the seccomp layer may use (see seccomp_filter): shown to the server wherever installed
SECCOMP_MODULES = ("pyseccomp", "seccomp")
# (kind, source, destination); the kinds are bubblewrap's option names, which `rootfs` mirrors
MountOp = tuple[str, str, str]


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
    settings: SandboxSettings, fd: int, layers: list[str], *, hidden_root: bool
) -> list[str]:
    """`python -s -B -m metaagentx.sandbox.forkserver ...` (no user site, no bytecode writes).

    In a hidden root the real interpreter binary runs (a virtual environment's path may be
    hidden); without one, `sys.executable` keeps a virtual environment's packages visible.
    """
    python = os.path.realpath(sys.executable) if hidden_root else sys.executable
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


def server_env(*, hidden_root: bool) -> dict[str, str]:
    """The fork server's whole environment: nothing of the host's survives."""
    path = SANDBOX_LIB if hidden_root else str(package_root())
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


def mount_plan(settings: SandboxSettings) -> list[MountOp]:
    """What the hidden root holds, in order, whichever mechanism builds it."""
    plan: list[MountOp] = [("ro-bind", "/usr", "/usr")]
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            plan.append(("symlink", os.readlink(path), path))
        elif os.path.isdir(path):
            plan.append(("ro-bind", path, path))
    plan += [("ro-bind-try", path, path) for path in _ETC_FILES]
    # /tmp first: later binds may live under it (a checkout or venv in /tmp stays reachable)
    plan += [("dev", "", "/dev"), ("proc", "", "/proc"), ("tmpfs", "", "/tmp")]
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    plan += [("ro-bind", p, p) for p in sorted(prefixes) if not p.startswith("/usr/")]
    # Only the exposed modules, at a fixed path; the rest of the package (tasks, rollout, ...)
    # and the checkout around it are not in the sandbox at all.
    plan += [("ro-bind", str(host), inside) for host, inside in exposed_modules(settings)]
    return _with_parents(plan)


def _with_parents(plan: list[MountOp]) -> list[MountOp]:
    """Create every directory above a bind explicitly (mode 0755): the ones bubblewrap creates
    on its own are 0700, which a child dropped to nobody cannot cross (an interpreter under
    /root, a virtual environment under /tmp)."""
    out: list[MountOp] = []
    made: set[str] = set()
    for op in plan:
        kind, _, dest = op
        if kind.startswith("ro-bind"):
            for parent in reversed(PurePosixPath(dest).parents[:-1]):  # not "/"
                if str(parent) not in made:
                    out.append(("dir", "", str(parent)))
                    made.add(str(parent))
        out.append(op)
        made.add(dest)
    return out


def bwrap_argv(settings: SandboxSettings, *, is_root: bool) -> list[str]:
    """bubblewrap options: the hidden root and fresh namespaces."""
    args = [settings.bwrap_path]
    for kind, source, dest in mount_plan(settings):
        args += [f"--{kind}", source, dest] if source else [f"--{kind}", dest]
    args += [
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if is_root:
        # no user namespace: keep just what is needed to drop each child to nobody and kill it,
        # and (children without a mount namespace) to hand it a scratch dir and remove it after
        args += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE"):
            args += ["--cap-add", cap]
    else:
        args += ["--unshare-user"]
    # No --die-with-parent: its death signal fires when the *thread* that started bwrap exits
    # (e.g. an asyncio.to_thread worker), which killed a healthy server. The server exits by
    # itself when the host's end of its control socket closes, which a dying host always does.
    args += ["--new-session", "--clearenv", "--chdir", "/tmp"]
    for key, value in server_env(hidden_root=True).items():
        args += ["--setenv", key, value]
    return [*args, "--"]


def rootfs_argv(settings: SandboxSettings) -> list[str]:
    """Our own stand-in for bubblewrap: `rootfs` builds the same root, then execs the server.

    The pre-stage needs the standard library only: `-S` spares it the site packages' start-up."""
    args = [os.path.realpath(sys.executable), "-s", "-S", "-B", "-m", "metaagentx.sandbox.rootfs"]
    args += ["--plan", json.dumps(mount_plan(settings))]
    for key, value in server_env(hidden_root=True).items():
        args += ["--setenv", key, value]
    return [*args, "--"]


def server_command(
    settings: SandboxSettings, fd: int, layers: list[str], *, hidden_fs: str | None, is_root: bool
) -> list[str]:
    """The fork server's command line, in the hidden root that `hidden_fs` names (or none).

    Run it with `server_env(hidden_root=False)`: bubblewrap clears that environment, and the
    pivot_root pre-stage needs it to import `rootfs` before it swaps in the sandbox's own."""
    argv = server_argv(settings, fd, layers, hidden_root=hidden_fs is not None)
    if hidden_fs == FS_BWRAP:
        return bwrap_argv(settings, is_root=is_root) + argv
    if hidden_fs == FS_PIVOT_ROOT:
        return rootfs_argv(settings) + argv
    return argv
