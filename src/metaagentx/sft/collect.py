"""Cold-start data by rejection sampling: any `Generator` designs and executes through the real
rollout engine and sandbox; only what led to a correct answer becomes an SFT record.

Rules (why: SFT must teach behaviour that works, and the paper's pipeline has no such filter):
- An execution counts only when it ended `ok` and its final answer grades correct.
- Executor records are the agent turns of counted executions, one record per LLM call, with the
  exact messages the agent saw. Inside a correct execution a turn is still dropped when the
  answer it leads to (its own, or that agent's next answering turn, e.g. a tool call followed
  by a delivery) grades wrong: a voter that slipped, a solver's first attempt a critic fixed.
  Turns cut at the token budget are dropped too.
- A designer record is a valid design (static check passed) whose executions reach
  `sft.min_design_accuracy` (default 1.0: all of them correct); the teacher's weak patterns
  survive as long as they worked, so the design mix stays the teacher's.
- Per problem at most `sft.designer_cap` designer and `sft.executor_cap` executor records are
  kept (whole executions, in order).
With `model.path` set, completions are tokenised with the student's tokenizer and dropped when
longer than the rollout's token budget for their role (the teacher does not count tokens).

The output is JSONL, one record per line (see `make_record`); a sidecar `<data>.done.jsonl`
lists finished problems with their counts, so a rerun skips them (resume) and records of a
problem that did not finish are removed first (no duplicates after a crash).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metaagentx.config import Config, save_config
from metaagentx.errors import UserError
from metaagentx.llm.base import Generator
from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.rollout.factory import open_rollout, train_mixture, tree_settings
from metaagentx.rollout.roles import DESIGNER, EXECUTOR
from metaagentx.rollout.tree import (
    DesignNode,
    ExecutionNode,
    ProblemNode,
    TreeSettings,
    designer_prompt_messages,
)
from metaagentx.tasks.base import Task


class CollectError(UserError, ValueError):
    """`sft.data` points at something collection must not write into."""


def data_path(config: Config) -> Path:
    """Where collected records live: `sft.data`, else `output_dir/sft_data.jsonl`."""
    return Path(config.sft.data or Path(config.output_dir) / "sft_data.jsonl")


def done_path(data: Path) -> Path:
    return data.with_name(data.name + ".done.jsonl")


@dataclass
class CollectReport:
    """What a collection produced, resumed runs included (counts read back from the sidecar)."""

    path: Path
    problems: int = 0
    kept: Counter[str] = field(default_factory=Counter)  # role -> records
    rejected: Counter[str] = field(default_factory=Counter)  # "role/reason" -> records
    resumed_problems: int = 0

    def add(self, summary: dict[str, Any]) -> None:
        self.problems += 1
        self.kept.update(summary["kept"])
        self.rejected.update(summary["rejected"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "problems": self.problems,
            "resumed_problems": self.resumed_problems,
            "kept": dict(self.kept),
            "rejected": dict(sorted(self.rejected.items())),
        }


def make_record(
    role: str,
    messages: list[dict[str, Any]],
    completion: str,
    task: Task,
    design: DesignNode,
    **extra: Any,
) -> dict[str, Any]:
    """One SFT record: the chat prompt, the assistant completion, and where it came from."""
    return {
        "role": role,
        "messages": messages,
        "completion": completion,
        "problem_id": task.id,
        "domain": task.domain,
        "source": task.source,
        "difficulty": task.difficulty,
        "family": task.metadata.get("family"),
        "pattern": design.design.pattern,
        "design_id": design.design_id,
        **extra,
    }


class Collector:
    """Turns rollout trees into kept records and rejection counts (the rules in the module doc)."""

    def __init__(
        self, config: Config, settings: TreeSettings, environment: GradingEnvironment
    ) -> None:
        self.config = config
        self.settings = settings
        self.environment = environment
        self.tokenizer = _student_tokenizer(config)

    def problem_records(self, problem: ProblemNode) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Kept records of one problem and its summary (kept / rejected counts by reason)."""
        sft = self.config.sft
        task = problem.task
        kept: list[dict[str, Any]] = []
        rejected: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        grades: dict[str, bool] = {}
        for design in problem.designs:
            reason = self._design_rejection(design)
            if reason is None and counts[DESIGNER] >= sft.designer_cap:
                reason = "cap"
            if reason is None:
                record = self._designer_record(task, design)
                reason = self._length_rejection(record, self.settings.designer_max_new_tokens)
                if reason is None:
                    kept.append(record)
                    counts[DESIGNER] += 1
            if reason is not None and design.generation is not None:
                rejected[f"{DESIGNER}/{reason}"] += 1
            for execution in design.executions:
                records, reasons = self._execution_records(task, design, execution, grades)
                if records and counts[EXECUTOR] + len(records) > sft.executor_cap:
                    reasons.update({"cap": len(records)})
                    records = []
                kept.extend(records)
                counts[EXECUTOR] += len(records)
                rejected.update({f"{EXECUTOR}/{r}": n for r, n in reasons.items()})
        summary = {"problem_id": task.id, "kept": dict(counts), "rejected": dict(rejected)}
        return kept, summary

    def _design_rejection(self, design: DesignNode) -> str | None:
        if design.generation is None:
            return "no_designer"  # fixed/single_agent modes: nothing was generated
        if design.generation.finish_reason == "length":
            return "truncated"
        if not design.design.valid:
            return f"invalid:{design.design.reason}"
        runs = design.executions
        accuracy = sum(e.correct for e in runs) / len(runs) if runs else 0.0
        if accuracy < self.config.sft.min_design_accuracy:
            return "executions_wrong"
        return None

    def _designer_record(self, task: Task, design: DesignNode) -> dict[str, Any]:
        assert design.generation is not None
        messages = designer_prompt_messages(
            self.settings, task, self.config.sft.record_designer_prompt
        )
        runs = design.executions
        return make_record(
            DESIGNER,
            messages,
            design.generation.text,
            task,
            design,
            design_accuracy=sum(e.correct for e in runs) / max(1, len(runs)),
        )

    def _execution_records(
        self, task: Task, design: DesignNode, execution: ExecutionNode, grades: dict[str, bool]
    ) -> tuple[list[dict[str, Any]], Counter[str]]:
        reasons: Counter[str] = Counter()
        calls = execution.calls
        if execution.status != "ok":
            reasons[f"execution_{execution.status}"] += max(1, len(calls))
            return [], reasons
        if not execution.correct:
            reasons["execution_wrong"] += max(1, len(calls))
            return [], reasons
        verdicts = self._turn_verdicts(task, execution, grades)
        records = []
        for index, (call, ok) in enumerate(zip(calls, verdicts, strict=True)):
            if call.finish_reason == "length":
                reasons["truncated"] += 1
                continue
            if not ok:
                reasons["agent_wrong"] += 1
                continue
            record = make_record(
                EXECUTOR,
                call.messages,
                call.text,
                task,
                design,
                execution_id=execution.execution_id,
                agent=call.agent,
                call_index=index,
            )
            too_long = self._length_rejection(record, self.settings.executor_max_new_tokens)
            if too_long:
                reasons[too_long] += 1
                continue
            records.append(record)
        return records, reasons

    def _turn_verdicts(
        self, task: Task, execution: ExecutionNode, grades: dict[str, bool]
    ) -> list[bool]:
        """Per call: does the answer it leads to (its own, else its agent's next) grade right?
        Calls that lead to no answer (routers, a last tool call) pass."""
        calls = execution.calls
        verdicts = [True] * len(calls)
        upcoming: dict[str, bool] = {}
        view = {"domain": task.domain}
        extract = self.environment.extract_answer
        for index in reversed(range(len(calls))):
            call = calls[index]
            answer = extract(call.text, view) if "<delivery>" in call.text else None
            if answer is not None:
                if answer not in grades:
                    grades[answer] = bool(self.environment.grade(task, call.text).correct)
                upcoming[call.agent] = grades[answer]
            verdicts[index] = upcoming.get(call.agent, True)
        return verdicts

    def _length_rejection(self, record: dict[str, Any], budget: int) -> str | None:
        if self.tokenizer is None:
            return None
        n = len(self.tokenizer(record["completion"], add_special_tokens=False)["input_ids"]) + 1
        return "too_long" if n > budget else None


