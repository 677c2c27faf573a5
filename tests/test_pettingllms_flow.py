"""The authors' workflows (`workflow.workflow`, `workflow.graph`) run unchanged: scripts in their
dialect through `run_design`, with the authors' `AgentNode` played by a scripted runtime, and one
in the real sandbox."""

from __future__ import annotations

import asyncio

from mas_support import ScriptedRuntime, answer, by_agent, user_message
from metaagentx.mas import Limits, run_design
from metaagentx.sandbox.runner import Runner
from metaagentx.sandbox.settings import SandboxSettings
from sandbox_support import ScriptedBatcher

HEADER = (
    "from workflow.core import Context, Message, MessageType, WorkflowNode\n"
    "from workflow.workflow import Workflow, ConditionalWorkflow, LoopWorkflow\n"
    "from workflow.graph import AgentGraph, create_simple_chain\n"
    "from workflow.nodes.agent_node import AgentNode\n"
)
FAILING_NODE = (
    "class Broken(WorkflowNode):\n"
    "    def process(self, context):\n"
    "        raise RuntimeError('tool exploded')\n"
)


def execute(body: str, replies: dict, limits: Limits | None = None, **runtime):
    rt = ScriptedRuntime(by_agent(replies, default=answer("0", "default")), **runtime)
    outcome = run_design(HEADER + body, rt, limits, dialect="pettingllms")
    return outcome, rt


def agents(outcome) -> list[tuple[str, str, str]]:
    """(agent, path, role) of every agent run, in trace order."""
    return [(e["agent"], e["path"], e["role"]) for e in outcome.trace if e["type"] == "agent"]


def test_single_agent_workflow_records_the_agents_reply():
    outcome, rt = execute(
        "solver = AgentNode('solver', 'Solve it.', ai_client=None, enable_conversation_logging=False)\n"
        "workflow = Workflow(name='single', ai_client=None, tokenizer=None)\n"
        "workflow.add_node(solver)\n"
        "result = workflow.run(question)\n"
        "print(result.message_type.value, result.sender)\n",
        {"solver": answer("42", "six sevens")},
    )
    assert outcome.status == "ok", outcome.error
    assert outcome.final_output == answer("42", "six sevens")
    assert outcome.delivery == "six sevens so \\boxed{42}"
    assert outcome.stdout.strip() == "agent_response solver"
    assert agents(outcome) == [("solver", "single/solver", "step")]
    assert user_message(rt.calls[0]) == "What is 6 * 7?"  # the injected question, alone


def test_later_agents_see_earlier_responses_and_the_last_one_is_final():
    outcome, rt = execute(
        "workflow = Workflow('chain')\n"
        "workflow.add_nodes([AgentNode('planner', 'Plan.'), AgentNode('solver', 'Solve.')])\n"
        "result = workflow.run(question)\n"
        "print(result.sender, len(result.content))\n",
        {
            "planner": "Plan: multiply.\n<delivery>multiply 6 by 7</delivery>",
            "solver": answer("42"),
        },
    )
    assert outcome.status == "ok", outcome.error
    solver_prompt = user_message(rt.calls_of("solver")[0])
    assert "What is 6 * 7?" in solver_prompt and "multiply 6 by 7" in solver_prompt
    assert "Plan: multiply." not in solver_prompt  # the delivery, not the whole reply
    assert outcome.final_output == answer("42")
    assert outcome.stdout.split()[0] == "solver"


def test_run_takes_its_input_and_initial_state_and_exposes_the_workflow():
    outcome, rt = execute(
        "class Note(WorkflowNode):\n"
        "    def process(self, context):\n"
        "        assert context.get_state('workflow') is workflow\n"
        "        context.set_state('seen', context.get_state('level'))\n"
        "        return Message('noted', MessageType.INTERMEDIATE)\n"
        "workflow = Workflow('stateful').add_node(Note('note')).add_node(AgentNode('solver', 'S.'))\n"
        "seed = {'level': 'hard'}\n"
        "result = workflow.run('What is 2 + 2?', initial_state=seed)\n"
        "print(sorted(seed), result.content == 'four \\\\boxed{4}')\n",
        {"solver": "four \\boxed{4}"},
    )
    assert outcome.status == "ok", outcome.error
    assert outcome.stdout.strip() == "['level'] True"  # the caller's dict is copied, not changed
    assert user_message(rt.calls[0]).startswith("What is 2 + 2?")
    assert outcome.final_output == "four \\boxed{4}"


