"""The MetaAgent-X authors' designer prompts, so their checkpoints see what they were trained on.

Two prompts exist in their code, and both are reproduced here (styles in `prompts.py`):
- `pettingllms_simple`: what their designer is trained and rolled out with (SFT records and RL):
  a one-line system prompt and "Design Multi Agent System for the Question: <task>". Evaluate a
  released checkpoint with this one.
- `pettingllms`: their code-generation prompt, with the workflow patterns, the rules, the
  few-shot designs and the output format ("Problem Type: / Problem Analysis: / Workflow
  Pattern: / Agent Design: / Workflow Flow:" and the script in `<code>` tags); their teacher
  wrote the cold-start designs from it. It suits a model that has not learnt their format.
  Their code samples 2-3 few-shots at random per prompt; here every example is shown unless
  `examples` names some, so a prompt is reproducible.

Their repository holds this prompt for math only; the code-task variant (`CODE_TEMPLATE`,
`CODE_EXAMPLES`) is ours, written to the same structure and output format, in their workflow
dialect (a code tool built on `subprocess.run(["python", "-c", code])`, as the paper's code
design has; the sandbox maps it onto its python tool).
"""

# Prompt text and few-shot designs (MATH_TEMPLATE, MATH_EXAMPLES, SYSTEM_PROMPT, USER_PREFIX)
# are reproduced verbatim from pettingllms-ai/PettingLLMs, a checkpoint's training data:
#   pettingllms/multi_agent_env/autoevol/utils/prompt.py
#     at commit 5767f51d280446bdf76b97544312e3ba109b5200 (CODE_GENERATION_PROMPT_TEMPLATE,
#     WORKFLOW_EXAMPLES, and the example rendering of get_code_generation_prompt)
#   pettingllms/multi_agent_env/autoevol/gen_agent.py
#     at commit 0fa78b0ed45fb627652947aec8a931c90af9f526 (MASGenerator.update_from_env)
# Copyright (c) the PettingLLMs authors. Released under the MIT License (per the repository's
# README): Permission is hereby granted, free of charge, to any person obtaining a copy of
# this software and associated documentation files (the "Software"), to deal in the Software
# without restriction, including without limitation the rights to use, copy, modify, merge,
# publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
# to whom the Software is furnished to do so, subject to the following conditions: The above
# copyright notice and this permission notice shall be included in all copies or substantial
# portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
# EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
# FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
# HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
# CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE
# USE OR OTHER DEALINGS IN THE SOFTWARE.
# The code of this module is our own.

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SYSTEM_PROMPT = "You are an expert Python developer specializing in multi-agent workflow systems."
USER_PREFIX = "Design Multi Agent System for the Question: "


@dataclass(frozen=True)
class PettingExample:
    """One few-shot design of their prompt: its pattern name, heading, description and code."""

    name: str
    category: str
    description: str
    code: str

    def render(self) -> str:
        """The example as their prompt shows it (heading, description, fenced code)."""
        return (
            f"\n### {self.category}\n"
            f"**Description**: {self.description}\n\n"
            f"```python\n{self.code}\n```\n"
        )


