"""Exact arithmetic: one agent computes it with Python."""

from workflow import AgentNode, Workflow

solver = AgentNode("Solver", "Compute with Python.", tools=["python"], max_turns=2)
workflow = Workflow()
workflow.add_node(solver)
result = workflow.run()
