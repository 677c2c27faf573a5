"""`metaagentx report RUN_DIR`: one self-contained HTML file about a run.

Inline CSS and JS, figures as base64 PNGs, no network: the file can be mailed or archived and
still opens. Every section is always present and says plainly when its data is missing. All
text that came from a model, a dataset or a config (prompts, designs, agent turns, answers,
file contents) is HTML-escaped, and a Content-Security-Policy forbids anything but the page's
own inline code and data-URI images.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from metaagentx.eval.analysis import (
    PATTERNS,
    DesignRow,
    compare_designs,
    pattern_distribution,
    rows_from_records,
)
from metaagentx.eval.plots import accuracy_bars, line_plot, stacked_fractions
from metaagentx.eval.run_data import RunData, load_run, phase_shades, read_records
from metaagentx.eval.tables import COLUMNS, GAIN_COLUMNS, baseline_rows, domain_rows, gain_rows
from metaagentx.eval.trace_html import esc, render_traces

SECTIONS = (
    ("summary", "Summary"),
    ("config", "Configuration"),
    ("curves", "Training curves"),
    ("baselines", "Evaluation and baselines"),
    ("patterns", "Design patterns"),
    ("traces", "Trace browser"),
)
MAX_PATTERN_STEPS = 100  # sample files read for the structural pattern plot (evenly spaced)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2733;background:#fafbfc}
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;font-size:13px;opacity:.85}
nav{background:#e8eef5;padding:6px 24px;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#1d3557;text-decoration:none;font-size:14px;font-weight:600}
main{padding:8px 24px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:10px 16px;margin:14px 0}
h2{font-size:18px;margin:6px 0 10px;color:#1d3557}h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d5dbe2;padding:3px 8px;text-align:left}th{background:#eef2f7}
tr:nth-child(even) td{background:#f8fafc}
pre{background:#f4f6f8;border:1px solid #e1e5ea;padding:6px 8px;white-space:pre-wrap;
word-break:break-word;font-size:12px;max-height:420px;overflow:auto;margin:4px 0}
img{max-width:100%;display:block;margin:6px 0}
.missing{color:#8a5a00;background:#fff6e0;border:1px solid #f0d9a0;padding:6px 10px;border-radius:4px}
.ok{color:#1b7a2f;font-weight:600}.bad{color:#b3261e;font-weight:600}.dim{color:#667}
details{margin:3px 0 3px 10px}summary{cursor:pointer;font-size:13px;padding:2px 0}
details.problem{border-left:3px solid #457b9d;padding-left:8px;margin:8px 0}
details.design{border-left:3px solid #e9c46a;padding-left:8px}
details.execution{border-left:3px solid #90be6d;padding-left:8px}
.turn{border:1px solid #e4e8ee;border-radius:4px;padding:4px 8px;margin:4px 0;background:#fcfdfe}
.tool{border-left:3px solid #9d4edd;padding-left:6px;margin:4px 0}
.controls{margin:6px 0}.controls input{padding:3px 6px;width:260px}
.controls button{margin-left:6px;padding:3px 10px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px}
.card{border:1px solid #dde3ea;border-radius:6px;padding:8px 10px;background:#f7f9fb}
.card b{display:block;font-size:20px;color:#1d3557}.card span{font-size:12px;color:#556}
"""

JS = """
function setAll(open){document.querySelectorAll('#traces details').forEach(d=>{d.open=open;});}
function filterTraces(text){
  const needle=text.toLowerCase();
  document.querySelectorAll('#traces details.problem').forEach(d=>{
    d.style.display=(d.dataset.search||'').toLowerCase().includes(needle)?'':'none';});
}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def missing(text: str) -> str:
    return f'<p class="missing">{esc(text)}</p>'


def table(rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> str:
    columns = list(columns)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(png: str | None, alt: str, absent: str) -> str:
    if png is None:
        return missing(absent)
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{png}">'


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
    if not data.metrics:
        return missing("No training metrics yet (metrics.jsonl is absent or empty).")
    shades = phase_shades(data)
    m = data.metrics
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
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for step, path in data.sample_files[-steps:] if steps else []:
        title = f"training step {step + 1} ({path.name})"
        groups.append((title, read_records(path, data.problems)[:per_step]))
    if not groups and data.eval_records:
        label, path = list(data.eval_records.items())[-1]
        by_run: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in read_records(path, data.problems):
            key = (str(record.get("benchmark")), str(record.get("mode")))
            by_run.setdefault(key, []).append(record)
        for (benchmark, mode), records in by_run.items():
            groups.append((f"evaluation {label}: {benchmark} / {mode}", records[:per_step]))
    if not groups or not any(records for _, records in groups):
        return missing("No traces yet: no samples/step-*.jsonl and no evaluation records.")
    counts = Counter(len(r) for _, r in groups)
    note = (
        f"<p class='dim'>{sum(n * c for n, c in counts.items())} problems from "
        f"{len(groups)} rollout(s): problem → designs → executions → agent turns.</p>"
    )
    return controls + note + render_traces(groups)


def build_html(data: RunData, trace_steps: int = 2, trace_problems: int = 6) -> str:
    """The whole report as one HTML string."""
    bodies = {
        "summary": summary_section(data),
        "config": config_section(data),
        "curves": curves_section(data),
        "baselines": baselines_section(data),
        "patterns": patterns_section(data),
        "traces": traces_section(data, trace_steps, trace_problems),
    }
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in SECTIONS)
    sections = "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{bodies[sid]}</section>'
        for sid, title in SECTIONS
    )
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>metaagentx report: {esc(data.run_dir.name)}</title>"
        f"<style>{CSS}</style><script>{JS}</script></head><body>"
        f"<header><h1>MetaAgent-X run report</h1><p>{esc(data.run_dir)} · generated "
        f"{esc(generated)}</p></header><nav>{nav}</nav><main>{sections}</main></body></html>"
    )


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
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(build_html(data, trace_steps, trace_problems), encoding="utf-8")
    partial.replace(path)
    return path


def section_ids() -> list[str]:
    """The ids every report has (what tests and links rely on)."""
    return [sid for sid, _ in SECTIONS]


__all__ = ["SECTIONS", "build_html", "esc", "section_ids", "write_report"]
