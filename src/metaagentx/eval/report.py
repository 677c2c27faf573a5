"""`metaagentx report RUN_DIR`: one self-contained HTML file about a run.

Inline CSS and JS, figures as base64 PNGs, no network: the file can be mailed or archived and
still opens. Every section is always present and says plainly when its data is missing. All
text that came from a model, a dataset or a config (prompts, designs, agent turns, answers,
file contents) is HTML-escaped, and a Content-Security-Policy forbids anything but the page's
own inline code and data-URI images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from metaagentx.eval.analysis import (
    PATTERNS,
    DesignRow,
    compare_designs,
    pattern_distribution,
    rows_from_records,
)
from metaagentx.eval.curve_sections import optimisation_section, rl_metrics
from metaagentx.eval.html_parts import image, missing, page, table, write_atomic
from metaagentx.eval.plots import accuracy_bars, line_plot, stacked_fractions
from metaagentx.eval.run_data import RunData, load_run, phase_shades, read_records
from metaagentx.eval.sft_section import sft_section
from metaagentx.eval.tables import COLUMNS, GAIN_COLUMNS, baseline_rows, domain_rows, gain_rows
from metaagentx.eval.trace_html import esc, eval_groups, render_traces

SECTIONS = (
    ("summary", "Summary"),
    ("config", "Configuration"),
    ("curves", "Training curves"),
    ("optimisation", "Optimisation curves"),
    ("sft", "SFT"),
    ("baselines", "Evaluation and baselines"),
    ("patterns", "Design patterns"),
    ("traces", "Trace browser"),
)
MAX_PATTERN_STEPS = 100  # sample files read for the structural pattern plot (evenly spaced)

# ---- sections ---------------------------------------------------------------------------------


def summary_section(data: RunData) -> str:
    cards = []
    if data.metrics:
        last = data.metrics[-1]
        cards.append(("steps logged", f"{len(data.metrics)} (last {last['step']})"))
        for key in ("reward/designer", "reward/executor", "accuracy/all", "val/accuracy/all"):
            if isinstance(last.get(key), int | float):
                cards.append((f"last {key}", f"{last[key]:.3f}"))
    cards.append(("sample files", str(len(data.sample_files))))
    cards.append(("evaluations", str(len(data.evals))))
    grid = "".join(
        f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in cards
    )
    parts = [f'<div class="grid">{grid}</div>']
    gains = gain_rows(data.evals)
    if gains:
        parts.append(
            "<h3>Gains over the earliest evaluation</h3><p class='dim'>Difference in avg@k "
            "(points) on the same problems, with a paired bootstrap 95% interval (a rescaled "
            "Wilson interval when every problem moved alike).</p>"
        )
        parts.append(table(gains, GAIN_COLUMNS))
    if data.problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in data.problems[:50])
        parts.append(f"<h3>Data that could not be read</h3><ul>{items}</ul>")
    return "".join(parts)


def config_section(data: RunData) -> str:
    if data.config_text is None:
        return missing("No config.yaml in this run directory.")
    return f"<p class='dim'>The resolved configuration of the run.</p><pre>{esc(data.config_text)}</pre>"


def _metric_keys(metrics: Sequence[Mapping[str, Any]], prefix: str) -> list[str]:
    keys: dict[str, None] = {}
    for record in metrics:
        for key in record:
            if key.startswith(prefix):
                keys[key] = None
    return sorted(keys)


def curves_section(data: RunData) -> str:
    m = rl_metrics(data)
    if not m:
        if data.metrics:
            return missing("No RL steps in this run (an SFT run: see the SFT section).")
        return missing("No training metrics yet (metrics.jsonl is absent or empty).")
    shades = phase_shades(data)
    accuracy = _metric_keys(m, "accuracy/") + _metric_keys(m, "val/accuracy/")
    validity = ["designs/valid_frac", "val/designs/valid_frac"]
    note = (
        "<p class='dim'>Shading: which role learned at each step (stagewise co-evolution). "
        "Solid lines: the training rollouts; dashed: held-out validation.</p>"
    )
    return note + "".join(
        [
            image(
                line_plot(m, _metric_keys(m, "reward/"), "Reward by role", "mean reward", shades),
                "reward by role",
                "No reward metrics logged.",
            ),
            image(
                line_plot(m, accuracy, "Accuracy by domain", "accuracy", shades),
                "accuracy by domain",
                "No accuracy metrics logged.",
            ),
            image(
                line_plot(m, validity, "Design validity", "valid fraction", shades),
                "design validity",
                "No design-validity metrics logged (no designed rollouts).",
            ),
        ]
    )


def baselines_section(data: RunData) -> str:
    if not data.evals:
        return missing(
            "No evaluation results yet: run `metaagentx eval CONFIG output_dir=RUN_DIR` to add "
            "them (they are read from RUN_DIR/eval/*.json)."
        )
    parts = [
        "<p class='dim'>avg@k in percent with 95% confidence intervals (Wilson for k=1, "
        "bootstrap over problems for k&gt;1); valid: designs passing the static check; "
        "agents: mean agents per valid design.</p>",
        image(accuracy_bars(data.evals), "accuracy by mode", "No accuracy to plot."),
        table(baseline_rows(data.evals), COLUMNS),
        "<h3>By domain</h3>",
        table(domain_rows(data.evals), ("label", "benchmark", "mode", "domain", "avg@k")),
    ]
    gains = gain_rows(data.evals)
    if gains:
        parts += ["<h3>Gains over the earliest evaluation</h3>", table(gains, GAIN_COLUMNS)]
    return "".join(parts)


def _declared_patterns(data: RunData) -> tuple[list[float], dict[str, list[float]]]:
    keys = _metric_keys(data.metrics, "patterns/")
    steps: list[float] = []
    bands: dict[str, list[float]] = {k.removeprefix("patterns/"): [] for k in keys}
    for record in data.metrics:
        counts = {k: float(record.get(k) or 0.0) for k in keys}
        total = sum(counts.values())
        if total <= 0:
            continue
        steps.append(float(record["step"]))
        for key, count in counts.items():
            bands[key.removeprefix("patterns/")].append(count / total)
    return steps, bands


def _structural_patterns(data: RunData) -> tuple[list[float], dict[str, list[float]]]:
    files = data.sample_files
    if len(files) > MAX_PATTERN_STEPS:
        stride = len(files) / MAX_PATTERN_STEPS
        files = [files[int(i * stride)] for i in range(MAX_PATTERN_STEPS)]
    per_step: list[tuple[float, dict[str, float]]] = []
    for step, path in files:
        rows = rows_from_records(read_records(path, data.problems))
        if rows:  # samples/step-N holds the rollout of the step logged as N + 1
            per_step.append((float(step + 1), pattern_distribution(rows)["all"]))
    names = [p for p in (*PATTERNS, "invalid") if any(p in d for _, d in per_step)]
    return [s for s, _ in per_step], {n: [d.get(n, 0.0) for _, d in per_step] for n in names}


def patterns_section(data: RunData) -> str:
    parts = []
    shades = phase_shades(data)
    steps, bands = _declared_patterns(data)
    parts.append("<h3>Declared patterns over training</h3>")
    parts.append(
        image(
            stacked_fractions(steps, bands, "Declared pattern (valid designs)", shades),
            "declared patterns",
            "No pattern metrics logged yet.",
        )
    )
    steps, bands = _structural_patterns(data)
    parts.append(
        "<h3>Structure over training (from the scripts)</h3><p class='dim'>Each design's "
        "pattern read from its script's syntax tree; invalid = rejected by the static check.</p>"
    )
    parts.append(
        image(
            stacked_fractions(steps, bands, "Structural pattern of sampled designs", shades),
            "structural patterns",
            "No sample files yet (samples/step-*.jsonl).",
        )
    )
    parts.append("<h3>Evaluation designs</h3>")
    parts.append(_eval_patterns(data))
    return "".join(parts)


def _eval_patterns(data: RunData) -> str:
    rows = []
    for payload in data.evals:
        for result in payload.get("results", []):
            for group, fractions in (result.get("patterns_by_difficulty") or {}).items():
                top = sorted(fractions.items(), key=lambda kv: -kv[1])[:4]
                rows.append(
                    {
                        "label": payload.get("label"),
                        "benchmark": result["benchmark"],
                        "mode": result["mode"],
                        "difficulty": group,
                        "patterns": ", ".join(f"{p} {100 * f:.0f}%" for p, f in top),
                    }
                )
    if not rows:
        return missing("No evaluation results yet.")
    out = table(rows, ("label", "benchmark", "mode", "difficulty", "patterns"))
    designed = [  # labels with designed-mode records, oldest first
        str(p.get("label"))
        for p in data.evals
        if str(p.get("label")) in data.eval_records
        and any(r.get("mode") == "designed" for r in p.get("results", []))
    ]
    if len(designed) >= 2:
        first, last = designed[0], designed[-1]
        before = _designed_rows(data.eval_records[first], data.problems)
        after = _designed_rows(data.eval_records[last], data.problems)
        comparison = compare_designs(before, after)
        delta = [
            {
                "metric": k,
                first: f"{comparison['before'].get(k, 0.0):.3f}",
                last: f"{comparison['after'].get(k, 0.0):.3f}",
                "delta": f"{v:+.3f}",
            }
            for k, v in comparison["delta"].items()
        ]
        out += f"<h3>Designed mode: {esc(first)} vs {esc(last)}</h3>"
        out += table(delta, ("metric", first, last, "delta"))
    return out


def _designed_rows(path: Path, problems: list[str]) -> list[DesignRow]:
    return rows_from_records(r for r in read_records(path, problems) if r.get("mode") == "designed")


def traces_section(data: RunData, steps: int, per_step: int) -> str:
    controls = (
        '<div class="controls"><input type="search" placeholder="filter problems (id, text)" '
        'oninput="filterTraces(this.value)"><button onclick="setAll(true)">expand all</button>'
        '<button onclick="setAll(false)">collapse all</button></div>'
    )
    training: list[tuple[str, list[dict[str, Any]]]] = []
    for step, path in data.sample_files[-steps:] if steps else []:
        title = f"training step {step + 1} ({path.name})"
        training.append((title, read_records(path, data.problems)[:per_step]))
    labels = [str(p.get("label")) for p in data.evals if str(p.get("label")) in data.eval_records]
    evaluations = {  # oldest evaluation first, as in the tables
        label: eval_groups(label, read_records(data.eval_records[label], data.problems), per_step)
        for label in dict.fromkeys(labels)
    }
    shown = [g for g in training if g[1]] + [g for gs in evaluations.values() for g in gs if g[1]]
    if not shown:
        return missing("No traces yet: no samples/step-*.jsonl and no evaluation records.")
    note = (
        f"<p class='dim'>{sum(len(r) for _, r in shown)} problems from {len(shown)} "
        "rollout(s): problem → designs → executions → agent turns. An «adv» badge is the "
        "advantage the update gave a design or a turn (runs that log them).</p>"
    )
    parts = [controls, note, "<h3>Training rollouts</h3>"]
    parts.append(
        render_traces(training, "h4")
        if any(r for _, r in training)
        else missing("No training samples (samples/step-*.jsonl).")
    )
    for label, groups in evaluations.items():
        parts += [f"<h3>Evaluation: {esc(label)}</h3>", render_traces(groups, "h4")]
    if not evaluations:
        parts += ["<h3>Evaluations</h3>", missing("No evaluation records (eval/*.records.jsonl).")]
    return "".join(parts)


def build_html(data: RunData, trace_steps: int = 2, trace_problems: int = 6) -> str:
    """The whole report as one HTML string."""
    bodies = {
        "summary": summary_section(data),
        "config": config_section(data),
        "curves": curves_section(data),
        "optimisation": optimisation_section(data),
        "sft": sft_section(data),
        "baselines": baselines_section(data),
        "patterns": patterns_section(data),
        "traces": traces_section(data, trace_steps, trace_problems),
    }
    sections = [(sid, title, bodies[sid]) for sid, title in SECTIONS]
    return page(f"metaagentx report: {data.run_dir.name}", "MetaAgent-X run report",
                str(data.run_dir), sections)  # fmt: skip


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    trace_steps: int = 2,
    trace_problems: int = 6,
) -> Path:
    """Render RUN_DIR's report to `out` (default RUN_DIR/report.html) and return the path."""
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"run directory '{root}' does not exist")
    data = load_run(root)
    path = Path(out) if out is not None else root / "report.html"
    return write_atomic(path, build_html(data, trace_steps, trace_problems))


def section_ids() -> list[str]:
    """The ids every report has (what tests and links rely on)."""
    return [sid for sid, _ in SECTIONS]


__all__ = ["SECTIONS", "build_html", "esc", "section_ids", "write_report"]
