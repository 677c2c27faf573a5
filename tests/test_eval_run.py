"""`evaluate` / `metaagentx eval`: the real rollout path, scored exactly (a scripted generator
whose right and wrong answers are known), then end to end with the tiny model on a local file
and on the registered AIME 2024 file of the shared data folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metaagentx.cli import app
from metaagentx.config import build_config
from metaagentx.eval.evaluate import evaluate, load_results
from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator
from metaagentx.tasks.datasets import data_dir

runner = CliRunner()

DESIGN = """Analysis: one solver.
Pattern: single_agent
```python
from workflow import AgentNode, Workflow

solver = AgentNode("Solver", "Solve it.", max_turns=1)
workflow = Workflow()
workflow.add_node(solver)
result = workflow.run()
```"""


class AlwaysFortyTwo(Generator):
    """Every agent answers 42; the designer writes a valid single-agent design, except for the
    problem that mentions 6*7, where it writes no code (a rejected design)."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        out = []
        for request in requests:
            prompt = json.dumps(request.messages)
            if request.role == "designer":
                text = "I will think instead." if "6*7" in prompt else DESIGN
            else:
                text = "The answer is \\boxed{42}."
            out.append(
                GenerationResult([1, 2], [3, 4], [-0.1, -0.2], text, "stop", role=request.role)
            )
        return out


def _tasks_file(tmp_path: Path) -> Path:
    rows = [
        {"id": "m1", "domain": "math", "prompt": "What is 6*7?", "answer": "42", "difficulty": 1},
        {"id": "m2", "domain": "math", "prompt": "What is 40+2?", "answer": "42", "difficulty": 1},
        {"id": "m3", "domain": "math", "prompt": "What is 3+4?", "answer": "7", "difficulty": 2},
        {
            "id": "c1",
            "domain": "code",
            "prompt": "Write f(x) returning x+1.",
            "public_tests": [{"kind": "call", "input": [1], "expected": 2, "fn_name": "f"}],
            "hidden_tests": [{"kind": "call", "input": [5], "expected": 6, "fn_name": "f"}],
            "difficulty": 1,
        },
    ]
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_scores_are_exact_per_mode_and_domain(tmp_path: Path):
    config = build_config(
        {},
        [
            f"output_dir={tmp_path / 'run'}",
            f"eval.benchmarks=[{_tasks_file(tmp_path)}]",
            "eval.modes=[single_agent, designed]",
            "eval.samples=2",
            "logging.progress=false",
        ],
    )
    report = evaluate(config, generator=AlwaysFortyTwo(), label="scripted")
    single, designed = report.results
    assert (single.mode, designed.mode) == ("single_agent", "designed")
    # single agent: m1 and m2 right (2 of 2 samples), m3 and c1 wrong
    assert single.accuracy.mean == pytest.approx(0.5) and single.k == 2
    assert single.by_domain["math"].mean == pytest.approx(2 / 3)
    assert single.by_domain["code"].mean == 0.0
    assert [p["outcomes"] for p in single.per_problem] == [[1, 1], [1, 1], [0, 0], [0, 0]]
    # designed: k=2 designs x 1 execution; the rejected designs of m1 count as failures
    assert [p["outcomes"] for p in designed.per_problem] == [[0, 0], [1, 1], [0, 0], [0, 0]]
    assert designed.accuracy.mean == pytest.approx(0.25)
    assert designed.rollout["designs/valid_frac"] == pytest.approx(6 / 8)
    assert designed.structure["patterns/single"] == pytest.approx(6 / 8)
    assert designed.structure["patterns/invalid"] == pytest.approx(2 / 8)
    assert designed.patterns_by_difficulty["2"] == {"single": 1.0}
    assert single.accuracy.low < 0.5 < single.accuracy.high
    paths = report.write(tmp_path / "run" / "eval")
    payload = load_results(paths["json"])
    assert payload["label"] == "scripted" and payload["samples"] == 2
    assert payload["results"][0]["accuracy"]["method"] == "bootstrap"
    assert payload["config"]["eval"]["samples"] == 2
    records = [json.loads(line) for line in paths["records"].read_text().splitlines()]
    assert len(records) == 8 and {r["mode"] for r in records} == {"single_agent", "designed"}
    assert records[0]["difficulty"] == 1 and records[0]["designs"][0]["executions"]
    markdown = paths["markdown"].read_text()
    assert f"| scripted | {tmp_path / 'tasks.jsonl'} | single_agent | 2 | 4 | 50.0 [" in markdown
    assert "## By domain" in markdown