def _student_tokenizer(config: Config) -> Any:
    if not config.model.path:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        config.model.path, trust_remote_code=config.model.trust_remote_code
    )


def make_teacher(config: Config) -> Generator:
    """The collecting generator `sft.teacher` names (text-only use of the openai backend)."""
    if config.sft.teacher == "programmatic":
        from metaagentx.sft.teacher import ProgrammaticTeacher

        return ProgrammaticTeacher(
            config.sft.teacher_mix,
            copy_error_rate=config.sft.teacher_copy_error_rate,
            seed=config.seed,
        )
    g = config.generation
    if g.backend == "openai":
        from metaagentx.llm.openai_backend import OpenAIGenerator

        if not g.base_url:
            raise ValueError("sft.teacher=model with backend openai needs generation.base_url")
        return OpenAIGenerator(
            g.base_url,
            g.served_model,
            api_key=g.api_key,
            timeout_s=g.timeout_s,
            max_retries=g.max_retries,
            concurrency=g.concurrency,
            require_token_ids=False,  # SFT retokenises text; any chat server can teach
        )
    from metaagentx.llm import make_generator

    return make_generator(config.model, g, seed=config.seed)


def collection_tasks(config: Config) -> list[Task]:
    """`sft.collect_problems` distinct training problems, drawn from the data.train mixture
    (deterministic for the seed, so a resumed run walks the same list)."""
    mixture = train_mixture(config)
    pool = sum(len(source) for source in mixture.sources)
    want = min(config.sft.collect_problems, pool)
    chosen: dict[str, Task] = {}
    for _ in range(4 * want + 16):
        if len(chosen) >= want:
            break
        for task in mixture.next_batch(config.sft.collect_batch):
            chosen.setdefault(task.id, task)
    return list(chosen.values())[:want]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (a crash mid-write) is ignored."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _claim(data: Path) -> None:
    """Refuse a file `sft collect` did not start (resuming would rewrite it); mark a new one as
    ours by creating its `.done.jsonl` sidecar before any record is written."""
    done = done_path(data)
    if data.is_dir():
        raise CollectError(f"sft.data={data} is a folder; give a .jsonl file path")
    if data.is_file() and data.stat().st_size > 0 and not done.is_file():
        raise CollectError(
            f"sft.data={data} exists but was not written by `sft collect` (no {done.name} "
            "beside it); choose a new file, or delete it"
        )
    data.parent.mkdir(parents=True, exist_ok=True)
    done.touch()