def test_run_with_context_appends_to_the_given_context():
    outcome, rt = execute(
        "context = Context()\n"
        "context.add_message(Message(question, MessageType.USER_INPUT))\n"
        "context.add_message(Message('use the table <delivery>table: 42</delivery>',\n"
        "                            MessageType.AGENT_RESPONSE, sender='lookup'))\n"
        "workflow = Workflow('resume').add_node(AgentNode('solver', 'Solve.'))\n"
        "result = workflow.run_with_context(context)\n"
        "print(len(context.messages), context.messages[-1] is result)\n",
        {"solver": answer("42", "from the table")},
    )
    assert outcome.status == "ok", outcome.error
    assert outcome.stdout.strip() == "3 True"
    assert "[lookup]:\ntable: 42" in user_message(rt.calls[0])
    assert outcome.final_output == answer("42", "from the table")


def test_an_erroring_node_becomes_an_error_message_and_stops_the_workflow():
    outcome, rt = execute(
        FAILING_NODE + "workflow = Workflow('w')\n"
        "workflow.add_nodes([AgentNode('solver', 'S.'), Broken('checker'), AgentNode('late', 'L.')])\n"
        "result = workflow.run(question)\n"
        "print(result.message_type.value, result.sender, 'tool exploded' in result.content)\n",
        {"solver": answer("42")},
    )
    assert outcome.status == "ok", outcome.error  # the script goes on after the error
    assert outcome.stdout.strip() == "error checker True"
    assert rt.agents_called() == ["solver"]  # theirs stops at the first ERROR
    assert outcome.final_output == answer("42")  # the answer an agent wrote before it
    errors = [e for e in outcome.trace if e["type"] == "node_error"]
    assert errors and errors[0]["path"] == "w/checker" and "tool exploded" in errors[0]["error"]


def test_only_an_agents_reply_is_ever_the_final_output():
    outcome, _ = execute(
        "class Summary(WorkflowNode):\n"
        "    def process(self, context):\n"
        "        return Message('made up \\\\boxed{99}', MessageType.FINAL_RESULT)\n"
        "workflow = Workflow('w').add_node(AgentNode('solver', 'S.')).add_node(Summary('sum'))\n"
        "print(workflow.run(question).content)\n",
        {"solver": answer("42")},
    )
    assert outcome.status == "ok", outcome.error
    assert outcome.stdout.strip() == "made up \\boxed{99}"  # what the script gets back...
    assert outcome.final_output == answer("42")  # ...but the host credits the agent's reply


def test_a_workflow_with_only_a_failing_node_has_no_final_output():
    outcome, _ = execute(FAILING_NODE + "Workflow('w').add_node(Broken('b')).run(question)\n", {})
    assert outcome.status == "design_error"
    assert "no final output" in outcome.error


def test_conditional_workflow_skips_nodes_whose_condition_fails():
    outcome, rt = execute(
        "workflow = ConditionalWorkflow('cond')\n"
        "workflow.add_node(AgentNode('solver', 'S.'))\n"
        "workflow.add_node(AgentNode('fixer', 'F.'),\n"
        "                  condition=lambda ctx: '41' in ctx.get_latest_message().content)\n"
        "workflow.add_node(AgentNode('never', 'N.'), condition=lambda ctx: ctx.state['missing'])\n"
        "workflow.add_node(AgentNode('checker', 'C.'),\n"
        "                  condition=lambda ctx: len(ctx.get_messages_by_type(MessageType.AGENT_RESPONSE)) == 1)\n"
        "workflow.run(question)\n",
        {"solver": answer("42"), "checker": answer("42", "checked")},
    )
    assert outcome.status == "ok", outcome.error
    assert rt.agents_called() == ["solver", "checker"]
    skips = {e["skipped"]: e["error"] for e in outcome.trace if e["type"] == "skip"}
    assert skips["fixer"] is None and skips["never"].startswith("KeyError")
    assert outcome.final_output == answer("42", "checked")


