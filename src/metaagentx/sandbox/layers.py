"""Names of the isolation layers, which ones each isolation mode asks for, and the grading gate.

Every result lists the layers that were active, so a weaker sandbox is always visible. The
hidden filesystem (only the interpreter, system libraries and the workflow library visible) comes
from bubblewrap (`fs_hidden`) or, without it, from the fork server's own pivot_root'ed minimal
root (`fs_pivot_root`, see `rootfs`); grading refuses to run with neither
(`require_hidden_filesystem`). Standard library only: the fork server imports this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metaagentx.sandbox.settings import SandboxSettings

# Always applied (they need nothing from the kernel but rlimits, setsid and prctl).
BASE_LAYERS: tuple[str, ...] = (
    "rlimits",  # address space, CPU time, file size, open files, no core dumps
    "process_group",  # own session; the whole group is SIGKILLed on timeout
    "timeout_kill",
    "env_scrubbed",
    "output_cap",
    "no_new_privs",
    "caps_dropped",
)

FS_BWRAP = "fs_hidden"
FS_PIVOT_ROOT = "fs_pivot_root"

# Applied when the kernel / the machine allows them.
OPTIONAL_LAYERS: tuple[str, ...] = (
    "unprivileged_uid",  # the child's real uid is not root (dropped to nobody when the host is root)
    "nproc",  # a process-count limit that binds (per-execution user namespace or non-root uid)
    "userns",
    "pidns",  # own pid namespace: kill(-1) and getppid() reach nothing outside
    "netns",  # no network, not even the host's loopback
    "ipcns",
    "mountns",  # private tmpfs /tmp and /dev/shm; /proc hidden
    "fs_readonly",  # every other mount read-only
    FS_BWRAP,  # bubblewrap: only the interpreter, system libraries and the workflow library
    "seccomp",
)

# The same files hidden without bubblewrap: the fork server pivots into its own minimal root.
# Not in ALL_LAYERS: strict wants bubblewrap, which also gives the server its own pid and
# network namespaces.
HIDDEN_FS_LAYERS: tuple[str, ...] = (FS_BWRAP, FS_PIVOT_ROOT)

ALL_LAYERS: tuple[str, ...] = BASE_LAYERS + OPTIONAL_LAYERS
NAMESPACE_LAYERS: tuple[str, ...] = ("userns", "pidns", "netns", "ipcns", "mountns", "fs_readonly")

USERNS_HINT = "e.g. sysctl kernel.unprivileged_userns_clone=1"


class SandboxUnavailable(RuntimeError):
    """Strict isolation was asked for and a layer is missing here; the message names it."""

    def __init__(self, missing: list[str], detail: str = "") -> None:
        self.missing = missing
        super().__init__(self.describe(missing, detail))

    @staticmethod
    def describe(missing: list[str], detail: str) -> str:
        extra = f" ({detail})" if detail else ""
        return (
            "sandbox isolation 'strict' refuses to run: missing layer(s) "
            + ", ".join(missing)
            + extra
            + "; install them (.ci/sandbox-deps.sh) or set sandbox.isolation=auto"
        )


class HiddenFilesystemMissing(SandboxUnavailable):
    """Grading was asked for while executions could read the host's files (datasets, answers)."""

    @staticmethod
    def describe(missing: list[str], detail: str) -> str:
        return (
            f"the sandbox has no hidden filesystem ({detail}), so executions could read "
            "datasets, reference answers and hidden tests: refusing to grade; install bubblewrap "
            "(apt-get install bubblewrap) or enable unprivileged user namespaces "
            f"({USERNS_HINT}) with sandbox.isolation=auto, or set sandbox.isolation=unsafe to "
            "run anyway (never for training/eval)"
        )


def require_hidden_filesystem(
    active_layers: Sequence[str],
    settings: SandboxSettings,
    errors: Mapping[str, str] | None = None,
) -> None:
    """Raise HiddenFilesystemMissing unless executions cannot see the host's files.

    Passes when a hidden-filesystem layer is active, or when isolation is `unsafe`: the one mode
    whose name says that executions can read reference data. `process` (no mount namespace) and
    an `auto` that found neither bubblewrap nor user namespaces are refused. `errors` (the
    client's probe errors) say why each mechanism failed."""
    if settings.isolation == "unsafe" or any(x in active_layers for x in HIDDEN_FS_LAYERS):
        return
    if settings.isolation == "process":
        detail = "sandbox.isolation=process has no mount namespace"
    else:
        reasons = [f"{x}: {(errors or {}).get(x, 'not active')}" for x in HIDDEN_FS_LAYERS]
        detail = " ".join("; ".join(reasons).split())  # one line, whatever the errors held
    raise HiddenFilesystemMissing(list(HIDDEN_FS_LAYERS), detail)


def requested_layers(
    mode: str, *, is_root: bool, hidden_fs: str | None, seccomp: bool
) -> list[str]:
    """The layers a mode tries to apply, before probing what actually works.

    `hidden_fs` names the mechanism the server is launched in (a HIDDEN_FS_LAYERS name), if any.
    """
    if mode == "process":
        return [*BASE_LAYERS, *(("unprivileged_uid", "nproc") if is_root else ())]
    wanted = [*BASE_LAYERS, "unprivileged_uid", "nproc", *NAMESPACE_LAYERS]
    if hidden_fs:
        wanted.append(hidden_fs)
    if seccomp:
        wanted.append("seccomp")
    return wanted


def missing_for_strict(active: list[str]) -> list[str]:
    """Layers strict mode needs that are not active."""
    return [layer for layer in ALL_LAYERS if layer not in active]
