"""Commands that read and judge: data show/check, eval, report, config show, quickstart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from metaagentx.cli.common import console, err_console, fail


def data_show(
    name_or_path: Annotated[
        str,
        typer.Argument(
            help="Registered name (aime2024, apps, synthetic, ...), local file, or HF dataset."
        ),
    ],
    limit: Annotated[int, typer.Option(help="How many tasks to show.")] = 5,
    split: Annotated[str | None, typer.Option(help="Split (default: the dataset's own).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines instead of a table.")
    ] = False,
) -> None:
    """Show the first tasks of a dataset in the unified Task schema."""
    from rich.table import Table

    from metaagentx.tasks.datasets import show_tasks

    try:
        rows = show_tasks(name_or_path, limit=limit, split=split)
    except (ValueError, OSError, KeyError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"{name_or_path}: first {len(rows)} tasks", show_lines=True)
    for column in ("id", "domain", "prompt", "reference", "difficulty"):
        table.add_column(column, overflow="fold")
    for row in rows:
        tests = len(row.get("public_tests") or []) + len(row.get("hidden_tests") or [])
        reference = row.get("answer") if row.get("answer") is not None else f"{tests} tests"
        prompt = row["prompt"] if len(row["prompt"]) <= 300 else row["prompt"][:300] + " ..."
        table.add_row(
            str(row["id"]), row["domain"], prompt, str(reference), str(row.get("difficulty"))
        )
    console.print(table)


def data_check(
    name_or_path: Annotated[
        str, typer.Argument(help="Registered name, local file, or HF dataset.")
    ],
    split: Annotated[str | None, typer.Option(help="Split (default: the dataset's own).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Count rows and tasks, and list malformed rows with their reasons."""
    from metaagentx.tasks.datasets import check_tasks

    try:
        report = check_tasks(name_or_path, split=split)
    except (ValueError, OSError, KeyError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    console.print(
        f"[bold]{report['source']}[/] ({report['format']}): {report['rows']} rows -> "
        f"{report['tasks']} tasks, {report['skipped']} skipped",
        highlight=False,
    )
    console.print(
        f"domains: {report['domains']}  test kinds: {report['test_kinds']}", highlight=False
    )
    for bad in report["malformed"]:
        console.print(
            f"  [yellow]skipped[/] {_where(bad)} ({bad['id']}): {bad['reason']}", highlight=False
        )


def _where(bad: dict) -> str:
    """file:line for a JSONL row, else file and row number (or the row alone, for the Hub)."""
    if bad.get("line") is not None:
        return f"{bad['file']}:{bad['line']}"
    return f"{bad['file']} row {bad['row']}" if bad.get("file") else f"row {bad['row']}"


def eval_command(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    label: Annotated[
        str, typer.Option(help="Name of this evaluation (e.g. after_sft, after_rl): file names.")
    ] = "eval",
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier evaluation with the same --label.")
    ] = False,
) -> None:
    """avg@k accuracy with 95% CIs on eval.benchmarks x eval.modes; writes output_dir/eval/.

    k = eval.samples: k executions of the one design per problem (single_agent, fixed:<pattern>),
    or k designs x 1 execution each (designed; a rejected design scores 0)."""
    from rich.table import Table

    from metaagentx.config import ConfigError, load_config
    from metaagentx.eval.evaluate import evaluate
    from metaagentx.eval.tables import COLUMNS, baseline_rows
    from metaagentx.sandbox.layers import SandboxUnavailable

    try:
        config = load_config(config_path, overrides or [])
        earlier = Path(config.output_dir) / "eval" / f"{label}.json"
        if earlier.exists() and not overwrite:
            raise fail(
                f"{earlier} holds an earlier evaluation '{label}'; pass --overwrite to "
                "replace it, or choose another --label"
            )
        report = evaluate(config, label=label, console=err_console)
    except (ConfigError, SandboxUnavailable, ValueError, OSError, KeyError) as exc:
        raise fail(str(exc)) from None
    paths = report.write(Path(config.output_dir) / "eval")
    table = Table(title=f"evaluation '{label}': avg@{config.eval.samples}, % [95% CI]")
    for column in COLUMNS[1:]:
        table.add_column(column, overflow="fold")
    for row in baseline_rows([report.to_dict()]):
        table.add_row(*(row[c] for c in COLUMNS[1:]))
    console.print(table)
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False)


