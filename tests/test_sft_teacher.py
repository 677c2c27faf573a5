"""The programmatic teacher: its designs validate, its mix holds, and with it playing every agent
each synthetic family is solved end to end through the real sandbox Runner."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest

import metaagentx.designs
from metaagentx.llm.base import GenerationRequest, SamplingParams
from metaagentx.llm.batcher import RequestBatcher
from metaagentx.mas.prompts import CRITIC_INSTRUCTION, build_system_prompt, render_user_message
from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.rollout.extract import extract_design
from metaagentx.rollout.prompts import designer_messages
from metaagentx.sandbox.runner import ExecutionResult
from metaagentx.sandbox.settings import SandboxSettings
from metaagentx.sft import (
    DEFAULT_DESIGN_MIX,
    PATTERN_DOMAINS,
    TEACHER_DESIGNS_DIR,
    ProgrammaticTeacher,
    UnsupportedTaskError,
    designer_reply,
    parse_problem,
)
from metaagentx.sft.problems import evaluate
from metaagentx.tasks.base import Task
from metaagentx.tasks.synthetic import FAMILIES, generate

FAMILY_LEVELS = [(f, level) for f, (_, levels) in FAMILIES.items() for level in levels]
SUITED = [(d, p) for p, domains in PATTERN_DOMAINS.items() for d in domains]
CALLS = {"single": 1, "tool": 2, "vote3": 6, "reflect": 4, "code_test": 2}  # LLM calls per run


def designer_request(task: Task, **sampling: float) -> GenerationRequest:
    messages = designer_messages(
        task.prompt, task.domain, compact=True, examples=("tool",), designs_dir=TEACHER_DESIGNS_DIR
    )
    return GenerationRequest(
        messages=messages, role="designer", sampling=SamplingParams(**sampling)
    )


def one_task(domain: str) -> Task:
    return generate("arith" if domain == "math" else "code_fn", 1, level=2, seed=5)[0]


def run_all(
    teacher: ProgrammaticTeacher, jobs: list[tuple[str, Task]], seeded: bool = False
) -> list[ExecutionResult]:
    """Run (script, task) pairs through the real Runner with the teacher behind a batcher and
    the grading environment's tools (python; run_tests on the public tests for code)."""

    async def go() -> list[ExecutionResult]:
        batcher = RequestBatcher(teacher)
        environment = GradingEnvironment(SandboxSettings(timeout_s=30.0))
        runner = environment.runner(batcher)
        try:
            return list(
                await asyncio.gather(
                    *(
                        runner.run(
                            script,
                            task.public_view(),
                            tools=environment.tools(task),
                            metadata={"seed": i} if seeded else None,
                        )
                        for i, (script, task) in enumerate(jobs)
                    )
                )
            )
        finally:
            environment.close()
            batcher.close()

    return asyncio.run(go())


@pytest.mark.parametrize(("domain", "pattern"), SUITED)
def test_designer_reply_validates_for_every_pattern(domain: str, pattern: str) -> None:
    task = one_task(domain)
    teacher = ProgrammaticTeacher({domain: {pattern: 1.0}})
    result = teacher.generate([designer_request(task)])[0]
    design = extract_design(result.text, task_prompt=task.prompt)
    assert design.valid, (design.reason, design.detail)
    assert design.pattern == pattern
    assert result.text == designer_reply(pattern)
    assert design.analysis and len(design.script.splitlines()) <= 10
    assert (result.prompt_ids, result.response_ids, result.logprobs) == ([], [], [])
    assert result.finish_reason == "stop" and result.role == "designer"
    assert result.metadata["teacher"] == {"pattern": pattern, "domain": domain}


@pytest.mark.parametrize("domain", ["math", "code"])
def test_mix_frequencies_hold_over_many_draws(domain: str) -> None:
    request = designer_request(one_task(domain))
    draws = 3000
    results = ProgrammaticTeacher(seed=1).generate([request] * draws)
    counts = Counter(r.metadata["teacher"]["pattern"] for r in results)
    mix = DEFAULT_DESIGN_MIX[domain]
    total = sum(mix.values())
    assert set(counts) == set(mix)
    for pattern, weight in mix.items():  # 3000 draws: sd <= 0.0092, so 0.035 is > 3.8 sd
        assert abs(counts[pattern] / draws - weight / total) < 0.035, (pattern, counts)


