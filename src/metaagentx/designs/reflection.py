"""Reflection: a solver answers, a verifier checks it, the solver revises; at most two rounds,
stopping early once the verifier says VERDICT: CORRECT. Good for hard problems where errors
are easier to spot than to avoid."""

from workflow import AgentNode, Workflow
from workflow.nodes import ReflectionNode

solver = AgentNode(
    name="Solver",
    system_prompt=(
        "You are an expert problem solver. List all constraints, solve step by step and check "
        "the answer against each constraint. When a reviewer reports problems, re-examine "
        "exactly the flagged steps and fix them."
    ),
    max_turns=1,
)

verifier = AgentNode(
    name="Verifier",
    system_prompt=(
        "You are a meticulous verifier. Do not rubber-stamp: re-derive the key computations "
        "yourself, substitute the proposed answer back into every condition, and look for "
        "off-by-one errors, sign errors and missed cases."
    ),
    max_turns=1,
)

reflection = ReflectionNode(
    name="SolveAndVerify",
    agent=solver,
    critic_agent=verifier,
    num_iterations=2,
)

workflow = Workflow(name="reflection")
workflow.add_node(reflection)

result = workflow.run()
print(result.content)