MATH_TEMPLATE = """You are an expert Python developer specializing in multi-agent workflow systems. Your task is to generate workflow code for solving math problems.

## Problem Type: MATH

All problems are mathematical and should be solved through pure reasoning (NO code execution tools).

## Available Workflow Patterns

Choose the most appropriate pattern based on problem complexity:

1. **math_single_agent**: Single agent solves through reasoning (for straightforward problems)
2. **math_ensemble_vote**: Three strategy-diverse solvers + vote; if unanimous accept, if split a judge reviews reasoning and picks the best (for moderate problems)
3. **math_ensemble_judge**: Three strategy-diverse solvers + judge always reviews all solutions (for hard problems)
4. **math_solver_critic_reflection**: Solver + Verifier with 2 rounds of constraint-checking refinement (for problems needing careful verification)
5. **math_self_consistency**: Same solver x3 + vote + judge on disagreement (high accuracy, good when diverse strategies aren't needed)
6. **math_ensemble_verify**: Three solvers + judge + verifier pipeline (most thorough, for competition-level problems)

## Agent Role Design Principles

Differentiate agents by **solving strategy**, NOT by mathematical subfield:
- **ForwardSolver**: derives answer from given conditions step by step
- **BackwardSolver**: reasons backwards from what the answer must satisfy
- **CaseAnalyzer**: enumerates and checks key cases / boundary conditions
- **Verifier**: checks whether a proposed answer satisfies ALL original constraints (does NOT solve from scratch)

## Key Requirements

1. **NO code execution tools** - solve through pure mathematical reasoning
2. **Final answer MUST be in \\boxed{{}} format** - e.g., \\boxed{{42}} or \\boxed{{\\frac{{1}}{{2}}}}
3. **Show reasoning steps clearly** before the final answer
4. **Every agent sees the original question** via shared context (the framework handles this automatically)
5. **Inter-agent communication**: The framework automatically asks each agent to output a `<delivery>` block at the end of its response summarising key findings and answer. Downstream agents receive ONLY the `<delivery>` content from upstream agents (not the full reasoning), keeping prompts compact. You do NOT need to add `<delivery>` instructions to system prompts \u2014 the framework injects them automatically.

## Few-Shot Examples

{examples}

## Task

Given:
- **Specific Question**: {question}

Generate complete, runnable Python code that:
1. Imports necessary modules
2. Sets up the appropriate workflow pattern
3. Configures agents with strategy-based system prompts
4. Runs the workflow and prints the result

## Output Format

First analyze the problem, then provide code:

Problem Type: MATH

Problem Analysis: [What is this question asking? What mathematical concepts are involved?]

Workflow Pattern: [Selected pattern and why]

Agent Design: [What agents are needed and their strategic roles]

Workflow Flow: [How agents will interact]

<code>
```python
...
```
</code>
"""

_RUN_AND_PRINT = """
# Run workflow
print("================================================")
print("FINAL ANSWER:")
result = workflow.run(question)
print(result.content)
print("================================================")
"""