def test_hard_arithmetic_still_gets_the_weak_single_design() -> None:
    tasks = generate("arith", 300, level=4, seed=2)
    results = ProgrammaticTeacher().generate([designer_request(t) for t in tasks])
    share = sum(r.metadata["teacher"]["pattern"] == "single" for r in results) / len(tasks)
    assert abs(share - DEFAULT_DESIGN_MIX["math"]["single"]) < 0.1
    forced = ProgrammaticTeacher({"math": {"single": 1.0}}).generate([designer_request(tasks[0])])
    assert extract_design(forced[0].text).pattern == "single"
    (run,) = run_all(ProgrammaticTeacher(), [(extract_design(forced[0].text).script, tasks[0])])
    assert run.status == "ok" and tasks[0].grade(run.final_output).correct
    assert [c.text for c in run.trace] == [f"<delivery>\\boxed{{{tasks[0].answer}}}</delivery>"]
    assert run.usage["tool_calls"] == 0  # an in-weights answer: nothing for a student to copy


def test_every_family_is_solved_end_to_end_with_every_teacher_design() -> None:
    teacher = ProgrammaticTeacher(seed=3)
    jobs, labels = [], []
    for family, level in FAMILY_LEVELS:
        for task in generate(family, 2, level=level, seed=7):
            for domain, pattern in SUITED:
                if domain != task.domain:
                    continue
                reply = ProgrammaticTeacher({domain: {pattern: 1}}).generate(
                    [designer_request(task)]
                )[0]
                jobs.append(
                    (extract_design(reply.text, task_prompt=task.prompt).require_valid(), task)
                )
                labels.append(pattern)
    results = run_all(teacher, jobs)
    failures = []
    for (_, task), pattern, run in zip(jobs, labels, results, strict=True):
        if run.status != "ok" or not task.grade(run.final_output or "").correct:
            failures.append((task.id, pattern, run.status, run.error, run.final_output))
        elif len(run.trace) != CALLS[pattern]:
            failures.append((task.id, pattern, "calls", len(run.trace)))
    assert not failures, failures
    assert len(results) == 2 * (4 * 7 + 2 * 3)  # 7 math levels x 4 designs, 3 code levels x 2


@pytest.mark.parametrize(
    "path", sorted(Path(metaagentx.designs.__file__).parent.glob("[!_]*.py")), ids=lambda p: p.stem
)
def test_teacher_plays_every_role_of_the_library_example_designs(path: Path) -> None:
    """Judges, critics, debaters, routers and testers, not only the teacher's own designs."""
    tasks = [generate(f, 1, level=2, seed=9)[0] for f in FAMILIES]
    results = run_all(ProgrammaticTeacher(), [(path.read_text(), t) for t in tasks])
    for task, run in zip(tasks, results, strict=True):
        assert run.status == "ok", run.error
        assert task.grade(run.final_output).correct, (task.prompt, run.final_output)


def test_tool_turns_copy_the_expression_and_the_tool_output() -> None:
    task = generate("word_arith", 1, level=3, seed=4)[0]
    (run,) = run_all(ProgrammaticTeacher(), [(extract_design(designer_reply("tool")).script, task)])
    first, second = run.trace
    expression = task.metadata["expression"]
    assert first.text == f"```python\nprint({expression})\n```"
    assert second.messages[-1]["role"] == "tool" and task.answer in second.messages[-1]["content"]
    assert second.text == f"<delivery>\\boxed{{{task.answer}}}</delivery>"
    # the final turn copies what the tool printed, even when that is wrong
    request = GenerationRequest(
        messages=[
            *second.messages[:-1],
            {"role": "tool", "content": "status: ok (exit code 0)\nstdout:\n12345\n"},
        ]
    )
    assert (
        ProgrammaticTeacher().generate([request])[0].text == "<delivery>\\boxed{12345}</delivery>"
    )


def test_code_test_turns() -> None:
    task = generate("code_fn", 1, level=1, seed=4)[0]
    (run,) = run_all(
        ProgrammaticTeacher(), [(extract_design(designer_reply("code_test")).script, task)]
    )
    program = task.metadata["reference_solution"]
    assert run.trace[0].text == (
        f'```python\n{program}```\n<tool_call>{{"name": "run_tests", "arguments": {{}}}}</tool_call>'
    )
    assert run.trace[1].messages[-1]["content"].startswith("passed 1/1 public tests")
    assert run.trace[1].text == f"<delivery>\n```python\n{program}```\n</delivery>"


def critic_request(task: Task, candidate: str) -> GenerationRequest:
    system = build_system_prompt("Check it.", task.domain)
    user = render_user_message(task.prompt, [("Solver", candidate)], CRITIC_INSTRUCTION)
    return GenerationRequest(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}]
    )


def test_critic_verdicts_follow_the_candidate() -> None:
    task = generate("arith", 1, level=3, seed=1)[0]
    right, wrong = (critic_request(task, f"\\boxed{{{a}}}") for a in (task.answer, "7"))
    teacher = ProgrammaticTeacher()
    assert (
        teacher.generate([right])[0].text
        == f"<delivery>VERDICT: CORRECT\n\\boxed{{{task.answer}}}</delivery>"
    )
    assert "VERDICT: INCORRECT" in teacher.generate([wrong])[0].text


