"""`metaagentx ablate`: the spec fails fast, every arm x seed runs from one SFT model, a rerun
resumes instead of retraining, and the table can be redrawn from the files alone."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from metaagentx.ablate import check_same_arms, load_ablation, run_ablation, runner
from metaagentx.ablate.results import stage_lengths
from metaagentx.cli import app
from metaagentx.config import ConfigError, save_config
from metaagentx.quickstart import FAST
from metaagentx.stages import role_models

# the quickstart's --fast pipeline, smaller still: this checks the plumbing, not the method
TINY = [o for o in FAST if not o.startswith("eval.modes")] + [
    "sft.steps=10",
    "sft.collect_problems=24",
    "trainer.phase_steps=2",
    "eval.limit=4",
    "data.val_size=4",
    "data.limit=100",
]


def _write(tmp_path: Path, **changes) -> Path:
    spec = {
        "pipeline": "quickstart",
        "overrides": TINY,
        "output_dir": str(tmp_path / "out"),
        "seeds": [0, 1],
        "baseline": "k2",
        "swap": ["k2"],
        "arms": {"k2": [], "lora": ["model.parameter_sharing=lora", "model.lora_r=4"]},
        **changes,
    }
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"baseline": "k3"}, r"arm 'k3' is not in arms"),
        ({"arms": {"k2": ["trainer.phase_stepz=1"]}}, r"arm 'k2': .*trainer\.phase_stepz"),
        ({"seeds": [0, 0]}, r"seeds repeat"),
        ({"pipeline": "missing.yaml"}, r"pipeline config .*missing\.yaml' does not exist"),
        ({"swap": ["lora"]}, r"swap arm 'lora' needs model\.parameter_sharing=shared"),
        ({"arms": {"k2": [], "a/b": []}}, r"plain folder names"),
        ({"worker": 2}, r"worker"),
        (  # one shared model, both roles in one step: a single learning rate
            {"arms": {"k2": ["trainer.schedule=simultaneous", "trainer.designer_lr=3e-4"]}},
            r"arm 'k2': trainer\.schedule=simultaneous .* must be equal",
        ),
    ],
)
def test_a_bad_spec_fails_before_any_work(tmp_path: Path, changes: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        load_ablation(_write(tmp_path, **changes))
    assert not (tmp_path / "out").exists()


def test_overrides_change_the_spec_and_arms_get_their_seed_and_folder(tmp_path: Path):
    ablation = load_ablation(_write(tmp_path), ["seeds=[3]", "workers=2"])
    assert ablation.spec.seeds == [3] and ablation.spec.workers == 2
    config = ablation.arm_config("lora", 3)
    assert config.seed == 3 and config.model.parameter_sharing == "lora"
    assert Path(config.output_dir) == tmp_path / "out" / "runs" / "lora" / "seed3"


def test_role_models_of_each_sharing_mode(tmp_path: Path):
    ablation = load_ablation(
        _write(tmp_path, arms={"k2": [], "sep": ["model.parameter_sharing=separate"]})
    )
    policy = tmp_path / "model"
    assert role_models(ablation.arm_config("k2", 0), policy) == (policy, policy)
    designer, executor = role_models(ablation.arm_config("sep", 0), policy)
    assert (designer, executor) == (policy / "designer", policy / "executor")


def test_every_arm_and_seed_runs_and_a_rerun_only_adds_what_is_missing(tmp_path: Path):
    out = tmp_path / "out"
    first = run_ablation(load_ablation(_write(tmp_path), ["seeds=[0]"]))
    assert [r.arm for r in first.rows] == ["k2", "lora"] and not first.missing
    finished = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/eval/*.json")}
    assert len(finished) == 4  # k2: after_rl + the two swaps; lora: after_rl

    # a second seed, trained in two worker processes; seed 0 is not touched again
    result = run_ablation(load_ablation(_write(tmp_path), ["workers=2"]))
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    assert all(set(r.per_seed) == {0, 1} for r in result.rows) and not result.missing
    assert [s.seed for s in result.swap] == [0, 1]
    assert [p.arm for p in result.stage_length] == ["k2"]  # lora: another experiment at K=2
    assert set(result.by_benchmark) == {"after SFT", "k2", "lora"}
    assert (out / "runs" / "lora" / "seed1" / "ablate.log").is_file()
    assert (out / "runs" / "lora" / "seed1" / "model-merged" / "designer").is_dir()
    for name in ("ablation.json", "ablation.md", "ablation.html"):
        assert (out / name).is_file()
    saved = json.loads((out / "ablation.json").read_text())
    assert saved["baseline"] == "k2" and len(saved["rows"]) == 2 and saved["wall_s"] > 0
    for arm in ("k2", "lora"):  # every run started from the one SFT model
        config = yaml.safe_load((out / "runs" / arm / "seed1" / "config.yaml").read_text())
        assert config["model"]["path"] == str(out / "sft" / "model") and config["seed"] == 1

    # --table-only redraws from the files without training
    redraw = CliRunner().invoke(app, ["ablate", str(_write(tmp_path)), "--table-only"])
    assert redraw.exit_code == 0, redraw.output
    assert "| k2 | (baseline pipeline) |" in redraw.output
    assert f"Wall time: {saved['wall_s'] / 60:.1f} min" in redraw.output  # the recorded one


def test_a_different_pipeline_in_the_same_folder_is_refused(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "pipeline.config.yaml").write_text(yaml.safe_dump({"seed": 123}))
    with pytest.raises(ConfigError, match="different pipeline config"):
        run_ablation(load_ablation(_write(tmp_path)))


def test_an_arm_changed_since_its_runs_were_trained_is_refused(tmp_path: Path):
    ablation = load_ablation(_write(tmp_path))
    run = ablation.run_dir("lora", 1)
    save_config(ablation.arm_config("lora", 1, "model.lora_r=8"), run)
    changed = r"arm 'lora' changed since .*seed1 was trained \(model\.lora_r: 8 -> 4\)"
    with pytest.raises(ConfigError, match=changed):
        run_ablation(ablation)
    redraw = CliRunner().invoke(app, ["ablate", str(_write(tmp_path)), "--table-only"])
    assert isinstance(redraw.exception, ConfigError)  # the console script: one line, exit 2
    assert "model.lora_r: 8 -> 4" in str(redraw.exception)
    # where the SFT model lives, how the run logged and a resume are not the experiment
    extra = ("model.path=/elsewhere/sft", "logging.progress=false", "trainer.resume=true")
    save_config(ablation.arm_config("lora", 1, *extra), run)
    check_same_arms(ablation)


def test_wall_time_adds_up_over_invocations_and_counts_an_interrupted_one(tmp_path, monkeypatch):
    clock = iter([0.0, 10.0, 25.0, 100.0, 104.0])
    monkeypatch.setattr(runner.time, "monotonic", lambda: next(clock))
    first = runner.WallClock(tmp_path)
    assert first.tick() == 10.0 and first.tick() == 25.0  # then killed before its end
    resumed = runner.WallClock(tmp_path)
    assert resumed.tick() == 29.0


def test_a_run_failing_in_a_worker_is_one_line_naming_it_with_the_traceback_in_its_log(
    tmp_path: Path, monkeypatch
):
    ablation = load_ablation(_write(tmp_path))

    def broken(*args, **kwargs):
        raise ValueError("no space\nleft on device")

    monkeypatch.setattr(runner, "run_arm", broken)
    spec, pipeline = (
        ablation.spec.model_dump(mode="json"),
        ablation.pipeline.model_dump(mode="json"),
    )
    with pytest.raises(runner.RunFailed) as failed:
        runner._worker(spec, pipeline, "lora", 1, str(tmp_path / "sft"))
    log = ablation.run_dir("lora", 1) / "ablate.log"
    message = str(failed.value)
    assert message.startswith("lora seed 1 failed: ValueError: no space left on device")
    assert str(log) in message and "\n" not in message
    assert "Traceback" in log.read_text() and "in broken" in log.read_text()


def test_the_stage_length_curve_has_only_arms_that_differ_from_the_baseline_in_k(tmp_path: Path):
    arms = {
        "k2": [],
        "k1": ["trainer.phase_steps=1"],
        "k1_lora": ["trainer.phase_steps=1", "model.parameter_sharing=lora"],
        "m8": ["rollout.num_designs=8", "rollout.num_executions=1"],
        "designer": ["trainer.schedule=designer_only"],
    }
    ablation = load_ablation(_write(tmp_path, arms=arms, swap=[]))
    assert stage_lengths(ablation) == {
        "k2": 2,
        "k1": 1,
        "k1_lora": None,
        "m8": None,
        "designer": None,
    }


def test_a_run_failing_in_a_worker_process_reaches_the_command_as_run_failed(tmp_path: Path):
    ablation = load_ablation(_write(tmp_path, seeds=[0]), ["workers=2"])
    missing = tmp_path / "no-sft-model"
    with pytest.raises(runner.RunFailed, match=r"^(k2|lora) seed 0 failed: .*ablate\.log"):
        runner.run_pending(ablation, missing, Console(file=io.StringIO()), lambda name: None)