def report_command(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR...",
            help="A run directory, or several to overlay (seeds, ablations) in one comparison.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML file to write (default: RUN_DIR/report.html; ./report-compare.html for "
            "several runs).",
        ),
    ] = None,
    trace_steps: Annotated[
        int, typer.Option(help="Latest training steps in the trace browser (one run).")
    ] = 2,
    trace_problems: Annotated[
        int, typer.Option(help="Problems shown per step and per evaluation (one run).")
    ] = 6,
) -> None:
    """Write one self-contained HTML report: config, training and optimisation curves, SFT,
    baselines, patterns, training and evaluation traces. Several RUN_DIRs: one page that
    overlays their curves, final evaluations and config differences."""
    from metaagentx.eval.compare import write_comparison
    from metaagentx.eval.report import write_report

    try:
        if len(run_dirs) > 1:
            path = write_comparison(run_dirs, out)
        else:
            path = write_report(
                run_dirs[0],
                out,
                trace_steps=max(trace_steps, 0),
                trace_problems=max(trace_problems, 0),
            )
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(f"report written to [bold]{path}[/]", highlight=False)


def config_show(
    config_path: Annotated[
        Path | None, typer.Argument(metavar="[CONFIG]", help="A run config (default: defaults).")
    ] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="Only keys starting with this prefix.")
    ] = None,
) -> None:
    """Print every config key with its value (the default, or CONFIG's), type and description;
    `key=value` overrides apply with or without CONFIG."""
    from rich.table import Table

    from metaagentx.config import ConfigError, load_config
    from metaagentx.config_keys import config_keys, show_value

    overrides = list(overrides or [])
    if config_path is not None and "=" in str(config_path) and not config_path.exists():
        overrides, config_path = [str(config_path), *overrides], None  # overrides on defaults
    try:
        rows = config_keys(load_config(config_path, overrides))
    except (ConfigError, OSError) as exc:
        raise fail(str(exc)) from None
    rows = [r for r in rows if key is None or r.key.startswith(key)]
    if not rows:
        raise fail(f"no config key starts with '{key}'")
    table = Table(show_lines=False)
    table.add_column("key", no_wrap=True)  # a key is only useful whole: copy it into an override
    table.add_column("value", overflow="fold", max_width=30)
    table.add_column("type", overflow="fold", max_width=24)
    table.add_column("description")
    for row in rows:
        table.add_row(row.key, show_value(row.value), row.type, row.description)
    console.print(table)


def quickstart(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/quickstart"),
    fast: Annotated[
        bool, typer.Option(help="A much smaller run (under a minute) to check the pipeline.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the whole run.")] = 0,
    overwrite: Annotated[
        bool,
        typer.Option(help="Write into a non-empty --out that is not an earlier quickstart's."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(help="A pipeline config in the embedded default's format instead of it."),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides of the embedded config.")
    ] = None,
) -> None:
    """The whole method offline on a CPU: tiny model, teacher data, SFT, baselines, RL, eval, report."""
    from metaagentx.config import ConfigError
    from metaagentx.quickstart import quickstart_config, run_quickstart
    from metaagentx.sandbox.layers import SandboxUnavailable

    try:
        pipeline = quickstart_config(
            out, fast=fast, seed=seed, overrides=overrides, config=config
        )
    except ConfigError as exc:
        raise fail(str(exc)) from None
    try:
        run_quickstart(pipeline, console, overwrite=overwrite)
    except (SandboxUnavailable, ValueError, OSError) as exc:
        raise fail(str(exc)) from None


def ablate(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Ablation YAML file.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Ablation settings as key=value (seeds=[0], workers=2, ...)."),
    ] = None,
    table_only: Annotated[
        bool,
        typer.Option(help="Only redraw the table and report from the runs finished so far."),
    ] = False,
) -> None:
    """The paper's ablations in miniature: every arm x seed from one SFT model, resumable; a
    table with paired 95% intervals, the swap test, patterns by difficulty and figures."""
    from metaagentx.ablate import load_ablation, redraw, run_ablation
    from metaagentx.eval.ablation_report import ablation_markdown

    ablation = load_ablation(config_path, overrides)
    result = redraw(ablation) if table_only else run_ablation(ablation, console)
    console.print(ablation_markdown(result), markup=False, highlight=False, soft_wrap=True)
    console.print(f"report: {ablation.out / 'ablation.html'}", highlight=False)
