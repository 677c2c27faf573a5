"""isolation: strict refuses without a layer, auto reports what it lacks, process is minimal."""

from __future__ import annotations

import pytest

from metaagentx.sandbox.client import ForkServerClient
from metaagentx.sandbox.layers import ALL_LAYERS, BASE_LAYERS, SandboxUnavailable
from metaagentx.sandbox.programs import run_program
from metaagentx.sandbox.settings import SandboxSettings

NO_BWRAP = "/nonexistent/bwrap"


def _run(settings: SandboxSettings):
    client = ForkServerClient(settings)
    try:
        return run_program("print('hi')", settings=settings, client=client)
    finally:
        client.close()


def test_strict_refuses_without_bubblewrap():
    with pytest.raises(SandboxUnavailable) as info:
        _run(SandboxSettings(isolation="strict", bwrap_path=NO_BWRAP))
    assert "fs_hidden" in info.value.missing
    assert "fs_hidden" in str(info.value) and "strict" in str(info.value)


def test_strict_refuses_without_seccomp():
    with pytest.raises(SandboxUnavailable) as info:
        _run(SandboxSettings(isolation="strict", seccomp=False))
    assert "seccomp" in info.value.missing


def test_auto_runs_without_bubblewrap_and_says_so():
    result = _run(SandboxSettings(isolation="auto", bwrap_path=NO_BWRAP))
    assert result.status == "ok" and result.stdout == "hi\n"
    assert "fs_hidden" not in result.isolation
    assert set(BASE_LAYERS) <= set(result.isolation)


def test_process_mode_uses_only_the_basic_layers():
    result = _run(SandboxSettings(isolation="process"))
    assert result.status == "ok", result.stderr
    assert set(result.isolation) <= set(BASE_LAYERS) | {"unprivileged_uid", "nproc"}
    assert "netns" not in result.isolation and "seccomp" not in result.isolation


def test_strict_runs_when_every_layer_exists():
    client = ForkServerClient(SandboxSettings(isolation="auto"))
    client.start()
    have_all = set(client.layers) == set(ALL_LAYERS)
    client.close()
    if not have_all:
        pytest.skip("this machine lacks a layer; strict is expected to refuse here")
    result = _run(SandboxSettings(isolation="strict"))
    assert result.status == "ok" and set(result.isolation) == set(ALL_LAYERS)
