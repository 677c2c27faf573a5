"""The MetaAgent-X authors' workflow API ("pettingllms" dialect), run on our execution.

Their released checkpoint and cold-start data write design scripts against their `workflow`
package (pettingllms-ai/PettingLLMs, `multi_agent_env/autoevol/workflow`); this package answers
those scripts unchanged. Only the surface follows theirs: every model call, tool call, limit,
trace event and the final output go through our `metaagentx.mas.execution`, and the host's
model plays every agent.

Selection: `sandbox.dialect` (`SandboxSettings.dialect`, sent to the child in the Runner's
header; `run_design(..., dialect=...)` in process) names `metaagentx`, `pettingllms` or `auto`
(default). `auto` reads the script (`metaagentx.mas.dialects.detect_dialect`): importing
`utils`, `subprocess`, `workflow.core`/`graph`/`compat`/`workflow.workflow`/
`workflow.nodes.*_node` (not `os` or `sys`, which scripts of ours may import too), one of their
class names (Message, Context, AgentGraph...), one of their
keywords (`ai_client`, `routing_func`, `initial_state`...), `register("name", func)` or
`ReflectionNode(n, a, 3)` makes it theirs. A script of theirs imports `workflow` ->
this package, `workflow.core` -> `core`, `workflow.workflow` -> `flow`, `workflow.graph` ->
`graph`, `workflow.nodes[.x_node]` -> `nodes[.x_node]`, `utils.environments.math_env` /
`search_env` -> `utils...`, `subprocess` -> `subprocess_shim`, and gets `os` and `sys`
without importing them (their runtime prepends `import os, sys`).

Semantics that differ from ours (`metaagentx.mas`):
- Messages: nodes take a `Context` (all messages so far, shared `state`, `metadata`) and return
  a `Message` (`MessageType.AGENT_RESPONSE`, `ERROR`...); `Message`/`Context` are different
  classes from ours with the same names. `workflow.run(question)` returns a `Message`.
- Failures: a node that raises returns an ERROR message and the run goes on (ours fails the
  run); a `Workflow` stops at an ERROR; a tripped execution limit still ends the run.
- Who sees what: every agent sees the original question plus the delivery of every earlier
  agent response in its context (its `<delivery>` block, else its `FINAL ANSWER:` line, else
  its `<solution>`, else the response cut to head and tail); ours passes only the deliveries
  of the nodes an agent depends on.
- Answer format: the system prompt asks for a `<delivery>` block plus `FINAL ANSWER:
  \\boxed{...}` (math) or the program in `<solution>...</solution>` (code, chosen by
  `task["domain"]`); ours asks for the boxed answer / a fenced python block inside the delivery.
- `AgentNode.max_turns` (default 10, ours 3) counts tool rounds after the first reply: up to
  `max_turns + 1` model calls may use tools, then one more call demands the answer without
  tools; `max_turns=1` with code makes up to 3 calls (ours counts every model call, and its
  last turn runs no tools). The host's Limits.max_turns still caps the calls of one agent run:
  the forced final call then comes earlier instead of the limit tripping.
- Code: a reply's first ```python block is always run (through a registered `python_execute`
  tool, else the sandboxed python tool), tools registered or not, even beside a `<delivery>`
  (ours runs code only for agents given the `python` tool, and a delivery makes a reply final).
  Outputs come back as user messages (`Tool 'x' returned: ...` for tool calls); only a reply's
  first `<tool_call>` runs; the call may say "parameters" or "arguments".
- Tools: `ToolRegistry.register(name, func, description, parameters)` (name first,
  JSON-schema parameters, all positional); a tool is called by exactly its registered name
  (ours maps `python_execute` to the built-in); schemas are shown in the system prompt. A tool
  counts once against Limits.max_tool_calls: as its host-side call(s), else as one in-process
  call.
- `subprocess.run([python, "-c", code])` and `utils.environments.math_env` run in the host's
  sandboxed python tool (its limits, not the script's `timeout`); any other command raises
  FileNotFoundError. `search_env` uses host-side `search`/`fetch` tools when the host announces
  them (`task["host_tools"]`), else returns a "not configured" text.
- `ai_client`, `enable_conversation_logging` and other unknown keywords are accepted and
  ignored (kept in `node.config`). Beyond theirs, `AgentNode.run(question)` runs an agent alone
  and records its reply as the final output (as ours does; theirs runs agents only inside a
  workflow), and `tools=` is taken as `tool_registry=`.
- Patterns: `EnsembleNode` (only boxed answers vote), `DebateNode` (one debater suffices; no
  judge: the first debater judges), `ReflectionNode` (third positional is `num_iterations`),
  `RouterNode` (a `routing_func(context)` picks the route), `AgentGraph`; each module's
  docstring lists its differences.

Standard library only: this runs in the sandbox.
"""

from metaagentx.mas.pettingllms.core import Context, Message, MessageType, WorkflowNode
from metaagentx.mas.pettingllms.flow import ConditionalWorkflow, LoopWorkflow, Workflow
from metaagentx.mas.pettingllms.graph import AgentGraph, Edge, create_simple_chain
from metaagentx.mas.pettingllms.nodes import (
    AgentNode,
    DebateNode,
    EnsembleNode,
    ReflectionNode,
    RouterNode,
    create_keyword_router,
)
from metaagentx.mas.pettingllms.tools import ToolRegistry

__version__ = "1.0.0"

__all__ = [
    "AgentGraph",
    "AgentNode",
    "ConditionalWorkflow",
    "Context",
    "DebateNode",
    "Edge",
    "EnsembleNode",
    "LoopWorkflow",
    "Message",
    "MessageType",
    "ReflectionNode",
    "RouterNode",
    "ToolRegistry",
    "Workflow",
    "WorkflowNode",
    "create_keyword_router",
    "create_simple_chain",
]
