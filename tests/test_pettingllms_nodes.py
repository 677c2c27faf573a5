"""The authors' patterns (`workflow.nodes.{ensemble,debate,reflection,router}_node`) run unchanged:
scripts in their dialect through `run_design`, their `AgentNode` played by a scripted runtime."""

from __future__ import annotations

from mas_support import ScriptedRuntime, answer, by_agent, user_message
from metaagentx.mas import run_design

HEADER = (
    "from workflow.core import Message, MessageType, WorkflowNode\n"
    "from workflow.workflow import Workflow\n"
    "from workflow.nodes.agent_node import AgentNode\n"
    "from workflow.nodes.ensemble_node import EnsembleNode\n"
    "from workflow.nodes.debate_node import DebateNode\n"
    "from workflow.nodes.reflection_node import ReflectionNode\n"
    "from workflow.nodes.router_node import RouterNode, create_keyword_router\n"
    "def agent(name):\n"
    "    return AgentNode(name, f'You are {name}.', max_turns=1)\n"
    "def run(node):\n"
    "    result = Workflow('w').add_node(node).run(question)\n"
    "    print(result.message_type.value, result.sender)\n"
    "    return result\n"
)


def execute(body: str, replies: dict, status: str = "ok", **runtime):
    rt = ScriptedRuntime(by_agent(replies, default=answer("0", "default")), **runtime)
    outcome = run_design(HEADER + body, rt, dialect="pettingllms")
    assert outcome.status == status, outcome.error
    return outcome, rt


def events(outcome, kind: str) -> list[dict]:
    return [e for e in outcome.trace if e["type"] == kind]


def roles(outcome) -> list[tuple[str, str, str, int | None]]:
    return [(e["agent"], e["path"], e["role"], e["round"]) for e in events(outcome, "agent")]


ENSEMBLE = "run(EnsembleNode('ens', [agent('a'), agent('b'), agent('c')]{extra}))\n"


def test_majority_vote_picks_the_most_common_answer_and_returns_that_reply():
    outcome, rt = execute(
        ENSEMBLE.format(extra=""),
        {"a": answer("41", "a"), "b": answer("42", "b"), "c": answer("42.0", "c")},
    )
    assert outcome.final_output == answer("42", "b")  # the first reply holding the top answer
    assert outcome.stdout.strip() == "agent_response ens"
    (vote,) = events(outcome, "vote")
    assert vote["tally"] == {"41": 1.0, "42": 2.0} and vote["winner"] == "b"
    assert [p for _, p, _, _ in roles(outcome)] == ["w/ens/a", "w/ens/b", "w/ens/c"]
    assert {r for _, _, r, _ in roles(outcome)} == {"member"}
    assert all(user_message(c) == "What is 6 * 7?" for c in rt.calls)  # none sees another


def test_a_tie_goes_to_the_answer_given_first():
    outcome, _ = execute(
        ENSEMBLE.format(extra=""), {"a": answer("7", "a"), "b": answer("8", "b"), "c": "no box"}
    )
    assert outcome.final_output == answer("7", "a")


def test_a_unanimous_vote_is_accepted_without_the_judge():
    outcome, rt = execute(
        ENSEMBLE.format(extra=", consensus_agent=agent('judge')"),
        {"a": answer("42", "a"), "b": answer("42", "b"), "c": "I think 42 but I won't box it"},
    )
    assert "judge" not in rt.agents_called()  # an unboxed reply does not split the vote
    (vote,) = events(outcome, "vote")
    assert vote["unanimous"] and vote["judged"] is None
    assert vote["answers"] == [["a", "42"], ["b", "42"], ["c", None]]
    assert outcome.final_output == answer("42", "a")


