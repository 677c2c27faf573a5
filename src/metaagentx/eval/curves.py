"""Which logged metrics each report curve draws: the one table of metric names.

The RL metrics were renamed to verl's names (`actor/pg_loss`, `timing_s/step`, ...); runs
already on disk carry the old ones (`update/pg_loss`, `time/step_s`, ...). Every series lists
its names new first, and each record contributes the first one it has, so old runs, new runs
and runs resumed across the rename all draw. `{owner}` (policy, designer, executor) and `{role}`
(designer, executor) stand for one path segment, expanded from the keys a run logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.lines import Line2D

from metaagentx.eval.plots import PALETTE, SMALL, Line, lines_plot
from metaagentx.eval.run_data import Shade, metric_series

_SLOT = re.compile(r"\{(owner|role)\}")


@dataclass(frozen=True)
class Series:
    """One line: its legend label and metric names, the current name first."""

    label: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Curve:
    """One plot: its title, y-axis label and lines; `unit` keeps [0, 1] in view."""

    title: str
    ylabel: str
    series: tuple[Series, ...]
    unit: bool = False


def _s(label: str, *names: str) -> Series:
    return Series(label, names)


CURVES = (  # the optimisation curves of an RL run
    Curve(
        "Policy loss",
        "loss",
        (_s("pg_loss", "actor/pg_loss", "update/pg_loss"), _s("loss", "actor/loss", "update/loss")),
    ),
    Curve(
        "KL",
        "KL",
        (
            _s("ppo_kl (to rollout policy)", "actor/ppo_kl", "update/approx_kl"),
            _s("kl_loss (to reference)", "actor/kl_loss", "update/kl_ref"),
        ),
    ),
    Curve("Entropy", "nats/token", (_s("entropy", "actor/entropy", "update/entropy"),)),
    Curve(
        "Clip fraction",
        "fraction of tokens",
        (
            _s("pg_clipfrac", "actor/pg_clipfrac", "update/clip_frac"),
            _s("dual clip (lower)", "actor/pg_clipfrac_lower", "update/dual_clip_frac"),
        ),
    ),
    Curve(
        "Gradient norm",
        "norm",
        (
            _s("all", "actor/grad_norm", "update/grad_norm"),
            _s("{owner}", "actor/grad_norm/{owner}", "update/grad_norm/{owner}"),
        ),
    ),
    Curve("Learning rate", "lr", (_s("{owner}", "actor/lr/{owner}", "update/lr/{owner}"),)),
    Curve(
        "Response length",
        "tokens",
        (
            _s("{role} mean", "response_length/{role}/mean"),
            _s("{role} max", "response_length/{role}/max"),
        ),
    ),
    Curve(
        "Responses cut at max length",
        "fraction",
        (_s("{role}", "response_length/{role}/clip_ratio"),),
    ),
    Curve(
        "Throughput",
        "tokens/s",
        (
            _s("whole step", "perf/throughput"),
            _s("update", "perf/update_tokens_per_s", "update/tokens_per_s"),
        ),
    ),
    Curve(
        "Memory",
        "GB",
        (
            _s("CPU peak RSS", "perf/cpu_memory_used_gb"),
            _s("GPU max allocated", "perf/max_memory_allocated_gb"),
        ),
    ),
    Curve(
        "Time per step",
        "seconds",
        (
            _s("step", "timing_s/step", "time/step_s"),
            _s("designs", "timing_s/gen_designs", "time/designs_s"),
            _s("executions", "timing_s/gen_executions", "time/executions_s"),
            _s("update", "timing_s/update_actor", "time/update_s"),
        ),
    ),
)

TRAINING_CURVES = (  # what the RL run optimised, for overlays of several runs
    Curve("Reward by role", "mean reward", (_s("designer", "reward/designer"),
                                            _s("executor", "reward/executor")), unit=True),
    Curve("Accuracy", "accuracy", (_s("train", "accuracy/all"),
                                   _s("validation", "val/accuracy/all")), unit=True),
    Curve("Design validity", "valid fraction", (_s("train", "designs/valid_frac"),
                                                _s("validation", "val/designs/valid_frac")),
          unit=True),
)  # fmt: skip

SFT_CURVES = (  # a supervised warm-up run (records with "phase": "sft")
    Curve(
        "SFT loss",
        "cross-entropy",
        (_s("total", "loss"), _s("designer", "loss/designer"), _s("executor", "loss/executor")),
    ),
    Curve(
        "SFT validation: design validity",
        "valid fraction",
        (_s("greedy", "val/greedy/designs/valid"), _s("sampled", "val/sampled/designs/valid")),
        unit=True,
    ),
    Curve(
        "SFT validation: accuracy",
        "accuracy",
        (_s("greedy", "val/greedy/accuracy/all"), _s("sampled", "val/sampled/accuracy/all")),
        unit=True,
    ),
    Curve("SFT learning rate", "lr", (_s("{owner}", "lr/{owner}"),)),
    Curve("SFT gradient norm", "norm", (_s("{owner}", "grad_norm/{owner}"),)),
    Curve("SFT throughput", "tokens/s", (_s("tokens/s", "tokens_per_s"),)),
)

STYLES = ("-", "--", ":", "-.")


def _pattern(name: str) -> re.Pattern[str]:
    literals = _SLOT.split(name)[::2]  # split keeps the slot names at the odd indexes
    return re.compile("^" + "([^/]+)".join(re.escape(p) for p in literals) + "$")


def expand(curve: Curve, keys: Iterable[str]) -> list[Series]:
    """The curve's series with `{owner}`/`{role}` filled in from the logged `keys`."""
    keys = sorted(set(keys))
    out: list[Series] = []
    for series in curve.series:
        if not any(_SLOT.search(n) for n in series.names):
            out.append(series)
            continue
        values: dict[str, None] = {}
        for name in series.names:
            pattern = _pattern(name)
            values.update((m.group(1), None) for k in keys if (m := pattern.match(k)))
        for value in values:
            fill = {"owner": value, "role": value}
            out.append(
                Series(series.label.format(**fill), tuple(n.format(**fill) for n in series.names))
            )
    return out


def logged_keys(metrics: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every metric name any record has."""
    return {key for record in metrics for key in record}


def curve_plot(
    curve: Curve,
    runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
    shades: Sequence[Shade] = (),
) -> str | None:
    """One curve as a PNG; one run: a color per series; several: a color per run and a line
    style per series (the runs' colors are in the page's legend)."""
    keys = set().union(*(logged_keys(m) for _, m in runs))
    overlay = len(runs) > 1
    lines, legend = [], []
    for si, s in enumerate(expand(curve, keys)):
        marker = "o" if s.names[0].startswith("val/") else None
        style = STYLES[si % len(STYLES)] if overlay else "-"
        for ri, (_, metrics) in enumerate(runs):
            color = PALETTE[(ri if overlay else si) % len(PALETTE)]
            label = None if overlay else s.label
            lines.append(Line(*metric_series(metrics, s.names), label, color, style, marker))
        if overlay and any(line.xs for line in lines[-len(runs) :]):
            legend.append(
                Line2D([], [], color="#333", linestyle=style, marker=marker, label=s.label)
            )
    return lines_plot(
        lines, curve.title, curve.ylabel, shades, size=SMALL, unit_range=curve.unit, legend=legend
    )


__all__ = [
    "CURVES",
    "SFT_CURVES",
    "TRAINING_CURVES",
    "Curve",
    "Series",
    "curve_plot",
    "expand",
]
