"""Executions cannot see the host's files, with bubblewrap and without it (the fork server's own
pivot_root'ed root), and grading refuses a sandbox that cannot hide them.

Every check runs twice: with bubblewrap (layer fs_hidden) and with it made unavailable (layer
fs_pivot_root). Where this user may not create user namespaces (and is not root), the hidden root
cannot exist and the tests skip, naming the kernel's reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from metaagentx.sandbox import launch
from metaagentx.sandbox.client import ForkServerClient
from metaagentx.sandbox.layers import (
    BASE_LAYERS,
    FS_BWRAP,
    FS_PIVOT_ROOT,
    HiddenFilesystemMissing,
    SandboxUnavailable,
    require_hidden_filesystem,
)
from metaagentx.sandbox.programs import run_program
from metaagentx.sandbox.runner import Runner
from metaagentx.sandbox.settings import SandboxSettings
from sandbox_support import REPO, ScriptedBatcher, path_probe, userns_refusal

NO_BWRAP = "/nonexistent/bwrap"
SECRET = "REFERENCE-ANSWER-" + uuid.uuid4().hex
MECHANISMS = {"bwrap": FS_BWRAP, "no_bwrap": FS_PIVOT_ROOT}


@pytest.fixture(scope="module", params=sorted(MECHANISMS))
def client(request: pytest.FixtureRequest) -> Iterator[ForkServerClient]:
    """A started client, in the hidden root of the mechanism named by the parameter."""
    bwrap = request.param == "bwrap"
    settings = SandboxSettings() if bwrap else SandboxSettings(bwrap_path=NO_BWRAP)
    if bwrap and not os.access(settings.bwrap_path, os.X_OK):
        pytest.skip(f"bubblewrap is not installed at {settings.bwrap_path}")
    started = ForkServerClient(settings)
    started.start()
    layer = MECHANISMS[request.param]
    if layer not in started.layers and os.geteuid() != 0:
        refusal = userns_refusal()
        if refusal is not None:
            started.close()
            pytest.skip(f"the kernel refuses uid {os.getuid()} a user namespace: {refusal}")
    assert layer in started.layers, started.probe_errors
    yield started
    started.close()


@pytest.fixture
def host_data(tmp_path: Path) -> Iterator[list[Path]]:
    """Reference data on the host, where a careless run would leave it: the test's tmp dir and
    the home directory."""
    in_tmp = tmp_path / "answers.jsonl"
    in_tmp.write_text(json.dumps({"answer": SECRET}) + "\n")
    in_tmp.chmod(0o644)
    in_home = Path.home() / f".mx-test-answers-{uuid.uuid4().hex}.jsonl"
    in_home.write_text(SECRET + "\n")
    in_home.chmod(0o644)
    try:
        yield [in_tmp, in_home]
    finally:
        in_home.unlink()


def visible_names(settings: SandboxSettings, directory: str) -> set[str]:
    """Names `directory` may hold in the hidden root: the next step to what the plan mounts."""
    top = PurePosixPath(directory)
    return {
        PurePosixPath(dest).relative_to(top).parts[0]
        for _, _, dest in launch.mount_plan(settings)
        if top in PurePosixPath(dest).parents
    }


def test_host_files_are_invisible(client: ForkServerClient, host_data: list[Path]) -> None:
    files = [
        str(REPO / "pyproject.toml"),
        str(REPO / "src" / "metaagentx" / "tasks" / "__init__.py"),
        *(str(p) for p in host_data),
        "/proc/1/environ",
    ]
    # directories may exist only as the way to something the plan mounts (an interpreter under
    # /root, say), and then show nothing else
    directories = ["/", "/work", "/root", str(Path.home()), str(host_data[0].parent), str(REPO),
                   str(REPO / "src" / "metaagentx" / "tasks")]  # fmt: skip
    result = run_program(path_probe(files + directories), settings=client.settings, client=client)
    assert result.status == "ok", result.stderr
    assert SECRET not in result.stdout
    seen = json.loads(result.stdout)
    assert all(seen[p][0] == "error" for p in files), {p: seen[p] for p in files}
    for directory in directories:
        if seen[directory][0] != "error":
            names = set(seen[directory][1])
            assert names <= visible_names(client.settings, directory), (directory, names)


def test_the_child_still_has_the_stdlib_and_the_workflow_library(client: ForkServerClient) -> None:
    code = (
        "import json, hashlib, fractions\n"
        "from metaagentx.mas import AgentNode\n"
        "print(hashlib.sha256(b'x').hexdigest()[:8], fractions.Fraction(1, 3) * 3)\n"
        "print(AgentNode.__name__)\n"
    )
    result = run_program(code, settings=client.settings, client=client)
    assert result.status == "ok", result.stderr
    assert result.stdout.split() == ["2d711642", "1", "AgentNode"]


def test_a_workflow_script_cannot_read_the_reference_data(
    client: ForkServerClient, host_data: list[Path]
) -> None:
    script = (
        "from workflow import AgentNode\n"
        "import hashlib\n"
        "seen = []\n"
        f"for p in {[str(p) for p in host_data]!r}:\n"
        "    try:\n"
        "        seen.append(open(p).read())\n"
        "    except OSError:\n"
        "        seen.append('hidden')\n"
        "AgentNode('solver', 'Answer.', max_turns=1).run(' '.join(seen))\n"
    )
    runner = Runner(ScriptedBatcher(), client.settings, client=client)
    try:
        result = asyncio.run(runner.run(script, {"question": "q", "domain": "math"}))
    finally:
        runner.close()
    assert result.status == "ok", result.error
    assert SECRET not in (result.final_output or "")
    assert (result.final_output or "").count("hidden") == len(host_data)
    assert MECHANISMS["bwrap" if FS_BWRAP in result.isolation else "no_bwrap"] in result.isolation


def test_grading_accepts_a_hidden_filesystem(client: ForkServerClient) -> None:
    require_hidden_filesystem(client.layers, client.settings)
    client.require_hidden_filesystem()


def test_grading_refuses_process_isolation_with_a_one_line_fix() -> None:
    client = ForkServerClient(SandboxSettings(isolation="process"))
    try:
        with pytest.raises(HiddenFilesystemMissing) as info:
            client.require_hidden_filesystem()
    finally:
        client.close()
    message = str(info.value)
    assert isinstance(info.value, SandboxUnavailable) and "\n" not in message
    for needed in ("isolation=process", "apt-get install bubblewrap", "unprivileged_userns_clone",
                   "isolation=unsafe"):  # fmt: skip
        assert needed in message, message


def test_grading_refuses_auto_when_no_mechanism_worked_and_says_why() -> None:
    errors = {FS_BWRAP: "bubblewrap not usable at /x", FS_PIVOT_ROOT: "unshare(user|mount):\nEPERM"}
    with pytest.raises(HiddenFilesystemMissing) as info:
        require_hidden_filesystem(list(BASE_LAYERS), SandboxSettings(isolation="auto"), errors)
    message = str(info.value)
    assert "\n" not in message
    assert "bubblewrap not usable at /x" in message and "unshare(user|mount): EPERM" in message


def test_unsafe_is_the_one_named_way_to_grade_on_a_visible_filesystem() -> None:
    settings = SandboxSettings(isolation="unsafe")
    client = ForkServerClient(settings)
    try:
        client.start()
        assert not {FS_BWRAP, FS_PIVOT_ROOT} & set(client.layers)
        client.require_hidden_filesystem()  # accepted: the name says what it gives up
        # a host file the hidden roots leave out (the checkout may sit under /tmp, which every
        # child covers with its own scratch tmpfs, so it cannot serve here)
        result = run_program(path_probe(["/etc/passwd"]), settings=settings, client=client)
    finally:
        client.close()
    assert json.loads(result.stdout)["/etc/passwd"][0] == "read"
