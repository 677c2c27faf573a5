"""The report's trace browser: problem -> designs -> executions -> agent turns, as nested
`<details>` elements. Every string here came from a model or a dataset, so every one of them
goes through `esc`; long texts are clipped so one runaway turn cannot bloat the page."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from metaagentx.eval.analysis import classify_script

MAX_TEXT = 4000  # characters of one text shown before clipping


def esc(value: Any) -> str:
    """HTML-escape anything (quotes too, so it is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def clipped(text: Any, limit: int = MAX_TEXT) -> str:
    """Escaped text in a <pre>, clipped to `limit` characters with a note."""
    text = "" if text is None else str(text)
    more = len(text) - limit
    body = esc(text[:limit]) + (f"\n… ({more} more characters)" if more > 0 else "")
    return f"<pre>{body}</pre>"


def _mark(ok: bool | None) -> str:
    if ok is None:
        return '<span class="dim">ungraded</span>'
    return '<span class="ok">correct</span>' if ok else '<span class="bad">wrong</span>'


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "-"


def _adv(value: Any) -> str:
    """An advantage badge (samples written since advantages were logged); nothing otherwise."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    sign = "pos" if value > 0 else "neg" if value < 0 else ""
    return f' <span class="adv {sign}">adv {value:+.2f}</span>'


def _executions(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for r in records for d in r.get("designs") or [] for e in d.get("executions") or []]


def _right(executions: Sequence[Mapping[str, Any]]) -> int:
    return sum(e.get("status") == "ok" and e.get("correct") is True for e in executions)


def _correct_mark(executions: Sequence[Mapping[str, Any]]) -> str:
    right = _right(executions)
    css = "ok" if right else "bad"
    return f'<span class="{css}">{right}/{len(executions)} executions correct</span>'


def render_traces(
    groups: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], heading: str = "h3"
) -> str:
    """One heading per rollout (a training step or an evaluation run), then its problems."""
    parts = []
    for title, records in groups:
        parts.append(f"<{heading}>{esc(title)}</{heading}>")
        parts.extend(render_problem(record) for record in records)
    return "".join(parts)


def eval_groups(
    label: str, records: Sequence[Mapping[str, Any]], per_group: int
) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """An evaluation's records per (benchmark, mode), the first `per_group` of each; the title
    counts correct executions over all of the group's problems, not only those shown."""
    by_run: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        key = (str(record.get("benchmark")), str(record.get("mode")))
        by_run.setdefault(key, []).append(record)
    groups = []
    for (benchmark, mode), found in by_run.items():
        executions = _executions(found)
        title = (
            f"{label}: {benchmark} / {mode} · {_right(executions)}/{len(executions)} "
            f"executions correct on {len(found)} problems (first {min(per_group, len(found))} "
            "shown)"
        )
        groups.append((title, found[:per_group]))
    return groups


def render_problem(record: Mapping[str, Any]) -> str:
    designs = record.get("designs") or []
    valid = sum(bool(d.get("valid")) for d in designs)
    rewards = [d.get("reward") for d in designs if isinstance(d.get("reward"), int | float)]
    summary = (
        f"<b>{esc(record.get('problem_id'))}</b> · {esc(record.get('domain'))} · "
        f"{valid}/{len(designs)} designs valid · {_correct_mark(_executions([record]))} · "
        f"best design reward {_num(max(rewards) if rewards else None)}"
    )
    search = f"{record.get('problem_id')} {record.get('domain')} {str(record.get('prompt'))[:300]}"
    reference = record.get("reference")
    body = [
        "<b>Problem</b>",
        clipped(record.get("prompt")),
        f"<div>reference answer: <code>{esc(reference)}</code></div>"
        if reference is not None
        else "",
    ]
    body += [render_design(d) for d in designs]
    return (
        f'<details class="problem" data-search="{esc(search)}"><summary>{summary}</summary>'
        + "".join(body)
        + "</details>"
    )


def render_design(design: Mapping[str, Any]) -> str:
    structure = classify_script(design.get("script"))
    verdict = (
        '<span class="ok">valid</span>'
        if design.get("valid")
        else f'<span class="bad">rejected: {esc(design.get("reason"))}</span>'
    )
    tools = ", ".join(structure.tools) or "no tools"
    summary = (
        f"design <b>{esc(design.get('design_id'))}</b> · declared "
        f"<code>{esc(design.get('pattern'))}</code> · structure {esc(structure.pattern)} "
        f"({structure.agents} agents, {esc(tools)}, depth {structure.depth}) · {verdict} · "
        f"reward {_num(design.get('reward'))}{_adv(design.get('advantage'))}"
    )
    body = []
    if design.get("text") is not None:
        body.append(
            f"<details><summary>designer reply</summary>{clipped(design.get('text'))}</details>"
        )
    if design.get("script"):
        body.append(f"<div><b>script</b></div>{clipped(design.get('script'))}")
    if not design.get("valid") and design.get("detail"):
        body.append(f"<div class='bad'>{esc(design.get('detail'))}</div>")
    body += [render_execution(e) for e in design.get("executions") or []]
    return f'<details class="design"><summary>{summary}</summary>{"".join(body)}</details>'


def render_execution(execution: Mapping[str, Any]) -> str:
    graded = execution.get("correct") if execution.get("status") == "ok" else False
    summary = (
        f"execution <b>{esc(execution.get('execution_id'))}</b> · status "
        f"{esc(execution.get('status'))} · {_mark(graded)} · reward "
        f"{_num(execution.get('reward'))} · answer <code>{esc(execution.get('answer'))}</code>"
    )
    events = [e for e in execution.get("workflow_trace") or [] if isinstance(e, Mapping)]
    agents = [e for e in events if e.get("type") == "agent"]
    turns = [t for t in execution.get("turns") or [] if isinstance(t, Mapping)]
    body = []
    if agents and any(_adv(t.get("advantage")) for t in turns):  # the LLM calls, in order
        badges = " · ".join(f"{esc(t.get('agent'))}{_adv(t.get('advantage'))}" for t in turns)
        body.append(f"<div class='dim'>per-turn advantages: {badges}</div>")
    if agents:
        body += [render_agent_event(e) for e in agents]
        others = [e for e in events if e.get("type") != "agent"]
        if others:
            lines = "\n".join(json.dumps(e, ensure_ascii=False, default=str) for e in others)
            body.append(
                f"<details><summary>workflow events ({len(others)})</summary>"
                f"{clipped(lines)}</details>"
            )
    else:
        body += [render_turn(t) for t in turns]
    if not body:
        body.append("<div class='dim'>no agent turns recorded</div>")
    if execution.get("final_output") is not None:
        body.append(f"<div><b>final output</b></div>{clipped(execution.get('final_output'))}")
    if execution.get("error"):
        body.append(f"<div class='bad'>error: {esc(execution.get('error'))}</div>")
    if execution.get("reward_reason"):
        body.append(f"<div class='dim'>reward: {esc(execution.get('reward_reason'))}</div>")
    return f'<details class="execution"><summary>{summary}</summary>{"".join(body)}</details>'


def render_agent_event(event: Mapping[str, Any]) -> str:
    """One agent's run from the workflow trace: its turns, tool calls and delivery."""
    head = (
        f"<b>{esc(event.get('agent'))}</b> <span class='dim'>role {esc(event.get('role'))} · "
        f"path {esc(event.get('path'))} · round {esc(event.get('round'))} · inputs from "
        f"{esc(', '.join(map(str, event.get('inputs') or [])) or 'the task')} · "
        f"{esc(event.get('status'))}</span>"
    )
    parts = [head]
    for index, turn in enumerate(event.get("turns") or [], start=1):
        if not isinstance(turn, Mapping):
            continue
        parts.append(f"<div class='dim'>turn {index}</div>{clipped(turn.get('reply'))}")
        for call in turn.get("tool_calls") or []:
            if isinstance(call, Mapping):
                arguments = json.dumps(call.get("arguments"), ensure_ascii=False, default=str)
                parts.append(
                    f"<div class='tool'>tool call <b>{esc(call.get('name'))}</b>"
                    f"{clipped(arguments, 1500)}output{clipped(call.get('output'), 1500)}</div>"
                )
    if event.get("delivery") is not None:
        parts.append(f"<div><b>delivery</b></div>{clipped(event.get('delivery'))}")
    if event.get("error"):
        parts.append(f"<div class='bad'>{esc(event.get('error'))}</div>")
    return f"<div class='turn'>{''.join(parts)}</div>"


def render_turn(turn: Mapping[str, Any]) -> str:
    """One raw LLM call (used when the workflow trace is missing)."""
    head = (
        f"<b>{esc(turn.get('agent'))}</b> <span class='dim'>{esc(turn.get('tokens'))} tokens · "
        f"finish {esc(turn.get('finish'))}</span>{_adv(turn.get('advantage'))}"
    )
    return f"<div class='turn'>{head}{clipped(turn.get('text'))}</div>"


__all__ = ["clipped", "esc", "eval_groups", "render_traces"]
