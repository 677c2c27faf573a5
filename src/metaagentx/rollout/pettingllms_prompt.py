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

The texts live in `pettingllms_prompt.yaml` beside this module (with their source commits and
license): data, not code, read once at import; the code here is ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml


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


def _load_texts() -> dict[str, Any]:
    text = files(__package__).joinpath("pettingllms_prompt.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _examples(section: dict[str, Any]) -> dict[str, PettingExample]:
    return {row["name"]: PettingExample(**row) for row in section["examples"]}


_TEXTS = _load_texts()
SYSTEM_PROMPT: str = _TEXTS["system_prompt"]
USER_PREFIX: str = _TEXTS["user_prefix"]
MATH_TEMPLATE: str = _TEXTS["math"]["template"]
MATH_EXAMPLES = _examples(_TEXTS["math"])
# code tasks: our variant of their prompt (same sections and output format)
CODE_TEMPLATE: str = _TEXTS["code"]["template"]
CODE_EXAMPLES = _examples(_TEXTS["code"])


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