MATH_EXAMPLES: dict[str, PettingExample] = {
    example.name: example
    for example in (
        PettingExample(
            "math_single_agent",
            "Math Single Agent Solver",
            "Single agent solves math problem through pure reasoning, outputs answer in \\boxed{} format",
            """# Example 1: Single Agent Math Solver (Pure Reasoning)
from workflow import AgentNode, Workflow, ToolRegistry

# No tools needed - pure reasoning
tool_registry = ToolRegistry()

# Create a math solver agent
math_agent = AgentNode(
    name="MathSolver",
    system_prompt=(
        "You are an expert mathematician who solves problems through careful reasoning.\\n\\n"

        "APPROACH:\\n"
        "1. Read the problem carefully and identify what is being asked\\n"
        "2. Identify the key constraints and relationships\\n"
        "3. Choose an appropriate strategy (direct computation, algebraic manipulation, case analysis, etc.)\\n"
        "4. Execute the solution step by step, showing all work\\n"
        "5. Verify your answer satisfies ALL original constraints\\n\\n"

        "OUTPUT FORMAT:\\n"
        "- Show your complete reasoning process\\n"
        "- After reaching an answer, verify it against the problem statement\\n"
        "- Put your final numerical answer in \\\\boxed{} format\\n"
        "- Example: The answer is \\\\boxed{42}\\n\\n"

        "IMPORTANT: Your final answer MUST be in \\\\boxed{answer} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Create workflow
workflow = Workflow(name="math_single_solver")
workflow.add_node(math_agent)
"""
            + _RUN_AND_PRINT,
        ),
        PettingExample(
            "math_ensemble_vote",
            "Math Ensemble with Majority Vote + Judge",
            "Three strategy-diverse solvers solve independently, majority-voted; if votes split, a judge reviews reasoning and picks the best answer",
            """# Example 2: Math Ensemble \u2014 Vote first, Judge on disagreement
from workflow import AgentNode, Workflow, ToolRegistry
from workflow.nodes import EnsembleNode

# No tools needed - pure reasoning
tool_registry = ToolRegistry()

# --- Strategy-based agent differentiation ---

solver_forward = AgentNode(
    name="ForwardSolver",
    system_prompt=(
        "You are a mathematician who solves problems by FORWARD REASONING.\\n\\n"
        "STRATEGY: Start from the given conditions and derive the answer step by step.\\n"
        "- Translate the problem into equations or expressions\\n"
        "- Simplify and compute forward until you reach the answer\\n"
        "- Double-check each algebraic step\\n\\n"
        "Show your complete reasoning. Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

solver_backward = AgentNode(
    name="BackwardSolver",
    system_prompt=(
        "You are a mathematician who solves problems by BACKWARD REASONING.\\n\\n"
        "STRATEGY: Think about what the answer must look like, then work backwards.\\n"
        "- What form must the answer take? What constraints must it satisfy?\\n"
        "- Work backwards from the desired conclusion to the given conditions\\n"
        "- Verify the chain of reasoning is reversible and complete\\n\\n"
        "Show your complete reasoning. Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

solver_cases = AgentNode(
    name="CaseAnalyzer",
    system_prompt=(
        "You are a mathematician who solves problems by SYSTEMATIC CASE ANALYSIS.\\n\\n"
        "STRATEGY: Identify the key branching points and enumerate cases.\\n"
        "- What are the critical cases or boundary conditions?\\n"
        "- Enumerate and analyze each case separately\\n"
        "- Combine results or identify which case yields the answer\\n"
        "- Verify no cases are missed\\n\\n"
        "Show your complete reasoning. Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Judge agent \u2014 only called when solvers disagree
judge_agent = AgentNode(
    name="MathJudge",
    system_prompt=(
        "You are a senior mathematician acting as a judge.\\n\\n"
        "You receive the ORIGINAL QUESTION and solutions from multiple solvers "
        "who gave DIFFERENT answers. Your task is to:\\n"
        "1. Re-read the original question carefully\\n"
        "2. Check each solution's reasoning and calculations step by step\\n"
        "3. Identify which solution (if any) is correct\\n"
        "4. If none is correct, derive the right answer yourself\\n\\n"
        "Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Majority vote with judge fallback:
#   - If all solvers agree \u2192 accept immediately (fast path)
#   - If votes split \u2192 judge reviews all solutions and decides
ensemble = EnsembleNode(
    name="MathEnsemble",
    agents=[solver_forward, solver_backward, solver_cases],
    strategy="majority_vote",
    consensus_agent=judge_agent
)

# Create workflow
workflow = Workflow(name="math_ensemble_vote")
workflow.add_node(ensemble)
"""
            + _RUN_AND_PRINT,
        ),
        PettingExample(
            "math_ensemble_judge",
            "Math Ensemble with Judge",
            "Three strategy-diverse solvers solve independently, then a judge reviews all solutions with the original question and selects the best",
            """# Example 3: Math Ensemble with Judge Selection
from workflow import AgentNode, Workflow, ToolRegistry
from workflow.nodes import EnsembleNode

# No tools needed - pure reasoning
tool_registry = ToolRegistry()

# --- Strategy-based agent differentiation ---

solver_forward = AgentNode(
    name="ForwardSolver",
    system_prompt=(
        "You are a mathematician who solves problems by FORWARD REASONING.\\n\\n"
        "STRATEGY: Start from the given conditions and derive the answer step by step.\\n"
        "- Translate the problem into equations or expressions\\n"
        "- Simplify and compute forward until you reach the answer\\n"
        "- Double-check each algebraic step\\n\\n"
        "Show your complete reasoning. Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

solver_backward = AgentNode(
    name="BackwardSolver",
    system_prompt=(
        "You are a mathematician who solves problems by BACKWARD REASONING.\\n\\n"
        "STRATEGY: Think about what the answer must look like, then work backwards.\\n"
        "- What form must the answer take? What constraints must it satisfy?\\n"
        "- Work backwards from the desired conclusion to the given conditions\\n"
        "- Verify the chain of reasoning is reversible and complete\\n\\n"
        "Show your complete reasoning. Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

solver_cases = AgentNode(
    name="CaseAnalyzer",
    system_prompt=(
        "You are a mathematician who solves problems by SYSTEMATIC CASE ANALYSIS.\\n\\n"
        "STRATEGY: Identify the key branching points and enumerate cases.\\n"
        "- What are the critical cases or boundary conditions?\\n"
        "- Enumerate and analyze each case separately\\n"
        "- Combine results or identify which case yields the answer\\n"
        "- Verify no cases are missed\\n\\n"
        "Show your complete reasoning. Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Judge reviews all solutions WITH the original question
judge_agent = AgentNode(
    name="MathJudge",
    system_prompt=(
        "You are a senior mathematician acting as a judge.\\n\\n"

        "You will receive the ORIGINAL QUESTION together with solutions from "
        "multiple solvers. Your task is to:\\n"
        "1. Re-read the original question carefully\\n"
        "2. Check each solution's reasoning and calculations step by step\\n"
        "3. Identify errors, unjustified leaps, or missing cases\\n"
        "4. Select the correct answer (or fix it if all solutions have errors)\\n\\n"

        "OUTPUT FORMAT:\\n"
        "- Point out key errors or strengths in each solution\\n"
        "- State your chosen (or corrected) answer with brief justification\\n"
        "- Put the final answer in \\\\boxed{} format\\n\\n"

        "IMPORTANT: You must output exactly ONE answer in \\\\boxed{answer} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Consensus strategy passes original question to judge
ensemble = EnsembleNode(
    name="MathEnsemble",
    agents=[solver_forward, solver_backward, solver_cases],
    strategy="consensus",
    consensus_agent=judge_agent
)

# Create workflow
workflow = Workflow(name="math_ensemble_judge")
workflow.add_node(ensemble)
"""
            + _RUN_AND_PRINT,
        ),
        PettingExample(
            "math_solver_critic_reflection",
            "Math Solver with Critic Reflection",
            "Solver solves, Verifier checks against ALL constraints, Solver refines - repeat 2 rounds",
            """# Example 4: Math Solver + Verifier Reflection (2 rounds)
from workflow import AgentNode, Workflow, ToolRegistry
from workflow.nodes import ReflectionNode

# No tools needed - pure reasoning
tool_registry = ToolRegistry()

# Create the main solver agent
solver_agent = AgentNode(
    name="MathSolver",
    system_prompt=(
        "You are an expert mathematician who solves problems through careful reasoning.\\n\\n"

        "APPROACH:\\n"
        "1. Read the problem carefully and list ALL constraints\\n"
        "2. Choose a strategy and execute step by step\\n"
        "3. Show all intermediate calculations\\n"
        "4. Before finalizing, verify your answer against every constraint\\n\\n"

        "If you receive feedback from a verifier, carefully consider their points and:\\n"
        "- Re-examine the specific steps they flagged\\n"
        "- Fix any errors they identified\\n"
        "- Re-verify the corrected solution against ALL constraints\\n\\n"

        "OUTPUT: Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Verifier checks the solution against ALL original constraints
critic_agent = AgentNode(
    name="Verifier",
    system_prompt=(
        "You are a meticulous math verifier. Your ONLY job is to check whether "
        "a proposed solution is correct.\\n\\n"

        "VERIFICATION PROCESS:\\n"
        "1. Re-read the ORIGINAL QUESTION (provided at the top)\\n"
        "2. List every constraint the problem states\\n"
        "3. BACK-SUBSTITUTE: plug the proposed answer back into EACH "
        "original constraint and verify it holds numerically\\n"
        "4. Re-derive key calculations independently (compute from scratch, "
        "don't just re-read the solver's work)\\n"
        "5. Check common errors: off-by-one in ranges, sign errors, "
        "forgotten edge cases, integer vs fraction\\n"
        "6. Verify the answer is a non-negative integer (AIME format)\\n\\n"

        "OUTPUT FORMAT:\\n"
        "- For each constraint: PASS or FAIL with the substitution result\\n"
        "- List specific calculation errors (if any) with corrections\\n"
        "- Final verdict: CORRECT or INCORRECT\\n"
        "- If INCORRECT, state what needs to be fixed\\n\\n"

        "Be rigorous. Do NOT rubber-stamp the solution."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Solver -> Verifier -> Solver refines -> Verifier -> final
reflection = ReflectionNode(
    name="SolverVerifierReflection",
    agent=solver_agent,
    critic_agent=critic_agent,
    num_iterations=2
)

# Create workflow
workflow = Workflow(name="math_solver_verifier")
workflow.add_node(reflection)
"""
            + _RUN_AND_PRINT,
        ),
        PettingExample(
            "math_self_consistency",
            "Math Self-Consistency (Same Solver x3 + Vote + Judge)",
            "Run the same solver agent 3 times independently; if unanimous accept, if split a judge decides. High accuracy with low design overhead.",
            """# Example 5: Self-Consistency (Same Solver x3 + Vote, Judge on split)
from workflow import AgentNode, Workflow, ToolRegistry
from workflow.nodes import EnsembleNode

# No tools needed - pure reasoning
tool_registry = ToolRegistry()

# Three instances of the same solver (will produce diverse reasoning via sampling)
solver_a = AgentNode(
    name="Solver_A",
    system_prompt=(
        "You are an expert mathematician. Solve the problem step by step.\\n"
        "Show your complete reasoning and verify your answer.\\n"
        "Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

solver_b = AgentNode(
    name="Solver_B",
    system_prompt=(
        "You are an expert mathematician. Solve the problem step by step.\\n"
        "Show your complete reasoning and verify your answer.\\n"
        "Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

solver_c = AgentNode(
    name="Solver_C",
    system_prompt=(
        "You are an expert mathematician. Solve the problem step by step.\\n"
        "Show your complete reasoning and verify your answer.\\n"
        "Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Judge \u2014 only invoked when the three runs disagree
judge_agent = AgentNode(
    name="MathJudge",
    system_prompt=(
        "You are a senior mathematician acting as a judge.\\n\\n"
        "Multiple solvers produced DIFFERENT answers for the same problem.\\n"
        "1. Check each solution's reasoning step by step\\n"
        "2. Identify calculation errors or logical gaps\\n"
        "3. Select the correct answer or derive it yourself\\n\\n"
        "Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Vote + judge fallback: unanimous \u2192 accept; split \u2192 judge decides
ensemble = EnsembleNode(
    name="SelfConsistency",
    agents=[solver_a, solver_b, solver_c],
    strategy="majority_vote",
    consensus_agent=judge_agent
)

# Create workflow
workflow = Workflow(name="math_self_consistency")
workflow.add_node(ensemble)
"""
            + _RUN_AND_PRINT,
        ),
        PettingExample(
            "math_ensemble_verify",
            "Math Ensemble + Verifier Pipeline",
            "Three solvers -> judge picks best -> verifier checks -> if wrong, solver refines. Most thorough pattern.",
            """# Example 6: Ensemble + Judge + Verifier (Comprehensive)
from workflow import AgentNode, Workflow, ToolRegistry
from workflow.nodes import EnsembleNode

# No tools needed - pure reasoning
tool_registry = ToolRegistry()

# --- Three diverse solvers ---

solver_forward = AgentNode(
    name="ForwardSolver",
    system_prompt=(
        "You are a mathematician who solves problems by FORWARD REASONING.\\n"
        "Start from given conditions, derive step by step. Show all work.\\n"
        "Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

solver_backward = AgentNode(
    name="BackwardSolver",
    system_prompt=(
        "You are a mathematician who solves problems by BACKWARD REASONING.\\n"
        "Think about what the answer must satisfy, then work backwards to confirm.\\n"
        "Show all work. Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

solver_cases = AgentNode(
    name="CaseAnalyzer",
    system_prompt=(
        "You are a mathematician who solves problems by CASE ANALYSIS.\\n"
        "Enumerate key cases or boundary conditions systematically.\\n"
        "Show all work. Put your final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# --- Judge selects best answer (sees original question + all solutions) ---

judge_agent = AgentNode(
    name="MathJudge",
    system_prompt=(
        "You are a senior mathematician judge.\\n\\n"
        "You receive the ORIGINAL QUESTION and multiple solutions.\\n"
        "1. Check each solution's reasoning step by step\\n"
        "2. Identify calculation errors or logical gaps\\n"
        "3. Select the correct answer or fix errors if needed\\n\\n"
        "Output your chosen/corrected answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

ensemble = EnsembleNode(
    name="MathEnsemble",
    agents=[solver_forward, solver_backward, solver_cases],
    strategy="consensus",
    consensus_agent=judge_agent
)

# --- Verifier checks the judge's answer ---

verifier = AgentNode(
    name="Verifier",
    system_prompt=(
        "You are a meticulous math verifier.\\n\\n"
        "You will see the original question and a proposed solution from previous agents.\\n"
        "1. List ALL constraints from the original problem\\n"
        "2. BACK-SUBSTITUTE: plug the proposed answer into each constraint numerically\\n"
        "3. Re-derive key calculations independently (compute from scratch)\\n"
        "4. Check: is the answer a non-negative integer? (AIME requires 0-999)\\n"
        "5. If correct: restate the answer in \\\\boxed{} format\\n"
        "6. If incorrect: provide the corrected answer in \\\\boxed{} format\\n\\n"
        "IMPORTANT: Always output a final answer in \\\\boxed{} format."
    ),
    tool_registry=tool_registry,
    max_turns=1
)

# Pipeline: Ensemble(3 solvers -> judge) -> Verifier
# The Verifier automatically receives the original question + the ensemble's
# <delivery> summary (not full reasoning), keeping its input compact.
workflow = Workflow(name="math_ensemble_verify")
workflow.add_node(ensemble)
workflow.add_node(verifier)
"""
            + _RUN_AND_PRINT,
        ),
    )
}


