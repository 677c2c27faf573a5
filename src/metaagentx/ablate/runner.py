"""`metaagentx ablate`: train and evaluate every arm x seed, resumably, then tabulate.

Layout of `output_dir` (every piece is written atomically, so an interrupted ablation rerun with
the same command continues where it stopped: finished evaluations are kept, RL runs resume from
their newest checkpoint; an arm changed since its runs were trained is refused):

    ablation.yaml                  the spec; pipeline.config.yaml: the resolved pipeline
    model-init/ sft-data/ sft/     the one SFT model every arm starts from
    sft-eval/seed<S>/after_sft.*   the SFT model evaluated with each seed (designed mode)
    runs/<arm>/seed<S>/            the RL run (checkpoints, metrics, model/) and eval/after_rl.*
                                   (plus eval/swap_*.* for the swap arms); ablate.log when
                                   trained in a worker process
    ablation.json ablation.md ablation.html   the table, the swap test, patterns, figures
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from metaagentx.ablate.results import collect_result
from metaagentx.ablate.spec import (
    AFTER_RL,
    AFTER_SFT,
    Ablation,
    AblationSpec,
    experiment_differences,
)
from metaagentx.config import Config, ConfigError, build_config
from metaagentx.errors import UserError, one_line
from metaagentx.eval.ablation import AblationResult
from metaagentx.eval.ablation_report import write_ablation_outputs
from metaagentx.rollout.environment import require_safe_grading
from metaagentx.stages import (
    SWAP_LABELS,
    evaluate_policy,
    stage_config,
    swap_test,
    train_rl,
    train_sft,
)


def _labels(ablation: Ablation, arm: str) -> list[str]:
    return [AFTER_RL, *(SWAP_LABELS if arm in ablation.spec.swap else ())]


def run_finished(ablation: Ablation, arm: str, seed: int) -> bool:
    eval_dir = ablation.eval_dir(arm, seed)
    return all((eval_dir / f"{label}.json").is_file() for label in _labels(ablation, arm))


def _check_same_pipeline(ablation: Ablation) -> None:
    """Refuse to mix two different pipelines' runs in one folder (the SFT model is shared)."""
    saved = ablation.out / "pipeline.config.yaml"
    mine = ablation.pipeline.model_dump(mode="json")
    if saved.is_file() and yaml.safe_load(saved.read_text()) != mine:
        raise ConfigError(
            f"{ablation.out} holds an ablation of a different pipeline config "
            f"({saved}); use another output_dir"
        )
    ablation.out.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(mine, sort_keys=False))
    (ablation.out / "ablation.yaml").write_text(yaml.safe_dump(ablation.to_dict(), sort_keys=False))


WALL_TIME_FILE = "wall_time.json"


def check_same_arms(ablation: Ablation) -> None:
    """Refuse to continue or tabulate a run whose arm has changed since it was trained: its
    seeds would mix two experiments under one name."""
    for arm in ablation.spec.arms:
        for seed in ablation.spec.seeds:
            saved = ablation.run_dir(arm, seed) / "config.yaml"
            if not saved.is_file():
                continue
            before = yaml.safe_load(saved.read_text())
            now = ablation.arm_config(arm, seed).model_dump(mode="json")
            if changed := experiment_differences(before, now):
                shown = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in list(changed.items())[:3])
                raise ConfigError(
                    f"arm '{arm}' changed since {saved.parent} was trained ({shown}); delete "
                    "that folder to rerun it, or use another output_dir"
                )


def _designed(config: Config) -> Config:
    return stage_config(config, "eval.modes=[designed]")


def evaluate_sft(ablation: Ablation, sft_model: Path, console: Console) -> None:
    """The SFT model in designed mode with every seed: each arm's 'before' and SFT+SFT."""
    for seed in ablation.spec.seeds:
        out = ablation.sft_eval_dir(seed)
        if (out / f"{AFTER_SFT}.json").is_file():
            continue
        config = stage_config(ablation.pipeline, f"seed={seed}")
        evaluate_policy(_designed(config), sft_model, AFTER_SFT, console).write(out)


def run_arm(ablation: Ablation, arm: str, seed: int, sft_model: Path, console: Console) -> None:
    """RL for one arm and seed from the SFT model, then its evaluations (resumable)."""
    config = ablation.arm_config(arm, seed, f"model.path={sft_model}")
    policy = train_rl(config, console, resume=True)
    eval_dir = ablation.eval_dir(arm, seed)
    designed = _designed(config)
    if not (eval_dir / f"{AFTER_RL}.json").is_file():
        evaluate_policy(designed, policy, AFTER_RL, console).write(eval_dir)
    if arm in ablation.spec.swap and not run_finished(ablation, arm, seed):
        swap_test(designed, {"sft": sft_model, "rl": policy}, eval_dir, console)