def test_a_split_vote_goes_to_the_judge_with_every_solution():
    outcome, rt = execute(
        ENSEMBLE.format(extra=", 'majority_vote', agent('judge')"),
        {
            "a": answer("41", "a"),
            "b": answer("42", "b"),
            "c": answer("41", "c"),
            "judge": answer("42", "judged"),
        },
    )
    assert rt.agents_called()[-1] == "judge"
    prompt = user_message(rt.calls_of("judge")[0])
    assert "What is 6 * 7?" in prompt
    for member, value in (("a", "41"), ("b", "42"), ("c", "41")):
        assert f"({member}) ---\n{answer(value, member)}" in prompt
    assert outcome.final_output == answer("42", "judged")  # the judge's own reply
    assert outcome.delivery == "judged so \\boxed{42}"
    assert roles(outcome)[-1] == ("judge", "w/ens/judge", "judge", None)
    assert events(outcome, "vote")[0]["judged"] == "split_vote"


def test_nobody_boxing_an_answer_gives_the_first_reply_and_no_judge():
    outcome, rt = execute(
        ENSEMBLE.format(extra=", consensus_agent=agent('judge')"),
        {"a": "first thoughts", "b": "second thoughts", "c": "third thoughts"},
    )
    assert "judge" not in rt.agents_called()
    assert outcome.final_output == "first thoughts"


def test_weighted_vote_sums_weights_and_never_asks_the_judge():
    outcome, rt = execute(
        ENSEMBLE.format(extra=", 'weighted_vote', agent('judge'), weights=[1.0, 3.0, 1.5]"),
        {"a": answer("41", "a"), "b": answer("42", "b"), "c": answer("41", "c")},
    )
    assert "judge" not in rt.agents_called()
    assert events(outcome, "vote")[0]["tally"] == {"41": 2.5, "42": 3.0}
    assert outcome.final_output == answer("42", "b")
    unboxed, _ = execute(
        ENSEMBLE.format(extra=", strategy='weighted_vote', weights=[1, 5, 2]"),
        {"a": "a thinks", "b": "b thinks", "c": "c thinks"},
    )
    assert unboxed.final_output == "b thinks"  # nobody boxed: the heaviest member


def test_consensus_always_asks_the_judge():
    outcome, rt = execute(
        ENSEMBLE.format(extra=", strategy='consensus', consensus_agent=agent('judge')"),
        {"a": answer("42"), "b": answer("42"), "c": answer("42"), "judge": answer("42", "j")},
    )
    assert rt.agents_called()[-1] == "judge"
    assert events(outcome, "vote")[0]["judged"] == "consensus"
    assert outcome.final_output == answer("42", "j")


def test_failing_members_are_left_out_and_all_failing_is_an_error():
    broken = (
        "class Broken(WorkflowNode):\n"
        "    def process(self, context):\n"
        "        raise RuntimeError('no model')\n"
    )
    outcome, _ = execute(
        broken + "run(EnsembleNode('ens', [Broken('x'), agent('a'), agent('b')], "
        "consensus_agent=agent('judge')))\n",
        {"a": answer("42", "a"), "b": answer("42", "b")},
    )
    assert events(outcome, "vote")[0]["answers"] == [["a", "42"], ["b", "42"]]
    assert outcome.final_output == answer("42", "a")
    failed, rt = execute(
        broken + "result = run(EnsembleNode('ens', [Broken('x'), Broken('y')]))\n"
        "print('All agents failed' in result.content)\n",
        {},
        status="design_error",  # no agent answered, so there is no final output
    )
    assert failed.stdout.split() == ["error", "ens", "True"]
    assert rt.calls == []


def test_members_run_at_the_same_time():
    outcome, rt = execute(ENSEMBLE.format(extra=""), {}, delay=0.2)
    assert len(rt.calls) == 3 and outcome.final_output == answer("0", "default")
    assert max(c["start"] for c in rt.calls) < min(c["end"] for c in rt.calls)


DEBATE = "run(DebateNode('debate', [{debaters}]{extra}))\n"