# --- Code tasks: our variant of their prompt (same sections and output format). ---

CODE_TEMPLATE = """You are an expert Python developer specializing in multi-agent workflow systems. Your task is to generate workflow code for solving programming problems.

## Problem Type: CODE

All problems are programming tasks: the answer is one complete Python program that reads the input from stdin and prints the output.

## Available Workflow Patterns

Choose the most appropriate pattern based on problem complexity:

1. **code_single_agent**: Single coder writes the program and runs it on the examples with a code execution tool (for straightforward problems)
2. **code_solver_tester_reflection**: Coder + UnitTester with 2 rounds of test-driven refinement (for problems with tricky edge cases)
3. **code_ensemble_judge**: Three approach-diverse coders + judge who tests their programs and picks the best (for hard, competition-level problems)

## Agent Role Design Principles

Differentiate agents by **solving approach**, NOT by programming language feature:
- **DirectCoder**: implements the straightforward algorithm carefully
- **AlgorithmDesigner**: first finds the algorithm the input limits require, then codes it
- **EdgeCaseCoder**: starts from the edge cases and limits, then writes code that handles them
- **UnitTester**: runs the program on the examples and on edge cases and reports failures (does NOT rewrite from scratch)

## Key Requirements

1. **Run programs before answering** - give agents the code execution tool and test on the examples
2. **The final answer is ONE complete Python program** that reads stdin and writes stdout
3. **Every agent sees the original question** via shared context (the framework handles this automatically)
4. **Inter-agent communication**: The framework automatically asks each agent to output a `<delivery>` block at the end of its response summarising key findings, and its final program in the required format. You do NOT need to add these instructions to system prompts \u2014 the framework injects them automatically.
5. **Never copy the problem into the code**: the workflow receives it as `question`

## Few-Shot Examples

{examples}

## Task

Given:
- **Specific Question**: {question}

Generate complete, runnable Python code that:
1. Imports necessary modules
2. Sets up the appropriate workflow pattern
3. Configures agents with approach-based system prompts
4. Runs the workflow and prints the result

## Output Format

First analyze the problem, then provide code:

Problem Type: CODE

Problem Analysis: [What must the program compute? What are the input limits and edge cases?]

Workflow Pattern: [Selected pattern and why]

Agent Design: [What agents are needed and their roles]

Workflow Flow: [How agents will interact]

<code>
```python
...
```
</code>
"""

