"""The pipeline's stages, shared by `quickstart` and `ablate` so each is built in one place.

A stage is the library's own code path run into a folder: the tiny model, teacher data and SFT
(`train_sft`), RL (`train_rl`), evaluation of a trained policy whatever its parameter sharing
(`evaluate_policy`) and the swap test (`swap_test`: designs from one model, agent turns from
another, to see which role a gain belongs to). With `resume=True` a stage that finished is
skipped and an interrupted one continues from its newest checkpoint, which is what a long
ablation needs; the quickstart starts its training stages afresh.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from metaagentx.config import Config, build_config
from metaagentx.eval.evaluate import EvalReport, ModeResult, evaluate
from metaagentx.eval.stats import Accuracy, paired_difference
from metaagentx.eval.tables import outcomes_by_problem
from metaagentx.llm import make_generator
from metaagentx.llm.router import RoleRouter
from metaagentx.rl.trainer import Trainer
from metaagentx.rollout.factory import make_batcher
from metaagentx.rollout.roles import DESIGNER, EXECUTOR
from metaagentx.sft.collect import collect
from metaagentx.sft.train import SFTTrainer
from metaagentx.tiny import build_tiny
from metaagentx.train.checkpoint import clear_run_outputs, list_checkpoints
from metaagentx.train.engine import export_checkpoint

SWAP_LABELS = {
    "swap_rl_designer_sft_executor": ("rl", "sft"),  # the designer's share of the gain
    "swap_sft_designer_rl_executor": ("sft", "rl"),  # the executor's share
}


def stage_config(config: Config, *overrides: str) -> Config:
    """A copy of `config` with `key=value` overrides applied (validated)."""
    return build_config(config.model_dump(mode="json"), list(overrides))


def _finished(model_dir: Path) -> bool:
    """A trainer's exported model (written atomically at the end of its run)."""
    return (model_dir / "README.md").is_file()


def _start_or_continue(run_dir: Path, resume: bool) -> bool:
    """Whether a trainer in `run_dir` resumes; a fresh start clears an earlier run's outputs
    (an interrupted run that never checkpointed leaves metrics the trainers would refuse)."""
    if resume and list_checkpoints(run_dir / "checkpoints"):
        return True
    clear_run_outputs(run_dir)
    return False


def train_sft(config: Config, out: Path, console: Console, *, resume: bool = False) -> Path:
    """Tiny model + tokenizer (`out/model-init`), teacher data (`out/sft-data`) and SFT
    (`out/sft`); returns the SFT model directory."""
    sft_dir = out / "sft"
    if resume and _finished(sft_dir / "model"):
        console.print(f"[green]✓[/] SFT model already trained: {sft_dir / 'model'}")
        return sft_dir / "model"
    console.rule("[bold]tiny model + tokenizer")
    init = build_tiny(out / "model-init", size="tiny", seed=config.seed, overwrite=True)
    sft = stage_config(
        config,
        f"output_dir={sft_dir}",
        f"model.path={init}",
        f"sft.data={out / 'sft-data' / 'sft_data.jsonl'}",
        f"sft.resume={_start_or_continue(sft_dir, resume)}",
    )
    console.rule("[bold]teacher data")
    collect(sft, console=console)  # appends to its own file: a rerun continues it
    console.rule("[bold]supervised fine-tuning")
    return _train(SFTTrainer(sft, console))


def train_rl(config: Config, console: Console, *, resume: bool = False) -> Path:
    """RL from `config.model.path` into `config.output_dir`; returns the exported policy."""
    run_dir = Path(config.output_dir)
    if resume and _finished(run_dir / "model"):
        return run_dir / "model"
    config = stage_config(config, f"trainer.resume={_start_or_continue(run_dir, resume)}")
    return _train(Trainer(config, console))


def _train(trainer: Trainer | SFTTrainer) -> Path:
    """Run a trainer to the end, always releasing it; returns its exported model."""
    try:
        trainer.train()
    finally:
        trainer.close()
    return trainer.model_dir


def role_models(config: Config, policy_dir: Path) -> tuple[Path, Path]:
    """(designer, executor) model directories of an exported policy: the same folder when the
    roles share weights, `designer/` and `executor/` otherwise. LoRA adapters are merged into
    full models once (`<run>/model-merged`), since generation loads plain models."""
    sharing = config.model.parameter_sharing
    if sharing == "shared":
        return policy_dir, policy_dir
    if sharing == "lora":
        merged = policy_dir.parent / "model-merged"
        if not (merged / "README.md").is_file():
            export_checkpoint(policy_dir.parent, merged, merge_lora=True, overwrite=True)
        policy_dir = merged
    return policy_dir / DESIGNER, policy_dir / EXECUTOR


def role_router(designer_model: Path, executor_model: Path, config: Config) -> RoleRouter:
    """Designs from one model and agent turns from another, each built as `config` builds
    any generator (`make_generator`, `make_batcher`)."""
    fronts = {}
    for role, path in ((DESIGNER, designer_model), (EXECUTOR, executor_model)):
        model = config.model.model_copy(update={"path": str(path)})
        fronts[role] = make_batcher(make_generator(model, config.generation, config.seed), config)
    return RoleRouter(fronts)


def evaluate_models(
    config: Config, designer: Path, executor: Path, label: str, console: Console
) -> EvalReport:
    """`config.eval` with designs from `designer` and agent turns from `executor`."""
    if designer == executor:
        return evaluate(
            stage_config(config, f"model.path={designer}"), label=label, console=console
        )
    router = role_router(designer, executor, config)
    try:
        return evaluate(config, generator=router, label=label, console=console)
    finally:
        router.close()


def evaluate_policy(config: Config, policy_dir: Path, label: str, console: Console) -> EvalReport:
    """`config.eval` on a trained policy, whatever its parameter sharing."""
    designer, executor = role_models(config, policy_dir)
    return evaluate_models(config, designer, executor, label, console)


def swap_test(
    config: Config, models: dict[str, Path], out_dir: Path, console: Console
) -> dict[str, EvalReport]:
    """Designed-mode evaluations with the roles crossed between `models["sft"]` and
    `models["rl"]` (shared-weight policies), written to `out_dir`; label -> report."""
    designed = stage_config(config, "eval.modes=[designed]")
    reports = {}
    for label, (designer, executor) in SWAP_LABELS.items():
        report = evaluate_models(designed, models[designer], models[executor], label, console)
        report.write(out_dir)
        reports[label] = report
    return reports


def mode_result(report: EvalReport, mode: str) -> ModeResult | None:
    """The first benchmark's result in `mode`."""
    return next((r for r in report.results if r.mode == mode), None)


def mode_outcomes(report: EvalReport, mode: str) -> dict[str, list[float]]:
    """Problem id -> outcomes in `mode`, over every benchmark of `report`."""
    return outcomes_by_problem(
        {"per_problem": [row for r in report.results if r.mode == mode for row in r.per_problem]}
    )


def rl_gain(before: EvalReport, after: EvalReport, mode: str = "designed") -> Accuracy | None:
    """after - before in `mode` on the problems both evaluated, with a paired 95% interval."""
    first, second = mode_outcomes(before, mode), mode_outcomes(after, mode)
    if not first or not second:
        return None
    return paired_difference(first, second, seed=before.seed)


__all__ = [
    "SWAP_LABELS",
    "evaluate_models",
    "evaluate_policy",
    "mode_outcomes",
    "mode_result",
    "rl_gain",
    "role_models",
    "role_router",
    "stage_config",
    "swap_test",
    "train_rl",
    "train_sft",
]
