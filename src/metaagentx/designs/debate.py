"""Debate: three debaters answer, then read each other's answers and revise over two rounds
(each round runs the debaters at the same time); a judge gives the final answer. Good for
problems with tempting wrong answers that other agents can refute."""

from workflow import AgentNode, Workflow
from workflow.nodes import DebateNode

debaters = [
    AgentNode(
        name=f"Debater{i}",
        system_prompt=(
            f"You are debater {i}. {style} When you see other answers, point out concrete "
            "mistakes and change your answer only for a convincing reason."
        ),
        max_turns=1,
    )
    for i, style in enumerate(
        [
            "Solve rigorously, step by step.",
            "Look for a shortcut or an elegant argument, then check it.",
            "Test the claims on small cases before trusting them.",
        ],
        start=1,
    )
]

judge = AgentNode(
    name="Judge",
    system_prompt=(
        "You judge a debate. Weigh the arguments, not the majority: check the decisive steps "
        "of each final answer and give the answer that survives."
    ),
    max_turns=1,
)

debate = DebateNode(name="Debate", debaters=debaters, judge=judge, num_rounds=2)

workflow = Workflow(name="debate")
workflow.add_node(debate)

result = workflow.run()
print(result.content)