def test_debate_rounds_see_the_whole_history_and_the_judge_the_last_round():
    outcome, rt = execute(
        DEBATE.format(debaters="agent('d1'), agent('d2')", extra=", agent('judge'), num_rounds=3"),
        {
            "d1": ["d1 round one", "d1 round two", "d1 round three"],
            "d2": ["d2 round one", "d2 round two", "d2 round three"],
            "judge": answer("42", "judge"),
        },
    )
    assert rt.agents_called()[-1] == "judge" and len(rt.calls) == 7
    first, third = rt.calls_of("d1")[0], rt.calls_of("d2")[2]
    assert user_message(first) == "What is 6 * 7?"
    third_prompt = user_message(third)
    for seen in ("d1 round one", "d2 round one", "d1 round two", "d2 round two"):
        assert seen in third_prompt
    assert "What is 6 * 7?" in third_prompt and "round three" not in third_prompt
    judge_prompt = user_message(rt.calls_of("judge")[0])
    assert "d1 round three" in judge_prompt and "d2 round three" in judge_prompt
    assert "round two" not in judge_prompt
    assert outcome.final_output == answer("42", "judge")
    assert [(a, r, n) for a, _, r, n in roles(outcome) if a == "d2"] == [
        ("d2", "debater", 1),
        ("d2", "debater", 2),
        ("d2", "debater", 3),
    ]
    assert roles(outcome)[-1] == ("judge", "w/debate/judge", "judge", None)


def test_without_a_judge_the_first_debater_judges():
    outcome, rt = execute(
        DEBATE.format(debaters="agent('d1'), agent('d2')", extra=""),
        {"d1": ["d1 opens", "d1 revises", answer("42", "d1 as judge")], "d2": "d2 says 41"},
    )
    assert rt.agents_called()[-1] == "d1" and len(rt.calls) == 5
    assert "d2 says 41" in user_message(rt.calls[-1])
    assert roles(outcome)[-1][2] == "judge"
    assert outcome.final_output == answer("42", "d1 as judge")


def test_a_single_debater_refines_its_own_answer():
    outcome, rt = execute(
        DEBATE.format(debaters="agent('solo')", extra=", num_rounds=2, verbose=True"),
        {"solo": ["first try 41", "second try 42", answer("42", "solo judged")]},
    )
    assert rt.agents_called() == ["solo"] * 3
    assert "first try 41" in user_message(rt.calls[1])
    assert outcome.final_output == answer("42", "solo judged")


def test_reflection_with_a_critic_refines_until_approved():
    outcome, rt = execute(
        "run(ReflectionNode('reflect', agent('solver'), 3, critic_agent=agent('critic')))\n",
        {
            "solver": [answer("41", "first"), answer("42", "second attempt, fixed")],
            "critic": ["The product is wrong. VERDICT: INCORRECT", "All good. VERDICT: CORRECT"],
        },
    )
    assert rt.agents_called() == ["solver", "critic", "solver", "critic"]
    critique_prompt = user_message(rt.calls_of("critic")[0])
    assert "What is 6 * 7?" in critique_prompt and answer("41", "first") in critique_prompt
    refine_prompt = user_message(rt.calls_of("solver")[1])
    assert "The product is wrong" in refine_prompt and answer("41", "first") in refine_prompt
    assert outcome.final_output == answer("42", "second attempt, fixed")
    assert [e["approved"] for e in events(outcome, "verdict")] == [False, True]
    assert [(a, r, n) for a, _, r, n in roles(outcome)] == [
        ("solver", "solver", 0),
        ("critic", "critic", 1),
        ("solver", "solver", 1),
        ("critic", "critic", 2),
    ]


def test_self_reflection_with_positional_iterations():
    outcome, rt = execute(
        "node = ReflectionNode('reflect', agent('solver'), 1)\n"
        "print(node.num_iterations, node.critic_agent is node.agent)\n"
        "run(node)\n",
        {"solver": [answer("41", "guess"), "Step 2 is wrong: 6*7 is not 41.", answer("42", "ok")]},
    )
    assert outcome.stdout.splitlines()[0] == "1 True"
    assert rt.agents_called() == ["solver"] * 3  # answer, critique itself, refine
    assert outcome.final_output == answer("42", "ok")


def test_reflection_stops_when_the_refinement_repeats_itself():
    outcome, rt = execute(
        "run(ReflectionNode('reflect', agent('solver'), 3, critic_agent=agent('critic')))\n",
        {"solver": answer("42", "same"), "critic": "Check the sign again."},
    )
    assert rt.agents_called() == ["solver", "critic", "solver"]
    assert outcome.final_output == answer("42", "same")
    assert events(outcome, "verdict")[0]["approved"] is False


