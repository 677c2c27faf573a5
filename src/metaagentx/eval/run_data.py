"""Read what a run directory holds, tolerating every part being absent or damaged.

A report is most needed when a run went wrong, so nothing here raises on a missing file or a
truncated line: each part comes back empty and `problems` lists what could not be read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metaagentx.eval.results import is_results
from metaagentx.rl.schedule import Schedule

_STEP_FILE = re.compile(r"step-(\d+)\.jsonl$")


@dataclass(frozen=True)
class Shade:
    """A span of logged steps [start, end] (inclusive) in which the same roles learned."""

    start: float
    end: float
    roles: str


@dataclass
class RunData:
    """The parts of a run directory the report shows."""

    run_dir: Path
    config_text: str | None = None
    config: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    sample_files: list[tuple[int, Path]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    eval_records: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def load_run(run_dir: str | Path) -> RunData:
    """Config, metrics (last record of a step wins), sample files by step, eval results."""
    root = Path(run_dir)
    data = RunData(root)
    config_path = root / "config.yaml"
    if config_path.is_file():
        data.config_text = config_path.read_text(errors="replace")
        try:
            loaded = yaml.safe_load(data.config_text)
            data.config = loaded if isinstance(loaded, dict) else None
        except yaml.YAMLError as exc:
            data.problems.append(f"config.yaml is not valid YAML: {exc}")
    metrics_path = root / "metrics.jsonl"
    if metrics_path.is_file():
        by_step: dict[int, dict[str, Any]] = {}
        for number, record in _json_lines(metrics_path, data.problems):
            if isinstance(record, dict) and isinstance(record.get("step"), int | float):
                by_step[int(record["step"])] = record
            else:
                data.problems.append(f"metrics.jsonl line {number}: no step")
        data.metrics = [by_step[s] for s in sorted(by_step)]
    samples = root / "samples"
    if samples.is_dir():
        for path in samples.glob("step-*.jsonl"):
            match = _STEP_FILE.search(path.name)
            if match:
                data.sample_files.append((int(match.group(1)), path))
        data.sample_files.sort()
    evals = root / "eval"
    if evals.is_dir():
        for path in sorted(evals.glob("*.json")):
            try:
                payload = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                data.problems.append(f"{path.name}: {exc}")
                continue
            if is_results(payload):
                data.evals.append(payload)
                records = path.with_name(f"{path.stem}.records.jsonl")
                if records.is_file():
                    data.eval_records[str(payload.get("label", path.stem))] = records
        data.evals.sort(key=lambda p: p.get("created", 0.0))
    return data


def read_records(path: Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """The problem records of one samples or eval-records file (bad lines skipped)."""
    sink = [] if problems is None else problems
    return [r for _, r in _json_lines(path, sink) if isinstance(r, dict)]


def _json_lines(path: Path, problems: list[str]) -> list[tuple[int, Any]]:
    out = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        problems.append(f"{path.name}: {exc}")
        return out
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError:
            problems.append(f"{path.name} line {number} is not JSON (truncated?)")
    return out


def metric_series(
    metrics: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> tuple[list[float], list[float]]:
    """(steps, values) of one quantity: per record the first finite number among `names`, so a
    metric renamed mid-history (new name first, then the old ones) stays one line."""
    xs, ys = [], []
    for record in metrics:
        for name in names:
            value = record.get(name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and math.isfinite(value):
                xs.append(float(record["step"]))
                ys.append(float(value))
                break
    return xs, ys


def phase_shades(data: RunData) -> list[Shade]:
    """Spans of the stage schedule over the logged steps: from each record's `active_roles`,
    else recomputed from the config's trainer schedule (`Schedule.phase_boundaries`)."""
    logged = [(int(r["step"]), r.get("active_roles")) for r in data.metrics]
    if logged and all(isinstance(roles, str) and roles for _, roles in logged):
        shades: list[Shade] = []
        for step, roles in logged:
            if shades and shades[-1].roles == roles:
                shades[-1] = Shade(shades[-1].start, step + 0.5, roles)
            else:
                shades.append(Shade(step - 0.5, step + 0.5, str(roles)))
        return shades
    trainer = (data.config or {}).get("trainer") or {}
    steps = max((s for s, _ in logged), default=int(trainer.get("steps") or 0))
    try:
        schedule = Schedule(
            trainer.get("schedule", "stagewise"),
            phase_length=int(trainer.get("phase_steps", 30)),
            first_role=trainer.get("first_role", "executor"),
        )
    except (TypeError, ValueError):
        return []
    # a step index s (0-based) is logged as step s + 1 by the trainer
    return [
        Shade(p.start + 0.5, p.end + 0.5, "+".join(sorted(p.roles)))
        for p in schedule.phase_boundaries(steps)
    ]


__all__ = ["RunData", "Shade", "load_run", "metric_series", "phase_shades", "read_records"]
