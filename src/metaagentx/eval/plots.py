"""The report's figures as base64 PNGs (matplotlib's Agg canvas; no pyplot, no global state).

Each function returns None when it has nothing to draw, so the report can say so instead of
showing an empty frame.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from metaagentx.eval.run_data import Shade

ROLE_COLORS = {"executor": "#cfe3f7", "designer": "#fde2c4", "designer+executor": "#d9f0d3"}
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939",
)  # fmt: skip


def _png(figure: Figure) -> str:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _series(metrics: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for record in metrics:
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            xs.append(float(record["step"]))
            ys.append(float(value))
    return xs, ys


def _shade(axes: Any, shades: Sequence[Shade]) -> list[Patch]:
    seen: dict[str, Patch] = {}
    for shade in shades:
        color = ROLE_COLORS.get(shade.roles, "#eeeeee")
        axes.axvspan(shade.start, shade.end, color=color, alpha=0.8, linewidth=0, zorder=0)
        seen.setdefault(shade.roles, Patch(color=color, label=f"learning: {shade.roles}"))
    return list(seen.values())


def line_plot(
    metrics: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    title: str,
    ylabel: str,
    shades: Sequence[Shade] = (),
) -> str | None:
    """Lines of `keys` over steps (`val/...` keys dashed with markers), phases shaded."""
    drawn = [(key, *_series(metrics, key)) for key in keys]
    drawn = [d for d in drawn if d[1]]
    if not drawn:
        return None
    figure = Figure(figsize=(10, 3.2))
    axes = figure.add_subplot()
    handles = _shade(axes, shades)
    values = [y for _, _, ys in drawn for y in ys]
    axes.set_ylim(min(-0.02, min(values) - 0.02), max(1.02, max(values) + 0.02))
    for index, (key, xs, ys) in enumerate(drawn):
        style = (
            {"linestyle": "--", "marker": "o", "markersize": 3} if key.startswith("val/") else {}
        )
        (line,) = axes.plot(xs, ys, color=PALETTE[index % len(PALETTE)], label=key, **style)
        handles.append(line)
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(figure)


def stacked_fractions(
    steps: Sequence[float], fractions: Mapping[str, Sequence[float]], title: str,
    shades: Sequence[Shade] = (),
) -> str | None:  # fmt: skip
    """A stacked area of per-step fractions (one band per pattern)."""
    if not steps or not fractions:
        return None
    figure = Figure(figsize=(10, 3.2))
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
    return _png(figure)


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
    return _png(figure)


__all__ = ["accuracy_bars", "line_plot", "stacked_fractions"]
