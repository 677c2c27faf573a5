"""Commands that produce training data and models: rollout, train, export, sft collect/train."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metaagentx.cli.common import console, err_console, fail, main_rank

if TYPE_CHECKING:
    from metaagentx.config import Config


def rollout(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the JSONL (default: output_dir).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier rollout.jsonl in the output folder.")
    ] = False,
) -> None:
    """Build one rollout tree (M designs x N executions per problem) and write it as JSONL
    (rollout.jsonl, trajectories.jsonl and rollout.config.yaml)."""
    from rich.table import Table

    from metaagentx.config import ConfigError, load_config, save_config
    from metaagentx.rollout.factory import open_rollout, train_mixture
    from metaagentx.rollout.progress import RolloutProgress
    from metaagentx.rollout.trajectory import write_jsonl
    from metaagentx.sandbox.layers import SandboxUnavailable

    try:
        config = load_config(config_path, overrides or [])
        tasks = train_mixture(config).next_batch(config.trainer.batch_problems)
    except (ConfigError, ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    out_dir = out or Path(config.output_dir)
    tree_path = out_dir / "rollout.jsonl"
    if tree_path.exists() and not overwrite:
        raise fail(
            f"{tree_path} holds an earlier rollout; pass --overwrite to replace it, or --out"
        )
    save_config(config, out_dir, name="rollout.config.yaml")
    try:
        with open_rollout(config) as stack:
            bar = RolloutProgress(len(tasks), err_console, enabled=config.logging.progress)
            with bar:
                tree = stack.engine.rollout_sync(tasks, progress=bar)
    except (SandboxUnavailable, ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    with tree_path.open("w") as f:
        for record in tree.to_records():
            f.write(json.dumps(record) + "\n")
    n = write_jsonl(out_dir / "trajectories.jsonl", tree.trajectories())
    table = Table(title=f"rollout of {len(tasks)} problems")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(tree.metrics().items()):
        table.add_row(key, f"{value:.4g}")
    console.print(table)
    console.print(
        f"wrote {tree_path} and {n} trajectories to {out_dir / 'trajectories.jsonl'}",
        highlight=False,
    )


def train_command(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """RL: hierarchical rollouts, role-aware advantages, stagewise co-evolution, checkpoints;
    exports output_dir/model at the end.

    Several ranks: `torchrun --nproc-per-node N -m metaagentx train CONFIG`, or
    `distributed.launcher=ray distributed.num_trainers=N` (Ray Train workers)."""
    from metaagentx.rl.trainer import train_rank

    config, metrics = _launch(train_rank, "train", config_path, overrides, "trainer.resume")
    if main_rank():
        console.print(
            f"done: {config.trainer.steps} steps in {config.output_dir}; last accuracy "
            f"{metrics.get('accuracy/all', float('nan')):.3f}; model in "
            f"{Path(config.output_dir) / 'model'}",
            highlight=False,
        )


def export_command(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR|CHECKPOINT",
            help="A run directory (its newest valid checkpoint) or RUN_DIR/checkpoints/step-N.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    merge_lora: Annotated[
        bool, typer.Option(help="lora runs: write merged full models instead of adapters.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out.")] = False,
    push_to_hub: Annotated[
        str | None, typer.Option(help="Also upload to this Hugging Face repo (user/name).")
    ] = None,
    private: Annotated[bool, typer.Option(help="--push-to-hub: create a private repo.")] = False,
) -> None:
    """A checkpoint (saved at any world size) as a Hugging Face model directory: config,
    safetensors, tokenizer, generation config and a model card; per-role directories for
    separate models; PEFT adapters (or merged models) for lora."""
    from metaagentx.train.checkpoint import CheckpointError
    from metaagentx.train.engine import export_checkpoint
    from metaagentx.train.export import push_to_hub as upload

    try:
        path = export_checkpoint(source, out, merge_lora=merge_lora, overwrite=overwrite)
    except (CheckpointError, ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    console.print(f"exported {source} to {path}", highlight=False)
    if push_to_hub:
        try:
            url = upload(path, push_to_hub, private=private)
        except (ValueError, OSError) as exc:
            raise fail(f"push to {push_to_hub} failed: {exc}") from None
        console.print(f"pushed to {url}", highlight=False)


def sft_collect(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """Rejection-sample SFT records (correct executions only) from the teacher; resumable."""
    from metaagentx.config import ConfigError, load_config
    from metaagentx.sandbox.layers import SandboxUnavailable
    from metaagentx.sft.collect import collect

    try:
        config = load_config(config_path, overrides or [])
        report = collect(config, console=console)
    except (ConfigError, SandboxUnavailable, ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted:[/] finished problems are kept; run the same command again to "
            "continue the collection",
            highlight=False,
        )
        raise typer.Exit(code=INTERRUPTED_EXIT) from None
    summary = report.to_dict()
    console.print(
        f"{summary['problems']} problems ({summary['resumed_problems']} from before) -> "
        f"kept {summary['kept']} in {summary['path']}",
        highlight=False,
    )
    for reason, n in summary["rejected"].items():
        console.print(f"  rejected {reason}: {n}", highlight=False)


def sft_train(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """Supervised fine-tuning on collected records; saves output_dir/model for RL."""
    from metaagentx.sft.train import train_sft_rank

    config, metrics = _launch(train_sft_rank, "sft train", config_path, overrides, "sft.resume")
    if not main_rank():
        return
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(("val/", "loss"))}
    console.print_json(json.dumps(shown))
    console.print(f"model saved to {Path(config.output_dir) / 'model'}", highlight=False)


INTERRUPTED_EXIT = 130  # the shell's code for a process ended by SIGINT


def _launch(
    rank_fn: Callable[[dict[str, Any]], dict[str, Any]],
    command: str,
    config_path: Path,
    overrides: list[str] | None,
    resume_key: str,
) -> tuple[Config, dict[str, Any]]:
    """Load the config and run a training command on every rank; errors end as one line and
    Ctrl-C says how to resume."""
    from metaagentx.config import ConfigError, load_config
    from metaagentx.distributed import RayRunError, launch
    from metaagentx.sandbox.layers import SandboxUnavailable

    try:
        config = load_config(config_path, overrides or [])
    except ConfigError as exc:
        raise fail(str(exc)) from None
    try:
        return config, launch(rank_fn, config)
    except (SandboxUnavailable, ValueError, OSError, RayRunError, ImportError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise interrupted(config.output_dir, command, config_path, overrides, resume_key) from None


def interrupted(
    run_dir: str, command: str, config_path: Path, overrides: list[str] | None, resume_key: str
) -> typer.Exit:
    """Say where an interrupted training run stands and the command that continues it."""
    from metaagentx.train.checkpoint import list_checkpoints

    saved = list_checkpoints(Path(run_dir) / "checkpoints")
    if saved:
        again = shlex.join(
            [
                "metaagentx",
                *command.split(),
                str(config_path),
                *(overrides or []),
                f"{resume_key}=true",
            ]
        )
        message = f"the newest checkpoint is {saved[-1]}; continue with: {again}"
    else:
        message = f"no checkpoint was saved in {run_dir} yet; the run must start again"
    err_console.print(f"[yellow]interrupted:[/] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code=INTERRUPTED_EXIT)
