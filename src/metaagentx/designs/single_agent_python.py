"""Single agent with a Python interpreter: the agent computes and checks with code before
answering. Good for arithmetic-heavy problems, enumeration and brute-force verification."""

from workflow import AgentNode, ToolRegistry, Workflow

# "python" runs each ```python block the agent writes (without a <delivery> block) in a
# sandboxed interpreter and sends the output back to the agent.
tools = ToolRegistry(["python"])

solver = AgentNode(
    name="ComputingSolver",
    system_prompt=(
        "You are a careful mathematician who uses Python as a calculator and checker.\n"
        "1. Plan the solution.\n"
        "2. Do every non-trivial computation in Python and print the results.\n"
        "3. When possible, verify the answer by brute force on small cases.\n"
        "4. When the results are consistent, give your final answer."
    ),
    tools=tools,
    max_turns=4,
)

workflow = Workflow(name="single_agent_python")
workflow.add_node(solver)

result = workflow.run()
print(result.content)
