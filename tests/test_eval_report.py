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
from metaagentx.eval.curves import CURVES, expand
from metaagentx.eval.evaluate import evaluate
from metaagentx.eval.report import build_html, section_ids, write_report
from metaagentx.eval.run_data import load_run, metric_series, phase_shades
from metaagentx.eval.trace_html import render_problem
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
    record = _plain_sample_record(step, index)
    if step >= 3:  # written after the trainer began logging advantages
        design = record["designs"][0]
        design["advantage"] = 0.42
        for n, execution in enumerate(design["executions"]):
            execution["turns"][0]["advantage"] = -0.25 if n else 0.75
    return record


def _plain_sample_record(step: int, index: int) -> dict:
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


OLD_NAMES = {  # steps 1-3 were logged before the metrics took verl's names
    "update/pg_loss": -0.1,
    "update/approx_kl": 0.01,
    "update/grad_norm": 0.5,
    "update/grad_norm/policy": 0.5,
    "update/lr/policy": 2e-4,
    "time/step_s": 4.0,
    "update/tokens_per_s": 5000.0,
}
NEW_NAMES = {
    "actor/pg_loss": -0.05,
    "actor/ppo_kl": 0.02,
    "actor/grad_norm": 0.7,
    "actor/grad_norm/policy": 0.7,
    "actor/lr/policy": 1e-4,
    "timing_s/step": 5.0,
    "perf/update_tokens_per_s": 6000.0,
    "perf/throughput": 900.0,
    "response_length/designer/mean": 80.0,
    "response_length/designer/max": 200.0,
    "response_length/executor/mean": 40.0,
    "response_length/executor/clip_ratio": 0.1,
}