def test_copy_errors_slip_one_digit_and_greedy_is_the_mode() -> None:
    task = generate("arith", 1, level=4, seed=6)[0]
    (run,) = run_all(
        ProgrammaticTeacher(copy_error_rate=1.0),
        [(extract_design(designer_reply("single")).script, task)],
    )
    boxed = run.trace[0].text.removeprefix("<delivery>\\boxed{").removesuffix("}</delivery>")
    assert len(boxed) == len(task.answer) and boxed[0] != "0"
    assert sum(a != b for a, b in zip(boxed, task.answer, strict=True)) == 1
    assert not task.grade(run.final_output).correct
    greedy = ProgrammaticTeacher(copy_error_rate=1.0)
    request = designer_request(task, temperature=0.0)
    assert {greedy.generate([request])[0].metadata["teacher"]["pattern"] for _ in range(5)} == {
        "single"
    }
    executor = GenerationRequest(
        messages=run.trace[0].messages, sampling=SamplingParams(temperature=0.0)
    )
    assert greedy.generate([executor])[0].text == f"<delivery>\\boxed{{{task.answer}}}</delivery>"


def test_deterministic_for_a_seed() -> None:
    tasks = generate("arith", 40, level=3, seed=8)
    requests = [designer_request(t) for t in tasks] * 2

    def texts(seed: int) -> list[str]:
        teacher = ProgrammaticTeacher(seed=seed, copy_error_rate=0.3)
        return [r.text for r in teacher.generate(requests)]

    assert texts(0) == texts(0)
    assert texts(0) != texts(1)
    seeded = [designer_request(t) for t in tasks]
    for i, request in enumerate(seeded):
        request.sampling = SamplingParams(seed=i)
    shuffled = random.Random(0).sample(range(len(seeded)), len(seeded))
    forward = ProgrammaticTeacher().generate(seeded)
    backward = ProgrammaticTeacher().generate([seeded[i] for i in shuffled])
    assert [forward[i].text for i in shuffled] == [r.text for r in backward]


def test_seeded_executions_reproduce_through_the_runner() -> None:
    tasks = generate("arith", 6, level=4, seed=3)
    jobs = [(extract_design(designer_reply("vote3")).script, t) for t in tasks]
    runs = [run_all(ProgrammaticTeacher(copy_error_rate=0.3), jobs, seeded=True) for _ in range(2)]
    assert [
        [(c.agent, c.text) for c in sorted(r.trace, key=lambda c: c.agent)] for r in runs[0]
    ] == [[(c.agent, c.text) for c in sorted(r.trace, key=lambda c: c.agent)] for r in runs[1]]


@pytest.mark.parametrize(("family", "level"), FAMILY_LEVELS)
def test_problems_are_parsed_and_solved_from_the_text_alone(family: str, level: int) -> None:
    for task in generate(family, 50, level=level, seed=11):
        problem = parse_problem(task.prompt)
        if task.domain == "math":
            assert (
                problem.answer == task.answer and problem.expression == task.metadata["expression"]
            )
        else:
            assert problem.answer == task.metadata["reference_solution"]


def test_arithmetic_is_never_evaluated_as_code() -> None:
    assert evaluate("12-3*4+-5") == -5
    for bad in (
        "__import__('os').system('true')",
        "2**999999",
        "7//2",
        "x+1",
        "(1).real",
        "1" * 300,
    ):
        with pytest.raises(UnsupportedTaskError):
            evaluate(bad)
    with pytest.raises(UnsupportedTaskError):
        parse_problem("Compute the meaning of life.")
    stray = GenerationRequest(
        messages=[{"role": "system", "content": "x"}, {"role": "user", "content": "Hi"}]
    )
    with pytest.raises(UnsupportedTaskError):
        ProgrammaticTeacher().generate([stray])


def test_design_mix_is_validated() -> None:
    with pytest.raises(ValueError, match="does not suit"):
        ProgrammaticTeacher({"code": {"vote3": 1.0}})
    with pytest.raises(ValueError, match="positive total"):
        ProgrammaticTeacher({"math": {"single": 0.0}})
    with pytest.raises(ValueError, match="unknown domain"):
        ProgrammaticTeacher({"chess": {"single": 1.0}})
    with pytest.raises(ValueError, match="copy_error_rate"):
        ProgrammaticTeacher(copy_error_rate=1.5)
    assert (
        ProgrammaticTeacher({"math": {"tool": 2}}).design_mix["code"] == DEFAULT_DESIGN_MIX["code"]
    )
