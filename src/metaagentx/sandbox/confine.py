"""Kernel calls a freshly forked sandbox child makes to confine itself (stdlib + ctypes).

Order matters and is driven by the fork server: drop root -> new user/pid/net/ipc/mount
namespaces -> (fork: the grandchild is pid 1 of its own pid namespace) -> private mounts ->
rlimits -> scrubbed env -> caps dropped, no_new_privs -> seccomp. Every step raises
`ConfineError` on failure so that a child never runs with fewer layers than it reports.
The mount helpers (bind, read-only remount, pivot_root) also build the fork server's own hidden
root when bubblewrap is missing (`rootfs`).
"""

from __future__ import annotations

import ctypes
import os
import resource
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
SYS_MOUNT_SETATTR = 442  # x86_64 and aarch64 share the new syscall numbers
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
# statvfs flag -> the mount flag a read-only remount must repeat (a user namespace may not clear
# the flags it inherited: nosuid, nodev, noexec and the atime mode are locked)
_KEPT_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)
LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)

SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}


class ConfineError(RuntimeError):
    """A confinement step failed; the child must not run the untrusted code."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise ConfineError(f"{what}: {os.strerror(err)} (errno {err})")


def prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def die_with_parent() -> None:
    """SIGKILL this process if its parent dies (fork server or relay gone -> child gone)."""
    prctl(PR_SET_PDEATHSIG, 9)


def drop_root(uid: int, gid: int) -> None:
    """Leave uid 0 for good: RLIMIT_NPROC does not bind the init user, so root must not stay."""
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise ConfineError("could not drop root")
    prctl(PR_SET_DUMPABLE, 1)  # so this process may write its own /proc/self/uid_map next


def unshare(flags: int, what: str) -> None:
    _check(_libc.unshare(flags), f"unshare({what})")


def enter_namespaces(*, net: bool = True) -> None:
    """New user, mount, pid, ipc, uts (and net) namespaces, mapping our uid to itself."""
    uid, gid = os.getuid(), os.getgid()
    prctl(PR_SET_DUMPABLE, 1)  # the fork server is non-dumpable; we must own /proc/self/uid_map
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if net:
        flags |= CLONE_NEWNET
    unshare(flags, "user|mount|pid|ipc|uts|net")
    map_ids_to_self(uid, gid)


def map_ids_to_self(uid: int, gid: int) -> None:
    """In a fresh user namespace: map `uid`/`gid` (ours outside) to themselves, no setgroups."""
    for path, text in (
        ("/proc/self/setgroups", "deny"),
        ("/proc/self/uid_map", f"{uid} {uid} 1"),
        ("/proc/self/gid_map", f"{gid} {gid} 1"),
    ):
        try:
            with open(path, "w") as fh:
                fh.write(text)
        except OSError as exc:
            raise ConfineError(f"write {path}: {exc}") from exc


def mount(
    source: bytes | None, target: bytes, fstype: bytes | None, flags: int, data: bytes | None
) -> None:
    rc = _libc.mount(source, target, fstype, ctypes.c_ulong(flags), data)
    _check(rc, f"mount {target.decode()}")


def bind_readonly(source: str, target: str) -> None:
    """Bind `source` (and the mounts below it) at `target`, then make `target` read-only.

    Binds are recursive: a user namespace may not bind a tree without the mounts that cover
    parts of it. The remount (not mount_setattr) works on kernels before 5.12 as well."""
    mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None)
    remount_readonly(target)


def remount_readonly(target: str) -> None:
    """Make the mount at `target` read-only, keeping the flags the kernel locks."""
    kept = os.statvfs(target).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for st_flag, ms_flag in _KEPT_FLAGS:
        if kept & st_flag:
            flags |= ms_flag
    mount(None, target.encode(), None, flags, None)


def pivot_root(new_root: str, put_old: str) -> None:
    """Make `new_root` the root mount; the old root ends up at `put_old`."""
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise ConfineError(f"pivot_root syscall number unknown on {os.uname().machine}")
    rc = _libc.syscall(ctypes.c_long(number), new_root.encode(), put_old.encode())
    _check(rc, f"pivot_root({new_root}, {put_old})")


def detach(target: str) -> None:
    """Lazily unmount `target` and everything below it (umount2 MNT_DETACH)."""
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def make_readonly() -> None:
    """Every mount read-only, recursively (mount_setattr, Linux >= 5.12)."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    rc = _libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(AT_FDCWD), b"/",
        ctypes.c_uint(AT_RECURSIVE), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
    )  # fmt: skip
    _check(rc, "mount_setattr(/, RDONLY, recursive)")


def private_mounts(*, scratch_mb: int, readonly: bool) -> None:
    """Private propagation, optional read-only root, then fresh tmpfs on /tmp, /dev/shm, /proc."""
    mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
    if readonly:
        make_readonly()
    opts = f"size={scratch_mb}m,mode=0700,uid={os.getuid()},gid={os.getgid()}".encode()
    mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, opts)
    if os.path.isdir("/dev/shm"):
        mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,mode=0700")
    if os.path.isdir("/proc"):  # hide every pid, environ and cmdline of the host
        mount(b"tmpfs", b"/proc", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=4k,mode=0555")


def set_rlimits(limits: dict[str, Any], *, nproc: bool) -> None:
    """Address space, CPU seconds, file size, open files, no core dumps, optionally processes."""
    mb = 1 << 20
    pairs = [
        (resource.RLIMIT_AS, int(limits["memory_mb"]) * mb),
        (resource.RLIMIT_CPU, int(limits["cpu_s"])),
        (resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * mb),
        (resource.RLIMIT_NOFILE, int(limits["nofile"])),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_STACK, 8 * mb),
    ]
    if nproc:
        pairs.append((resource.RLIMIT_NPROC, int(limits["nproc"])))
    for which, value in pairs:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as exc:
            raise ConfineError(f"setrlimit({which}, {value}): {exc}") from exc


def scrub_env() -> None:
    """Nothing of the host's environment (tokens, keys, paths) survives."""
    os.environ.clear()
    os.environ.update(SAFE_ENV)


def drop_caps() -> None:
    """Zero every capability set (a user-namespace child holds full caps in its namespace)."""
    machine = os.uname().machine
    if machine not in SYS_CAPSET:
        raise ConfineError(f"capset syscall number unknown on {machine}")
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(ctypes.c_long(SYS_CAPSET[machine]), header, data), "capset(0)")


def no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def close_fds_above(highest: int) -> None:
    """Close every inherited descriptor above `highest` (e.g. the fork server's control socket)."""
    os.closerange(highest + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
