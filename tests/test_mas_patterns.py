"""Behaviour of agents, workflows and composite patterns against a scripted runtime."""

from __future__ import annotations

import time

import pytest

from mas_support import ScriptedRuntime, answer, by_agent, user_message
from metaagentx.mas import (
    AgentNode,
    DebateNode,
    EnsembleNode,
    ReflectionNode,
    RouterNode,
    ToolRegistry,
    Workflow,
    execution_of,
    use_runtime,
)
from metaagentx.mas.prompts import LAST_TURN_NOTICE
from metaagentx.mas.text import extract_boxed


def solver(name: str, **kwargs: object) -> AgentNode:
    return AgentNode(name=name, system_prompt=f"You are {name}.", max_turns=1, **kwargs)  # type: ignore[arg-type]


def test_agent_sees_task_and_only_upstream_deliveries() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {"A": "long private reasoning <delivery>A says 6</delivery>", "B": answer("42", "B")}
        )
    )
    wf = Workflow("seq").add_node(solver("A")).add_node(solver("B"))
    with use_runtime(rt):
        result = wf.run()
    first, second = rt.calls
    assert user_message(first) == "What is 6 * 7?"
    assert "What is 6 * 7?" in user_message(second) and "A says 6" in user_message(second)
    assert "private reasoning" not in user_message(second)
    assert (
        first["messages"][0]["role"] == "system" and "<delivery>" in first["messages"][0]["content"]
    )
    assert extract_boxed(result.content) == "42"
    assert execution_of(rt).final_output == result.content


def test_depends_on_limits_what_an_agent_sees() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {
                "A": "<delivery>from A</delivery>",
                "B": "<delivery>from B</delivery>",
                "C": answer("1"),
            }
        )
    )
    a, b, c = solver("A"), solver("B"), solver("C")
    wf = Workflow().add_node(a).add_node(b).add_node(c, depends_on=[a])
    with use_runtime(rt):
        wf.run()
    seen = user_message(rt.calls_of("C")[0])
    assert "from A" in seen and "from B" not in seen


def test_ensemble_majority_vote_picks_most_common_answer() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {"A": answer("5", "a"), "B": answer("\\frac{14}{2}", "b"), "C": answer("7.0", "c")}
        )
    )
    ens = EnsembleNode("E", [solver("A"), solver("B"), solver("C")], strategy="majority_vote")
    with use_runtime(rt):
        result = ens.run()
    assert result.metadata["winner"] == "B" and extract_boxed(result.content) == "\\frac{14}{2}"
    vote = next(e for e in execution_of(rt).trace if e["type"] == "vote")
    assert vote["tally"] == {"5": 1.0, "7": 2.0} and vote["winner"] == "B"


def test_ensemble_vote_escalates_split_to_judge_only() -> None:
    judge = solver("J")
    split = ScriptedRuntime(
        by_agent({"A": answer("1"), "B": answer("2"), "J": answer("2", "judged")})
    )
    with use_runtime(split):
        result = EnsembleNode("E", [solver("A"), solver("B")], consensus_agent=judge).run()
    assert result.metadata["judged"] == "split_vote" and "judged" in result.content
    same = ScriptedRuntime(by_agent({"A": answer("3"), "B": answer("3")}))
    with use_runtime(same):
        EnsembleNode("E", [solver("A"), solver("B")], consensus_agent=judge).run()
    assert "J" not in same.agents_called()


def test_ensemble_consensus_judge_sees_member_deliveries() -> None:
    rt = ScriptedRuntime(
        by_agent({"A": answer("1", "alpha"), "B": answer("2", "beta"), "J": answer("2")})
    )
    ens = EnsembleNode(
        "E", [solver("A"), solver("B")], strategy="consensus", consensus_agent=solver("J")
    )
    with use_runtime(rt):
        ens.run()
    seen = user_message(rt.calls_of("J")[0])
    assert "### From A\nalpha" in seen and "### From B\nbeta" in seen and "candidate" in seen


def test_ensemble_members_overlap_in_time() -> None:
    rt = ScriptedRuntime(lambda agent, messages: answer("1"), delay=0.2)
    ens = EnsembleNode("E", [solver("A"), solver("B"), solver("C")])
    began = time.perf_counter()
    with use_runtime(rt):
        ens.run()
    assert time.perf_counter() - began < 0.45  # sequential would take 0.6 s
    assert max(c["start"] for c in rt.calls) < min(c["end"] for c in rt.calls)


