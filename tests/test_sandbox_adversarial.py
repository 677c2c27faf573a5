"""Hostile code is contained, the host is unchanged, and the runner keeps serving others.

Each attack runs both as a nested program (run_program) and, for the process-level ones, as a
workflow script next to a benign execution. Checks that need a layer this machine lacks skip
and say which; `test_sandbox_modes.py` checks that the missing layer is reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.sandbox.client import ForkServerClient, shared_client
from metaagentx.sandbox.programs import run_program
from metaagentx.sandbox.runner import Runner
from metaagentx.sandbox.settings import SandboxSettings
from sandbox_support import REPO, ScriptedBatcher, descendants, snapshot

SECRET = "METAAGENTX_TEST_FAKE_SECRET"
POOL_REFILL_S = 0.5  # time for the fork server to refill its pool of idle confined children


@pytest.fixture(scope="module")
def layers() -> list[str]:
    return shared_client(SandboxSettings()).layers


def needs(layers: list[str], *names: str) -> None:
    missing = [n for n in names if n not in layers]
    if missing:
        pytest.skip(f"layer(s) not available here: {missing}")


def settled_descendants(client: ForkServerClient, timeout_s: float) -> int:
    """The fork server's descendants once its pool of idle children for these limits is full:
    the steady state that a contained attack must leave behind unchanged."""
    assert run_program("pass", timeout_s=timeout_s).status == "ok"
    time.sleep(POOL_REFILL_S)
    return len(descendants(client._proc.pid))  # type: ignore[union-attr]


def test_no_network(layers):
    needs(layers, "netns")
    code = (
        "import socket\n"
        "for fam, addr in ((socket.AF_INET, ('1.1.1.1', 53)), (socket.AF_INET, ('127.0.0.1', 22)), (socket.AF_INET6, ('::1', 22))):\n"
        "    try:\n"
        "        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(1); s.connect(addr); print('CONNECTED', addr)\n"
        "    except OSError as e:\n"
        "        print('blocked', e.errno)\n"
    )
    result = run_program(code)
    assert "CONNECTED" not in result.stdout
    assert result.stdout.count("blocked") == 3


def test_cannot_read_host_files(layers):
    needs(layers, "fs_hidden")
    targets = [
        "/etc/shadow",
        str(REPO / "pyproject.toml"),
        "/root/.bashrc",
        str(REPO.parent / "shared" / "DESIGN.md"),
        str(REPO / "src" / "metaagentx" / "tasks" / "__init__.py"),
        "../shared/data",
    ]
    code = f"import os\nfor p in {targets!r}:\n    try:\n        open(p).read(); print('READ', p)\n    except OSError:\n        print('denied')\n"
    result = run_program(code)
    assert "READ" not in result.stdout, result.stdout
    assert result.stdout.count("denied") == len(targets)


def test_cannot_write_outside_scratch(tmp_path, layers):
    needs(layers, "fs_readonly")
    before = snapshot(REPO)
    targets = [
        str(REPO / "pwned.txt"),
        str(tmp_path / "pwned.txt"),
        "/etc/pwned",
        "/usr/pwned",
        "/dev/shm/../pwned",
    ]
    code = f"for p in {targets!r}:\n    try:\n        open(p, 'w').write('x'); print('WROTE', p)\n    except OSError:\n        print('denied')\n"
    result = run_program(code)
    assert "WROTE" not in result.stdout, result.stdout
    assert snapshot(REPO) == before
    assert not (tmp_path / "pwned.txt").exists()


def test_environment_secrets_do_not_leak(monkeypatch):
    monkeypatch.setenv(SECRET, "hunter2")
    settings = SandboxSettings(timeout_s=5.0, nproc=32)  # a distinct key: a server started now
    result = run_program(
        "import os\nprint(sorted(os.environ))\ntry:\n    print(open('/proc/self/environ','rb').read())\nexcept OSError:\n    print('no proc')",
        settings=settings,
    )
    assert result.status == "ok", result.stderr
    assert SECRET not in result.stdout and "hunter2" not in result.stdout


def test_fork_bomb_is_contained(layers):
    needs(layers, "nproc")
    client = shared_client(SandboxSettings())
    before = settled_descendants(client, timeout_s=2.0)
    started = time.monotonic()
    result = run_program(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        timeout_s=2.0,
    )
    assert result.status == "timeout"
    assert time.monotonic() - started < 10
    time.sleep(POOL_REFILL_S)
    assert len(descendants(client._proc.pid)) == before  # type: ignore[union-attr]
    assert run_program("print('still serving')").stdout == "still serving\n"


def test_timeout_kills_the_whole_process_group():
    client = shared_client(SandboxSettings())
    before = settled_descendants(client, timeout_s=1.0)
    code = (
        "import os, signal, time\n"
        "if os.fork() == 0:\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    while True: time.sleep(1)\n"
        "while True: pass\n"
    )
    assert run_program(code, timeout_s=1.0).status == "timeout"
    time.sleep(POOL_REFILL_S)
    assert len(descendants(client._proc.pid)) == before  # type: ignore[union-attr]


def test_memory_bomb_and_huge_output_and_loop():
    assert (
        run_program("x = [bytearray(50 * 2**20) for _ in range(1000)]", memory_mb=256).status
        == "error"
    )
    assert run_program("print('y' * 10**8)", max_output_bytes=1 << 16).status == "output_limit"
    assert run_program("while True:\n    pass", timeout_s=1.0).status == "timeout"


def test_signalling_parent_and_everyone_is_contained(layers):
    needs(layers, "pidns")
    code = (
        "import os, signal\n"
        "for target in (os.getppid(), -1, 1):\n"
        "    try:\n"
        "        os.kill(target, signal.SIGKILL)\n"
        "    except OSError as e:\n"
        "        print('refused', e.errno)\n"
    )
    run_program(code)
    client = shared_client(SandboxSettings())
    assert client._proc is not None and client._proc.poll() is None  # the fork server lives
    assert run_program("print(1)").stdout == "1\n"
    assert os.getpid() > 0  # and so do we (a kill(-1) escaping would have ended this test run)


def test_ctypes_syscalls_are_refused(layers):
    needs(layers, "seccomp")
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('unshare', libc.unshare(0x10000000 | 0x40000000))\n"
        "print('mount', libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None))\n"
        "print('ptrace', libc.ptrace(16, 1, 0, 0))\n"  # PTRACE_ATTACH
        "print('setuid', libc.setuid(0))\n"
        "print('umount', libc.umount2(b'/proc', 2))\n"
        "print('keyctl', libc.syscall(250, 0, 0, 0, 0))\n"
    )
    result = run_program(code)
    assert result.status == "ok", result.stderr
    values = dict(line.split() for line in result.stdout.splitlines())
    assert all(v == "-1" for v in values.values()), values


def test_host_proc_is_hidden(layers):
    needs(layers, "mountns")
    code = (
        "import os\n"
        "print(len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
        "for p in ('/proc/1/environ', '/proc/1/cmdline', '/proc/self/environ'):\n"
        "    try:\n        open(p, 'rb').read(); print('READ', p)\n    except OSError:\n        print('denied')\n"
    )
    result = run_program(code)
    assert result.stdout.splitlines()[0] == "0"
    assert "READ" not in result.stdout


def test_runner_keeps_serving_while_hostile_scripts_run(tmp_path, layers):
    needs(layers, "pidns", "nproc")
    before = snapshot(REPO)
    hostile = {
        "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "memory_bomb": "x = bytearray(8 * 1024**3)",
        "loop": "while True:\n    pass",
        "flood": "import os\nwhile True:\n    os.write(1, b'z' * 65536)",
        "kill_host": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\nwhile True:\n    pass",
        "bad_protocol": "import os\nos.write(3, b'this is not json\\n')\nwhile True:\n    pass",
        "giant_message": "import os\nos.write(3, b'{' + b'x' * (6 << 20))\nwhile True:\n    pass",
        "write_host": f"open({str(REPO / 'pwned.txt')!r}, 'w').write('x')",
        "sigkill_self": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    }
    benign = "from workflow import AgentNode\nAgentNode('solver', 'Solve it.', max_turns=1).run(question)"
    settings = SandboxSettings(timeout_s=3.0)

    async def go():
        runner = Runner(ScriptedBatcher(), settings)
        try:
            jobs = [(src, {"question": name}) for name, src in hostile.items()] + [
                (benign, {"question": "2+2"})
            ] * 3
            return await runner.run_many(jobs)
        finally:
            runner.close()

    started = time.monotonic()
    results = asyncio.run(go())
    assert time.monotonic() - started < 30
    by_name = dict(zip(hostile, results[: len(hostile)], strict=True))
    for name, result in by_name.items():
        assert result.status != "ok", (name, result.error)
        assert result.final_output is None
    assert by_name["loop"].status == "timeout"
    assert by_name["flood"].status == "limit_exceeded"
    assert by_name["bad_protocol"].status == "limit_exceeded"
    assert by_name["giant_message"].status == "limit_exceeded"
    assert by_name["memory_bomb"].status in ("runtime_error", "design_error")
    assert by_name["write_host"].status in ("runtime_error", "design_error")
    for result in results[len(hostile) :]:
        assert result.status == "ok" and result.final_output == "echo:2+2"
    assert snapshot(REPO) == before
    assert signal.getsignal(signal.SIGINT) is not None  # this process is alive and well


def test_scripts_in_the_authors_dialect_are_contained_beside_benign_ones():
    """Their dialect gives scripts `os` and `sys` without an import and a `subprocess` mapped
    onto the python tool: neither opens anything. A forged final message on the pipe earns no
    answer, a fork bomb through the shim stays in the nested child, and benign executions of
    both dialects beside them finish unchanged."""
    theirs = "from workflow import Message, MessageType\n"
    forged = json.dumps({"type": "final", "status": "ok", "final_output": "\\boxed{4}"})
    hostile = {
        "forge_final": theirs + f"os.write(3, {forged!r}.encode() + b'\\n')\nos._exit(0)",
        "shim_fork_bomb": theirs
        + "import subprocess\n"
        + "subprocess.run(['python', '-c', 'import os\\nwhile True:\\n    os.fork()'], timeout=2)",
        "shim_shell": theirs + "import subprocess\nsubprocess.run('cat /etc/passwd', shell=True)",
        "sys_modules": theirs + "sys.modules['metaagentx.mas.execution'].Execution = None",
    }
    benign_theirs = (
        theirs + "from workflow import AgentNode, Workflow\nworkflow = Workflow('w')\n"
        "workflow.add_node(AgentNode('solver', 'Solve it.', max_turns=0))\n"
        "workflow.run(question)\n"
    )
    benign_ours = "from workflow import AgentNode\nAgentNode('solver', 'Solve it.', max_turns=1).run(question)"
    settings = SandboxSettings(timeout_s=10.0)

    async def go():
        environment = GradingEnvironment(settings)
        runner = environment.runner(ScriptedBatcher())
        tools = {"python": environment.python_tool}
        try:
            jobs = [(src, {"question": name}) for name, src in hostile.items()]
            jobs += [(benign_theirs, {"question": "2+2"}), (benign_ours, {"question": "2+2"})] * 2
            return await asyncio.gather(*(runner.run(s, t, tools=tools) for s, t in jobs))
        finally:
            runner.close()
            environment.close()

    results = asyncio.run(go())
    by_name = dict(zip(hostile, results[: len(hostile)], strict=True))
    for name, result in by_name.items():
        assert result.final_output is None, (name, result.status, result.final_output)
    assert by_name["forge_final"].status == "no_agent_answer"
    assert "FileNotFoundError" in (by_name["shim_shell"].error or "")
    for result in results[len(hostile) :]:
        assert result.status == "ok" and result.final_output == "echo:2+2", result.error