def _restore(data: Path, report: CollectReport) -> set[str]:
    """Finished problem ids; drops records of unfinished problems from `data` (atomically)."""
    summaries = _read_jsonl(done_path(data))
    done = {s["problem_id"] for s in summaries}
    for summary in summaries:
        report.add(summary)
    report.resumed_problems = len(done)
    records = _read_jsonl(data)
    keep = [r for r in records if r.get("problem_id") in done]
    if len(keep) != len(records) or (data.is_file() and not _ends_clean(data)):
        tmp = data.with_name(data.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
        os.replace(tmp, data)
    return done


def _ends_clean(path: Path) -> bool:
    text = path.read_bytes()
    return not text or text.endswith(b"\n")


def _append(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def collect(
    config: Config,
    generator: Generator | None = None,
    *,
    tasks: Sequence[Task] | None = None,
    console: Console | None = None,
) -> CollectReport:
    """Collect SFT records for `tasks` (default: `collection_tasks(config)`) with `generator`
    (default: `make_teacher(config)`), appending to `data_path(config)`; resumable."""
    console = console or Console()
    data = data_path(config)
    _claim(data)
    save_config(config, data.parent, name=f"{data.name}.config.yaml")
    report = CollectReport(data)
    done = _restore(data, report)
    tasks = list(tasks) if tasks is not None else collection_tasks(config)
    todo = [t for t in tasks if t.id not in done]
    settings = tree_settings(config)
    own = generator is None
    generator = generator or make_teacher(config)
    progress = Progress(
        TextColumn("[bold]collect[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not config.logging.progress,
    )

    async def run(engine: Any, bar: Any) -> None:  # one event loop for the runner's lifetime
        size = config.sft.collect_batch
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            tree = await engine.rollout(chunk)  # seeds follow problem ids, not chunking
            summaries = []
            for problem in tree.problems:
                records, summary = await asyncio.to_thread(collector.problem_records, problem)
                _append(data, records)
                summaries.append(summary)
                report.add(summary)
            _append(done_path(data), summaries)  # after the records: the problems are done
            progress.update(bar, advance=len(chunk), info=_info(report))

    try:
        with open_rollout(config, generator) as stack, progress:
            collector = Collector(config, settings, stack.environment)
            bar = progress.add_task(
                "collect", total=len(tasks), completed=len(tasks) - len(todo), info=_info(report)
            )
            asyncio.run(run(stack.engine, bar))
    finally:
        if own:
            generator.close()
    return report


def _info(report: CollectReport) -> str:
    kept = " ".join(f"{role} {n}" for role, n in sorted(report.kept.items())) or "none"
    return f"kept: {kept} | rejected {sum(report.rejected.values())}"


__all__ = [
    "CollectReport",
    "Collector",
    "collect",
    "collection_tasks",
    "data_path",
    "done_path",
    "make_record",
    "make_teacher",
]
