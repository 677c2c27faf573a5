"""Code can be checked: one agent writes the function and runs the public tests first."""

from workflow import AgentNode, Workflow

solver = AgentNode("Solver", "Write and test the code.", tools=["run_tests"], max_turns=2)
workflow = Workflow()
workflow.add_node(solver)
result = workflow.run()
