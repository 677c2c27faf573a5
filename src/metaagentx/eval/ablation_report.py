"""An ablation's outputs: `ablation.json`, a markdown table and an HTML page with the paper's
figures (accuracy against stage length K; the pattern mix by difficulty, before and after RL)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from metaagentx.eval.ablation import AblationResult, StagePoint, seeds_above_zero
from metaagentx.eval.analysis import INVALID, PATTERNS
from metaagentx.eval.html_parts import image, missing, page, table, write_atomic
from metaagentx.eval.plots import PALETTE, figure_png
from metaagentx.eval.stats import Accuracy


def _pct(a: Accuracy | None) -> str:
    return "-" if a is None else f"{100 * a.mean:.1f} [{100 * a.low:.1f}, {100 * a.high:.1f}]"


def _points(a: Accuracy | None) -> str:
    return "-" if a is None else f"{100 * a.mean:+.1f} [{100 * a.low:+.1f}, {100 * a.high:+.1f}]"


def arm_table(result: AblationResult) -> list[dict[str, str]]:
    rows = []
    for r in result.rows:
        row = {"arm": r.arm, "overrides": " ".join(r.overrides) or "(baseline pipeline)"}
        for seed in result.seeds:
            value = r.per_seed.get(seed)
            row[f"seed {seed}"] = "-" if value is None else f"{100 * value:.1f}"
        row["accuracy (95% CI)"] = _pct(r.accuracy)
        row[f"vs {result.baseline}"] = (
            "baseline" if r.arm == result.baseline else _points(r.vs_baseline)
        )
        row["vs SFT"] = _points(r.vs_sft)
        rows.append(row)
    return rows


SWAP_COLUMNS = ("arm", "seed", "both roles (RL+RL)", "designer gain", "executor gain")


def swap_table(result: AblationResult) -> list[dict[str, str]]:
    return [
        {
            "arm": r.arm,
            "seed": str(r.seed),
            "both roles (RL+RL)": _points(r.both),
            "designer gain": _points(r.designer),
            "executor gain": _points(r.executor),
        }
        for r in result.swap
    ]


def swap_summary(result: AblationResult) -> list[str]:
    """Per swap arm: in how many seeds each role's gain has a 95% interval above zero."""
    lines = []
    for arm in dict.fromkeys(r.arm for r in result.swap):
        rows = [r for r in result.swap if r.arm == arm]
        lines.append(
            f"{arm}: designer gain > 0 (95% CI) in {seeds_above_zero(rows, 'designer')} of "
            f"{len(rows)} seeds; executor gain > 0 in {seeds_above_zero(rows, 'executor')} of "
            f"{len(rows)}"
        )
    return lines


def benchmark_table(result: AblationResult) -> tuple[list[dict[str, str]], list[str]]:
    """Accuracy per benchmark (e.g. per difficulty level) of the SFT model and of every arm."""
    names = list(dict.fromkeys(b for found in result.by_benchmark.values() for b in found))
    rows = [
        {"model": model, **{b: _pct(found.get(b)) for b in names}}
        for model, found in result.by_benchmark.items()
    ]
    return rows, ["model", *names]


def pattern_order(fractions: Iterable[Mapping[str, float]]) -> list[str]:
    """The patterns present, in the taxonomy's order (single first, invalid last)."""
    seen = {p for f in fractions for p in f}
    known = [p for p in PATTERNS if p in seen]
    return known + sorted(seen - {*known, INVALID}) + ([INVALID] if INVALID in seen else [])


def pattern_table(result: AblationResult) -> tuple[list[dict[str, str]], list[str]]:
    patterns = pattern_order(f for groups in result.patterns.values() for f in groups.values())
    rows = []
    for model, groups in result.patterns.items():
        for group, fractions in groups.items():
            row = {"model": model, "domain/level": group}
            row.update({p: f"{100 * fractions.get(p, 0.0):.0f}%" for p in patterns})
            rows.append(row)
    return rows, ["model", "domain/level", *patterns]


