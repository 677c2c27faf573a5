"""The fork server outlives the thread that started it, and dies with the host process, with
bubblewrap around it and without (the project's own hidden root)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from metaagentx.sandbox.client import ForkServerClient
from metaagentx.sandbox.programs import run_program
from metaagentx.sandbox.settings import SandboxSettings

MODES = {"bwrap": SandboxSettings(), "no_bwrap": SandboxSettings(bwrap_path="/nonexistent/bwrap")}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_server_outlives_its_starting_thread(mode: str) -> None:
    client = ForkServerClient(MODES[mode])
    starter = threading.Thread(target=client.start)
    starter.start()
    starter.join()  # the thread that spawned the server is gone
    try:
        server = client._proc.pid  # type: ignore[union-attr]
        time.sleep(0.5)
        assert _alive(server), "the fork server died with the thread that started it"
        result = run_program("print(6 * 7)", client=client, settings=client.settings)
        assert result.status == "ok" and result.stdout.strip() == "42", result.stderr
        assert client._proc is not None and client._proc.pid == server  # not restarted
    finally:
        client.close()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_server_dies_with_the_host(mode: str) -> None:
    bwrap = "None" if mode == "bwrap" else "'/nonexistent/bwrap'"
    host = textwrap.dedent(f"""
        import sys, time
        from metaagentx.sandbox.client import ForkServerClient
        from metaagentx.sandbox.settings import SandboxSettings
        settings = SandboxSettings() if {bwrap} is None else SandboxSettings(bwrap_path={bwrap})
        client = ForkServerClient(settings)
        client.start()
        print(client._proc.pid, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", host], stdout=subprocess.PIPE, text=True)
    try:
        server = int(proc.stdout.readline())
        assert _alive(server)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(server), "the fork server outlived its host"
    finally:
        if proc.poll() is None:
            proc.kill()
