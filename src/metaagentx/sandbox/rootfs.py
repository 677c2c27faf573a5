"""The fork server's own hidden root, for machines without a usable bubblewrap (stdlib + ctypes).

    python -s -S -B -m metaagentx.sandbox.rootfs --plan JSON [--setenv KEY VALUE]... -- ARGV

enters a new mount namespace (as root) or a user namespace mapping our uid/gid to themselves plus
a mount namespace (otherwise), builds a tmpfs root holding only what the plan names (the same
plan `launch.mount_plan` hands bubblewrap: system libraries, the interpreter, a few /etc files,
/dev basics, /proc, the exposed modules), pivots into it, detaches the host's tree and execs
ARGV (the fork server) there with exactly the given environment. It runs once per server start;
the server's children then confine themselves as under bubblewrap. Any failure exits non-zero
with a one-line reason before ARGV runs, so the host never reports a root that is not there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import NoReturn

from metaagentx.sandbox import confine

STAGING = "/tmp"  # holds the build; pivot_root moves it off the host's /tmp, which reappears
OLD, NEW = "/old", "/new"  # under the staging tmpfs: the host's tree and the root being built
DEVICES = ("null", "zero", "full", "random", "urandom")
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)
TMPFS_FLAGS = confine.MS_NOSUID | confine.MS_NODEV
BIND_KINDS = ("ro-bind", "ro-bind-try")
FAILED = 125


def resolve(plan: list[list[str]]) -> list[tuple[str, str, str]]:
    """Resolve bind sources on the host (a symlink's absolute target means nothing once the
    host's tree moves under OLD); drop missing optional ones, refuse missing required ones."""
    out = []
    for kind, source, dest in plan:
        if kind in BIND_KINDS:
            source = os.path.realpath(source)
            if not os.path.exists(source):
                if kind == "ro-bind-try":
                    continue
                raise confine.ConfineError(f"nothing to bind at {source}")
        out.append((kind, source, dest))
    return out


def enter_namespaces() -> None:
    """A private mount namespace; without root, inside a user namespace of our own ids."""
    if os.geteuid() == 0:
        confine.unshare(confine.CLONE_NEWNS, "mount")
    else:
        uid, gid = os.getuid(), os.getgid()
        confine.unshare(confine.CLONE_NEWUSER | confine.CLONE_NEWNS, "user|mount")
        confine.map_ids_to_self(uid, gid)
    confine.mount(None, b"/", None, confine.MS_REC | confine.MS_PRIVATE, None)


def _tmpfs(target: str) -> None:
    confine.mount(b"tmpfs", target.encode(), b"tmpfs", TMPFS_FLAGS, b"mode=0755")


def _mount_point(target: str, *, directory: bool) -> None:
    if directory:
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.lexists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))


def _dev(target: str) -> None:
    """A read-only tmpfs /dev with the host's harmless character devices bound in."""
    _mount_point(target, directory=True)
    _tmpfs(target)
    for name in DEVICES:
        if os.path.exists(f"{OLD}/dev/{name}"):
            _mount_point(f"{target}/{name}", directory=False)
            confine.bind_readonly(f"{OLD}/dev/{name}", f"{target}/{name}")
    for name, link in DEV_LINKS:
        os.symlink(link, f"{target}/{name}")
    os.mkdir(f"{target}/shm")  # each execution mounts its own tmpfs here
    confine.remount_readonly(target)


def apply(kind: str, source: str, dest: str) -> None:
    """Add one plan entry under NEW."""
    target = NEW + dest
    if kind in BIND_KINDS:
        _mount_point(target, directory=os.path.isdir(OLD + source))
        confine.bind_readonly(OLD + source, target)
    elif kind == "dir":
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif kind == "symlink":
        _mount_point(os.path.dirname(target), directory=True)
        os.symlink(source, target)
    elif kind == "tmpfs":
        _mount_point(target, directory=True)
        _tmpfs(target)
    elif kind == "dev":
        _dev(target)
    elif kind == "proc":  # the host's procfs: each execution covers it with an empty tmpfs
        _mount_point(target, directory=True)
        confine.mount(f"{OLD}/proc".encode(), target.encode(), None,
                      confine.MS_BIND | confine.MS_REC, None)  # fmt: skip
    else:
        raise confine.ConfineError(f"unknown mount kind {kind!r}")


def build(plan: list[tuple[str, str, str]]) -> None:
    """Assemble `plan` in a fresh root, make it the root, and let go of the host's tree."""
    umask = os.umask(0o022)  # directories on the way to a bind: crossable by a child (nobody)
    enter_namespaces()
    _tmpfs(STAGING)
    os.mkdir(STAGING + OLD)
    confine.pivot_root(STAGING, STAGING + OLD)  # "/" is the staging tmpfs, the host at OLD
    os.chdir("/")
    os.mkdir(NEW)
    _tmpfs(NEW)
    for kind, source, dest in plan:
        apply(kind, source, dest)
    confine.remount_readonly(NEW)
    os.chdir(NEW)
    confine.pivot_root(".", ".")  # the staging tmpfs (and the host under it) now sits on top
    confine.detach(".")
    os.chdir("/")
    os.umask(umask)


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", required=True, help="JSON list of [kind, source, destination]")
    parser.add_argument("--setenv", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    try:
        build(resolve(json.loads(args.plan)))
        os.execve(command[0], command, dict(args.setenv))
    except (OSError, confine.ConfineError) as exc:
        print(f"rootfs: {exc}", file=sys.stderr, flush=True)
        os._exit(FAILED)


if __name__ == "__main__":
    main()
