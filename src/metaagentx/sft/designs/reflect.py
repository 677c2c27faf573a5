"""A checker recomputes the answer with Python; the solver redoes it when they disagree."""

from workflow import AgentNode, Workflow
from workflow.nodes import ReflectionNode

solver = AgentNode("Solver", "Compute with Python.", tools=["python"], max_turns=2)
checker = AgentNode("Checker", "Recompute with Python.", tools=["python"], max_turns=2)
workflow = Workflow()
workflow.add_node(ReflectionNode("Check", solver, checker, 1))
result = workflow.run()
