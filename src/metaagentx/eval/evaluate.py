"""Benchmark evaluation: accuracy per benchmark, mode and domain, with confidence intervals.

Evaluation runs the same rollout code as training (`open_rollout` + `RolloutEngine`), only with
the tree reshaped for avg@k (k = `eval.samples`):
- `single_agent` and `fixed:<pattern>`: one fixed design per problem, executed k times;
- `designed`: k designs per problem, each executed once, so a problem's score includes the
  designer's misses (a rejected design scores 0), exactly as an end user would experience it.
A problem's score is the mean of its k outcomes; the benchmark score is the mean over problems,
with a Wilson (k = 1) or bootstrap-over-problems (k > 1) 95% interval (see `stats`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metaagentx.config import Config
from metaagentx.eval.analysis import (
    pattern_distribution,
    rows_from_records,
    structure_summary,
)
from metaagentx.eval.results import RESULTS_KIND, RESULTS_VERSION, load_results
from metaagentx.eval.stats import Accuracy, avg_at_k, pass_at_k
from metaagentx.llm import Generator
from metaagentx.rollout.factory import open_rollout, tree_settings
from metaagentx.rollout.prompts import load_examples
from metaagentx.rollout.tree import RolloutEngine, RolloutTree, TreeSettings, parse_mode
from metaagentx.tasks.base import Task
from metaagentx.tasks.datasets import REGISTRY, load_tasks


def check_modes(modes: Sequence[str], designs_dir: str | None = None) -> None:
    """Fail before any model loads when a mode or a fixed pattern is unknown (fixed patterns
    come from `designs_dir`, as in the rollout; None: the packaged examples)."""
    known = load_examples(designs_dir)
    for mode in modes:
        kind, pattern = parse_mode(mode)
        if kind in ("fixed", "single_agent") and pattern not in known:
            where = f"rollout.designs_dir={designs_dir}" if designs_dir else "the packaged examples"
            choices = ", ".join(f"fixed:{name}" for name in sorted(known))
            raise ValueError(
                f"mode '{mode}' needs the example design '{pattern}', which {where} lacks; "
                f"use one of: {choices}"
            )


def eval_settings(config: Config, mode: str, k: int) -> TreeSettings:
    """The training tree settings reshaped for avg@k (see the module doc)."""
    settings = tree_settings(config, mode)
    if parse_mode(mode)[0] == "designed":
        return dataclasses.replace(settings, num_designs=k, num_executions=1)
    return dataclasses.replace(settings, num_designs=1, num_executions=k)


def benchmark_tasks(name: str, config: Config) -> list[Task]:
    """A benchmark's tasks: registered name, local file or HF dataset (`eval.limit` first).
    A registered name is read from its own default split; the synthetic suite and HF datasets
    from the held-out one (`data.val_split`, unless the HF id names a split), never "train"."""
    d = config.data
    split = None if name in REGISTRY else d.val_split
    return load_tasks(
        name, split, limit=config.eval.limit, strict=d.strict, fields=d.fields, format=d.format
    )


def problem_outcomes(tree: RolloutTree) -> list[list[float]]:
    """Per problem, one 0/1 outcome per sampled execution; a design that was rejected (never
    executed) counts as `num_executions` failures."""
    out = []
    for problem in tree.problems:
        outcomes: list[float] = []
        for design in problem.designs:
            if design.executions:
                outcomes.extend(float(e.correct) for e in design.executions)
            else:
                outcomes.extend([0.0] * tree.settings.num_executions)
        out.append(outcomes)
    return out


@dataclass
class ModeResult:
    """One benchmark under one mode."""

    benchmark: str
    mode: str
    k: int
    accuracy: Accuracy
    pass_at_k: Accuracy
    by_domain: dict[str, Accuracy]
    per_problem: list[dict[str, Any]]
    rollout: dict[str, float]
    structure: dict[str, float]
    patterns_by_domain: dict[str, dict[str, float]]
    patterns_by_difficulty: dict[str, dict[str, float]]
    seconds: float
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the traces go to the records file instead)."""
        return {
            "benchmark": self.benchmark,
            "mode": self.mode,
            "k": self.k,
            "problems": self.accuracy.problems,
            "accuracy": self.accuracy.to_dict(),
            "pass_at_k": self.pass_at_k.to_dict(),
            "by_domain": {d: a.to_dict() for d, a in self.by_domain.items()},
            "rollout": self.rollout,
            "structure": self.structure,
            "patterns_by_domain": self.patterns_by_domain,
            "patterns_by_difficulty": self.patterns_by_difficulty,
            "seconds": self.seconds,
            "per_problem": self.per_problem,
        }