def _markdown(rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r.get(c, "") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def ablation_markdown(result: AblationResult) -> str:
    arms = arm_table(result)
    parts = [
        f"# Ablation: {len(result.rows)} arms x {len(result.seeds)} seeds",
        "Held-out accuracy after RL (designed mode, avg@k, pooled over seeds). Differences are "
        f"paired by problem and seed against `{result.baseline}` and against the SFT model, with "
        "95% bootstrap intervals over problems (points).",
        f"SFT model before RL: {_pct(result.sft)}",
        _markdown(arms, list(arms[0]) if arms else ["arm"]),
    ]
    if result.by_benchmark:
        rows, columns = benchmark_table(result)
        parts += ["## Accuracy by benchmark (designed mode, pooled over seeds)"]
        parts += [_markdown(rows, columns)]
    if result.swap:
        parts += ["## Swap test (gains over SFT designer + SFT executor, points)"]
        parts += [_markdown(swap_table(result), SWAP_COLUMNS), *swap_summary(result)]
    if result.patterns:
        rows, columns = pattern_table(result)
        parts += ["## Patterns by difficulty (designed mode, share of designs)"]
        parts += [_markdown(rows, columns)]
    if result.missing:
        parts.append("Not finished: " + ", ".join(result.missing))
    if result.wall_s is not None:
        parts.append(f"Wall time: {result.wall_s / 60:.1f} min")
    return "\n\n".join(parts) + "\n"


def stage_length_figure(points: Sequence[StagePoint], sft: Accuracy | None) -> str | None:
    """Accuracy after RL against phase length K (log axis), with 95% intervals."""
    if not points:
        return None
    figure = Figure(figsize=(5.5, 3.4))
    axes = figure.add_subplot()
    ks = [p.phase_steps for p in points]
    means = [100 * p.accuracy.mean for p in points]
    errors = [
        [m - 100 * p.accuracy.low for m, p in zip(means, points, strict=True)],
        [100 * p.accuracy.high - m for m, p in zip(means, points, strict=True)],
    ]
    axes.errorbar(ks, means, yerr=errors, marker="o", capsize=3, color=PALETTE[0], label="RL")
    if sft is not None:
        axes.axhline(100 * sft.mean, color=PALETTE[7], linestyle="--", label="SFT")
    if len(set(ks)) > 1:
        axes.set_xscale("log")
    axes.set_xticks(sorted(set(ks)))
    axes.set_xticklabels([str(k) for k in sorted(set(ks))])
    axes.set_xlabel("stage length K (steps per phase)")
    axes.set_ylabel("held-out accuracy (%)")
    axes.set_title("stage-length sensitivity")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figure_png(figure)


def patterns_figure(patterns: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str | None:
    """One stacked bar per (model, domain/level): the pattern mix by difficulty."""
    bars = [(f"{m}\n{g}", f) for m, groups in patterns.items() for g, f in groups.items()]
    if not bars:
        return None
    names = pattern_order(f for _, f in bars)
    figure = Figure(figsize=(min(1.1 * len(bars) + 3, 16), 3.8))
    axes = figure.add_subplot()
    bottom = [0.0] * len(bars)
    for i, name in enumerate(names):
        heights = [f.get(name, 0.0) for _, f in bars]
        axes.bar(range(len(bars)), heights, bottom=bottom, color=PALETTE[i % len(PALETTE)],
                 label=name)  # fmt: skip
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.set_xticks(range(len(bars)))
    axes.set_xticklabels([label for label, _ in bars], fontsize=7, rotation=45, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("share of designs")
    axes.set_title("patterns by difficulty")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return figure_png(figure)


def ablation_html(result: AblationResult) -> str:
    arms = arm_table(result)
    sections = [
        ("table", "Accuracy after RL", table(arms, list(arms[0])) if arms else missing("no run finished")),
        ("stage", "Stage length", image(stage_length_figure(result.stage_length, result.sft),
                                        "accuracy against K", "no stagewise arm finished")),
    ]  # fmt: skip
    if result.by_benchmark:
        rows, columns = benchmark_table(result)
        sections.append(("benchmarks", "By benchmark", table(rows, columns)))
    if result.swap:
        summary = "".join(f"<p>{line}</p>" for line in swap_summary(result))
        sections.append(("swap", "Swap test", table(swap_table(result), SWAP_COLUMNS) + summary))
    rows, columns = pattern_table(result)
    body = image(patterns_figure(result.patterns), "patterns by difficulty", "no designs recorded")
    sections.append(("patterns", "Patterns by difficulty", body + table(rows, columns)))
    if result.missing:
        sections.append(("missing", "Not finished", missing(", ".join(result.missing))))
    subtitle = f"baseline {result.baseline}; seeds {result.seeds}; SFT {_pct(result.sft)}"
    return page("ablation", "Ablation", subtitle, sections)


def write_ablation_outputs(out: Path, result: AblationResult) -> dict[str, Path]:
    """`ablation.json`, `ablation.md` and `ablation.html` in `out`."""
    return {
        "json": write_atomic(out / "ablation.json", json.dumps(result.to_dict(), indent=1)),
        "markdown": write_atomic(out / "ablation.md", ablation_markdown(result)),
        "html": write_atomic(out / "ablation.html", ablation_html(result)),
    }


__all__ = [
    "ablation_html",
    "ablation_markdown",
    "patterns_figure",
    "stage_length_figure",
    "write_ablation_outputs",
]
