"""SFT collection: rejection sampling through the real rollout engine and sandbox, with the
programmatic teacher and with a real `serve-model` HTTP served_model; caps, resume, prompt styles."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from metaagentx.config import Config, build_config
from metaagentx.rollout.extract import extract_design
from metaagentx.rollout.factory import tree_settings
from metaagentx.rollout.prompts import MINIMAL_INSTRUCTION, designer_messages
from metaagentx.rollout.tree import designer_prompt_messages
from metaagentx.sft.collect import collect, collection_tasks, data_path, done_path
from metaagentx.sft.train import SFTTrainer
from metaagentx.tasks.base import Task
from metaagentx.tiny import build_tiny
from server_support import serve_model

SHORT = [
    "rollout.designer_prompt=minimal",
    "rollout.designs_dir=metaagentx.sft.designs",
    "logging.progress=false",
]


def make_config(tmp_path: Path, *overrides: str) -> Config:
    return build_config(
        {},
        [
            f"output_dir={tmp_path}",
            "rollout.num_designs=2",
            "rollout.num_executions=2",
            "sft.collect_batch=8",
            "data.limit=200",
            "sandbox.timeout_s=30",
            *SHORT,
            *overrides,
        ],
    )


def records(config: Config) -> list[dict]:
    return [json.loads(line) for line in data_path(config).read_text().splitlines()]


def tasks_by_id(config: Config) -> dict[str, Task]:
    return {t.id: t for t in collection_tasks(config)}


def test_minimal_prompt_and_designs_dir_reach_the_tree(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    settings = tree_settings(config)
    assert settings.prompt_style == "minimal"
    task = collection_tasks(config)[0]
    messages = designer_prompt_messages(settings, task)
    assert messages == designer_messages(task.prompt, task.domain, style="minimal")
    assert messages[0]["content"] == MINIMAL_INSTRUCTION and task.prompt in messages[1]["content"]
    compact = designer_prompt_messages(settings, task, "compact")
    assert "Example reply (code_test)" in compact[0]["content"]  # the folder's own first design


def test_teacher_collection_keeps_only_correct_work_and_resumes(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        "sft.teacher_copy_error_rate=0.3",
        "sft.collect_problems=24",
        "sft.designer_cap=1",
        "sft.executor_cap=5",
        "data.train=[synthetic:arith]",
    )
    report = collect(config)
    assert report.problems == 24
    rejected = report.rejected
    assert rejected["executor/execution_wrong"] > 0  # slips happened and were filtered
    assert rejected["designer/executions_wrong"] + rejected["designer/cap"] > 0
    kept = records(config)
    assert Counter(r["role"] for r in kept) == report.kept
    per_problem = Counter((r["problem_id"], r["role"]) for r in kept)
    assert max(n for (_, role), n in per_problem.items() if role == "designer") <= 1
    assert max(n for (_, role), n in per_problem.items() if role == "executor") <= 5
    tasks = tasks_by_id(config)
    for record in kept:  # re-grade: every kept answer is right, every kept design valid
        task = tasks[record["problem_id"]]
        if record["role"] == "designer":
            design = extract_design(record["completion"], task_prompt=task.prompt)
            assert design.valid and design.pattern == record["pattern"]
            assert record["design_accuracy"] == 1.0
            assert record["messages"][0]["content"] == MINIMAL_INSTRUCTION
        elif "<delivery>" in record["completion"]:
            assert task.grade(record["completion"]).correct, record["completion"]

    before = data_path(config).read_text()
    again = collect(
        make_config(tmp_path, "sft.collect_problems=24", "data.train=[synthetic:arith]")
    )
    assert again.resumed_problems == 24 and again.kept == report.kept
    assert data_path(config).read_text() == before  # nothing redone, nothing duplicated

    # a crash after writing records but before marking the problem done: they are dropped
    done_lines = done_path(data_path(config)).read_text().splitlines()
    done_path(data_path(config)).write_text("\n".join(done_lines[:-1]) + "\n")
    more = collect(make_config(tmp_path, "sft.collect_problems=26", "data.train=[synthetic:arith]"))
    assert more.problems == 26 and more.resumed_problems == 23
    ids = [
        (r["problem_id"], r["role"], r.get("execution_id"), r.get("call_index"), r["design_id"])
        for r in records(config)
    ]
    assert len(ids) == len(set(ids))


def test_collection_through_a_served_model_rejects_its_wrong_work(
    tmp_path: Path, served_model: str, tiny_model_dir: Path
) -> None:
    config = make_config(
        tmp_path,
        "sft.teacher=model",
        "generation.backend=openai",
        f"generation.base_url={served_model}",
        f"model.path={tiny_model_dir}",  # the student tokenizer: length checks
        "sft.collect_problems=3",
        "rollout.designer_max_new_tokens=24",
        "rollout.executor_max_new_tokens=16",
        "sft.record_designer_prompt=minimal",
        "data.train=[synthetic:arith:1]",
    )
    report = collect(config)
    assert report.problems == 3
    assert report.kept == Counter()  # an untrained model is never right
    assert not data_path(config).read_text()
    generated = sum(n for r, n in report.rejected.items() if r.startswith("designer/"))
    assert generated == 3 * 2  # every sampled design was seen and rejected with a reason
    assert all(
        r.startswith(("designer/invalid:", "designer/truncated", "executor/execution_"))
        for r in report.rejected
    ), report.rejected
    assert len(done_path(data_path(config)).read_text().splitlines()) == 3

    # the executor path over HTTP too: a fixed teacher design, executed by the served model
    fixed = config.model_copy(update={"output_dir": str(tmp_path / "fixed")})
    fixed.rollout.mode = "fixed:tool"  # from rollout.designs_dir (the teacher's designs)
    fixed.sft.data = str(tmp_path / "fixed" / "data.jsonl")
    report = collect(fixed)
    assert report.kept == Counter() and not data_path(fixed).read_text()
    assert sum(report.rejected.values()) >= 3 * 2  # every execution's turns, rejected
    assert all(r.startswith("executor/execution_") for r in report.rejected), report.rejected


def test_collection_through_a_served_model_keeps_its_right_work(tmp_path: Path) -> None:
    """End to end with a model that does answer right: a nano model SFT'd on the programmatic
    teacher's answers to two problems, served over HTTP, is collected from, and what it gets
    right is kept (re-graded here), while its wrong work is counted as rejected."""
    nano = build_tiny(tmp_path / "nano", size="nano", seed=0)
    common = [
        "data.train=[synthetic:arith:1]",
        "sft.collect_problems=2",
        "rollout.mode=fixed:single",
        "rollout.executor_max_new_tokens=48",
        f"model.path={nano}",
    ]
    teacher = make_config(tmp_path / "teacher", *common)
    assert collect(teacher).kept["executor"] > 0

    sft = build_config(
        {},
        [
            f"output_dir={tmp_path / 'sft'}",
            f"model.path={nano}",
            "model.device=cpu",
            f"sft.data={data_path(teacher)}",
            "sft.steps=120",
            "sft.batch_size=4",
            "sft.lr=1e-2",
            "sft.warmup_steps=5",
            "sft.log_every=40",
            "sft.torch_threads=1",
            "sft.eval_modes=[greedy]",
            "data.val=[synthetic:arith:1]",
            "data.val_size=1",
            "logging.tensorboard=false",
            *SHORT,
        ],
    )
    SFTTrainer(sft).train()

    with serve_model(tmp_path / "sft" / "model") as base_url:
        student = make_config(
            tmp_path / "student",
            *common,
            "sft.teacher=model",
            "generation.backend=openai",
            f"generation.base_url={base_url}",
            "rollout.executor_temperature=0",
        )
        report = collect(student)
    kept = records(student)
    assert report.kept["executor"] > 0 and len(kept) == report.kept["executor"]
    tasks = tasks_by_id(student)
    for record in kept:
        assert record["role"] == "executor"
        assert tasks[record["problem_id"]].grade(record["completion"]).correct, record
