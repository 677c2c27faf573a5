"""Dataset adapters: tiny offline fixtures for every format, and the shared data files."""

from __future__ import annotations

import base64
import gzip
import json
import pickle
import zlib
from pathlib import Path

import pytest

from metaagentx.tasks.adapters import repair_escape_damage
from metaagentx.tasks.base import Task
from metaagentx.tasks.datasets import (
    adapt_rows,
    check_tasks,
    data_dir,
    load_tasks,
    load_tasks_report,
    show_tasks,
)
from metaagentx.tasks.lcb import decode_test_cases, encode_test_cases

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"


def _fixture(name: str, **kwargs: object) -> list[Task]:
    return load_tasks(str(FIXTURES / name), **kwargs)  # type: ignore[arg-type]


def test_aime_json_keeps_zero_padded_answers_gradable() -> None:
    tasks = _fixture("aime.json")
    assert [t.id for t in tasks] == ["aime/2024-1-1", "aime/2024-2-3"]
    assert tasks[0].answer == "025" and tasks[0].grade("\\boxed{25}").correct
    assert not tasks[1].grade("\\boxed{999}").correct


def test_aime2025_jsonl_repairs_escape_damage() -> None:
    tasks = _fixture("aime25.jsonl")
    assert "\\triangle ABC" in tasks[0].prompt and "\\frac{1}{2}" in tasks[0].prompt
    assert "\t" not in tasks[0].prompt and "\x0c" not in tasks[0].prompt
    assert tasks[0].answer == "50" and tasks[1].answer == "77"
    assert repair_escape_damage("a\tb \trho") == "a\tb \trho"  # real tabs are left alone


def test_math_skips_empty_answers_or_raises_in_strict_mode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    report = load_tasks_report(str(FIXTURES / "math.json"))
    assert (report.rows, len(report.tasks), len(report.skipped)) == (3, 1, 2)
    assert [s["id"] for s in report.skipped] == ["test/algebra/2.json", "test/algebra/3.json"]
    assert "test/algebra/2.json" in caplog.text
    with pytest.raises(ValueError, match=r"row 1 \(id test/algebra/2.json\).*empty answer"):
        load_tasks(str(FIXTURES / "math.json"), strict=True)


def test_olympiadbench_multiple_answers_units_tolerance() -> None:
    multi, unit, tol = _fixture("olympiadbench.json")
    assert multi.metadata["multiple_answers"] and multi.grade("\\boxed{2, -2}").correct
    assert not multi.grade("\\boxed{2}").correct
    assert unit.metadata["unit"] == "km" and unit.grade("\\boxed{\\frac{41}{12} km}").correct
    assert tol.metadata["tolerance"] == 0.1 and tol.grade("\\boxed{4.25}").correct
    assert not tol.grade("\\boxed{4.5}").correct


def test_gsm8k_verl_parquet_uses_plain_question() -> None:
    (task,) = _fixture("gsm8k.parquet")
    assert task.prompt.startswith("Natalia") and "####" not in task.prompt
    assert task.answer == "72"


def test_apps_verl_parquet() -> None:
    report = load_tasks_report(str(FIXTURES / "apps.parquet"))
    call, stdio = report.tasks
    assert len(report.skipped) == 1 and "inputs" in report.skipped[0]["reason"]
    assert "Write a Python program" not in call.prompt and "`add`" in call.prompt
    assert call.metadata["unwrap_single_output"] and call.public_tests[0].fn_name == "add"
    assert call.public_tests[0].input == [1, 2] and len(call.hidden_tests) == 2
    assert stdio.public_tests[0].kind == "stdio" and stdio.public_tests[0].input == ["3", "1 1 1"]


def test_apps_raw_json_stdio_and_call_based() -> None:
    report = load_tasks_report(str(FIXTURES / "apps_raw.json"))
    stdio, call = report.tasks
    assert [row["id"] for row in report.skipped] == ["4003"]  # empty input_output: counted
    assert stdio.id == "apps_raw/4001" and stdio.difficulty == "introductory"
    assert stdio.public_tests[0].kind == "stdio" and len(stdio.hidden_tests) == 2
    assert call.public_tests[0].fn_name == "largest" and call.metadata["unwrap_single_output"]
    assert call.public_view()["starter_code"].startswith("def largest")
    assert stdio.grade("```python\na, b = map(int, input().split())\nprint(a + b)\n```").correct
    assert call.grade("```python\ndef largest(xs):\n    return max(xs)\n```").correct
    assert not call.grade("```python\ndef largest(xs):\n    return xs[0]\n```").correct


def test_codecontests_json() -> None:
    (task,) = _fixture("codecontests.json")
    assert task.metadata["time_limit_s"] == 2.0
    assert len(task.public_tests) == 1 and len(task.hidden_tests) == 1


