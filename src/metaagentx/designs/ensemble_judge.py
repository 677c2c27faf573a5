"""Ensemble with a judge: three solvers answer independently (at the same time); a judge reads
all their deliveries and gives the final answer. Good for hard problems where reasoning
quality matters more than the count of votes."""

from workflow import AgentNode, Workflow
from workflow.nodes import EnsembleNode

solvers = [
    AgentNode(
        name="AlgebraicSolver",
        system_prompt="You solve problems with careful algebraic derivations, step by step.",
        max_turns=1,
    ),
    AgentNode(
        name="ConstructiveSolver",
        system_prompt=(
            "You solve problems by building small concrete examples first, spotting the "
            "pattern, and then proving it."
        ),
        max_turns=1,
    ),
    AgentNode(
        name="SkepticalSolver",
        system_prompt=(
            "You solve problems while hunting for traps: off-by-one errors, missed cases and "
            "unjustified assumptions. Verify the final answer explicitly."
        ),
        max_turns=1,
    ),
]

judge = AgentNode(
    name="Judge",
    system_prompt=(
        "You are a senior reviewer. Check each candidate solution step by step, find their "
        "errors, then select the correct answer or derive it yourself."
    ),
    max_turns=1,
)

ensemble = EnsembleNode(
    name="JudgedEnsemble",
    agents=solvers,
    strategy="consensus",
    consensus_agent=judge,
)

workflow = Workflow(name="ensemble_judge")
workflow.add_node(ensemble)

result = workflow.run()
print(result.content)