def _code_tool(node: str | None = None) -> str:
    """The code examples' shared opening: imports (plus `workflow.nodes.<node>`) and the
    subprocess-based code execution tool."""
    nodes = f"from workflow.nodes import {node}\n" if node else ""
    return (
        "import subprocess\nfrom workflow import AgentNode, Workflow, ToolRegistry\n"
        + nodes
        + _CODE_TOOL_BODY
    )


_CODE_TOOL_BODY = '''
def execute_code(code: str, stdin: str = "") -> str:
    """Run a complete Python program on the given input; return its output or its error."""
    try:
        result = subprocess.run(
            ["python", "-c", code], input=stdin, capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        return "Error: the program ran longer than 10 seconds"
    if result.returncode != 0:
        return f"Error (exit code {result.returncode}):\\n{result.stderr}"
    return result.stdout

# Code execution tool shared by the agents
tool_registry = ToolRegistry()
tool_registry.register(
    name="execute_code",
    func=execute_code,
    description="Run a complete Python program with the given stdin; returns its stdout or the error.",
    parameters={
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "The complete Python program"},
            "stdin": {"type": "string", "description": "The input given to the program"}
        },
        "required": ["code"]
    }
)
'''

CODE_EXAMPLES: dict[str, PettingExample] = {
    example.name: example
    for example in (
        PettingExample(
            "code_single_agent",
            "Code Single Agent Solver",
            "One coder writes the program, runs it on the examples with the code execution tool and fixes it until the outputs match",
            "# Example 1: Single Agent Coder with Code Execution\n"
            + _code_tool()
            + """
coder = AgentNode(
    name="Coder",
    system_prompt=(
        "You are an expert competitive programmer.\\n\\n"
        "APPROACH:\\n"
        "1. Read the problem and its input limits carefully\\n"
        "2. Choose an algorithm that is fast enough for the limits\\n"
        "3. Write a complete program that reads stdin and prints the answer\\n"
        "4. Run it on every example with the execute_code tool and compare the outputs\\n"
        "5. Fix the program until all examples pass"
    ),
    tool_registry=tool_registry,
    max_turns=5
)

# Create workflow
workflow = Workflow(name="code_single_solver")
workflow.add_node(coder)
"""
            + _RUN_AND_PRINT,
        ),
        PettingExample(
            "code_solver_tester_reflection",
            "Code Solver with Unit-Test Reflection",
            "Coder writes the program, UnitTester runs it on the examples and edge cases and reports failures, Coder refines - repeat 2 rounds",
            "# Example 2: Coder + Unit Tester Reflection (2 rounds)\n"
            + _code_tool("ReflectionNode")
            + """
coder = AgentNode(
    name="CodeSolver",
    system_prompt=(
        "You are an expert competitive programmer.\\n\\n"
        "Write a complete Python program that reads stdin and prints the answer. "
        "Choose an algorithm that is fast enough for the input limits.\\n\\n"
        "If you receive a test report, fix every failing case it lists and "
        "re-run the examples before answering."
    ),
    tool_registry=tool_registry,
    max_turns=4
)

tester = AgentNode(
    name="UnitTestAgent",
    system_prompt=(
        "You are a meticulous tester. Do NOT rewrite the solution from scratch.\\n\\n"
        "TEST PROCESS:\\n"
        "1. Run the proposed program on every example with execute_code\\n"
        "2. Run it on edge cases: smallest input, largest input, repeated values\\n"
        "3. Check the running time on the largest input\\n\\n"
        "OUTPUT FORMAT:\\n"
        "- For each test: input, expected output, actual output, PASS or FAIL\\n"
        "- Final verdict: CORRECT or INCORRECT, with what must be fixed"
    ),
    tool_registry=tool_registry,
    max_turns=4
)

# Coder -> Tester -> Coder refines -> Tester -> final
reflection = ReflectionNode(
    name="CoderTesterReflection",
    agent=coder,
    critic_agent=tester,
    num_iterations=2
)

# Create workflow
workflow = Workflow(name="code_solver_tester")
workflow.add_node(reflection)
"""
            + _RUN_AND_PRINT,
        ),
        PettingExample(
            "code_ensemble_judge",
            "Code Ensemble with Judge",
            "Three approach-diverse coders write programs independently, then a judge runs them on the examples and edge cases and selects the best",
            "# Example 3: Code Ensemble with Judge Selection\n"
            + _code_tool("EnsembleNode")
            + """
direct_coder = AgentNode(
    name="DirectCoder",
    system_prompt=(
        "You are a careful programmer. Implement the straightforward algorithm "
        "and test it on the examples with execute_code."
    ),
    tool_registry=tool_registry,
    max_turns=4
)

algorithm_designer = AgentNode(
    name="AlgorithmDesigner",
    system_prompt=(
        "You are an algorithm expert. First work out the complexity the input limits "
        "allow and the algorithm that meets it, then implement it and test it on the "
        "examples with execute_code."
    ),
    tool_registry=tool_registry,
    max_turns=4
)

edge_case_coder = AgentNode(
    name="EdgeCaseCoder",
    system_prompt=(
        "You are a defensive programmer. List the edge cases and limits first, "
        "then write a program that handles them and test it with execute_code."
    ),
    tool_registry=tool_registry,
    max_turns=4
)

judge = AgentNode(
    name="CodeJudge",
    system_prompt=(
        "You are a senior engineer acting as a judge.\\n\\n"
        "You receive the ORIGINAL QUESTION and programs from several coders.\\n"
        "1. Run each program on the examples and on edge cases with execute_code\\n"
        "2. Discard programs that fail or are too slow for the limits\\n"
        "3. Output the best program (fix it if every program has a bug)"
    ),
    tool_registry=tool_registry,
    max_turns=4
)

ensemble = EnsembleNode(
    name="CodeEnsemble",
    agents=[direct_coder, algorithm_designer, edge_case_coder],
    strategy="consensus",
    consensus_agent=judge
)

# Create workflow
workflow = Workflow(name="code_ensemble_judge")
workflow.add_node(ensemble)
"""
            + _RUN_AND_PRINT,
        ),
    )
}


