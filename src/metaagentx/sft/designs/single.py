"""One agent answers directly, without tools."""

from workflow import AgentNode, Workflow

solver = AgentNode("Solver", "Solve the task.", max_turns=1)
workflow = Workflow()
workflow.add_node(solver)
result = workflow.run()