def summarise(
    benchmark: str, mode: str, k: int, tasks: Sequence[Task], trees: Sequence[RolloutTree],
    seconds: float, seed: int = 0,
) -> ModeResult:  # fmt: skip
    """Scores, intervals, rollout counters and design structure of one benchmark x mode."""
    difficulty = {t.id: t.difficulty for t in tasks}
    outcomes: list[list[float]] = []
    per_problem: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    status: Counter[str] = Counter()
    generated = valid = 0
    for tree in trees:
        for problem, scores in zip(tree.problems, problem_outcomes(tree), strict=True):
            outcomes.append(scores)
            per_problem.append(
                {
                    "problem_id": problem.task.id,
                    "domain": problem.task.domain,
                    "difficulty": problem.task.difficulty,
                    "outcomes": scores,
                }
            )
        for design in tree.designs():
            generated += design.generation is not None
            valid += design.generation is not None and design.design.valid
        status.update(e.status for _, _, e in tree.executions())
        for record in tree.to_records():
            record.update(benchmark=benchmark, mode=mode)
            record["difficulty"] = difficulty.get(record["problem_id"])
            records.append(record)
    by_domain: dict[str, list[list[float]]] = {}
    for row, scores in zip(per_problem, outcomes, strict=True):
        by_domain.setdefault(row["domain"], []).append(scores)
    rollout: dict[str, float] = {f"executions/{s}": float(n) for s, n in sorted(status.items())}
    if generated:
        rollout["designs/generated"] = float(generated)
        rollout["designs/valid_frac"] = valid / generated
    rows = rows_from_records(records)
    return ModeResult(
        benchmark=benchmark,
        mode=mode,
        k=k,
        accuracy=avg_at_k(outcomes, seed=seed),
        pass_at_k=pass_at_k(outcomes),
        by_domain={d: avg_at_k(o, seed=seed) for d, o in sorted(by_domain.items())},
        per_problem=per_problem,
        rollout=rollout,
        structure=structure_summary(rows),
        patterns_by_domain=pattern_distribution(rows, "domain"),
        patterns_by_difficulty=pattern_distribution(rows, "difficulty"),
        seconds=seconds,
        records=records,
    )


@dataclass
class EvalReport:
    """Everything one `evaluate` call measured, and how it was set up."""

    label: str
    model: str | None
    backend: str
    samples: int
    seed: int
    results: list[ModeResult]
    config: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": RESULTS_KIND,
            "version": RESULTS_VERSION,
            "label": self.label,
            "model": self.model,
            "backend": self.backend,
            "samples": self.samples,
            "seed": self.seed,
            "created": self.created,
            "config": self.config,
            "results": [r.to_dict() for r in self.results],
        }

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """`<label>.json` (results), `<label>.md` (tables), `<label>.records.jsonl` (every
        problem's designs, executions and agent turns) and `<label>.config.yaml` (the resolved
        config it ran with) in `out_dir`."""
        from metaagentx.eval.tables import results_markdown

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out / f"{self.label}.json",
            "markdown": out / f"{self.label}.md",
            "records": out / f"{self.label}.records.jsonl",
            "config": out / f"{self.label}.config.yaml",
        }
        payload = self.to_dict()
        _atomic_write(paths["json"], json.dumps(payload, indent=1))
        _atomic_write(paths["markdown"], results_markdown(payload))
        lines = [json.dumps(r) for result in self.results for r in result.records]
        _atomic_write(paths["records"], "\n".join(lines) + ("\n" if lines else ""))
        _atomic_write(paths["config"], yaml.safe_dump(self.config, sort_keys=False))
        return paths


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def evaluate(
    config: Config,
    *,
    generator: Generator | None = None,
    label: str = "eval",
    console: Console | None = None,
    chunk_size: int = 32,
) -> EvalReport:
    """Evaluate `config.model` (or `generator`) on every `eval.benchmarks` x `eval.modes`.

    Problems go through the rollout `chunk_size` at a time (the progress bar's unit; the
    sandbox's `max_concurrency` bounds the work in flight either way)."""
    e = config.eval
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if not label or any(c in label for c in "/\\") or label.startswith("."):
        raise ValueError(f"label must be a plain file name, got {label!r}")
    check_modes(e.modes, tree_settings(config).designs_dir)
    benchmarks = [(name, benchmark_tasks(name, config)) for name in e.benchmarks]
    for name, tasks in benchmarks:
        if not tasks:
            raise ValueError(f"benchmark '{name}' has no tasks")
    results: list[ModeResult] = []
    progress = Progress(
        TextColumn("[bold]eval[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not config.logging.progress,
    )
    with open_rollout(config, generator) as stack, progress:  # loads the model unless given
        for name, tasks in benchmarks:
            for mode in e.modes:
                engine = RolloutEngine(
                    stack.batcher,
                    stack.runner,
                    eval_settings(config, mode, e.samples),
                    stack.environment,
                )
                bar = progress.add_task(f"{name} {mode}", total=len(tasks))
                started = time.monotonic()
                trees = []
                for start in range(0, len(tasks), chunk_size):
                    chunk = tasks[start : start + chunk_size]
                    trees.append(engine.rollout_sync(chunk))
                    progress.advance(bar, len(chunk))
                results.append(
                    summarise(
                        name,
                        mode,
                        e.samples,
                        tasks,
                        trees,
                        time.monotonic() - started,
                        config.seed,
                    )
                )
    return EvalReport(
        label=label,
        model=config.model.path or config.generation.served_model or config.generation.base_url,
        backend=config.generation.backend,
        samples=e.samples,
        seed=config.seed,
        results=results,
        config=config.model_dump(mode="json"),
    )


__all__ = [
    "EvalReport",
    "ModeResult",
    "benchmark_tasks",
    "check_modes",
    "eval_settings",
    "evaluate",
    "load_results",
    "problem_outcomes",
    "summarise",
]