def test_loop_workflow_repeats_while_its_condition_holds():
    outcome, rt = execute(
        "loop = LoopWorkflow('refine', max_iterations=5)\n"
        "loop.add_node(AgentNode('solver', 'S.'))\n"
        "loop.set_loop_condition(lambda ctx: 'DONE' not in ctx.get_latest_message().content)\n"
        "loop.run(question)\n",
        {"solver": ["try 1", "try 2", "DONE " + answer("42")]},
    )
    assert outcome.status == "ok", outcome.error
    assert rt.agents_called() == ["solver"] * 3
    rounds = [e["round"] for e in outcome.trace if e["type"] == "agent"]
    assert rounds == [1, 2, 3]
    loops = [e["again"] for e in outcome.trace if e["type"] == "loop"]
    assert loops == [True, True, False]
    assert outcome.final_output == "DONE " + answer("42")
    assert "try 2" in user_message(rt.calls[2])  # every pass sees the earlier ones


def test_loop_workflow_stops_at_max_iterations_and_needs_a_condition():
    bounded, rt = execute(
        "loop = LoopWorkflow('forever', max_iterations=2).add_node(AgentNode('solver', 'S.'))\n"
        "loop.set_loop_condition(lambda ctx: True)\n"
        "loop.run(question)\n",
        {"solver": answer("42")},
    )
    assert bounded.status == "ok", bounded.error
    assert len(rt.calls) == 2
    missing, _ = execute(
        "LoopWorkflow('l').add_node(AgentNode('solver', 'S.')).run(question)\n", {}
    )
    assert missing.status == "design_error" and "Loop condition must be set" in missing.error


def test_every_node_run_counts_against_the_step_limit():
    outcome, rt = execute(
        "loop = LoopWorkflow('forever', max_iterations=10).add_node(AgentNode('solver', 'S.'))\n"
        "loop.set_loop_condition(lambda ctx: True)\n"
        "loop.run(question)\n",
        {"solver": answer("42")},
        limits=Limits(max_steps=3),
    )
    assert outcome.status == "limit_exceeded" and outcome.error_kind == "max_steps"
    assert len(rt.calls) == 3


def test_a_nested_workflow_shares_its_agents_responses():
    outcome, rt = execute(
        "inner = Workflow('inner').add_nodes([AgentNode('a', 'A.'), AgentNode('b', 'B.')])\n"
        "outer = Workflow('outer').add_node(inner).add_node(AgentNode('c', 'C.'))\n"
        "outer.run(question)\n",
        {"a": "<delivery>from a</delivery>", "b": "<delivery>from b</delivery>", "c": answer("42")},
    )
    assert outcome.status == "ok", outcome.error
    assert [p for _, p, _ in agents(outcome)] == ["outer/inner/a", "outer/inner/b", "outer/c"]
    prompt = user_message(rt.calls_of("c")[0])
    assert "from a" in prompt and "from b" in prompt


GRAPH = (
    "graph = AgentGraph('review', max_steps=10)\n"
    "graph.add_node('solve', AgentNode('solver', 'S.'))\n"
    "graph.add_node('check', AgentNode('checker', 'C.'))\n"
    "graph.add_node('polish', AgentNode('writer', 'W.'))\n"
    "graph.add_edge('solve', 'check')\n"
    "graph.add_conditional_edges(\n"
    "    'check', lambda ctx: 'solve' if 'RETRY' in ctx.get_latest_message().content else 'polish')\n"
    "graph.set_entry_point('solve')\n"
    "graph.set_finish_point('polish')\n"
)


