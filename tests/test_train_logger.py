"""The metrics logger: JSONL always; W&B and MLflow runs that a resumed training run reopens."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from metaagentx.config import LoggingConfig
from metaagentx.errors import MissingPackageError
from metaagentx.rl.trainer import Trainer
from metaagentx.tiny import build_tiny
from metaagentx.train.logger import TRACKING_FILE, MetricsLogger, mlflow_key, read_metrics
from rl_support import trainer_config


def _log_steps(logger: MetricsLogger, steps: range) -> None:
    with logger:
        for step in steps:
            logger.log(step, {"actor/loss": float(step), "perf/throughput": 10.0 * step})


def test_jsonl_keeps_the_last_record_of_a_step_logged_twice(tmp_path: Path):
    _log_steps(MetricsLogger(tmp_path, LoggingConfig(tensorboard=False)), range(1, 3))
    _log_steps(MetricsLogger(tmp_path, LoggingConfig(tensorboard=False)), range(2, 4))
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert not (tmp_path / TRACKING_FILE).exists()  # no remote tracker, nothing to reopen


@pytest.mark.parametrize(
    ("package", "setting", "value"),
    [
        ("wandb", "wandb_project", "p"),
        ("mlflow", "mlflow_tracking_uri", "http://localhost:5000"),
    ],
)
def test_a_missing_tracker_package_stops_the_trainer_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, setting: str, value: str
):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    config = trainer_config(tmp_path / "no-model", tmp_path / "run", f"logging.{setting}={value}")
    with pytest.raises(
        MissingPackageError,
        match=rf"logging\.{setting} needs {package}.*"
        rf"metaagentx\[{package}\]",
    ):
        Trainer(config)
    assert not (tmp_path / "run").exists()


def test_wandb_resume_reopens_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("wandb")
    for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    settings = LoggingConfig(tensorboard=False, wandb_project="metaagentx-test", run_name="t")
    first = MetricsLogger(run, settings, config={"trainer": {"lr": 1e-6}})
    run_id = first.run_ids["wandb"]
    _log_steps(first, range(1, 3))
    assert json.loads((run / TRACKING_FILE).read_text()) == {"wandb_run_id": run_id}

    resumed = MetricsLogger(run, settings, resume=True)
    assert resumed.run_ids == {"wandb": run_id}
    _log_steps(resumed, range(3, 4))
    offline = sorted((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(p.name.endswith(f"-{run_id}") for p in offline)

    fresh = MetricsLogger(run, settings)  # not a resume: a new remote run, recorded
    new_id = fresh.run_ids["wandb"]
    fresh.close()
    assert new_id != run_id
    assert json.loads((run / TRACKING_FILE).read_text()) == {"wandb_run_id": new_id}


def test_mlflow_resume_logs_into_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 keeps file: for tests
    uri = (tmp_path / "mlruns").as_uri()
    run = tmp_path / "run"
    settings = LoggingConfig(tensorboard=False, mlflow_tracking_uri=uri, mlflow_experiment="e")
    first = MetricsLogger(run, settings, config={"trainer": {"lr": 1e-6, "steps": 3}})
    run_id = first.run_ids["mlflow"]
    _log_steps(first, range(1, 3))
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert client.get_run(run_id).data.params["trainer.lr"] == "1e-06"
    assert client.get_run(run_id).info.run_name == "run"  # the run directory's name

    resumed = MetricsLogger(run, settings, resume=True)
    assert resumed.run_ids == {"mlflow": run_id}
    with pytest.raises(RuntimeError), resumed:  # a run that dies is marked failed
        resumed.log(3, {"actor/loss": 3.0, "perf/throughput": 30.0, "not/a:number?": float("nan")})
        raise RuntimeError("crash")
    history = client.get_metric_history(run_id, "actor.loss")  # a file store: `/` -> `.`
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert client.get_run(run_id).info.status == "FAILED"
    experiment = client.get_experiment_by_name("e")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_mlflow_keys_keep_verl_names_and_replace_what_mlflow_refuses():
    assert mlflow_key("actor/grad_norm/designer") == "actor/grad_norm/designer"
    assert mlflow_key("designs/reject/bad(design)!") == "designs/reject/bad_design__"


def test_a_resumed_training_run_continues_its_mlflow_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    nano = build_tiny(tmp_path / "nano", size="nano", vocab_size=700, seed=0)
    common = (
        "rollout.mode=fixed:single_agent",
        "trainer.save_every=1",
        f"logging.mlflow_tracking_uri={uri}",
    )
    for steps, resume in ((1, "false"), (2, "true")):
        config = trainer_config(
            nano, tmp_path / "run", *common, f"trainer.steps={steps}", f"trainer.resume={resume}"
        )
        trainer = Trainer(config)
        try:
            trainer.train()
        finally:
            trainer.close()
        if steps == 1:
            run_id = json.loads((tmp_path / "run" / TRACKING_FILE).read_text())["mlflow_run_id"]
    assert json.loads((tmp_path / "run" / TRACKING_FILE).read_text()) == {"mlflow_run_id": run_id}
    client = MlflowClient(uri)
    assert [m.step for m in client.get_metric_history(run_id, "actor.loss")] == [1, 2]
    assert client.get_metric_history(run_id, "actor.grad_norm.policy")  # beside actor.grad_norm
    assert client.get_run(run_id).info.status == "FINISHED"
