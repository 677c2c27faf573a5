"""Code writer + tester: a writer produces a program; a tester runs it on the problem's public
tests (run_tests) and reports failures; the writer fixes them. Stops early when all tests
pass. Good for code problems with tricky edge cases."""

from workflow import AgentNode, ToolRegistry, Workflow
from workflow.nodes import ReflectionNode

writer = AgentNode(
    name="CodeWriter",
    system_prompt=(
        "You are an expert competitive programmer. Work out the algorithm and its complexity "
        "first, then write a complete, efficient program that reads the input and prints the "
        "output exactly as specified. When a tester reports failures, fix their cause."
    ),
    max_turns=1,
)

# run_tests runs a program against the task's PUBLIC tests only; without a "code" argument it
# tests the last ```python block of the conversation (here: the writer's delivery).
tester = AgentNode(
    name="Tester",
    system_prompt=(
        "You test the delivered program. First call "
        '<tool_call>{"name": "run_tests", "arguments": {}}</tool_call> and read the report. '
        "If every test passes, say VERDICT: CORRECT. Otherwise say VERDICT: INCORRECT, quote "
        "the failing input, the expected and the actual output, and explain the likely bug."
    ),
    tools=ToolRegistry(["run_tests"]),
    max_turns=3,
)

loop = ReflectionNode(
    name="WriteAndTest",
    agent=writer,
    critic_agent=tester,
    num_iterations=2,
)

workflow = Workflow(name="code_writer_tester")
workflow.add_node(loop)

result = workflow.run()
print(result.content)
