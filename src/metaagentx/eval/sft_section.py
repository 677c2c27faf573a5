"""The report's SFT section: the supervised warm-up's loss, validity and accuracy curves.

An SFT run directory shows its own; an RL run shows the SFT run its model came from
(`model.path` = `<sft run>/model` or `<sft run>/checkpoints/step-N`), so one report tells the
whole story of the quickstart's two stages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from metaagentx.eval.curve_sections import curve_grid
from metaagentx.eval.curves import SFT_CURVES
from metaagentx.eval.html_parts import missing, table
from metaagentx.eval.run_data import RunData, load_run
from metaagentx.eval.trace_html import esc

LAST_COLUMNS = {  # column -> metric of the last validated step
    "step": "step",
    "loss": "loss",
    "greedy valid": "val/greedy/designs/valid",
    "greedy accuracy": "val/greedy/accuracy/all",
    "sampled valid": "val/sampled/designs/valid",
    "sampled accuracy": "val/sampled/accuracy/all",
}


def sft_records(metrics: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records an SFT trainer logged (`"phase": "sft"`)."""
    return [r for r in metrics if r.get("phase") == "sft"]


def _candidates(run_dir: Path, model_path: str) -> list[Path]:
    model = Path(model_path).expanduser()
    models = [model] if model.is_absolute() else [run_dir / model, model]
    out = []
    for path in models:
        out.append(path.parent)  # <sft run>/model
        if path.parent.name == "checkpoints":  # <sft run>/checkpoints/step-N
            out.append(path.parent.parent)
    return out


def find_sft_run(data: RunData) -> tuple[RunData | None, str]:
    """The SFT run to show and a sentence saying where it came from (or why there is none)."""
    if sft_records(data.metrics):
        return data, "this run directory (an SFT run)"
    path = ((data.config or {}).get("model") or {}).get("path")
    if not isinstance(path, str) or not path:
        return None, "this run's config names no model.path"
    for candidate in _candidates(data.run_dir, path):
        if not (candidate / "metrics.jsonl").is_file():
            continue
        if candidate.resolve() == data.run_dir.resolve():
            continue
        sft = load_run(candidate)
        if sft_records(sft.metrics):
            return sft, f"{candidate} (the SFT run this run's model.path {path} came from)"
    return None, f"model.path {path} is not inside an SFT run directory with SFT metrics"


def _last_validation(records: Sequence[Mapping[str, Any]]) -> str:
    validated = [r for r in records if any(k.startswith("val/") for k in r)]
    if not validated:
        return missing("No SFT validation was logged (val/greedy/..., val/sampled/...).")
    last = validated[-1]
    row = {
        column: f"{last[key]:.3g}" if isinstance(last.get(key), int | float) else "-"
        for column, key in LAST_COLUMNS.items()
    }
    row["step"] = str(last.get("step"))
    return "<h3>Last validation</h3>" + table([row], LAST_COLUMNS)


def sft_section(data: RunData) -> str:
    sft, source = find_sft_run(data)
    if sft is None:
        return missing(f"No SFT metrics: {source}.")
    records = sft_records(sft.metrics)
    return (
        f"<p class='dim'>Read from {esc(source)}: {len(records)} logged steps (last "
        f"{esc(records[-1].get('step'))}). Validation: greedy and sampled designs on held-out "
        "problems.</p>"
        + curve_grid(SFT_CURVES, [(sft.run_dir.name, records)], who="the SFT run")
        + _last_validation(records)
    )


__all__ = ["find_sft_run", "sft_records", "sft_section"]