def test_leetcode_functional_split_into_public_and_hidden() -> None:
    add, tree = _fixture("leetcode.json")
    assert "assert candidate(a = 1, b = 2) == 3" in add.public_tests[0].input
    assert "a = -1" not in add.public_tests[0].input
    assert "a = -1" in add.hidden_tests[0].input
    assert add.metadata["starter_code"].startswith("class Solution")
    assert tree.metadata["reference_solution"].startswith("class Solution")


def test_livecodebench_public_and_compressed_private_tests() -> None:
    stdin_task, functional_task = _fixture("livecodebench.jsonl")
    assert [t.input for t in stdin_task.hidden_tests] == ["5\n", "-2\n"]
    assert stdin_task.public_tests[0].expected == "6\n"
    call = functional_task.public_tests[0]
    assert (call.kind, call.fn_name, call.input, call.expected) == ("call", "larger", [1, [2]], 2)
    assert "class Solution" in functional_task.prompt


def test_lcb_decoding_refuses_anything_but_a_string() -> None:
    cases = [{"input": "1", "output": "2", "testtype": "stdin"}]
    assert decode_test_cases(encode_test_cases(cases)) == cases
    evil = base64.b64encode(zlib.compress(pickle.dumps(print))).decode()
    with pytest.raises(ValueError, match="not allowed"):
        decode_test_cases(evil)
    not_a_string = base64.b64encode(zlib.compress(pickle.dumps([1, 2]))).decode()
    with pytest.raises(ValueError):
        decode_test_cases(not_a_string)


@pytest.mark.parametrize("name", ["aime.json", "humaneval.jsonl"])
def test_gzipped_json_and_jsonl_read_like_plain_ones(name: str, tmp_path: Path) -> None:
    packed = tmp_path / f"{name}.gz"
    packed.write_bytes(gzip.compress((FIXTURES / name).read_bytes()))
    plain, gzipped = _fixture(name), load_tasks(str(packed))
    assert [t.to_dict() for t in gzipped] == [t.to_dict() for t in plain]


def test_humaneval_jsonl() -> None:
    (task,) = _fixture("humaneval.jsonl")
    assert task.id == "HumanEval/0" and "def total" in task.prompt
    assert "check(total)" in task.hidden_tests[0].input
    assert task.public_tests and "candidate([]) == 0" not in task.public_tests[0].input


def test_task_dict_jsonl_round_trip(tmp_path: Path) -> None:
    tasks = _fixture("leetcode.json") + _fixture("aime.json")
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks))
    assert load_tasks(str(path)) == tasks


def test_unknown_rows_are_counted_not_fatal() -> None:
    report = adapt_rows([{"problem": "p", "answer": "1"}, {"nothing": 1}, "text"], "mixed")
    assert len(report.tasks) == 1 and len(report.skipped) == 2


def test_show_and_check_for_the_cli() -> None:
    shown = show_tasks(str(FIXTURES / "apps.parquet"), limit=1)
    assert len(shown) == 1 and shown[0]["domain"] == "code"
    report = check_tasks(str(FIXTURES / "math.json"))
    assert (report["rows"], report["tasks"], report["skipped"]) == (3, 1, 2)
    assert report["malformed"][0]["reason"]


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(FileNotFoundError, match=r"^does/not/exist.json: no such file"):
        load_tasks("does/not/exist.json")


# --- the shared data files (skipped when the folder is absent) --------------------------------

EXPECTED = [
    ("aime2024", None, 30, 30),
    ("aime2025", None, 30, 30),
    ("aime_train", None, 975, 975),
    ("olympiadbench", None, 675, 675),
    ("math500", None, 500, 500),
    ("math_train", None, 7474, 7470),  # 2 empty + 2 null answers
    ("gsm8k_train", None, 7473, 7473),
    ("apps", "test", 449, 449),
    ("apps", "train", 2176, 2176),
    ("codecontests", None, 165, 165),
    ("leetcode", "test", 200, 200),
    ("leetcode", "train", 1889, 1889),
]


@pytest.fixture(scope="module")
def shared() -> Path:
    root = data_dir()
    if root is None or not (root / "aime2024").is_dir():
        pytest.skip("shared data folder not found (set METAAGENTX_DATA_DIR)")
    return root


@pytest.mark.parametrize(("name", "split", "rows", "tasks"), EXPECTED)
def test_shared_data_row_counts(
    shared: Path, name: str, split: str | None, rows: int, tasks: int
) -> None:
    report = load_tasks_report(name, split)
    assert (report.rows, len(report.tasks)) == (rows, tasks), report.skipped[:5]


def test_shared_aime2025_is_repaired(shared: Path) -> None:
    tasks = load_tasks("aime2025")
    assert not any("\x0c" in t.prompt or "\triangle" in t.prompt for t in tasks)
    assert sum("\\frac" in t.prompt for t in tasks) >= 2
