"""`report RUN_A RUN_B ...`: one page overlaying several runs' curves (old and new metric names
alike), their evaluation results with intervals and the config keys that differ, all escaped,
and a real render in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from metaagentx.eval.compare import (
    build_comparison_html,
    config_diff,
    flatten,
    run_labels,
    write_comparison,
)
from metaagentx.eval.run_data import load_run
from test_eval_report import NEW_NAMES, OLD_NAMES, chromium_render, needs_chromium, write_sft_run

HOSTILE_DIR = "seed<img src=y onerror=alert(1)>"


def _result(mode: str, mean: float) -> dict:
    accuracy = {"mean": mean, "low": mean - 0.1, "high": mean + 0.1, "method": "wilson"}
    return {"benchmark": "arith", "mode": mode, "k": 2, "problems": 10, "accuracy": accuracy}


def _write_run(root: Path, seed: int, names: dict[str, float], accuracy: float) -> Path:
    """A small RL run: config, 4 steps of metrics under `names`, one evaluation."""
    (root / "eval").mkdir(parents=True)
    sft = write_sft_run(root.parent / "sft")
    config = {"seed": seed, "model": {"path": str(sft / "model")}, "trainer": {"steps": 4}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    with (root / "metrics.jsonl").open("w") as f:
        for step in range(1, 5):
            record = {"step": step, "reward/designer": 0.1 * step + seed / 10, **names}
            f.write(json.dumps(record) + "\n")
    payload = {"kind": "metaagentx-eval", "label": "after_rl", "created": 1.0,
               "results": [_result("designed", accuracy)]}  # fmt: skip
    (root / "eval" / "after_rl.json").write_text(json.dumps(payload))
    return root


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Two seeds in directories of the same name; the first logged the old metric names."""
    return [
        _write_run(tmp_path / "a" / "rl", 1, OLD_NAMES, 0.5),
        _write_run(tmp_path / HOSTILE_DIR / "rl", 2, NEW_NAMES, 0.75),
    ]


def test_labels_tell_runs_apart(tmp_path: Path):
    assert run_labels([tmp_path / "x", tmp_path / "y"]) == ["x", "y"]
    assert run_labels([tmp_path / "a" / "rl", tmp_path / "b" / "rl"]) == ["a/rl", "b/rl"]
    same = run_labels([tmp_path / "x", tmp_path / "x"])
    assert same[0].endswith("x #1") and same[1].endswith("x #2")


def test_config_diff_keeps_only_keys_that_differ(runs: list[Path]):
    assert flatten({"a": {"b": [1, 2], "c": None}, "d": "x"}) == {
        "a.b": "[1, 2]",
        "a.c": "null",
        "d": '"x"',
    }
    loaded = [("A", load_run(runs[0])), ("B", load_run(runs[1]))]
    rows = {row["key"]: row for row in config_diff(loaded)}
    assert set(rows) == {"seed", "model.path"}
    assert (rows["seed"]["A"], rows["seed"]["B"]) == ("1", "2")


def test_comparison_overlays_curves_results_and_configs(runs: list[Path]):
    labels = run_labels(runs)
    assert labels == ["a/rl", f"{HOSTILE_DIR}/rl"]
    page = build_comparison_html(
        [(label, load_run(p)) for label, p in zip(labels, runs, strict=True)]
    )
    for sid in ("runs", "training", "optimisation", "sft", "evaluations", "config"):
        assert f'<section id="{sid}">' in page
    assert "<img src=y" not in page and "seed&lt;img src=y onerror=alert(1)&gt;/rl" in page
    assert page.count('<span class="run">') == 2  # the legend: one color per run
    # one plot per curve, old names (run a) and new names (run b) drawn in the same plot
    for title in ("Reward by role", "Policy loss", "Gradient norm", "Time per step", "SFT loss"):
        assert page.count(f'<img alt="{title}" src="data:image/png;base64,') == 1
    assert "<td>50.0 [40.0, 60.0] (k=2, n=10)</td><td>75.0 [65.0, 85.0] (k=2, n=10)</td>" in page
    assert "<td>seed</td><td>1</td><td>2</td>" in page
    assert "Not logged by any run: Entropy, Clip fraction, Memory." in page


def test_write_comparison_paths_and_errors(runs: list[Path], tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_comparison(runs)
    assert path == Path("report-compare.html") and path.read_text().startswith("<!DOCTYPE html>")
    out = write_comparison([str(p) for p in runs], tmp_path / "nested" / "c.html")
    assert out.is_file()
    with pytest.raises(ValueError, match="at least two"):
        write_comparison(runs[:1])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_comparison([runs[0], tmp_path / "absent"])


def test_comparison_of_empty_runs_says_what_is_missing(tmp_path: Path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    page = build_comparison_html([("x", load_run(tmp_path / "x")), ("y", load_run(tmp_path / "y"))])
    assert page.count("No run has metrics for these curves.") == 3
    assert "No run has evaluation results" in page
    assert "No config.yaml in: x, y." in page


@needs_chromium
def test_comparison_renders_in_headless_chromium(runs: list[Path], tmp_path: Path):
    page = write_comparison(runs, tmp_path / "compare.html")
    dom = chromium_render(page, tmp_path / "compare.png", (1280, 3000))
    assert 'alt="Policy loss"' in dom and "Configuration differences" in dom
    assert dom.count("<script") == 1 and 'onerror="alert(1)"' not in dom
