"""The CLI commands of the foundation, run in-process with typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from metaagentx import __version__
from metaagentx.cli import app

runner = CliRunner()


def test_help_and_version():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("version", "tiny", "generate", "serve-model"):
        assert command in result.output
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip() == __version__


def test_tiny_build_then_generate_json(tmp_path: Path):
    out = tmp_path / "m"
    built = runner.invoke(
        app, ["tiny", "build", "--out", str(out), "--size", "nano", "--vocab-size", "700"]
    )
    assert built.exit_code == 0, built.output
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    result = runner.invoke(
        app, ["generate", "--model", str(out), "--prompt", "hi", "--max-new-tokens", "16", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) >= {"prompt_ids", "response_ids", "logprobs", "text"}
    assert len(payload["response_ids"]) == len(payload["logprobs"]) == 16
    assert payload["finish_reason"] == "length"


def test_generate_rejects_bad_input(tmp_path: Path):
    result = runner.invoke(app, ["generate", "--model", str(tmp_path / "nope"), "--prompt", "hi"])
    assert result.exit_code == 2
    assert "nope" in result.output
    result = runner.invoke(app, ["tiny", "build", "--out", str(tmp_path / "x"), "--size", "huge"])
    assert result.exit_code == 2 and "unknown size 'huge'" in result.output
    result = runner.invoke(app, ["serve-model", "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output


FIXTURES = Path(__file__).parent / "fixtures" / "tasks"


def test_data_show_and_check_on_a_local_file():
    shown = runner.invoke(
        app, ["data", "show", str(FIXTURES / "math.json"), "--limit", "2", "--json"]
    )
    assert shown.exit_code == 0, shown.output
    rows = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
    assert 1 <= len(rows) <= 2 and all(r["domain"] == "math" for r in rows)
    checked = runner.invoke(app, ["data", "check", str(FIXTURES / "math.json"), "--json"])
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.stdout.splitlines()[-1])
    assert report["rows"] == report["tasks"] + report["skipped"]
    assert all(bad["reason"] for bad in report["malformed"])


def test_data_check_names_a_missing_dataset(tmp_path: Path):
    result = runner.invoke(app, ["data", "check", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "missing.json" in result.output


DESIGNS = Path(__file__).parent.parent / "examples" / "designs"


def test_run_executes_a_design_in_the_sandbox_with_the_tiny_model(tiny_model_dir: Path):
    args = ["run", "--script", str(DESIGNS / "ensemble_vote.py"), "--question", "Compute 12+30."]
    args += ["--model", str(tiny_model_dir), "--max-new-tokens", "12", "--device", "cpu", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.splitlines()[-1])
    assert payload["status"] == "ok"
    assert sorted(call["agent"] for call in payload["trace"]) == [
        "BackwardSolver",
        "CaseAnalyzer",
        "ForwardSolver",
    ]
    assert all(0 < len(call["response_ids"]) <= 12 for call in payload["trace"])
    assert "netns" in payload["isolation"] or "rlimits" in payload["isolation"]


def test_run_rejects_missing_script_and_bad_domain(tmp_path: Path, tiny_model_dir: Path):
    result = runner.invoke(
        app,
        [
            "run",
            "--script",
            str(tmp_path / "x.py"),
            "--question",
            "q",
            "--model",
            str(tiny_model_dir),
        ],
    )
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(
        app,
        [
            "run",
            "--script",
            str(DESIGNS / "single_agent.py"),
            "--question",
            "q",
            "--model",
            str(tiny_model_dir),
            "--domain",
            "poetry",
        ],
    )
    assert result.exit_code == 2 and "unknown domain 'poetry'" in result.output
