"""Result tables from evaluation JSON: one row per (label, benchmark, mode), for markdown and
the HTML report alike, so both always show the same numbers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from metaagentx.eval.analysis import distribution_markdown
from metaagentx.eval.stats import paired_difference

COLUMNS = ("label", "benchmark", "mode", "k", "problems", "avg@k", "pass@k", "valid", "agents")


def _pct(accuracy: Mapping[str, Any] | None) -> str:
    if not accuracy:
        return "-"
    return (
        f"{100 * accuracy['mean']:.1f} [{100 * accuracy['low']:.1f}, {100 * accuracy['high']:.1f}]"
    )


def baseline_rows(payloads: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Flat rows of every result in the payloads (`EvalReport.to_dict()` objects)."""
    rows = []
    for payload in payloads:
        for result in payload.get("results", []):
            structure = result.get("structure") or {}
            rollout = result.get("rollout") or {}
            valid = rollout.get("designs/valid_frac")
            rows.append(
                {
                    "label": str(payload.get("label", "")),
                    "benchmark": str(result["benchmark"]),
                    "mode": str(result["mode"]),
                    "k": str(result["k"]),
                    "problems": str(result["problems"]),
                    "avg@k": _pct(result.get("accuracy")),
                    "pass@k": _pct(result.get("pass_at_k")),
                    "valid": "-" if valid is None else f"{100 * valid:.0f}%",
                    "agents": (
                        f"{structure['mean_agents']:.1f}" if "mean_agents" in structure else "-"
                    ),
                }
            )
    return rows


def domain_rows(payloads: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Per-domain accuracy rows (label, benchmark, mode, domain, avg@k)."""
    rows = []
    for payload in payloads:
        for result in payload.get("results", []):
            for domain, accuracy in (result.get("by_domain") or {}).items():
                rows.append(
                    {
                        "label": str(payload.get("label", "")),
                        "benchmark": str(result["benchmark"]),
                        "mode": str(result["mode"]),
                        "domain": domain,
                        "avg@k": _pct(accuracy),
                    }
                )
    return rows


def gain_rows(payloads: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Every later evaluation against the earliest one (by creation time), per benchmark and
    mode both measured: the difference in avg@k with a paired bootstrap 95% interval."""
    ordered = sorted(payloads, key=lambda p: p.get("created", 0.0))
    if len(ordered) < 2:
        return []
    base = ordered[0]
    base_results = {(r["benchmark"], r["mode"]): r for r in base.get("results", [])}
    rows = []
    for payload in ordered[1:]:
        for result in payload.get("results", []):
            key = (result["benchmark"], result["mode"])
            if key not in base_results:
                continue
            try:
                diff = paired_difference(
                    outcomes_by_problem(base_results[key]),
                    outcomes_by_problem(result),
                    seed=int(base.get("seed", 0)),
                )
            except (ValueError, KeyError):
                continue  # no shared problems: nothing to compare
            rows.append(
                {
                    "baseline": str(base.get("label", "")),
                    "label": str(payload.get("label", "")),
                    "benchmark": key[0],
                    "mode": key[1],
                    "problems": str(diff.problems),
                    "before": _pct(base_results[key].get("accuracy")),
                    "after": _pct(result.get("accuracy")),
                    "gain": f"{100 * diff.mean:+.1f} [{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]",
                }
            )
    return rows


def outcomes_by_problem(result: Mapping[str, Any]) -> dict[str, list[float]]:
    """Problem id -> its k sampled outcomes, from a mode result's `per_problem` records."""
    return {str(p["problem_id"]): list(p["outcomes"]) for p in result.get("per_problem", [])}


GAIN_COLUMNS = ("baseline", "label", "benchmark", "mode", "problems", "before", "after", "gain")


def _markdown_table(rows: list[dict[str, str]], columns: Iterable[str]) -> str:
    columns = list(columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r[c] for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def results_markdown(payload: Mapping[str, Any]) -> str:
    """The markdown written beside a results JSON: accuracy, per domain, design patterns."""
    k = payload.get("samples")
    parts = [
        f"# Evaluation: {payload.get('label')}",
        "",
        f"model: `{payload.get('model')}` (backend {payload.get('backend')}), avg@{k}, "
        f"seed {payload.get('seed')}. Accuracy in percent with a 95% confidence interval "
        "(Wilson for k=1, bootstrap over problems for k>1); valid = designs passing the "
        "static check; agents = mean agents per valid design.",
        "",
        _markdown_table(baseline_rows([payload]), COLUMNS),
        "",
        "## By domain",
        "",
        _markdown_table(domain_rows([payload]), ("benchmark", "mode", "domain", "avg@k")),
    ]
    for result in payload.get("results", []):
        if result.get("patterns_by_difficulty"):
            parts += [
                "",
                f"## Design patterns: {result['benchmark']} / {result['mode']}",
                "",
                distribution_markdown(result["patterns_by_domain"], "domain"),
                "",
                distribution_markdown(result["patterns_by_difficulty"], "difficulty"),
            ]
    return "\n".join(parts) + "\n"


__all__ = [
    "COLUMNS",
    "GAIN_COLUMNS",
    "baseline_rows",
    "domain_rows",
    "gain_rows",
    "results_markdown",
]
