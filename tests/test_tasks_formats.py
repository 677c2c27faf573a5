"""Rows in the formats researchers have: broken lines skipped and named, generic math rows,
field mapping and forced formats, whole-file failures as one clear error."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from metaagentx.errors import UserError
from metaagentx.tasks.datasets import (
    check_tasks,
    data_dir,
    load_tasks,
    load_tasks_report,
    show_tasks,
)
from metaagentx.tasks.errors import DatasetError
from metaagentx.tasks.files import read_rows

GSM8K_ROW = {
    "question": "Natalia sold 48 clips and then half as many. How many in all?",
    "answer": "She sold 48/2 = 24 more.\n48 + 24 = 72\n#### 72",
}
MATH_ROW = {
    "problem": "Compute $\\frac{2}{4}$.",
    "level": "Level 2",
    "type": "Prealgebra",
    "solution": "We have $\\frac{2}{4} = \\boxed{\\frac{1}{2}}$.",
}


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def broken_jsonl(tmp_path: Path) -> Path:
    """Good rows, a blank line, a line cut short, valid JSON no adapter reads, more good rows."""
    return _write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            json.dumps({"problem": "1+1?", "answer": "2", "id": "a"}),
            "",
            '{"problem": "2+2?", "answer": "4", "id": "b"',  # line 3: cut short
            json.dumps({"problem": "3+3?", "answer": "", "id": "c"}),  # line 4: empty answer
            json.dumps({"problem": "4+4?", "answer": "8", "id": "d"}),
        ],
    )


def test_a_broken_line_is_skipped_and_named_by_file_and_line(
    broken_jsonl: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        report = load_tasks_report(str(broken_jsonl))
    assert [t.id for t in report.tasks] == ["mixed/a", "mixed/d"]
    assert report.rows == 4
    assert [(s["file"], s["line"]) for s in report.skipped] == [
        (str(broken_jsonl), 3),
        (str(broken_jsonl), 4),
    ]
    assert "not valid JSON" in report.skipped[0]["reason"]
    assert "empty answer" in report.skipped[1]["reason"] and report.skipped[1]["id"] == "c"
    assert f"{broken_jsonl}:3" in caplog.text and f"{broken_jsonl}:4 (id c)" in caplog.text


def test_strict_mode_raises_one_user_error_naming_file_and_line(broken_jsonl: Path) -> None:
    with pytest.raises(DatasetError, match=rf"^{broken_jsonl}:3: .*not valid JSON") as caught:
        load_tasks(str(broken_jsonl), strict=True)
    assert isinstance(caught.value, UserError) and isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


def test_check_reports_file_and_line_of_each_malformed_row(broken_jsonl: Path) -> None:
    report = check_tasks(str(broken_jsonl))
    assert [(bad["row"], bad["line"]) for bad in report["malformed"]] == [(1, 3), (2, 4)]
    json.dumps(report)  # the CLI prints it with --json


def test_rows_of_a_json_array_are_named_by_row_and_id(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text(
        json.dumps(
            [
                {"problem": "p", "answer": "1", "id": "x"},
                {"problem": "q", "answer": None, "id": "y"},
            ]
        )
    )
    (skipped,) = load_tasks_report(str(path)).skipped
    assert (skipped["file"], skipped["line"], skipped["row"]) == (str(path), None, 1)
    with pytest.raises(DatasetError, match=rf"^{path} row 1 \(id y\): .*missing answer"):
        load_tasks(str(path), strict=True)


def test_run_tests_files_still_get_the_json_error_of_the_first_bad_line(broken_jsonl: Path) -> None:
    rows = read_rows(broken_jsonl)
    assert next(rows)["id"] == "a"
    with pytest.raises(json.JSONDecodeError):
        next(rows)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("bad.json", b'[{"problem": "p", "answer": 1},', "not valid JSON"),
        ("bad.jsonl", b'[\n  {"problem": "p",\n', "no line is JSON"),
        ("bad.parquet", b"PAR1 this is not parquet", "not a readable parquet file"),
        ("bad.jsonl.gz", b"not gzip at all", "cannot read it"),
        ("latin1.json", '[{"problem": "caf\xe9"}]'.encode("latin-1"), "cannot read it"),
        ("scalar.json", b"42", "holds a JSON int"),
    ],
)
def test_a_file_that_is_not_data_is_one_error_naming_it(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=match) as caught:
        load_tasks_report(str(path))
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_json_lines_saved_as_json_and_gzipped_jsonl_are_read(tmp_path: Path) -> None:
    lines = [json.dumps(GSM8K_ROW), json.dumps(MATH_ROW)]
    as_json = _write_jsonl(tmp_path / "rows.json", lines)
    packed = tmp_path / "rows.jsonl.gz"
    packed.write_bytes(gzip.compress(as_json.read_bytes()))
    assert [t.answer for t in load_tasks(str(as_json))] == ["72", "\\frac{1}{2}"]
    assert [t.answer for t in load_tasks(str(packed))] == ["72", "\\frac{1}{2}"]


def test_csv_keeps_answers_as_written(tmp_path: Path) -> None:
    path = tmp_path / "aime.csv"
    path.write_text('id,problem,answer\n1,"Find N, the count.",025\n2,Find M.,\n')
    report = load_tasks_report(str(path))
    assert [(t.id, t.answer) for t in report.tasks] == [("aime/1", "025")]
    assert report.tasks[0].grade("\\boxed{25}").correct
    assert "empty answer" in report.skipped[0]["reason"]


# --- generic rows ---------------------------------------------------------------------------


def test_gsm8k_rows_take_the_number_after_the_hashes() -> None:
    from metaagentx.tasks.datasets import adapt_rows

    report = adapt_rows([GSM8K_ROW], "gsm8k")
    (task,) = report.tasks
    assert report.format == "generic_math" and task.domain == "math"
    assert task.prompt.startswith("Natalia") and task.answer == "72"
    assert task.grade("so \\boxed{72}").correct and not task.grade("\\boxed{24}").correct


def test_math_rows_take_the_last_box_of_the_solution() -> None:
    from metaagentx.tasks.datasets import adapt_rows

    row = dict(MATH_ROW, solution="First \\boxed{2/4}, simplified: \\boxed{\\frac{1}{2}}.")
    (task,) = adapt_rows([row], "hendrycks").tasks
    assert task.answer == "\\frac{1}{2}" and task.difficulty == "Level 2"
    assert task.metadata["subject"] == "Prealgebra" and task.grade("\\boxed{0.5}").correct


def test_generic_rows_without_a_usable_answer_are_skipped_with_the_fix() -> None:
    from metaagentx.tasks.datasets import adapt_rows

    long_solution = "We reason at length about the problem. " * 5
    rows = [
        {"prompt": "What is 6*7?", "solution": "42"},  # short: the solution is the answer
        {"prompt": "Why?", "solution": long_solution},
        {"question": "Code?", "answer": "x", "test_list": ["assert f() == 1"]},
    ]
    report = adapt_rows(rows, "own")
    assert [t.answer for t in report.tasks] == ["42"]
    assert "data.fields" in report.skipped[0]["reason"]
    assert "a code row" in report.skipped[1]["reason"]  # code rows are never math
    assert "unknown row format" in adapt_rows(rows[2:], "code").skipped[0]["reason"]


# --- field mapping and forced formats -------------------------------------------------------


@pytest.fixture
def renamed_jsonl(tmp_path: Path) -> Path:
    return _write_jsonl(
        tmp_path / "renamed.jsonl",
        [
            json.dumps({"query": "What is 2+3?", "final": "5", "uid": "q1"}),
            json.dumps({"query": "What is 3+4?", "final": "7", "uid": "q2"}),
        ],
    )


def test_field_mapping_renames_columns_before_adaptation(renamed_jsonl: Path) -> None:
    assert load_tasks_report(str(renamed_jsonl)).tasks == []
    fields = {"prompt": "query", "answer": "final", "id": "uid"}
    tasks = load_tasks(str(renamed_jsonl), fields=fields)
    assert [(t.id, t.prompt, t.answer) for t in tasks] == [
        ("renamed/q1", "What is 2+3?", "5"),
        ("renamed/q2", "What is 3+4?", "7"),
    ]


def test_check_and_show_try_a_mapping_before_training_with_it(renamed_jsonl: Path) -> None:
    fields = {"prompt": "query", "answer": "final"}
    assert check_tasks(str(renamed_jsonl))["tasks"] == 0
    report = check_tasks(str(renamed_jsonl), fields=fields, format="generic_math")
    assert (report["format"], report["tasks"], report["skipped"]) == ("generic_math", 2, 0)
    shown = show_tasks(str(renamed_jsonl), limit=1, fields=fields)
    assert [row["answer"] for row in shown] == ["5"]


def test_a_mapped_column_that_is_absent_is_named(renamed_jsonl: Path) -> None:
    report = load_tasks_report(str(renamed_jsonl), fields={"prompt": "query", "answer": "ans"})
    assert "data.fields columns not in the row: ['ans']" in report.skipped[0]["reason"]
    with pytest.raises(DatasetError, match="none of its 2 rows is a task"):
        load_tasks(str(renamed_jsonl), fields={"prompt": "query", "answer": "ans"})


def test_format_forces_an_adapter_and_an_unknown_one_is_named(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "f.jsonl", [json.dumps({"problem": "1+2?", "answer": "It is \\boxed{3}."})]
    )
    (detected,) = load_tasks(str(path))
    assert detected.answer == "It is \\boxed{3}."  # read as AIME: the answer taken whole
    (task,) = load_tasks(str(path), format="generic_math")
    assert task.answer == "3"
    with pytest.raises(DatasetError, match="did you mean 'generic_math'"):
        load_tasks(str(path), format="generic")


def _config(*overrides: str):
    from metaagentx.config import build_config

    return build_config(overrides=list(overrides))


def test_config_fields_format_and_strict_reach_training_validation_and_eval(
    renamed_jsonl: Path, broken_jsonl: Path
) -> None:
    from metaagentx.eval.evaluate import benchmark_tasks
    from metaagentx.rollout.factory import train_mixture, validation_tasks

    config = _config(
        f"data.train=[{renamed_jsonl}]",
        f"data.val=[{renamed_jsonl}]",
        "data.fields={prompt: query, answer: final}",
        "data.format=generic_math",
    )
    assert {t.answer for t in train_mixture(config).next_batch(4)} <= {"5", "7"}
    assert [t.answer for t in validation_tasks(config)] == ["5", "7"]
    assert [t.answer for t in benchmark_tasks(str(renamed_jsonl), config)] == ["5", "7"]
    assert len(train_mixture(_config(f"data.train=[{broken_jsonl}]")).sources[0]) == 2
    with pytest.raises(DatasetError, match=rf"{broken_jsonl}:3"):
        train_mixture(_config(f"data.train=[{broken_jsonl}]", "data.strict=true"))


def test_a_broken_line_in_a_real_benchmark_file(tmp_path: Path) -> None:
    root = data_dir()
    source = root / "aime2025" / "test.jsonl" if root else None
    if source is None or not source.is_file():
        pytest.skip("shared data folder not found (set METAAGENTX_DATA_DIR)")
    lines = source.read_text(encoding="utf-8").splitlines()
    copy = _write_jsonl(tmp_path / "aime25.jsonl", [*lines[:10], lines[10][:40], *lines[11:]])
    report = load_tasks_report(str(copy))
    assert len(report.tasks) == len(lines) - 1
    assert [(s["line"], s["file"]) for s in report.skipped] == [(11, str(copy))]
