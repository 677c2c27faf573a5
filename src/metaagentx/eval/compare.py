"""`metaagentx report RUN_A RUN_B ...`: one self-contained HTML page comparing runs.

Seeds and ablations are judged side by side: every curve with one line per run (a color per
run, named in the nav bar), the evaluation results of every run with their 95% intervals, and
the configuration keys whose values differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from metaagentx.eval.curve_sections import curve_grid, rl_metrics
from metaagentx.eval.curves import CURVES, SFT_CURVES, TRAINING_CURVES, Curve
from metaagentx.eval.html_parts import missing, page, table, write_atomic
from metaagentx.eval.plots import PALETTE
from metaagentx.eval.run_data import RunData, load_run
from metaagentx.eval.sft_section import find_sft_run, sft_records
from metaagentx.eval.tables import baseline_rows
from metaagentx.eval.trace_html import esc

DEFAULT_OUT = "report-compare.html"
ABSENT = "(absent)"


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Directory names, with as many parent directories as it takes to tell them apart."""
    resolved = [p.resolve() for p in paths]
    deepest = max(len(p.parts) for p in resolved)
    for depth in range(1, deepest + 1):
        labels = ["/".join(p.parts[-depth:]).removeprefix("//") for p in resolved]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{label} #{i + 1}" for i, label in enumerate(labels)]  # the same dir twice


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A config as dotted keys -> JSON-rendered leaf values (lists stay one value)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(value, default=str, ensure_ascii=False)}


def config_diff(runs: Sequence[tuple[str, RunData]]) -> list[dict[str, str]]:
    """Rows (key, one value per run) of the keys whose values are not the same in every run
    that has a config."""
    flat = [(label, flatten(data.config)) for label, data in runs if data.config is not None]
    keys = sorted(set().union(*(f.keys() for _, f in flat))) if flat else []
    rows = []
    for key in keys:
        values = {label: f.get(key, ABSENT) for label, f in flat}
        if len(set(values.values())) > 1:
            rows.append({"key": key, **values})
    return rows


def eval_table(runs: Sequence[tuple[str, RunData]]) -> list[dict[str, str]]:
    """One row per (evaluation label, benchmark, mode): each run's avg@k [95% CI] and n."""
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    for label, data in runs:
        for row in baseline_rows(data.evals):
            key = (row["label"], row["benchmark"], row["mode"])
            cells = rows.setdefault(
                key, {"evaluation": key[0], "benchmark": key[1], "mode": key[2]}
            )
            cells[label] = f"{row['avg@k']} (k={row['k']}, n={row['problems']})"
    return list(rows.values())


def _legend(labels: Sequence[str]) -> str:
    swatches = "".join(
        f'<span class="run"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>'
        f"{esc(label)}</span>"
        for i, label in enumerate(labels)
    )
    return f'<span class="legend">{swatches}</span>'


def _runs_section(runs: Sequence[tuple[str, RunData]]) -> str:
    rows = []
    for label, data in runs:
        metrics = rl_metrics(data)
        _, sft_from = find_sft_run(data)
        rows.append(
            {
                "run": label,
                "directory": str(data.run_dir),
                "RL steps logged": str(len(metrics)),
                "last step": str(metrics[-1]["step"]) if metrics else "-",
                "evaluations": ", ".join(str(p.get("label")) for p in data.evals) or "-",
                "SFT": sft_from,
            }
        )
    note = (
        "<p class='dim'>Colors: one per run (legend in the bar above); in each plot the line "
        "style tells the series apart. Stage shading is left out: runs may differ in it.</p>"
    )
    return note + table(rows, rows[0].keys())


def _curves(
    curves: Sequence[Curve], runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]
) -> str:
    if not any(metrics for _, metrics in runs):
        return missing("No run has metrics for these curves.")
    return curve_grid(curves, runs, who="any run")


def _sft_runs(runs: Sequence[tuple[str, RunData]]) -> list[tuple[str, list[Any]]]:
    out = []
    for label, data in runs:
        sft, _ = find_sft_run(data)
        out.append((label, sft_records(sft.metrics) if sft is not None else []))
    return out


def build_comparison_html(runs: Sequence[tuple[str, RunData]]) -> str:
    """The comparison page of labelled runs as one HTML string."""
    labels = [label for label, _ in runs]
    rl = [(label, rl_metrics(data)) for label, data in runs]
    evals = eval_table(runs)
    diff = config_diff(runs)
    no_config = [label for label, data in runs if data.config is None]
    diff_html = table(diff, ["key", *labels]) if diff else missing("No config key differs.")
    if no_config:
        diff_html += missing("No config.yaml in: " + ", ".join(no_config) + ".")
    sections = [
        ("runs", "Runs", _runs_section(runs)),
        ("training", "Training curves", _curves(TRAINING_CURVES, rl)),
        ("optimisation", "Optimisation curves", _curves(CURVES, rl)),
        ("sft", "SFT", _curves(SFT_CURVES, _sft_runs(runs))),
        (
            "evaluations",
            "Evaluation results",
            "<p class='dim'>avg@k in percent with its 95% confidence interval, as each run's "
            "eval/*.json has it.</p>" + table(evals, ["evaluation", "benchmark", "mode", *labels])
            if evals
            else missing("No run has evaluation results (RUN_DIR/eval/*.json)."),
        ),
        ("config", "Configuration differences", diff_html),
    ]
    return page(
        "metaagentx comparison: " + ", ".join(labels),
        "MetaAgent-X run comparison",
        " vs ".join(labels),
        sections,
        nav=_legend(labels),
    )


def write_comparison(run_dirs: Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Compare two or more run directories in one HTML file, written to `out` (default
    ./report-compare.html); returns its path. Raises ValueError for fewer than two runs and
    FileNotFoundError for a directory that does not exist."""
    paths = [Path(d) for d in run_dirs]
    if len(paths) < 2:
        raise ValueError("a comparison needs at least two run directories")
    for path in paths:
        if not path.is_dir():
            raise FileNotFoundError(f"run directory '{path}' does not exist")
    runs = list(zip(run_labels(paths), (load_run(p) for p in paths), strict=True))
    target = Path(out) if out is not None else Path(DEFAULT_OUT)
    return write_atomic(target, build_comparison_html(runs))


__all__ = [
    "DEFAULT_OUT",
    "build_comparison_html",
    "config_diff",
    "flatten",
    "run_labels",
    "write_comparison",
]
