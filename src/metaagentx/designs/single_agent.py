"""Single agent: one solver answers directly. Best for easy problems, where extra agents
only add noise and cost."""

from workflow import AgentNode, Workflow

# The library adds the delivery protocol and the answer format (\boxed{} or a python block)
# to every agent's system prompt, so the prompt only describes the role.
solver = AgentNode(
    name="Solver",
    system_prompt=(
        "You are an expert problem solver.\n"
        "1. Read the problem carefully and list what is given and what is asked.\n"
        "2. Solve it step by step, showing the key steps.\n"
        "3. Check your result against every condition of the problem before answering."
    ),
    max_turns=1,
)

workflow = Workflow(name="single_agent")
workflow.add_node(solver)

# run() reads the injected task (the `question` variable holds the same text) and records the
# final output for the harness.
result = workflow.run()
print(result.content)
