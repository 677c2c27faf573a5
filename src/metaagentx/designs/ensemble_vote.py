"""Ensemble with majority vote: three solvers with different strategies answer independently
(at the same time); the most common final answer wins. Good for moderate problems where
independent attempts fail in different ways."""

from workflow import AgentNode, Workflow
from workflow.nodes import EnsembleNode

forward = AgentNode(
    name="ForwardSolver",
    system_prompt=(
        "You solve problems by FORWARD reasoning: start from the given conditions and derive "
        "the answer step by step, double-checking each step."
    ),
    max_turns=1,
)
backward = AgentNode(
    name="BackwardSolver",
    system_prompt=(
        "You solve problems by BACKWARD reasoning: ask what the answer must satisfy, then work "
        "back to the given conditions and confirm every link."
    ),
    max_turns=1,
)
cases = AgentNode(
    name="CaseAnalyzer",
    system_prompt=(
        "You solve problems by CASE ANALYSIS: find the key cases and boundary conditions, "
        "work each one out, and make sure no case is missed."
    ),
    max_turns=1,
)

ensemble = EnsembleNode(
    name="VoteEnsemble",
    agents=[forward, backward, cases],
    strategy="majority_vote",
)

workflow = Workflow(name="ensemble_vote")
workflow.add_node(ensemble)

result = workflow.run()
print(result.content)