def test_debate_rounds_see_previous_round_and_judge_decides() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {
                "D1": [answer("1", "d1r1"), answer("2", "d1r2"), answer("2", "d1r3")],
                "D2": [answer("2", "d2r1"), answer("2", "d2r2"), answer("2", "d2r3")],
                "J": answer("2", "judge"),
            }
        ),
        delay=0.05,
    )
    debate = DebateNode("Deb", [solver("D1"), solver("D2")], judge=solver("J"), num_rounds=3)
    with use_runtime(rt):
        result = debate.run()
    assert rt.agents_called().count("D1") == 3 and rt.agents_called().count("D2") == 3
    round2 = user_message(rt.calls_of("D2")[1])
    assert "d1r1" in round2 and "d2r1" in round2 and "debaters" in round2
    judge_sees = user_message(rt.calls_of("J")[0])
    assert "d1r3" in judge_sees and "d1r2" not in judge_sees
    assert "judge" in result.content
    rounds = [
        e["round"]
        for e in execution_of(rt).trace
        if e["type"] == "agent" and e["role"] == "debater"
    ]
    assert sorted(rounds) == [1, 1, 2, 2, 3, 3]
    first_round = rt.calls[:2]
    assert max(c["start"] for c in first_round) < min(c["end"] for c in first_round)


def test_debate_without_judge_votes() -> None:
    rt = ScriptedRuntime(by_agent({"D1": answer("4"), "D2": answer("9"), "D3": answer("9")}))
    with use_runtime(rt):
        result = DebateNode("Deb", [solver("D1"), solver("D2"), solver("D3")], num_rounds=1).run()
    assert extract_boxed(result.content) == "9" and result.metadata["winner"] == "D2"


def test_reflection_stops_early_on_explicit_verdict() -> None:
    rt = ScriptedRuntime(by_agent({"S": answer("42"), "C": "Checked.\nVERDICT: CORRECT"}))
    node = ReflectionNode("R", solver("S"), critic_agent=solver("C"), num_iterations=3)
    with use_runtime(rt):
        result = node.run()
    assert rt.agents_called() == ["S", "C"]
    assert result.metadata == {"rounds": 1, "verdicts": ["correct"], "stopped_early": True}


def test_reflection_revises_until_rounds_run_out() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {
                "S": [answer("1", "v1"), answer("2", "v2"), answer("3", "v3")],
                "C": [
                    "VERDICT: INCORRECT <delivery>step 2 wrong</delivery>",
                    "This looks correct, mostly.",
                ],
            }
        )
    )
    node = ReflectionNode("R", solver("S"), critic_agent=solver("C"), num_iterations=2)
    with use_runtime(rt):
        result = node.run()
    assert rt.agents_called() == ["S", "C", "S", "C", "S"]
    revise = user_message(rt.calls_of("S")[1])
    assert "v1" in revise and "step 2 wrong" in revise and "reviewer" in revise
    assert "v1" in user_message(rt.calls_of("C")[0]) and "VERDICT" in user_message(
        rt.calls_of("C")[0]
    )
    assert extract_boxed(result.content) == "3" and result.metadata["verdicts"] == [
        "incorrect",
        None,
    ]


def test_reflection_custom_prompts_place_answer_and_critique_once() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {
                "S": [answer("1", "v1"), answer("42", "v2")],
                "C": ["VERDICT: INCORRECT <delivery>step 2 wrong</delivery>", "VERDICT: CORRECT"],
            }
        )
    )
    node = ReflectionNode(
        name="R",
        agent=solver("S"),
        num_iterations=3,
        reflection_prompt="Audit for {question}: {response} (answers look like \\boxed{n})",
        critic_agent=solver("C"),
        refinement_prompt="Was: {response}. Critique: {reflection}. Fix it.",
    )
    with use_runtime(rt):
        result = node.run()
    assert rt.agents_called() == ["S", "C", "S", "C"]
    review = user_message(rt.calls_of("C")[0])
    assert "Audit for What is 6 * 7?: v1 so \\boxed{1} (answers look like \\boxed{n})" in review
    assert "VERDICT: CORRECT" in review  # the verdict protocol is still asked for
    assert review.count("v1 so") == 1  # placed by the template, not delivered again
    revise = user_message(rt.calls_of("S")[1])
    assert "Was: v1 so \\boxed{1}. Critique: step 2 wrong. Fix it." in revise
    assert revise.count("step 2 wrong") == 1 and "reviewer found" not in revise
    assert extract_boxed(result.content) == "42" and result.metadata["stopped_early"]


