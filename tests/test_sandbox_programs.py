"""run_program: the nested child that graders and the python tool use."""

from __future__ import annotations

import os

from metaagentx.sandbox.programs import run_program


def test_runs_with_stdin_and_reports_layers():
    result = run_program("import sys\nprint(sys.stdin.read().upper(), end='')", stdin="abc\n")
    assert result.status == "ok", result.stderr
    assert result.stdout == "ABC\n"
    assert result.returncode == 0
    assert {"rlimits", "process_group", "env_scrubbed"} <= set(result.isolation)


def test_never_runs_in_the_callers_process():
    result = run_program("import os\nprint(os.getpid())")
    assert result.status == "ok"
    assert int(result.stdout) != os.getpid()


def test_error_and_exit_codes():
    crash = run_program("raise ValueError('boom')")
    assert crash.status == "error" and crash.returncode == 1 and "ValueError: boom" in crash.stderr
    exited = run_program("import sys\nsys.exit(3)")
    assert exited.status == "error" and exited.returncode == 3


def test_timeout_kills():
    result = run_program("while True:\n    pass", timeout_s=1.0)
    assert result.status == "timeout"
    assert result.duration_s < 5


def test_memory_limit():
    result = run_program("x = bytearray(2 * 1024**3)\nprint('allocated')", memory_mb=256)
    assert result.status == "error" and "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


def test_output_cap():
    result = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", max_output_bytes=10_000)
    assert result.status == "output_limit"
    assert len(result.stdout) <= 10_000


def test_scratch_is_writable_and_private():
    result = run_program("import os\nopen('f.txt', 'w').write('hi')\nprint(open('f.txt').read(), os.getcwd())")
    assert result.status == "ok", result.stderr
    assert result.stdout.split()[0] == "hi"
    again = run_program("import os\nprint(os.listdir('.'))")
    assert again.stdout.strip() == "[]"  # nothing left from the previous program
