"""Where training metrics go: a JSONL file always; TensorBoard, W&B and MLflow when asked for.

The JSONL file is what the report reads. W&B and MLflow runs live on a server, so a run that
is stopped and resumed must reopen the same remote run rather than start a second one: their
ids are kept in the run directory's `tracking.json` on first start, and a logger made with
`resume=True` (the trainer resumed from a checkpoint) reopens them.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Protocol
from urllib.parse import urlparse

from metaagentx.config import Config, LoggingConfig
from metaagentx.errors import MissingPackageError

TRACKING_FILE = "tracking.json"  # {"wandb_run_id": ..., "mlflow_run_id": ...}
_MLFLOW_BATCH = 1000  # metrics per log_batch call (MLflow's limit)
_MLFLOW_PARAMS = 100  # params per log_batch call (MLflow's limit)
_MLFLOW_PARAM_CHARS = 500  # the longest param value every MLflow server version accepts


class _Tracker(Protocol):
    run_id: str

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self, failed: bool) -> None: ...


class MetricsLogger:
    """Append one JSON object per step to `metrics.jsonl`; mirror the finite scalars to
    TensorBoard, W&B and MLflow as `settings` asks.

    A resumed run appends to the JSONL file, and `read_metrics` keeps the last record of a
    step that was logged twice (before and after a crash). Used as a context manager, a run
    that ends with an exception is marked failed on the remote trackers.
    """

    def __init__(
        self,
        run_dir: str | Path,
        settings: LoggingConfig | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        resume: bool = False,
    ) -> None:
        settings = settings or LoggingConfig()
        modules = require_trackers(settings)
        run_dir = Path(run_dir)
        self.path = run_dir / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = None
        if settings.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        ids = read_tracking(run_dir) if resume else {}
        name = settings.run_name or run_dir.resolve().name
        config = dict(config or {})
        self._trackers: dict[str, _Tracker] = {}
        if "wandb" in modules:
            self._trackers["wandb"] = WandbRun(
                modules["wandb"], settings, run_dir, name, config, ids.get("wandb_run_id")
            )
        if "mlflow" in modules:
            self._trackers["mlflow"] = MlflowRun(settings, name, config, ids.get("mlflow_run_id"))
        if self._trackers:
            ids.update({f"{k}_run_id": t.run_id for k, t in self._trackers.items()})
            write_tracking(run_dir, ids)

    @property
    def run_ids(self) -> dict[str, str]:
        """The remote runs this logger writes to, by tracker ("wandb", "mlflow")."""
        return {name: tracker.run_id for name, tracker in self._trackers.items()}

    def log(self, step: int, metrics: Mapping[str, float], **extra: Any) -> None:
        record = {
            "step": step,
            "time": time.time(),
            **extra,
            **{k: _finite(v) for k, v in metrics.items()},
        }
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        scalars = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()
        for tracker in self._trackers.values():
            tracker.log(step, scalars)

    def close(self, failed: bool = False) -> None:
        if self._tb is not None:
            self._tb.close()
        for tracker in self._trackers.values():
            tracker.close(failed)
        self._trackers = {}

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(failed=exc_type is not None)


class WandbRun:
    """A W&B run: a new one, or the run `run_id` reopened (`resume="must"`)."""

    def __init__(
        self,
        wandb: ModuleType,
        settings: LoggingConfig,
        run_dir: Path,
        name: str,
        config: dict[str, Any],
        run_id: str | None,
    ) -> None:
        where = {"project": settings.wandb_project, "entity": settings.wandb_entity}
        if run_id:  # the run keeps the config it started with
            self._run = wandb.init(**where, dir=str(run_dir), id=run_id, resume="must")
        else:
            self._run = wandb.init(**where, dir=str(run_dir), name=name, config=config)
        self.run_id: str = self._run.id

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self._run.log(dict(metrics), step=step)

    def close(self, failed: bool) -> None:
        self._run.finish(exit_code=1 if failed else 0)


class MlflowRun:
    """An MLflow run: a new one in `settings.mlflow_experiment` (the config flattened into
    its params), or the run `run_id` reopened.

    MLflow's local file store (a `file:` URI or a path) keeps each metric in a file named by
    its key, so `actor/grad_norm` and `actor/grad_norm/policy` cannot both exist there: with
    it the keys' `/` become `.` (servers and databases keep the keys as they are).
    """

    def __init__(
        self, settings: LoggingConfig, name: str, config: dict[str, Any], run_id: str | None
    ) -> None:
        from mlflow.tracking import MlflowClient

        uri = settings.mlflow_tracking_uri
        self._client = MlflowClient(tracking_uri=uri)
        self._file_store = urlparse(uri or "").scheme in ("", "file")
        if run_id:
            self._client.get_run(run_id)  # an unknown id fails here, before a step runs
            self._client.update_run(run_id, status="RUNNING")
        else:
            experiment = self._client.get_experiment_by_name(settings.mlflow_experiment)
            if experiment is not None:
                experiment_id = experiment.experiment_id
            else:
                experiment_id = self._client.create_experiment(settings.mlflow_experiment)
            run_id = self._client.create_run(experiment_id, run_name=name).info.run_id
            self._log_params(run_id, config)
        self.run_id: str = run_id

    def _log_params(self, run_id: str, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = _flatten(config).items()
        params = [Param(mlflow_key(k), str(v)[:_MLFLOW_PARAM_CHARS]) for k, v in flat]
        for i in range(0, len(params), _MLFLOW_PARAMS):
            self._client.log_batch(run_id, params=params[i : i + _MLFLOW_PARAMS])

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        keys = {k: mlflow_key(k) for k in metrics}
        if self._file_store:
            keys = {k: key.replace("/", ".") for k, key in keys.items()}
        batch = [Metric(keys[k], v, now, step) for k, v in metrics.items()]
        for i in range(0, len(batch), _MLFLOW_BATCH):
            self._client.log_batch(self.run_id, metrics=batch[i : i + _MLFLOW_BATCH])

    def close(self, failed: bool) -> None:
        self._client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")


def require_trackers(settings: LoggingConfig) -> dict[str, ModuleType]:
    """Import the packages the configured remote trackers need, by tracker name.

    Call it before any training work: a missing package is a `MissingPackageError` naming the
    setting that asked for it and the extra that installs it.
    """
    modules: dict[str, ModuleType] = {}
    if settings.wandb_project:
        modules["wandb"] = _import("wandb", "logging.wandb_project")
    if settings.mlflow_tracking_uri:
        modules["mlflow"] = _import("mlflow", "logging.mlflow_tracking_uri")
    return modules


def _import(package: str, setting: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name != package:  # installed, but one of its own imports is broken
            raise
        raise MissingPackageError(setting, package, package) from None


def read_tracking(run_dir: str | Path) -> dict[str, str]:
    """The remote run ids a run directory recorded ({} when it has none)."""
    path = Path(run_dir) / TRACKING_FILE
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def write_tracking(run_dir: str | Path, ids: Mapping[str, str]) -> None:
    """Record the remote run ids atomically (a crash leaves the old file or the new one)."""
    path = Path(run_dir) / TRACKING_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(ids), indent=2) + "\n")
    tmp.replace(path)


def mlflow_key(key: str) -> str:
    """`key` with the characters MLflow refuses in a metric name replaced by `_`."""
    return re.sub(r"[^\w\-. :/]", "_", key)


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys (`trainer.lr`), the way the CLI overrides name them."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, one per step (the last one written wins), by step."""
    by_step: dict[int, dict[str, Any]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_step[int(record["step"])] = record
    return [by_step[s] for s in sorted(by_step)]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_logger(config: Config, *, resume: bool = False) -> MetricsLogger:
    """The metrics logger of a training run, set up from its config (`logging.*`); `resume`
    (the trainer resumed from a checkpoint) reopens the run's W&B and MLflow runs."""
    return MetricsLogger(
        config.output_dir,
        config.logging,
        config=config.model_dump(mode="json"),
        resume=resume,
    )
