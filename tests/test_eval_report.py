"""`metaagentx report`: one self-contained HTML file from a run directory, every section present
even without data, all model text escaped, and a real render in headless Chromium that is not
blank (skipped with a reason when Chromium is not installed: `.ci/report-deps.sh`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import metaagentx
from metaagentx.cli import app
from metaagentx.config import build_config, save_config
from metaagentx.eval.evaluate import evaluate
from metaagentx.eval.report import build_html, section_ids, write_report
from metaagentx.eval.run_data import load_run, phase_shades
from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator

DESIGNS = Path(metaagentx.__file__).parent / "designs"
HOSTILE = '<script>alert("pwned")</script></details></pre><img src=x onerror=alert(1)>'


class Answers(Generator):
    """Designer: the single-agent example; every agent answers `answer` (plus hostile text)."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        design = "Pattern: single_agent\n```python\n" + (DESIGNS / "single_agent.py").read_text()
        return [
            GenerationResult(
                [1],
                [2, 3],
                [-0.5, -0.5],
                design + "```" if r.role == "designer" else f"{HOSTILE} \\boxed{{{self.answer}}}",
                "stop",
                role=r.role,
            )
            for r in requests
        ]


def _sample_record(step: int, index: int) -> dict:
    script = (DESIGNS / ("reflection.py" if index % 2 else "single_agent_python.py")).read_text()
    event = {
        "type": "agent",
        "agent": "ComputingSolver",
        "role": "solver",
        "path": "workflow/0",
        "round": 0,
        "inputs": [],
        "status": "ok",
        "turns": [
            {
                "reply": f"```python\nprint(6*7)\n``` {HOSTILE}",
                "tool_calls": [
                    {"name": "python", "arguments": {"code": "print(6*7)"}, "output": "42\n"}
                ],
            },
            {"reply": "<delivery>42</delivery> \\boxed{42}", "tool_calls": []},
        ],
        "delivery": "42",
    }
    return {
        "step": step,
        "problem_id": f"synthetic/arith/{step}/{index}",
        "domain": "math",
        "prompt": f"Compute 6*7. {HOSTILE}",
        "reference": "42",
        "designs": [
            {
                "design_id": f"d{step}-{index}-0",
                "pattern": "single_agent_python",
                "valid": True,
                "reason": None,
                "detail": "",
                "text": f"Pattern: x\n{HOSTILE}",
                "script": script,
                "reward": 1.0,
                "executions": [
                    {
                        "execution_id": f"e{step}-{index}-0-{n}",
                        "status": "ok",
                        "reward": float(n == 0),
                        "reward_reason": "correct" if n == 0 else "wrong",
                        "correct": n == 0,
                        "answer": "42",
                        "final_output": f"\\boxed{{42}} {HOSTILE}",
                        "error": None,
                        "duration_s": 0.1,
                        "turns": [{"agent": "ComputingSolver", "text": HOSTILE, "tokens": 5}],
                        "workflow_trace": [event, {"type": "vote", "node": "V", "winner": 0}],
                    }
                    for n in range(2)
                ],
            },
            {
                "design_id": f"d{step}-{index}-1",
                "pattern": HOSTILE,
                "valid": False,
                "reason": "forbidden_import",
                "detail": f"import os {HOSTILE}",
                "text": HOSTILE,
                "script": "import os\n",
                "reward": 0.0,
                "executions": [],
            },
        ],
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory as the trainer and `metaagentx eval` write it (6 steps, phases of 3)."""
    root = tmp_path_factory.mktemp("run")
    config = build_config(
        {}, [f"output_dir={root}", "trainer.steps=6", "trainer.phase_steps=3", "seed=0"]
    )
    save_config(config, root)
    with (root / "metrics.jsonl").open("w") as f:
        for step in range(1, 7):
            record = {
                "step": step,
                "active_roles": "executor" if step <= 3 else "designer",
                "reward/designer": 0.1 * step,
                "reward/executor": 0.05 * step,
                "accuracy/math": 0.1 * step,
                "accuracy/code": 0.02 * step,
                "designs/valid_frac": 0.5 + 0.05 * step,
                "patterns/single_agent": 7 - step,
                "patterns/reflection": step,
            }
            if step % 3 == 0:
                record.update({"val/accuracy/math": 0.08 * step, "val/designs/valid_frac": 0.7})
            f.write(json.dumps(record) + "\n")
        f.write('{"step": 7, "reward/desig')  # a line cut off by a crash
    (root / "samples").mkdir()
    for step in range(6):
        lines = [json.dumps(_sample_record(step, i)) for i in range(3)]
        (root / "samples" / f"step-{step:06d}.jsonl").write_text("\n".join(lines) + "\n")
    tasks = root / "heldout.jsonl"
    tasks.write_text(
        "".join(
            json.dumps({"id": f"t{i}", "domain": "math", "prompt": f"{i}+{i}?", "answer": "8"})
            + "\n"
            for i in range(8)
        )
    )
    eval_config = build_config(
        {},
        [
            f"output_dir={root}",
            f"eval.benchmarks=[{tasks}]",
            "eval.modes=[single_agent, designed]",
            "logging.progress=false",
        ],
    )
    for label, answer in (("after_sft", "7"), ("after_rl", "8")):
        evaluate(eval_config, generator=Answers(answer), label=label).write(root / "eval")
    return root


def test_phases_come_from_the_logged_active_roles(run_dir: Path, tmp_path: Path):
    shades = phase_shades(load_run(run_dir))
    assert [(s.start, s.end, s.roles) for s in shades] == [
        (0.5, 3.5, "executor"),
        (3.5, 6.5, "designer"),
    ]
    shutil.copy(run_dir / "config.yaml", tmp_path / "config.yaml")
    from_config = phase_shades(load_run(tmp_path))  # no metrics: the config's schedule decides
    assert [(s.start, s.end, s.roles) for s in from_config] == [
        (0.5, 3.5, "executor"),
        (3.5, 6.5, "designer"),
    ]


def test_report_has_every_section_and_escapes_model_text(run_dir: Path):
    data = load_run(run_dir)
    assert len(data.metrics) == 6 and any("not JSON" in p for p in data.problems)
    page = build_html(data)
    for sid in section_ids():
        assert f'<section id="{sid}">' in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the page's own
    assert page.count("data:image/png;base64,") >= 6  # 3 curves, 2 pattern plots, the bars
    assert "after_rl" in page and "after_sft" in page
    assert "+100.0 [+35.1, +100.0]" in page  # the RL gain over SFT on the same problems
    assert "training step 6 (step-000005.jsonl)" in page
    assert "tool call <b>python</b>" in page and "forbidden_import" in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing to fetch


def test_report_of_an_empty_run_says_what_is_missing(tmp_path: Path):
    page = build_html(load_run(tmp_path))
    for sid in section_ids():
        assert f'<section id="{sid}">' in page
    for text in (
        "No config.yaml",
        "No training metrics yet",
        "No evaluation results yet",
        "No sample files yet",
        "No traces yet",
    ):
        assert text in page


def test_cli_writes_the_report(run_dir: Path, tmp_path: Path):
    out = tmp_path / "nested" / "r.html"
    result = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.read_text().startswith("<!DOCTYPE html>")
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "absent")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.mark.skipif(
    _chromium() is None, reason="chromium is not installed (run .ci/report-deps.sh)"
)
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path):
    report = write_report(run_dir, tmp_path / "report.html")
    shot = tmp_path / "report.png"
    browser = [str(_chromium()), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri()],
        check=True,
        capture_output=True,
        timeout=90,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    colors = image.getcolors(maxcolors=1280 * 2000)
    non_white = sum(n for n, c in colors if min(c) < 235) / (1280 * 2000)
    assert non_white > 0.05, f"only {non_white:.1%} of the page is drawn"
    assert len(colors) > 200  # text, plots and shading, not a flat page
    dom = subprocess.run(
        [*browser, "--dump-dom", report.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    ).stdout
    for sid in section_ids():
        assert f'id="{sid}"' in dom
    assert dom.count("<script") == 1  # the injected scripts stayed text
    assert '<img src="x"' not in dom and 'onerror="alert(1)"' not in dom
