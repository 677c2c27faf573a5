"""The report's figures as base64 PNGs (matplotlib's Agg canvas; no pyplot, no global state).

Each function returns None when it has nothing to draw, so the report can say so instead of
showing an empty frame.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from metaagentx.eval.run_data import Shade, metric_series

ROLE_COLORS = {"executor": "#cfe3f7", "designer": "#fde2c4", "designer+executor": "#d9f0d3"}
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939",
)  # fmt: skip


def figure_png(figure: Figure) -> str:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _shade(axes: Any, shades: Sequence[Shade]) -> list[Patch]:
    seen: dict[str, Patch] = {}
    for shade in shades:
        color = ROLE_COLORS.get(shade.roles, "#eeeeee")
        axes.axvspan(shade.start, shade.end, color=color, alpha=0.8, linewidth=0, zorder=0)
        seen.setdefault(shade.roles, Patch(color=color, label=f"learning: {shade.roles}"))
    return list(seen.values())


@dataclass(frozen=True)
class Line:
    """One drawn series: points, legend label (None: no legend entry) and look."""

    xs: Sequence[float]
    ys: Sequence[float]
    label: str | None
    color: str
    style: str = "-"
    marker: str | None = None


SMALL = (4.4, 2.5)  # one cell of a grid of plots
WIDE = (10, 3.2)


def lines_plot(
    lines: Sequence[Line],
    title: str,
    ylabel: str,
    shades: Sequence[Shade] = (),
    *,
    size: tuple[float, float] = WIDE,
    unit_range: bool = False,
    legend: Sequence[Any] = (),
) -> str | None:
    """Lines over steps, phases shaded; `unit_range` keeps [0, 1] in view (rates, accuracy).
    `legend` adds handles of its own (e.g. one per run) to those of labelled lines."""
    lines = [line for line in lines if line.xs]
    if not lines:
        return None
    small = size[0] < WIDE[0]
    figure = Figure(figsize=size)
    axes = figure.add_subplot()
    shading = _shade(axes, shades)  # small plots: the page explains the colors once
    handles = [] if small else shading
    if unit_range:
        values = [y for line in lines for y in line.ys]
        axes.set_ylim(min(-0.02, min(values) - 0.02), max(1.02, max(values) + 0.02))
    for line in lines:
        lone = len(line.xs) == 1  # a single point: a line of it would not show
        (drawn,) = axes.plot(
            list(line.xs), list(line.ys), color=line.color, linestyle=line.style,
            marker=line.marker or ("o" if lone else None), markersize=3, label=line.label,
            linewidth=1.4 if small else 1.6,
        )  # fmt: skip
        if line.label is not None:
            handles.append(drawn)
    handles.extend(legend)
    axes.set_xlim(left=0)  # steps from the start, also when one point was logged
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title, fontsize=9 if small else 12)
    axes.set_xlabel("step", fontsize=8 if small else 10)
    axes.set_ylabel(ylabel, fontsize=8 if small else 10)
    axes.tick_params(labelsize=7 if small else 9)
    axes.grid(alpha=0.3)
    if handles and small:
        axes.legend(handles=handles, fontsize=6, loc="best", framealpha=0.7)
    elif handles:
        axes.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return figure_png(figure)


def line_plot(
    metrics: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    title: str,
    ylabel: str,
    shades: Sequence[Shade] = (),
) -> str | None:
    """Lines of `keys` (rates in [0, 1]) over steps, `val/...` keys dashed with markers."""
    found = [(key, metric_series(metrics, (key,))) for key in keys]
    lines = [
        Line(
            *points,
            label=key,
            color=PALETTE[index % len(PALETTE)],
            style="--" if key.startswith("val/") else "-",
            marker="o" if key.startswith("val/") else None,
        )
        for index, (key, points) in enumerate((k, p) for k, p in found if p[0])
    ]
    return lines_plot(lines, title, ylabel, shades, unit_range=True)


def stacked_fractions(
    steps: Sequence[float], fractions: Mapping[str, Sequence[float]], title: str,
    shades: Sequence[Shade] = (),
) -> str | None:  # fmt: skip
    """A stacked area of per-step fractions (one band per pattern)."""
    if not steps or not fractions:
        return None
    figure = Figure(figsize=WIDE)
    axes = figure.add_subplot()
    handles = _shade(axes, shades)
    names = list(fractions)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    if len(steps) == 1:  # one step: a single stacked bar says more than a zero-width area
        bottom = 0.0
        for name, color in zip(names, colors, strict=True):
            value = fractions[name][0]
            handles.append(axes.bar(steps, [value], bottom=bottom, color=color, label=name))
            bottom += value
    else:
        bands = axes.stackplot(
            list(steps), *[list(fractions[n]) for n in names], labels=names, colors=colors
        )
        handles.extend(bands)
    axes.set_ylim(0, 1)
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel("fraction of designs")
    axes.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return figure_png(figure)


def accuracy_bars(payloads: Sequence[Mapping[str, Any]]) -> str | None:
    """avg@k with 95% intervals: one panel per benchmark, bars per mode, one color per label."""
    bars = [
        (str(p.get("label")), r["benchmark"], r["mode"], r["accuracy"])
        for p in payloads
        for r in p.get("results", [])
        if r.get("accuracy")
    ]
    if not bars:
        return None
    benchmarks = list(dict.fromkeys(b for _, b, _, _ in bars))
    labels = list(dict.fromkeys(label for label, _, _, _ in bars))
    figure = Figure(figsize=(min(3.6 * len(benchmarks) + 1.5, 14), 3.4))
    for index, benchmark in enumerate(benchmarks):
        axes = figure.add_subplot(1, len(benchmarks), index + 1)
        modes = list(dict.fromkeys(m for _, b, m, _ in bars if b == benchmark))
        width = 0.8 / len(labels)
        for li, label in enumerate(labels):
            for mi, mode in enumerate(modes):
                found = [a for lb, b, m, a in bars if (lb, b, m) == (label, benchmark, mode)]
                if not found:
                    continue
                a = found[0]
                mean = 100 * a["mean"]
                error = [[mean - 100 * a["low"]], [100 * a["high"] - mean]]
                axes.bar(
                    mi + (li - (len(labels) - 1) / 2) * width, mean, width,
                    yerr=error, capsize=3, color=PALETTE[li % len(PALETTE)],
                    label=label if mi == 0 else None,
                )  # fmt: skip
        axes.set_xticks(range(len(modes)))
        axes.set_xticklabels(modes, rotation=30, ha="right", fontsize=7)
        axes.set_ylim(0, 100)
        axes.set_title(benchmark, fontsize=9)
        axes.grid(axis="y", alpha=0.3)
        if index == 0:
            axes.set_ylabel("avg@k (%) with 95% CI")
    figure.legend(
        handles=[Patch(color=PALETTE[i % len(PALETTE)], label=lb) for i, lb in enumerate(labels)],
        fontsize=7,
        loc="upper right",
    )
    return figure_png(figure)


__all__ = [
    "PALETTE",
    "SMALL",
    "Line",
    "accuracy_bars",
    "figure_png",
    "line_plot",
    "lines_plot",
    "stacked_fractions",
]
