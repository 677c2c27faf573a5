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
    payload = json.loads(result.stdout)  # the whole of stdout: one JSON object
    assert payload["status"] == "ok"
    assert sorted(call["agent"] for call in payload["trace"]) == [
        "BackwardSolver",
        "CaseAnalyzer",
        "ForwardSolver",
    ]
    assert all(0 < call["tokens"] <= 12 for call in payload["trace"])
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


def test_design_prints_a_checked_design(tiny_model_dir: Path):
    args = ["design", "--question", "Compute 2+3.", "--model", str(tiny_model_dir), "--compact"]
    result = runner.invoke(app, [*args, "--max-new-tokens", "12", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.splitlines()[-1])
    assert len(payload["response_ids"]) <= 12
    assert payload["valid"] is (payload["reason"] is None)


def test_run_without_script_designs_first_and_reports_a_rejected_design(tiny_model_dir: Path):
    args = ["run", "--question", "Compute 2+3.", "--model", str(tiny_model_dir), "--compact"]
    result = runner.invoke(app, [*args, "--design-max-new-tokens", "8", "--device", "cpu"])
    # eight tokens from an untrained model are never a whole script: the design is rejected
    assert result.exit_code == 2
    assert "design was rejected (no_code_block)" in result.output


def test_rollout_writes_the_tree_and_trajectories(tmp_path: Path, tiny_model_dir: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"output_dir: {tmp_path / 'run'}\nmodel: {{path: {tiny_model_dir}, device: cpu}}\n"
        "data: {train: ['synthetic:arith:2']}\ntrainer: {batch_problems: 2}\n"
        "rollout: {num_designs: 2, num_executions: 2, designer_max_new_tokens: 16, "
        "executor_max_new_tokens: 8, compact_prompt: true}\n"
    )
    result = runner.invoke(app, ["rollout", str(config), "rollout.mode=fixed:single_agent"])
    assert result.exit_code == 0, result.output
    records = [
        json.loads(line) for line in (tmp_path / "run" / "rollout.jsonl").read_text().splitlines()
    ]
    assert len(records) == 2
    assert all(len(r["designs"]) == 1 and len(r["designs"][0]["executions"]) == 2 for r in records)
    trajectories = (tmp_path / "run" / "trajectories.jsonl").read_text().splitlines()
    assert len(trajectories) == 4  # 2 problems x N=2 x one agent call, no designer in fixed mode
    assert (tmp_path / "run" / "rollout.config.yaml").is_file()
    bad = runner.invoke(app, ["rollout", str(config), "rollout.num_design=3"])
    assert bad.exit_code == 2 and "rollout.num_designs" in bad.output


def test_an_interrupted_run_says_how_to_continue_it(tmp_path, capsys):
    from metaagentx.cli.training import INTERRUPTED_EXIT, interrupted

    run = tmp_path / "run"
    stopped = interrupted(str(run), "sft train", Path("c.yaml"), ["sft.steps=9"], "sft.resume")
    assert stopped.exit_code == INTERRUPTED_EXIT
    assert "no checkpoint was saved" in capsys.readouterr().err
    (run / "checkpoints" / "step-00000004").mkdir(parents=True)
    (run / "checkpoints" / "step-00000004" / "COMPLETE").write_text("{}")
    interrupted(str(run), "sft train", Path("c.yaml"), ["sft.steps=9"], "sft.resume")
    said = " ".join(capsys.readouterr().err.split())
    assert "step-00000004" in said
    assert "metaagentx sft train c.yaml sft.steps=9 sft.resume=true" in said