def test_reflection_fills_custom_prompts_even_with_other_braces():
    outcome, rt = execute(
        "run(ReflectionNode('reflect', agent('solver'), num_iterations=1,\n"
        "    reflection_prompt='Q: {question} A: {response} Box it as \\\\boxed{}.',\n"
        "    refinement_prompt='Fix {response} using {reflection}.', critic_agent=agent('critic')))\n",
        {"solver": ["draft \\boxed{41}", answer("42", "fixed")], "critic": "off by one"},
    )
    assert user_message(rt.calls_of("critic")[0]) == (
        "Q: What is 6 * 7? A: draft \\boxed{41} Box it as \\boxed{}."
    )
    assert user_message(rt.calls_of("solver")[1]) == "Fix draft \\boxed{41} using off by one."
    assert outcome.final_output == answer("42", "fixed")


ROUTER = (
    "def pick(context):\n"
    "    text = context.get_latest_message().content\n"
    "    if 'boom' in text:\n"
    "        raise ValueError('no route')\n"
    "    return 'geometry' if 'triangle' in text else {unknown!r}\n"
    "routes = {{'geometry': agent('geo'), 'default': agent('general')}}\n"
    "result = run(RouterNode('router', routes, pick, default_route='default', log=True))\n"
    "print(result.metadata['route_taken'])\n"
)


def test_router_runs_the_route_its_function_picks_or_the_default():
    picked, rt = execute(
        ROUTER.format(unknown="nowhere"), {"geo": answer("6", "geo")}, question="A triangle?"
    )
    assert rt.agents_called() == ["geo"]
    assert picked.stdout.split() == ["agent_response", "router", "geometry"]
    assert picked.final_output == answer("6", "geo")
    assert roles(picked) == [("geo", "w/router/geo", "branch", None)]
    for question in ("Any number?", "boom"):
        fallback, rt = execute(ROUTER.format(unknown="nowhere"), {}, question=question)
        assert rt.agents_called() == ["general"]
        (route,) = events(fallback, "route")
        assert route["route"] == "default" and route["fallback"]


def test_router_needs_its_default_route():
    rt = ScriptedRuntime(by_agent({}))
    outcome = run_design(
        HEADER + "RouterNode('r', {'a': agent('a')}, lambda c: 'a')\n", rt, dialect="pettingllms"
    )
    assert outcome.status == "design_error" and "Default route 'default' not found" in outcome.error


def test_keyword_router_matches_the_latest_message():
    body = (
        "router = create_keyword_router('kw', {{'Prime': agent('primes'), 'area': agent('geo')}},\n"
        "                               agent('general'){extra})\n"
        "run(router)\n"
    )
    matched, rt = execute(body.format(extra=""), {}, question="Is 7 PRIME?")
    assert rt.agents_called() == ["primes"]
    _, rt = execute(body.format(extra=", case_sensitive=True"), {}, question="Is 7 PRIME?")
    assert rt.agents_called() == ["general"]
    _, rt = execute(body.format(extra=""), {}, question="What is the area and is it prime?")
    assert rt.agents_called() == ["primes"]  # the first keyword in the mapping's order wins
    assert events(matched, "route")[0]["route"] == "Prime"


def test_patterns_accept_extra_keywords_and_nest_in_each_other():
    outcome, rt = execute(
        "inner = EnsembleNode('ens', [agent('a'), agent('b')], temperature=0.7)\n"
        "node = ReflectionNode('reflect', inner, 1, critic_agent=agent('critic'), log_level='x')\n"
        "print(inner.config, node.config)\n"
        "run(node)\n",
        {"a": answer("42", "a"), "b": answer("42", "b"), "critic": "VERDICT: CORRECT"},
    )
    assert outcome.stdout.splitlines()[0] == "{'temperature': 0.7} {'log_level': 'x'}"
    assert [p for _, p, _, _ in roles(outcome)] == [
        "w/reflect/ens/a",
        "w/reflect/ens/b",
        "w/reflect/critic",
    ]
    assert outcome.final_output == answer("42", "a")
    assert sorted(rt.agents_called()) == ["a", "b", "critic"]