def test_unknown_mode_fails_before_loading_a_model(tmp_path: Path):
    config = build_config({}, ["eval.modes=[fixed:nonexistent]", "model.path=/nowhere"])
    with pytest.raises(ValueError, match="needs the example design 'nonexistent'"):
        evaluate(config)


def test_fixed_patterns_come_from_the_configured_designs(tmp_path: Path):
    config = build_config(
        {},
        [
            f"eval.benchmarks=[{_tasks_file(tmp_path)}]",
            "eval.modes=[fixed:vote3]",  # a teacher design, not a packaged example
            "rollout.designs_dir=metaagentx.sft.designs",
            "logging.progress=false",
        ],
    )
    (result,) = evaluate(config, generator=AlwaysFortyTwo()).results
    assert result.structure["patterns/ensemble_vote"] == 1.0
    assert result.accuracy.mean == pytest.approx(0.5)  # m1, m2 right; m3, c1 wrong


def _cli(tmp_path: Path, model: Path, *overrides: str) -> dict:
    config = tmp_path / "eval.yaml"
    config.write_text(
        "rollout:\n  compact_prompt: true\n  designer_max_new_tokens: 24\n"
        "  executor_max_new_tokens: 12\ngeneration:\n  torch_threads: 1\n"
        "logging:\n  progress: false\n"
    )
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "eval",
            str(config),
            f"model.path={model}",
            "model.device=cpu",
            f"output_dir={out}",
            *overrides,
            "--label",
            "tiny",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "avg@k" in result.output
    return load_results(out / "eval" / "tiny.json")


def test_tiny_model_end_to_end_on_a_local_file(tmp_path: Path, tiny_model_dir: Path):
    payload = _cli(
        tmp_path,
        tiny_model_dir,
        f"eval.benchmarks=[{_tasks_file(tmp_path)}]",
        "eval.modes=[single_agent, fixed:code_writer_tester, designed]",
    )
    assert [r["mode"] for r in payload["results"]] == [
        "single_agent",
        "fixed:code_writer_tester",
        "designed",
    ]
    for result in payload["results"]:
        assert result["problems"] == 4 and set(result["by_domain"]) == {"math", "code"}
        assert 0.0 <= result["accuracy"]["low"] <= result["accuracy"]["high"] <= 1.0
    assert payload["results"][1]["structure"]["patterns/code+tester"] == 1.0


@pytest.mark.skipif(
    data_dir() is None or not (data_dir() / "aime2024" / "aime.json").is_file(),
    reason="the shared data folder (../shared/data or $METAAGENTX_DATA_DIR) is not here",
)
def test_tiny_model_on_aime2024_from_the_shared_data(tmp_path: Path, tiny_model_dir: Path):
    payload = _cli(
        tmp_path,
        tiny_model_dir,
        "eval.benchmarks=[aime2024]",
        "eval.limit=2",
        "eval.modes=[single_agent, designed]",
    )
    for result in payload["results"]:
        assert result["benchmark"] == "aime2024" and result["problems"] == 2
        assert [p["problem_id"].split("/")[0] for p in result["per_problem"]] == ["aime2024"] * 2
        assert result["accuracy"]["mean"] == 0.0  # a random tiny model: the path is the point


def test_openai_backend_against_serve_model(tmp_path: Path, served_model: str):
    """The same eval through a real OpenAI-compatible HTTP server (serve-model on 127.0.0.1)."""
    config = tmp_path / "eval.yaml"
    config.write_text(
        "rollout:\n  compact_prompt: true\n  designer_max_new_tokens: 24\n"
        "  executor_max_new_tokens: 12\nlogging:\n  progress: false\n"
    )
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "eval",
            str(config),
            "generation.backend=openai",
            f"generation.base_url={served_model}",
            f"output_dir={out}",
            f"eval.benchmarks=[{_tasks_file(tmp_path)}]",
            "eval.modes=[single_agent, designed]",
            "--label",
            "served",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = load_results(out / "eval" / "served.json")
    assert payload["backend"] == "openai"
    assert [r["mode"] for r in payload["results"]] == ["single_agent", "designed"]
    for mode_result in payload["results"]:
        assert mode_result["problems"] == 4 and set(mode_result["by_domain"]) == {"math", "code"}
    records = [json.loads(line) for line in (out / "eval" / "served.records.jsonl").open()]
    turns = [
        turn
        for record in records
        for design in record["designs"]
        for execution in design["executions"]
        for turn in execution["turns"]
    ]
    assert turns and all(turn["tokens"] > 0 for turn in turns)  # token ids came over HTTP