class RunFailed(UserError):
    """One arm x seed failed in a worker process. The message is one line (the run, the error,
    its log); the whole traceback is in the run's log, the finished runs are kept, and the same
    command resumes, so the console shows no worker-process traceback."""


def _worker(spec: dict[str, Any], pipeline: dict[str, Any], arm: str, seed: int, sft: str) -> str:
    """One run in a worker process, logging to its own file (its traceback too, if it fails)."""
    ablation = Ablation(AblationSpec.model_validate(spec), build_config(pipeline))
    log = ablation.run_dir(arm, seed) / "ablate.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as file:
        console = Console(file=file, width=120, force_terminal=False)
        try:
            run_arm(ablation, arm, seed, Path(sft), console)
        except Exception as exc:
            file.write(traceback.format_exc())
            raise RunFailed(
                f"{arm} seed {seed} failed: {type(exc).__name__}: {one_line(exc)} "
                f"(traceback in {log}; finished runs are kept, the same command resumes)"
            ) from None
    return f"{arm}/seed{seed}"


def _quiet(ablation: Ablation) -> Ablation:
    """The same ablation with progress bars off (worker processes log to files)."""
    pipeline = build_config(ablation.pipeline.model_dump(mode="json"), ["logging.progress=false"])
    return Ablation(ablation.spec, pipeline, ablation.origin)


def run_pending(
    ablation: Ablation, sft_model: Path, console: Console, done: Callable[[str], None]
) -> None:
    """Every unfinished arm x seed, seed-major (a partial ablation has whole seeds first)."""
    pending = [
        (arm, seed)
        for seed in ablation.spec.seeds
        for arm in ablation.spec.arms
        if not run_finished(ablation, arm, seed)
    ]
    workers = min(ablation.spec.workers, len(pending))
    if workers <= 1:
        for arm, seed in pending:
            console.rule(f"[bold]{arm} seed {seed}")
            run_arm(ablation, arm, seed, sft_model, console)
            done(f"{arm}/seed{seed}")
        return
    quiet = _quiet(ablation)
    spec, pipeline = quiet.spec.model_dump(mode="json"), quiet.pipeline.model_dump(mode="json")
    console.print(f"{len(pending)} runs on {workers} worker processes; logs: runs/*/*/ablate.log")
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_worker, spec, pipeline, arm, seed, str(sft_model)) for arm, seed in pending
        ]
        try:
            for future in as_completed(futures):
                done(future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a failed run stops the queue, not the others
            raise


def run_ablation(ablation: Ablation, console: Console | None = None) -> AblationResult:
    """Train, evaluate and tabulate everything `ablation` names that is not done yet."""
    console = console or Console()
    require_safe_grading(ablation.pipeline)  # before anything is written or built
    _check_same_pipeline(ablation)
    check_same_arms(ablation)
    clock = WallClock(ablation.out)
    sft_model = train_sft(ablation.pipeline, ablation.out, console, resume=True)
    clock.tick()
    console.rule("[bold]SFT model, evaluated with each seed")
    evaluate_sft(ablation, sft_model, console)

    def done(name: str) -> None:
        console.print(f"[green]✓[/] {name} ({clock.tick():.0f} s in all)")

    run_pending(ablation, sft_model, console, done)
    result = collect_result(ablation, wall_s=clock.tick())
    write_ablation_outputs(ablation.out, result)
    return result


def redraw(ablation: Ablation) -> AblationResult:
    """The table and report from the runs finished so far, without training (--table-only)."""
    check_same_arms(ablation)
    result = collect_result(ablation, wall_s=recorded_wall_time(ablation.out))
    write_ablation_outputs(ablation.out, result)
    return result


def recorded_wall_time(out: Path) -> float | None:
    """The ablation's wall time up to its last finished piece (None before the first)."""
    path = out / WALL_TIME_FILE
    return json.loads(path.read_text())["seconds"] if path.is_file() else None


class WallClock:
    """The ablation's wall time over every invocation, resumes included, kept in a file and
    brought up to date at each finished piece of work, so an interrupted invocation's time up
    to its last finished run still counts."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.mark = time.monotonic()

    def tick(self) -> float:
        """Add the seconds since the last tick; return the total."""
        now = time.monotonic()
        total = (recorded_wall_time(self.out) or 0.0) + now - self.mark
        (self.out / WALL_TIME_FILE).write_text(json.dumps({"seconds": total}))
        self.mark = now
        return total


__all__ = [
    "RunFailed",
    "WallClock",
    "check_same_arms",
    "redraw",
    "run_ablation",
    "run_arm",
    "run_finished",
    "run_pending",
]