def write_sft_run(root: Path, steps: int = 4) -> Path:
    """An SFT run directory as `metaagentx sft` writes it (validation on the last step)."""
    root.mkdir(parents=True, exist_ok=True)
    save_config(build_config({}, [f"output_dir={root}", "seed=0"]), root)
    with (root / "metrics.jsonl").open("w") as f:
        for step in range(1, steps + 1):
            record = {
                "step": 25 * step,
                "phase": "sft",
                "loss": 4.0 / step,
                "loss/designer": 3.0 / step,
                "loss/executor": 5.0 / step,
                "lr/policy": 1e-3,
                "grad_norm/policy": 1.0 / step,
                "tokens_per_s": 8000.0,
            }
            if step == steps:
                record |= {
                    "val/greedy/designs/valid": 1.0,
                    "val/greedy/accuracy/all": 0.25,
                    "val/sampled/designs/valid": 0.9375,
                    "val/sampled/accuracy/all": 0.4375,
                }
            f.write(json.dumps(record) + "\n")
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory as the trainer and `metaagentx eval` write it (6 steps, phases of 3),
    whose model came from an SFT run beside it."""
    base = tmp_path_factory.mktemp("quickstart")
    sft = write_sft_run(base / "sft")
    root = base / "rl"
    config = build_config(
        {},
        [f"output_dir={root}", "trainer.steps=6", "trainer.phase_steps=3", "seed=0",
         f"model.path={sft / 'model'}"],
    )  # fmt: skip
    save_config(config, root)
    with (root / "metrics.jsonl").open("w") as f:
        for step in range(1, 7):
            record = {
                **(OLD_NAMES if step <= 3 else NEW_NAMES),
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


def _section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}">')
    return page[start : page.index("</section>", start)]


def test_curves_read_the_new_metric_names_and_the_old_ones():
    metrics = [
        {"step": 1, "update/grad_norm/policy": 1.0, "update/grad_norm/designer": 3.0},
        {"step": 2, "actor/grad_norm/policy": 2.0, "update/grad_norm/policy": 9.0},
        {"step": 3, "actor/grad_norm/policy": float("nan"), "update/grad_norm/policy": 4.0},
    ]
    grad_norm = next(c for c in CURVES if c.title == "Gradient norm")
    keys = {k for r in metrics for k in r}
    series = {s.label: s.names for s in expand(grad_norm, keys)}
    assert series == {
        "all": ("actor/grad_norm", "update/grad_norm"),
        "designer": ("actor/grad_norm/designer", "update/grad_norm/designer"),
        "policy": ("actor/grad_norm/policy", "update/grad_norm/policy"),
    }
    # the new name wins where both were logged; a non-finite value falls back to the old one
    assert metric_series(metrics, series["policy"]) == ([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert metric_series(metrics, series["designer"]) == ([1.0], [3.0])


def test_optimisation_curves_span_the_rename(run_dir: Path):
    section = _section(build_html(load_run(run_dir)), "optimisation")
    for title in ("Policy loss", "KL", "Gradient norm", "Learning rate", "Response length",
                  "Responses cut at max length", "Throughput", "Time per step"):  # fmt: skip
        assert f'<img alt="{title}" src="data:image/png;base64,' in section
    assert section.count("<img ") == 8
    assert "Not logged by this run: Entropy, Clip fraction, Memory." in section
    metrics = load_run(run_dir).metrics
    assert metric_series(metrics, ("actor/pg_loss", "update/pg_loss"))[0] == [1, 2, 3, 4, 5, 6]


def test_sft_section_reads_the_sft_run_the_model_came_from(run_dir: Path, tmp_path: Path):
    section = _section(build_html(load_run(run_dir)), "sft")
    sft_dir = run_dir.parent / "sft"
    assert f"Read from {sft_dir} (the SFT run this run&#x27;s model.path" in section
    for title in ("SFT loss", "SFT validation: design validity", "SFT validation: accuracy"):
        assert f'<img alt="{title}"' in section
    assert "<td>100</td><td>1</td><td>1</td><td>0.25</td><td>0.938</td><td>0.438</td>" in section
    own = build_html(load_run(sft_dir))  # the SFT run's own report is no longer empty
    assert "Read from this run directory (an SFT run): 4 logged steps (last 100)" in own
    assert _section(own, "sft").count("<img ") == 6
    assert "No RL steps in this run (an SFT run: see the SFT section)." in _section(own, "curves")
    save_config(build_config({}, ["model.path=Qwen/Qwen3-0.6B"]), tmp_path)
    hub = _section(build_html(load_run(tmp_path)), "sft")
    assert "No SFT metrics: model.path Qwen/Qwen3-0.6B is not inside an SFT run" in hub


def test_trace_browser_shows_evaluations_and_advantages(run_dir: Path):
    section = _section(build_html(load_run(run_dir), trace_steps=6, trace_problems=2), "traces")
    assert section.index("<h3>Evaluation: after_sft</h3>") < section.index(
        "<h3>Evaluation: after_rl</h3>"
    )  # oldest first
    assert (
        "heldout.jsonl / designed · 8/8 executions correct on 8 problems (first 2 shown)</h4>"
        in section
    )
    assert (
        "heldout.jsonl / designed · 0/8 executions correct on 8 problems (first 2 shown)</h4>"
        in section
    )
    assert '<span class="ok">1/1 executions correct</span>' in section
    assert '<span class="bad">0/1 executions correct</span>' in section
    # steps 1-3 predate advantages: 3 steps x 2 problems carry badges (design + 2 turns)
    assert section.count('<span class="adv pos">adv +0.42</span>') == 6
    assert (
        section.count('per-turn advantages: ComputingSolver <span class="adv pos">adv +0.75') == 6
    )
    assert section.count('<span class="adv neg">adv -0.25</span>') == 6


def test_advantages_show_only_when_logged():
    old = render_problem(_plain_sample_record(0, 0))
    assert "adv" not in old.replace("advantage", "")
    record = _sample_record(3, 0)
    for execution in record["designs"][0]["executions"]:
        execution["workflow_trace"] = []  # no trace: the raw turns are shown, badge in the head
    page = render_problem(record)
    assert '5 tokens · finish </span> <span class="adv pos">adv +0.75</span>' in page
    assert "per-turn advantages" not in page


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
        "No SFT metrics: this run&#x27;s config names no model.path.",
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


needs_chromium = pytest.mark.skipif(
    _chromium() is None, reason="chromium is not installed (run .ci/report-deps.sh)"
)


def chromium_render(page: Path, shot: Path, size: tuple[int, int]) -> str:
    """Screenshot `page` to `shot` (kept for a person to look at), check that it is drawn,
    and return the DOM as the browser built it."""
    browser = [str(_chromium()), *CHROMIUM_FLAGS, f"--user-data-dir={shot.parent / 'profile'}"]
    subprocess.run(
        [*browser, f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=90,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == size
    pixels = size[0] * size[1]
    colors = image.getcolors(maxcolors=pixels)
    non_white = sum(n for n, c in colors if min(c) < 235) / pixels
    assert non_white > 0.05, f"only {non_white:.1%} of the page is drawn"
    assert len(colors) > 200  # text, plots and shading, not a flat page
    return subprocess.run(
        [*browser, "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    ).stdout


@needs_chromium
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path):
    report = write_report(run_dir, tmp_path / "report.html")
    dom = chromium_render(report, tmp_path / "report.png", (1280, 5000))
    for sid in section_ids():
        assert f'id="{sid}"' in dom
    for text in ('alt="Policy loss"', 'alt="SFT loss"', "<h3>Evaluation: after_rl</h3>",
                 '<span class="adv pos">adv +0.42</span>'):  # fmt: skip
        assert text in dom
    assert dom.count("<script") == 1  # the injected scripts stayed text
    assert '<img src="x"' not in dom and 'onerror="alert(1)"' not in dom
