"""The seccomp filter every sandbox child loads last, built once in the fork server.

Default allow with a deny list: the point is to shut the kernel doors that namespaces and rlimits
do not (ptrace, mount, new namespaces, keyrings, bpf, io_uring, perf, modules) and every socket
family but AF_UNIX. Uses pyseccomp (ctypes over libseccomp) or Debian's `seccomp` module.
Other architectures' syscalls (int 0x80) hit libseccomp's default bad-arch action: kill.
"""

from __future__ import annotations

import errno
import functools
import importlib
import socket
from types import ModuleType
from typing import Any

DENIED_SYSCALLS: tuple[str, ...] = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "unshare",
    "setns",
    "setsid",
    "setpgid",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "vhangup",
    "lookup_dcookie",
    "personality",
)

_NS_CLONE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)


@functools.cache
def _module() -> ModuleType | None:
    for name in ("pyseccomp", "seccomp"):
        try:
            return importlib.import_module(name)
        except (ImportError, OSError):
            continue
    return None


def available() -> bool:
    """Whether a libseccomp binding can be loaded here."""
    return _module() is not None


def build_filter() -> Any:
    """A loadable filter object (call `.load()` in the child), or an error if unavailable."""
    sc = _module()
    if sc is None:
        raise RuntimeError("no libseccomp binding (pip install pyseccomp; apt-get install libseccomp2)")
    flt = sc.SyscallFilter(defaction=sc.ALLOW)
    eperm = sc.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        try:
            flt.add_rule(eperm, name)
        except (RuntimeError, ValueError, OSError):
            continue  # a syscall this libseccomp does not know does not exist on this arch
    flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
    flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
    for flag in _NS_CLONE_FLAGS:  # plain fork/threads stay allowed; new namespaces do not
        flt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc falls back to clone(2), filtered above
    return flt
