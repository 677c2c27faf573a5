"""Pull the design script out of the designer's reply and check it statically (the check
itself is `script_check`: reward shaping and early rejection, NOT a security boundary).

Replies come in our format (Analysis:, Pattern:, a fenced block) or theirs (Workflow Pattern:,
Reason: / Problem Analysis:, the script in `<code>` tags).

A rejected design must never be executed: `Design.require_valid()` is the only way the
rollout should obtain a script to run, and it raises `RejectedDesignError` for those.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

from metaagentx.mas.dialects import Dialect
from metaagentx.mas.text import visible_text
from metaagentx.rollout.script_check import (  # the check's API, re-exported
    ALLOWED_STDLIB,
    DEFAULT_LIMITS,
    REJECT_REASONS,
    RejectReason,
    ScriptCheck,
    ScriptLimits,
    check_script,
)

_PATTERN_LINE = re.compile(
    r"^[\s>#*_`-]*(?:workflow\s+)?pattern(?:\s+name)?[*_`]*\s*[:=-]\s*(?P<name>.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# Where a declared pattern's name ends: "math_ensemble_vote - three solvers because ...".
_NAME_END = re.compile(
    r"\s+[-\u2013\u2014]\s+|[:(\[\],;]|\.(?:\s|$)|\s+(?:reason|because|since|which)\b",
    re.IGNORECASE,
)
# Their reply's labelled lines ("Problem Analysis: ...", "Reason: ..."); labels a PDF or a
# model ran together on one line are split first (title case only, so prose is left alone).
_LABEL = re.compile(
    r"^[\s>#*_`-]*(?P<label>problem\s+type|problem\s+analysis|workflow\s+pattern|"
    r"pattern(?:\s+name)?|reason|agent\s+design|workflow\s+flow|tool\s+requirements|analysis)"
    r"[*_`]*\s*:[*_`]*[ \t]*(?P<rest>.*)$",
    re.IGNORECASE,
)
_INLINE_LABEL = re.compile(
    r"(?<=\S)[ \t]+(?=(?:Reason|Problem Analysis|Workflow Pattern|Agent Design|Workflow Flow)"
    r"\s*:)"
)
ANALYSIS_LABELS = ("problem analysis", "reason")
_ANALYSIS_PREFIX = re.compile(r"^[\s#*_`]*analysis[*_`]*\s*[:-]\s*", re.IGNORECASE)
_CODE_TAG = re.compile(r"<code>((?:(?!<code>).)*?)(?:</code>|\Z)", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}
ANALYSIS_CHARS = 2000
NO_CODE_FIX = "no code block: put the script in one ```python block (or in <code>...</code>)"


class RejectedDesignError(ValueError):
    """Raised when a caller asks for the script of a design that failed the static check."""


@dataclass(frozen=True)
class Design:
    """One designer reply, parsed and checked.

    script: the extracted code (kept for logging even when invalid; None without a block).
    pattern: the declared pattern name (lower snake case), or None when none is declared.
    analysis: the prose before the code (the `<think>` part dropped), clipped; in the authors'
      format, its "Problem Analysis:" and "Reason:" sections.
    valid / reason / detail: the static verdict; `reason` is one of REJECT_REASONS and
      `detail` says what to do instead.
    constructs: the workflow-library classes the script instantiates (for structure stats).
    dialect: the workflow dialect the script was checked as (None without a script).
    """

    script: str | None
    pattern: str | None
    analysis: str
    valid: bool
    reason: RejectReason | None = None
    detail: str = ""
    constructs: tuple[str, ...] = field(default_factory=tuple)
    dialect: Dialect | None = None

    def __post_init__(self) -> None:
        if self.valid != (self.reason is None):
            raise ValueError(f"a design is valid exactly when it has no reason: {self.reason}")

    @classmethod
    def checked(
        cls, script: str, check: ScriptCheck, pattern: str | None = None, analysis: str = ""
    ) -> Design:
        """A design made of `script` and its static verdict `check`."""
        return cls(script, pattern, analysis, check.reason is None, check.reason, check.detail,
                   check.constructs, check.dialect)  # fmt: skip

    def require_valid(self) -> str:
        """The script to execute; raises RejectedDesignError for a rejected design."""
        if not self.valid or self.script is None:
            raise RejectedDesignError(f"design rejected ({self.reason}): {self.detail}")
        return self.script


def extract_design(
    text: str,
    *,
    task_prompt: str | None = None,
    limits: ScriptLimits = DEFAULT_LIMITS,
    dialect: str = "auto",
) -> Design:
    """Parse a designer reply: script, pattern, analysis, and the static verdict.

    `task_prompt` enables the `retyped_task` check (without it that check is skipped);
    `dialect` is the `sandbox.dialect` setting the script will run under (see check_script)."""
    visible = visible_text(text)
    found = _last_code_block(visible)
    prose = visible if found is None else visible[: found[1]]
    thinking = _thinking(text)
    pattern = parse_pattern(prose) or parse_pattern(thinking)
    analysis = _analysis(prose, thinking)
    if found is None:
        return Design(None, pattern, analysis, False, "no_code_block", NO_CODE_FIX)
    script = found[0]
    check = check_script(script, task_prompt=task_prompt, limits=limits, dialect=dialect)
    return Design.checked(script, check, pattern, analysis)


def extract_script(text: str) -> str | None:
    """The script of the visible reply: the last `<code>` block spanning lines (a fenced block
    inside it, else its text) unless a fence follows it; else the last fenced python block (an
    unterminated final fence runs to the end; untagged fences and inline `<code>` are
    fallbacks); None without any."""
    found = _last_code_block(visible_text(text))
    return None if found is None else found[0]


def parse_pattern(text: str) -> str | None:
    """The last `Pattern: name` or `Workflow Pattern: name` line, as lower snake case
    (markdown decoration and a trailing justification ignored)."""
    matches = _PATTERN_LINE.findall(_INLINE_LABEL.sub("\n", text))
    if not matches:
        return None
    raw = matches[-1].strip()
    span = re.match(r"([*_`]+)(\w.*?)\1", raw)  # a decorated name: **math_ensemble_vote**
    value = span.group(2) if span else _NAME_END.split(re.sub(r"^[*_`\[\s]+", "", raw), 1)[0]
    name = re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")
    return name[:64] or None


def _last_code_block(text: str) -> tuple[str, int] | None:
    """(body, start offset) of the block to run. The last `<code>` block that spans lines wins
    unless a fence starts after it (inside it, its last python or untagged fence, else its
    text: the authors' format); otherwise `_last_fence`; an inline `<code>` comes last."""
    tags = [(m.group(1), m.start(), m.end()) for m in _CODE_TAG.finditer(text)]
    tags = [tag for tag in tags if tag[0].strip()]
    blocks = [tag for tag in tags if "\n" in tag[0].strip()]
    fence = _last_fence(text)
    if blocks and (fence is None or fence[1] < blocks[-1][2]):
        body, start, _ = blocks[-1]
        inner = _last_fence(body)
        return (inner[0] if inner is not None else _tag_body(body)), start
    if fence is not None:
        return fence
    if tags:
        return _tag_body(tags[-1][0]), tags[-1][1]
    return None


def _tag_body(body: str) -> str:
    """A `<code>` block's text as a script: `<code> from workflow import ...` starts on the
    tag's line, so the first line's indent (and any common indent) is dropped."""
    return textwrap.dedent(body.strip("\n")).lstrip(" \t").rstrip() + "\n"


def _last_fence(text: str) -> tuple[str, int] | None:
    """(body, start offset) of the last python-tagged fence, else of the last untagged fence
    (other languages are ignored); an unterminated final fence runs to the end."""
    blocks: list[tuple[str, str, int]] = []  # (tag, body, start)
    offset, opened, tag, start, body = 0, "", "", 0, []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not opened:
            fence = re.match(r"(`{3,})\s*([\w+-]*)", stripped)
            if fence:
                opened, tag, start, body = fence.group(1), fence.group(2).lower(), offset, []
        elif stripped.startswith(opened) and not stripped.strip("`"):
            blocks.append((tag, "".join(body), start))
            opened = ""
        else:
            body.append(line)
        offset += len(line)
    if opened:  # cut off mid-block (max_tokens): keep what there is
        blocks.append((tag, "".join(body), start))
    for wanted in (_PYTHON_TAGS, {""}):
        for block_tag, block, block_start in reversed(blocks):
            if block_tag in wanted and block.strip():
                return block.strip("\n") + "\n", block_start
    return None


def _thinking(text: str) -> str:
    """The reply's `<think>` reasoning (a leading orphan `</think>` closes a block the chat
    template opened): the authors' older prompt asks for the analysis and pattern there."""
    parts = [m.group(1) for m in _THINK.finditer(text)]
    closing = re.search(r"</think>", text, re.IGNORECASE)
    if closing and not re.search(r"<think>", text[: closing.start()], re.IGNORECASE):
        parts.insert(0, text[: closing.start()])
    return "\n".join(parts)


def _analysis(prose: str, thinking: str = "") -> str:
    """The prose's "Problem Analysis:"/"Reason:" sections (the authors' format), else the
    prose without pattern lines and without an "Analysis:" prefix; when that is empty, the
    thinking's labelled sections (their older prompt puts the analysis there)."""
    labelled = _labelled_analysis(prose)
    if labelled:
        return labelled
    kept = [line for line in prose.splitlines() if not _PATTERN_LINE.match(line)]
    text = _ANALYSIS_PREFIX.sub("", "\n".join(kept).strip())
    return (text or _labelled_analysis(thinking))[:ANALYSIS_CHARS]


def _labelled_analysis(text: str) -> str:
    sections = _sections(_INLINE_LABEL.sub("\n", text))
    chosen = [body for label, body in sections if label in ANALYSIS_LABELS and body]
    return "\n".join(chosen)[:ANALYSIS_CHARS]


def _sections(text: str) -> list[tuple[str, str]]:
    """(label, text) of each labelled section; a section runs to the next label."""
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _LABEL.match(line)
        if match:
            label = " ".join(match.group("label").lower().split())
            sections.append((label, [match.group("rest")]))
        elif sections:
            sections[-1][1].append(line)
    return [(label, "\n".join(lines).strip()) for label, lines in sections]


__all__ = [
    "ALLOWED_STDLIB",
    "DEFAULT_LIMITS",
    "REJECT_REASONS",
    "Design",
    "RejectReason",
    "RejectedDesignError",
    "ScriptCheck",
    "ScriptLimits",
    "check_script",
    "extract_design",
    "extract_script",
    "parse_pattern",
]
