"""Grids of small curve plots from the `curves` tables: the run report's optimisation section,
and the same grid with one line per run on the comparison page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from metaagentx.eval.curves import CURVES, Curve, curve_plot
from metaagentx.eval.html_parts import missing
from metaagentx.eval.run_data import RunData, Shade, phase_shades
from metaagentx.eval.trace_html import esc

Runs = Sequence[tuple[str, Sequence[Mapping[str, Any]]]]


def curve_grid(
    curves: Sequence[Curve], runs: Runs, shades: Sequence[Shade] = (), who: str = "this run"
) -> str:
    """The drawable curves as a grid of images, then the titles of those nothing logged."""
    cells, absent = [], []
    for curve in curves:
        png = curve_plot(curve, runs, shades)
        if png is None:
            absent.append(curve.title)
        else:
            cells.append(f'<img alt="{esc(curve.title)}" src="data:image/png;base64,{png}">')
    out = f'<div class="plots">{"".join(cells)}</div>' if cells else ""
    if absent:
        out += missing(f"Not logged by {who}: " + ", ".join(absent) + ".")
    return out


def rl_metrics(data: RunData) -> list[dict[str, Any]]:
    """The metric records of RL steps (an SFT run's records carry `"phase": "sft"`)."""
    return [r for r in data.metrics if r.get("phase") != "sft"]


def optimisation_section(data: RunData) -> str:
    metrics = rl_metrics(data)
    if not metrics:
        if data.metrics:
            return missing("No RL steps in this run (an SFT run: see the SFT section).")
        return missing("No training metrics yet (metrics.jsonl is absent or empty).")
    note = (
        "<p class='dim'>The policy update of each RL step (verl's metric names; older runs' "
        "names are read too). Shading: which role learned at each step, as in the training "
        "curves.</p>"
    )
    return note + curve_grid(CURVES, [(data.run_dir.name, metrics)], phase_shades(data))


__all__ = ["curve_grid", "optimisation_section", "rl_metrics"]
