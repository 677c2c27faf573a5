"""`metaagentx eval` with the openai backend against a real `metaagentx serve-model` process
(HTTP on 127.0.0.1): the evaluation path a served_model model (vLLM, a teacher API) takes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from metaagentx.cli import app
from metaagentx.eval.evaluate import load_results


def test_eval_through_the_openai_backend(served_model: str, tmp_path: Path):
    config = tmp_path / "served_model.yaml"
    config.write_text(
        "generation:\n  backend: openai\n"
        "rollout:\n  compact_prompt: true\n  designer_max_new_tokens: 24\n"
        "  executor_max_new_tokens: 12\nlogging:\n  progress: false\n"
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(config),
            f"generation.base_url={served_model}",
            f"output_dir={out}",
            "eval.benchmarks=[synthetic:arith:2]",
            "eval.limit=3",
            "eval.modes=[single_agent, designed]",
            "eval.samples=2",
            "--label",
            "served_model",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = load_results(out / "eval" / "served_model.json")
    assert payload["backend"] == "openai" and payload["model"] == served_model
    single, designed = payload["results"]
    assert single["problems"] == designed["problems"] == 3
    assert all(len(p["outcomes"]) == 2 for p in single["per_problem"] + designed["per_problem"])
    assert single["rollout"]["executions/ok"] == 6  # every execution ran through the server
    assert designed["rollout"]["designs/generated"] == 6
    records = (out / "eval" / "served_model.records.jsonl").read_text().splitlines()
    assert len(records) == 6