def test_agent_graph_follows_edges_and_routing_until_a_finish_point():
    outcome, rt = execute(
        GRAPH + "result = graph.run(question, initial_state={'k': 1})\n",
        {
            "solver": [answer("41"), answer("42")],
            "checker": ["RETRY: wrong", "fine"],
            "writer": answer("42", "polished"),
        },
    )
    assert outcome.status == "ok", outcome.error
    assert rt.agents_called() == ["solver", "checker", "solver", "checker", "writer"]
    edges = [(e["source"], e["target"]) for e in outcome.trace if e["type"] == "edge"]
    assert edges == [
        ("solve", "check"),
        ("check", "solve"),
        ("solve", "check"),
        ("check", "polish"),
    ]
    assert agents(outcome)[0] == ("solver", "review/solver", "step")
    assert outcome.final_output == answer("42", "polished")


def test_agent_graph_ends_on_a_finish_point_end_marker_or_unknown_route():
    finish, rt = execute(
        GRAPH.replace("set_finish_point('polish')", "set_finish_point('check')")
        + "graph.run(question)\n",
        {"solver": answer("42"), "checker": "RETRY"},
    )
    assert finish.status == "ok", finish.error
    assert rt.agents_called() == ["solver", "checker"]  # a finish point ends it, edges or not
    for target in ("None", "'__end__'", "'nowhere'"):
        ended, rt = execute(
            GRAPH.replace("'solve' if 'RETRY'", f"{target} if 'RETRY'")
            + "print(graph.run(question).sender)\n",
            {"solver": answer("42"), "checker": "RETRY"},
        )
        assert ended.status == "ok", ended.error
        assert rt.agents_called() == ["solver", "checker"], target
        assert ended.stdout.strip() == "checker" and ended.final_output == "RETRY"


PING = (
    "graph = AgentGraph('ping', max_steps={steps})\n"
    "for name in ('a', 'b', 'z'):\n"
    "    graph.add_node(name, AgentNode(name, name.upper() + '.'))\n"
    "graph.add_edge('a', 'b').add_edge('b', 'a', condition=lambda ctx: True)\n"
    "graph.set_entry_point('a').set_finish_point('z')\n"
    "graph.run(question)\n"
)


def test_agent_graph_stops_at_its_own_max_steps_and_at_the_hosts():
    own, rt = execute(PING.format(steps=3), {"a": answer("1"), "b": answer("2")})
    assert own.status == "ok", own.error
    assert rt.agents_called() == ["a", "b", "a"]
    assert [e["steps"] for e in own.trace if e["type"] == "max_steps"] == [3]
    assert own.final_output == answer("1")
    host, rt = execute(
        PING.format(steps=50), {"a": answer("1"), "b": answer("2")}, limits=Limits(max_steps=4)
    )
    assert host.status == "limit_exceeded" and host.error_kind == "max_steps"
    assert len(rt.calls) == 4


def test_agent_graph_needs_an_entry_and_a_finish_point():
    no_entry, _ = execute(
        "graph = AgentGraph('g').add_node('a', AgentNode('a', 'A.'))\ngraph.run(question)\n", {}
    )
    assert no_entry.status == "design_error" and "Entry point not set" in no_entry.error
    no_finish, _ = execute(
        "graph = AgentGraph('g').add_node('a', AgentNode('a', 'A.')).set_entry_point('a')\n"
        "graph.run(question)\n",
        {},
    )
    assert no_finish.status == "design_error" and "No finish points set" in no_finish.error
    bad_edge, _ = execute("AgentGraph('g').add_edge('a', 'b')\n", {})
    assert bad_edge.status == "design_error" and "'a' not found" in bad_edge.error


def test_create_simple_chain_runs_the_pairs_in_order():
    outcome, rt = execute(
        "chain = create_simple_chain(('plan', AgentNode('planner', 'P.')),\n"
        "                            ('solve', AgentNode('solver', 'S.')),\n"
        "                            ('verify', AgentNode('verifier', 'V.')))\n"
        "print(chain.entry_point, chain.finish_points)\n"
        "chain.run(question)\n",
        {"verifier": answer("42", "verified")},
    )
    assert outcome.status == "ok", outcome.error
    assert outcome.stdout.strip() == "plan ['verify']"
    assert rt.agents_called() == ["planner", "solver", "verifier"]
    assert outcome.final_output == answer("42", "verified")


