"""`metaagentx quickstart --fast`: every stage runs and leaves its artefacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaagentx.config import ConfigError
from metaagentx.quickstart import quickstart_config, run_quickstart


def test_embedded_config_and_overrides(tmp_path: Path):
    config = quickstart_config(tmp_path, seed=3)
    assert config.seed == 3 and config.output_dir == str(tmp_path)
    assert config.rollout.designer_prompt == "minimal" and config.trainer.schedule == "stagewise"
    fast = quickstart_config(tmp_path, fast=True, overrides=["trainer.steps=1"])
    assert fast.trainer.steps == 1 and fast.sft.steps < config.sft.steps
    with pytest.raises(ConfigError, match=r"'trainer\.stepz'"):
        quickstart_config(tmp_path, overrides=["trainer.stepz=1"])


def test_fast_quickstart_runs_every_stage(tmp_path: Path):
    out = tmp_path / "qs"
    stale = [out / stage / "checkpoints" / "step-00000999" for stage in ("sft", "rl")]
    for path in stale:  # an earlier run's leftovers: a rerun starts afresh instead of refusing
        path.mkdir(parents=True)
    result = run_quickstart(quickstart_config(out, fast=True))
    assert not any(path.exists() for path in stale)
    assert set(result.timings) >= {
        "sft",
        "eval_sft",
        "rl",
        "eval_rl",
        "report",
        "total",
    }
    assert (out / "sft" / "model" / "config.json").is_file() and (
        out / "rl" / "model" / "config.json"
    ).is_file()
    evals = {p.stem for p in (out / "rl" / "eval").glob("*.json")}
    assert evals == {
        "after_sft",
        "after_rl",
        "swap_rl_designer_sft_executor",
        "swap_sft_designer_rl_executor",
    }
    after = json.loads((out / "rl" / "eval" / "after_rl.json").read_text())
    assert {r["mode"] for r in after["results"]} == {"fixed:single", "fixed:tool", "designed"}
    html = result.report.read_text()
    assert result.report == out / "rl" / "report.html" and "after_rl" in html
    assert (out / "rl" / "metrics.jsonl").is_file()
    # the headline: designed accuracy after RL minus after SFT on the same held-out problems
    summary = json.loads((out / "quickstart.json").read_text())
    assert set(summary["accuracy"]) == {"after_sft", "after_rl", *evals - {"after_sft", "after_rl"}}
    gain = summary["rl_gain_designed"]
    accuracy = summary["accuracy"]
    assert gain["problems"] == 8 and gain["low"] <= gain["mean"] <= gain["high"]
    expected = accuracy["after_rl"]["designed"] - accuracy["after_sft"]["designed"]
    assert abs(gain["mean"] - expected) < 1e-9
    assert summary["timings_s"]["total"] > 0 and summary["peak_rss_mb"] > 0
