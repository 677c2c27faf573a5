"""Where training metrics go: a JSONL file always, TensorBoard and W&B when asked for."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metaagentx.config import Config


class MetricsLogger:
    """Append one JSON object per step to `metrics.jsonl`; mirror scalars to TensorBoard/W&B.

    The JSONL file is what the report reads; a resumed run appends to it, and `read_metrics`
    keeps the last record of a step that was logged twice (before and after a crash).
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        tensorboard: bool = True,
        wandb_project: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = None
        self._wandb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        if wandb_project:
            try:
                import wandb
            except ImportError as exc:
                raise ImportError(
                    "logging.wandb_project is set but wandb is not installed: pip install wandb"
                ) from exc
            self._wandb = wandb.init(
                project=wandb_project, dir=str(run_dir), config=dict(config or {}), resume="allow"
            )

    def log(self, step: int, metrics: Mapping[str, float], **extra: Any) -> None:
        record = {
            "step": step,
            "time": time.time(),
            **extra,
            **{k: _finite(v) for k, v in metrics.items()},
        }
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in metrics.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(dict(metrics), step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


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


def run_logger(config: Config) -> MetricsLogger:
    """The metrics logger of a training run, set up from its config (`logging.*`)."""
    return MetricsLogger(
        config.output_dir,
        tensorboard=config.logging.tensorboard,
        wandb_project=config.logging.wandb_project,
        config=config.model_dump(mode="json"),
    )