def examples_for(domain: str | None) -> dict[str, PettingExample]:
    """The few-shot designs of the domain's prompt (math unless the domain is code)."""
    return CODE_EXAMPLES if domain == "code" else MATH_EXAMPLES


def designer_prompt(
    task_prompt: str, domain: str | None = None, examples: Sequence[str] | None = None
) -> str:
    """Their code-generation prompt for the task, with the named few-shots (None: all)."""
    available = examples_for(domain)
    names = list(available) if examples is None else list(examples)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(
            f"unknown pettingllms example designs {unknown}; known: {sorted(available)}"
        )
    template = CODE_TEMPLATE if domain == "code" else MATH_TEMPLATE
    rendered = "".join(available[name].render() for name in names)
    return template.format(examples=rendered, question=task_prompt)


def designer_messages(
    task_prompt: str,
    domain: str | None = None,
    *,
    examples: Sequence[str] | None = None,
    simple: bool = False,
) -> list[dict[str, str]]:
    """Chat messages asking for one design: their system prompt, then the task in their
    training format (`simple`) or their full code-generation prompt."""
    user = USER_PREFIX + task_prompt if simple else designer_prompt(task_prompt, domain, examples)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


__all__ = [
    "CODE_EXAMPLES",
    "CODE_TEMPLATE",
    "MATH_EXAMPLES",
    "MATH_TEMPLATE",
    "SYSTEM_PROMPT",
    "USER_PREFIX",
    "PettingExample",
    "designer_messages",
    "designer_prompt",
    "examples_for",
]
