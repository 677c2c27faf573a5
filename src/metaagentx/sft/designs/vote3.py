"""Long arithmetic invites slips: three Python agents answer and the majority wins."""

from workflow import AgentNode, Workflow
from workflow.nodes import EnsembleNode

solvers = [
    AgentNode(f"Solver{i}", "Compute with Python.", tools=["python"], max_turns=2) for i in range(3)
]
workflow = Workflow()
workflow.add_node(EnsembleNode("Vote", solvers))
result = workflow.run()
