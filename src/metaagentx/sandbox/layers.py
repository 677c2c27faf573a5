"""Names of the isolation layers, and which ones each isolation mode asks for.

Every result lists the layers that were active, so a weaker sandbox is always visible. Standard
library only: the fork server imports this.
"""

from __future__ import annotations

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
    "fs_hidden",  # bubblewrap: only the interpreter, system libraries and the workflow library
    "seccomp",
)

ALL_LAYERS: tuple[str, ...] = BASE_LAYERS + OPTIONAL_LAYERS
NAMESPACE_LAYERS: tuple[str, ...] = ("userns", "pidns", "netns", "ipcns", "mountns", "fs_readonly")


class SandboxUnavailable(RuntimeError):
    """Strict isolation was asked for and a layer is missing here; the message names it."""

    def __init__(self, missing: list[str], detail: str = "") -> None:
        self.missing = missing
        extra = f" ({detail})" if detail else ""
        super().__init__(
            "sandbox isolation 'strict' refuses to run: missing layer(s) "
            + ", ".join(missing)
            + extra
            + "; install them (.ci/sandbox-deps.sh) or set sandbox.isolation=auto"
        )


def requested_layers(mode: str, *, is_root: bool, bwrap: bool, seccomp: bool) -> list[str]:
    """The layers a mode tries to apply, before probing what actually works."""
    if mode == "process":
        return [*BASE_LAYERS, *(("unprivileged_uid", "nproc") if is_root else ())]
    wanted = [*BASE_LAYERS, "unprivileged_uid", "nproc", *NAMESPACE_LAYERS]
    if bwrap:
        wanted.append("fs_hidden")
    if seccomp:
        wanted.append("seccomp")
    return wanted


def missing_for_strict(active: list[str]) -> list[str]:
    """Layers strict mode needs that are not active."""
    return [layer for layer in ALL_LAYERS if layer not in active]
