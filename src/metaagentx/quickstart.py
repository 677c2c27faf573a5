"""`metaagentx quickstart`: the whole method, end to end, on a CPU and offline.

Build the tiny model and tokenizer; collect cold-start data from the programmatic teacher; SFT;
evaluate the baselines (single agent, fixed patterns, designed); RL with the hierarchical
rollout and stagewise co-evolution; evaluate again; swap the roles between the SFT and RL
models to see where the gain comes from; write the report. Every stage is the library's own
code path (the one a Qwen3-8B run uses); only sizes differ. `--fast` shrinks every stage.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from metaagentx.config import Config, load_config
from metaagentx.eval.evaluate import EvalReport, evaluate
from metaagentx.eval.report import write_report
from metaagentx.eval.stats import Accuracy
from metaagentx.outputs import check_output_dir
from metaagentx.rollout.environment import require_safe_grading
from metaagentx.stages import (
    mode_outcomes,
    mode_result,
    rl_gain,
    stage_config,
    swap_test,
    train_rl,
    train_sft,
)

FAST = [
    "sft.collect_problems=48",
    "sft.steps=40",
    "sft.batch_size=16",
    "sft.warmup_steps=5",
    "trainer.steps=2",
    "trainer.batch_problems=4",
    "trainer.phase_steps=1",
    "trainer.val_every=2",
    "rollout.num_designs=2",
    "data.val_size=8",
    "eval.limit=8",
    "eval.samples=1",
    "eval.modes=['fixed:single','fixed:tool',designed]",
    "logging.tensorboard=false",
]


@dataclass
class QuickstartResult:
    out: Path
    report: Path
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> mode -> avg@k
    gain: Accuracy | None = None  # designed mode, after RL minus after SFT, same problems

    def to_dict(self) -> dict[str, object]:
        return {
            "report": str(self.report),
            "timings_s": self.timings,
            "peak_rss_mb": self.peak_rss_mb,
            "accuracy": self.accuracy,
            "rl_gain_designed": self.gain.to_dict() if self.gain else None,
        }


def _accuracies(report: EvalReport) -> dict[str, float]:
    """Mode -> its avg@k accuracy in `report`, over every benchmark's problems."""
    out = {}
    for mode in dict.fromkeys(r.mode for r in report.results):
        scores = [sum(o) / len(o) for o in mode_outcomes(report, mode).values()]
        out[mode] = sum(scores) / len(scores) if scores else 0.0
    return out


def quickstart_config(
    out: Path,
    *,
    fast: bool = False,
    seed: int = 0,
    overrides: list[str] | None = None,
    config: Path | None = None,
) -> Config:
    """The embedded default (`metaagentx/quickstart.yaml`), or `config` (a pipeline config in
    its format, e.g. configs/miniature/base.yaml), with --fast and user overrides."""
    extra = [*(FAST if fast else []), f"seed={seed}", f"output_dir={out}", *(overrides or [])]
    if config is not None:
        return load_config(config, extra)
    source = resources.files("metaagentx") / "quickstart.yaml"
    with resources.as_file(source) as path:
        return load_config(path, extra)


# what a quickstart writes into --out: a folder holding any of them is an earlier quickstart's
QUICKSTART_OUTPUTS = ("model-init", "sft-data", "sft", "rl", "quickstart.json")

# Below this held-out accuracy of the one-tool-agent pattern after SFT, most RL groups have zero
# reward variance and RL barely moves (shared notes: gating on it avoided every dead run).
MIN_TOOL_ACCURACY_FOR_RL = 0.3


def run_quickstart(
    config: Config, console: Console | None = None, *, overwrite: bool = False
) -> QuickstartResult:
    """Run every stage into `config.output_dir`; returns where things are and how long it took.

    A folder an earlier quickstart wrote (`QUICKSTART_OUTPUTS`) is reused; any other non-empty
    folder is refused unless `overwrite`."""
    console = console or Console()
    require_safe_grading(config)  # before anything is written or built
    out = Path(config.output_dir)
    earlier = any((out / name).exists() for name in QUICKSTART_OUTPUTS)
    check_output_dir(out, overwrite=overwrite or earlier, what="quickstart folder")
    out.mkdir(parents=True, exist_ok=True)
    result = QuickstartResult(out, out / "rl" / "report.html")
    started = time.monotonic()

    def done(stage: str, since: float) -> float:
        result.timings[stage] = time.monotonic() - since
        console.print(f"[green]✓[/] {stage} ({result.timings[stage]:.0f} s)", highlight=False)
        return time.monotonic()

    t = time.monotonic()
    console.rule("[bold]1-3/7 tiny model, teacher data, supervised fine-tuning")
    sft_model = train_sft(config, out, console)
    t = done("sft", t)

    rl = stage_config(config, f"output_dir={out / 'rl'}", f"model.path={sft_model}")
    console.rule("[bold]4/7 baselines after SFT")
    after_sft = evaluate(rl, label="after_sft", console=console)
    after_sft.write(out / "rl" / "eval")
    result.accuracy["after_sft"] = _accuracies(after_sft)
    tool = mode_result(after_sft, "fixed:tool")
    if tool is not None and tool.accuracy.mean < MIN_TOOL_ACCURACY_FOR_RL:
        console.print(
            f"[yellow]warning:[/] the tool pattern solves only {100 * tool.accuracy.mean:.0f}% "
            f"after SFT (< {100 * MIN_TOOL_ACCURACY_FOR_RL:.0f}%): RL has little reward signal; "
            "more SFT steps (sft.steps=...) usually fix this",
            highlight=False,
        )
    t = done("eval_sft", t)

    console.rule("[bold]5/7 RL: hierarchical rollout + stagewise co-evolution")
    rl_model = train_rl(rl, console)
    t = done("rl", t)

    console.rule("[bold]6/7 evaluation after RL and the swap test")
    after = stage_config(rl, f"model.path={rl_model}")
    after_rl = evaluate(after, label="after_rl", console=console)
    after_rl.write(out / "rl" / "eval")
    result.accuracy["after_rl"] = _accuracies(after_rl)
    result.gain = rl_gain(after_sft, after_rl)
    swapped = swap_test(after, {"sft": sft_model, "rl": rl_model}, out / "rl" / "eval", console)
    result.accuracy.update({label: _accuracies(r) for label, r in swapped.items()})
    t = done("eval_rl", t)

    console.rule("[bold]7/7 report")
    result.report = write_report(out / "rl")
    done("report", t)
    result.timings["total"] = time.monotonic() - started
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = Table(title="quickstart")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, seconds in result.timings.items():
        table.add_row(stage, f"{seconds:.1f}")
    console.print(table)
    if result.gain is not None:
        g = result.gain
        console.print(
            f"RL gain, designed systems, avg@{g.k} on {g.problems} held-out problems: "
            f"[bold]{100 * g.mean:+.1f} points[/] (95% CI {100 * g.low:+.1f} to "
            f"{100 * g.high:+.1f}); after SFT {100 * result.accuracy['after_sft']['designed']:.1f}%, "
            f"after RL {100 * result.accuracy['after_rl']['designed']:.1f}%",
            highlight=False,
        )
    console.print(
        f"peak RSS {result.peak_rss_mb:.0f} MB; report: [bold]{result.report}[/]", highlight=False
    )
    (out / "quickstart.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result