def test_reflection_template_without_placeholders_still_delivers_the_work() -> None:
    rt = ScriptedRuntime(
        by_agent({"S": [answer("1", "v1"), answer("2", "v2")], "C": "<delivery>bad</delivery>"})
    )
    node = ReflectionNode(
        "R",
        solver("S"),
        critic_agent=solver("C"),
        num_iterations=1,
        reflection_prompt="Be harsh.",
        refinement_prompt="Try again.",
    )
    with use_runtime(rt):
        node.run()
    review, revise = user_message(rt.calls_of("C")[0]), user_message(rt.calls_of("S")[1])
    assert "Be harsh." in review and "v1" in review
    assert "Try again." in revise and "v1" in revise and "bad" in revise


def test_reflection_include_history_shows_every_earlier_round() -> None:
    def run(include_history: bool, template: str | None = None) -> ScriptedRuntime:
        rt = ScriptedRuntime(
            by_agent(
                {
                    "S": [answer("1", "v1"), answer("2", "v2"), answer("3", "v3")],
                    "C": [
                        "VERDICT: INCORRECT <delivery>critique one</delivery>",
                        "VERDICT: INCORRECT <delivery>critique two</delivery>",
                    ],
                }
            )
        )
        node = ReflectionNode(
            "R",
            solver("S"),
            critic_agent=solver("C"),
            num_iterations=2,
            include_history=include_history,
            refinement_prompt=template,
        )
        with use_runtime(rt):
            node.run()
        return rt

    third = user_message(run(True).calls_of("S")[2])
    assert all(text in third for text in ("v1", "critique one", "v2", "critique two"))
    assert "answer of round 0" in third and "review of round 1" in third
    assert "earlier rounds" in third
    forgetful = user_message(run(False).calls_of("S")[2])
    assert "v1" not in forgetful and "critique one" not in forgetful
    assert "v2" in forgetful and "critique two" in forgetful
    templated = run(True, "History:\n{history}\nNow: {response} / {reflection}")
    first_revision, second_revision = (user_message(c) for c in templated.calls_of("S")[1:])
    assert "History:\n(no earlier rounds)" in first_revision
    assert "S (answer of round 0):\nv1 so \\boxed{1}" in second_revision
    assert second_revision.count("critique one") == 1


def test_reflection_rejects_bad_options() -> None:
    for kwargs in ({"reflection_prompt": ""}, {"refinement_prompt": 3}, {"include_history": "yes"}):
        with pytest.raises((TypeError, ValueError)):
            ReflectionNode("R", solver("S"), **kwargs)  # type: ignore[arg-type]


def test_router_runs_the_chosen_branch() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {
                "Router": "Needs numbers. <route>compute</route>",
                "Calc": answer("42"),
                "Easy": answer("0"),
            }
        )
    )
    node = RouterNode(
        "Route",
        solver("Router"),
        {"easy": solver("Easy"), "compute": solver("Calc")},
        descriptions={"easy": "simple ones"},
    )
    with use_runtime(rt):
        result = node.run()
    assert rt.agents_called() == ["Router", "Calc"] and result.metadata["route"] == "compute"
    instruction = user_message(rt.calls[0])
    assert "- easy: simple ones" in instruction and "- compute: You are Calc." in instruction
    fallback = ScriptedRuntime(by_agent({"Router": "no idea", "Easy": answer("0")}))
    with use_runtime(fallback):
        node2 = RouterNode(
            "Route",
            solver("Router"),
            {"calc": solver("Calc"), "easy": solver("Easy")},
            default="easy",
        )
        assert node2.run().metadata == {"route": "easy", "fallback": True}


