"""Router: a routing agent reads the task and sends it to the branch that suits it: a direct
solver for easy problems, a solver with a Python interpreter for computation-heavy ones, or a
solve-and-verify reflection for hard ones."""

from workflow import AgentNode, ToolRegistry, Workflow
from workflow.nodes import ReflectionNode, RouterNode

direct = AgentNode(
    name="DirectSolver",
    system_prompt="You solve easy problems directly and concisely, checking the result once.",
    max_turns=1,
)

computing = AgentNode(
    name="ComputingSolver",
    system_prompt="You solve problems by computing and checking every step with Python.",
    tools=ToolRegistry(["python"]),
    max_turns=4,
)

careful = ReflectionNode(
    name="Careful",
    agent=AgentNode(
        name="CarefulSolver",
        system_prompt="You solve hard problems rigorously and fix the errors a reviewer finds.",
        max_turns=1,
    ),
    critic_agent=AgentNode(
        name="Reviewer",
        system_prompt="You re-derive the key steps of a solution and hunt for its errors.",
        max_turns=1,
    ),
    num_iterations=2,
)

router = AgentNode(
    name="Router",
    system_prompt="You estimate how hard a problem is and what kind of work it needs.",
    max_turns=1,
)

routing = RouterNode(
    name="Route",
    router=router,
    routes={"direct": direct, "compute": computing, "careful": careful},
    descriptions={
        "direct": "easy problems a short derivation settles",
        "compute": "problems needing heavy arithmetic, enumeration or simulation",
        "careful": "hard problems where subtle errors are likely",
    },
    default="careful",
)

workflow = Workflow(name="router")
workflow.add_node(routing)

result = workflow.run()
print(result.content)