def test_an_unrun_top_level_workflow_is_run_on_the_question():
    outcome, rt = execute(
        "workflow = Workflow('w').add_node(AgentNode('solver', 'S.'))\n", {"solver": answer("42")}
    )
    assert outcome.status == "ok", outcome.error
    assert rt.agents_called() == ["solver"] and outcome.final_output == answer("42")


def test_a_paper_style_script_with_package_imports_is_detected_and_runs():
    script = (
        "import os, sys\n"
        "from workflow import AgentNode, Workflow\n"
        "from workflow.nodes import EnsembleNode, ReflectionNode\n"
        "solvers = [AgentNode(f'Solver{i}', 'Solve step by step.', max_turns=2) for i in range(3)]\n"
        "judge = AgentNode('Judge', 'Decide which solution is right.')\n"
        "verifier = AgentNode('Verifier', 'Check the answer.')\n"
        "workflow = Workflow(name='math_ensemble_judge')\n"
        "workflow.add_node(EnsembleNode('ensemble', solvers, strategy='majority_vote',\n"
        "                               consensus_agent=judge))\n"
        "workflow.add_node(ReflectionNode('check', AgentNode('Finisher', 'Finish.'), 1,\n"
        "                                 critic_agent=verifier))\n"
        "result = workflow.run(question)\n"
        "print(os.path.basename('a/b'), result.sender)\n"
    )
    replies = {
        "Solver0": answer("42", "s0"),
        "Solver1": answer("42", "s1"),
        "Solver2": answer("40", "s2"),
        "Judge": answer("42", "judge"),
        "Finisher": answer("42", "finisher"),
        "Verifier": "Re-derived it. VERDICT: CORRECT",
    }
    rt = ScriptedRuntime(by_agent(replies))
    outcome = run_design(script, rt)  # "auto": ReflectionNode(name, agent, 1) makes it theirs
    assert outcome.status == "ok", outcome.error
    assert outcome.stdout.strip() == "b check"  # `os` without importing it, as in theirs
    assert rt.agents_called()[3:] == ["Judge", "Finisher", "Verifier"]
    assert "judge so \\boxed{42}" in user_message(rt.calls_of("Finisher")[0])
    assert outcome.final_output == answer("42", "finisher")


def test_an_authors_script_runs_in_the_real_sandbox():
    script = (
        "from workflow.core import MessageType\n"
        "from workflow.workflow import Workflow\n"
        "from workflow.nodes.agent_node import AgentNode\n"
        "from workflow.nodes.ensemble_node import EnsembleNode\n"
        "solvers = [AgentNode(f'solver{i}', 'Solve it.', max_turns=1) for i in range(3)]\n"
        "judge = AgentNode('judge', 'Pick the right answer.', max_turns=1)\n"
        "workflow = Workflow(name='math_ensemble_judge')\n"
        "workflow.add_node(EnsembleNode('ensemble', solvers, consensus_agent=judge))\n"
        "result = workflow.run(question)\n"
        "assert result.message_type == MessageType.AGENT_RESPONSE\n"
    )
    answers = {"solver0": "\\boxed{4}", "solver1": "\\boxed{5}", "solver2": "\\boxed{4}"}

    def reply(request):
        agent = request.metadata["agent"]
        if agent == "judge":
            assert "\\boxed{5}" in request.messages[-1]["content"]
            return "Solution 1 is right. FINAL ANSWER: \\boxed{4}"
        return f"{agent} works it out: {answers[agent]}"

    async def go():
        runner = Runner(ScriptedBatcher(reply), SandboxSettings(timeout_s=30.0))
        try:
            return await runner.run(script, {"question": "What is 2+2?", "domain": "math"})
        finally:
            runner.close()

    result = asyncio.run(go())
    assert result.status == "ok", result.error
    assert result.final_output == "Solution 1 is right. FINAL ANSWER: \\boxed{4}"
    assert sorted(c.agent for c in result.trace) == ["judge", "solver0", "solver1", "solver2"]
    votes = [e for e in result.workflow_trace if e["type"] == "vote"]
    assert votes[0]["judged"] == "split_vote" and votes[0]["path"] == "math_ensemble_judge/ensemble"
