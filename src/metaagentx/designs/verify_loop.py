"""Solve-verify loop as a graph: a solver answers, a verifier checks; while the verifier says
VERDICT: INCORRECT the solver tries again (at most twice more). The verifier always restates
the final answer, so its last reply is the workflow's answer."""

from workflow import AgentNode, Workflow

solver = AgentNode(
    name="Solver",
    system_prompt=(
        "You are an expert problem solver. Solve step by step. If a verifier found errors in "
        "an earlier attempt, fix exactly those."
    ),
    max_turns=1,
)

verifier = AgentNode(
    name="Verifier",
    system_prompt=(
        "You verify the delivered solution: re-derive the key steps and check the answer "
        "against every condition. End with VERDICT: CORRECT or VERDICT: INCORRECT. In both "
        "cases restate the final answer you believe is right."
    ),
    max_turns=1,
)

workflow = Workflow(name="verify_loop")
workflow.add_node(solver)
workflow.add_node(verifier)
# A back edge is a loop; max_times is its hard bound. When it is used up, or the verdict is
# CORRECT, execution falls through past the verifier and ends.
workflow.add_edge(verifier, solver, condition=lambda s: s.verdict == "incorrect", max_times=2)

result = workflow.run()
print(result.content)