def test_python_tool_turn_loop() -> None:
    rt = ScriptedRuntime(
        by_agent({"P": ["Let me compute.\n```python\nprint(6*7)\n```", answer("42", "ran it")]}),
        tools={"python": lambda args: "42\n" if "6*7" in args["code"] else "?"},
    )
    agent = AgentNode("P", "You compute.", tools=ToolRegistry(["python"]), max_turns=4)
    with use_runtime(rt):
        result = agent.run()
    assert rt.tool_calls == [{"agent": "P", "name": "python", "arguments": {"code": "print(6*7)"}}]
    second = rt.calls[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[-1]["content"] == "42\n"
    assert extract_boxed(result.content) == "42" and result.metadata["turns"] == 2
    (event,) = [e for e in execution_of(rt).trace if e["type"] == "agent"]
    assert event["turns"][0]["tool_calls"][0]["output"] == "42\n"


def test_code_blocks_run_only_with_the_python_tool_and_not_in_final_replies() -> None:
    code = "```python\nprint(1)\n```"
    no_tool = ScriptedRuntime(by_agent({"A": code}))
    with use_runtime(no_tool):
        AgentNode("A", "x", max_turns=3).run()
    assert len(no_tool.calls) == 1 and not no_tool.tool_calls
    final = ScriptedRuntime(
        by_agent({"A": f"{code}\n<delivery>done</delivery>"}), tools={"python": str}
    )
    with use_runtime(final):
        AgentNode("A", "x", tools=["python"], max_turns=3).run()
    assert len(final.calls) == 1 and not final.tool_calls


def test_last_turn_runs_no_tools_and_is_announced() -> None:
    rt = ScriptedRuntime(
        by_agent({"A": "```python\nprint(1)\n```"}), tools={"python": lambda a: "1"}
    )
    with use_runtime(rt):
        AgentNode("A", "x", tools=["python"], max_turns=2).run()
    assert len(rt.calls) == 2 and len(rt.tool_calls) == 1
    assert rt.calls[1]["messages"][-1]["content"].endswith(LAST_TURN_NOTICE)


def test_tool_call_errors_are_fed_back_to_the_agent() -> None:
    registry = ToolRegistry()

    @registry.register
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def boom() -> str:
        raise RuntimeError("tool broke")

    registry.register(boom, name="boom")
    rt = ScriptedRuntime(
        by_agent(
            {
                "A": [
                    "<tool_call>{'name': 'add'}</tool_call>",
                    '<tool_call>{"name": "nope", "arguments": {}}</tool_call>'
                    '<tool_call>{"name": "boom", "arguments": {}}</tool_call>',
                    '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>',
                    answer("5"),
                ]
            }
        )
    )
    agent = AgentNode("A", "You add.", tools=registry, max_turns=5)
    with use_runtime(rt):
        result = agent.run()
    tool_messages = [m["content"] for m in rt.calls[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages[0].startswith("Error: invalid JSON")
    assert "unknown tool 'nope'" in tool_messages[1]
    assert tool_messages[2] == "Error: RuntimeError: tool broke"
    assert tool_messages[3] == "5"
    assert extract_boxed(result.content) == "5"
    assert "add(a: int, b: int): Add two integers." in rt.calls[0]["messages"][0]["content"]


def test_run_tests_defaults_to_the_last_code_block_of_the_conversation() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {
                "W": "```python\nprint('ok')\n```\n<delivery>```python\nprint('ok')\n```</delivery>",
                "T": [
                    '<tool_call>{"name": "run_tests", "arguments": {}}</tool_call>',
                    "VERDICT: CORRECT",
                ],
            }
        ),
        domain="code",
        tools={"run_tests": lambda args: "2/2 passed"},
    )
    wf = Workflow().add_node(solver("W")).add_node(AgentNode("T", "Test.", tools=["run_tests"]))
    with use_runtime(rt):
        wf.run()
    assert rt.tool_calls == [
        {"agent": "T", "name": "run_tests", "arguments": {"code": "print('ok')"}}
    ]


def test_workflow_loop_edge_is_bounded_and_condition_skips() -> None:
    rt = ScriptedRuntime(by_agent({"S": answer("1"), "V": "VERDICT: INCORRECT", "X": answer("9")}))
    s, v, x = solver("S"), solver("V"), solver("X")
    wf = (
        Workflow("loop")
        .add_node(s)
        .add_node(v)
        .add_node(x, condition=lambda st: st.verdict == "correct")
    )
    wf.add_edge(v, s, condition=lambda st: st.verdict == "incorrect", max_times=2)
    with use_runtime(rt):
        result = wf.run()
    assert rt.agents_called() == ["S", "V", "S", "V", "S", "V"]
    assert result.metadata == {"last_node": "V", "steps": 6}
    edges = [e for e in execution_of(rt).trace if e["type"] == "edge"]
    assert [e["times"] for e in edges] == [1, 2]
    solver_view = user_message(rt.calls[2])
    assert "### From S" in solver_view and "### From V" in solver_view


def test_nested_workflow_and_paths_in_trace() -> None:
    rt = ScriptedRuntime(lambda agent, messages: answer("1"))
    inner = Workflow("inner").add_node(EnsembleNode("E", [solver("A"), solver("B")]))
    outer = Workflow("outer").add_node(inner).add_node(solver("C"))
    with use_runtime(rt):
        outer.run()
    paths = {e["agent"]: e["path"] for e in execution_of(rt).trace if e["type"] == "agent"}
    assert paths == {"A": "outer/inner/E/A", "B": "outer/inner/E/B", "C": "outer/C"}
