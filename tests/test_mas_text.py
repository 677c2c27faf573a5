"""Reply parsing and prompt building of the workflow library."""

from __future__ import annotations

from metaagentx.mas.prompts import DELIVERY_INSTRUCTION, build_system_prompt, render_user_message
from metaagentx.mas.text import (
    MAX_DELIVERY_CHARS,
    delivery_of,
    extract_boxed,
    extract_code,
    extract_delivery,
    normalize_answer,
    parse_route,
    parse_tool_calls,
    parse_verdict,
    visible_text,
)


def test_last_delivery_block_wins() -> None:
    text = "<delivery>first</delivery> more work <delivery> second </delivery> tail"
    assert extract_delivery(text) == "second"


def test_nested_delivery_is_one_block_without_inner_tags() -> None:
    text = "<delivery>outer <delivery>inner</delivery> end</delivery>"
    assert extract_delivery(text) == "outer inner end"


def test_unclosed_delivery_only_when_no_complete_block() -> None:
    assert extract_delivery("<delivery>done</delivery> <delivery>cut by max_tok") == "done"
    assert extract_delivery("work <delivery>cut by max_tok") == "cut by max_tok"
    assert extract_delivery("stray </delivery> closing") is None


def test_missing_delivery_falls_back_to_answer_then_tail() -> None:
    assert extract_delivery("no tags here") is None
    assert delivery_of("so x = \\boxed{\\frac{1}{2}}.", "math") == "\\boxed{\\frac{1}{2}}"
    code_reply = "Here:\n```python\nprint(1)\n```\n"
    assert delivery_of(code_reply, "code") == "```python\nprint(1)\n```"
    long_reply = "x" * 5000 + "END"
    fallback = delivery_of(long_reply, "math")
    assert fallback.endswith("END") and len(fallback) == 2000


def test_delivery_ignores_thinking_and_is_clipped() -> None:
    assert extract_delivery("<think><delivery>draft</delivery></think>final") is None
    assert extract_delivery("reasoning</think><delivery>kept</delivery>") == "kept"
    huge = "<delivery>" + "y" * (MAX_DELIVERY_CHARS * 2) + "</delivery>"
    assert len(delivery_of(huge)) <= MAX_DELIVERY_CHARS
    assert visible_text("a<think>unfinished") == "a"


def test_boxed_and_code_extraction() -> None:
    assert extract_boxed("\\boxed{1} then \\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"
    assert extract_boxed("\\boxed{2} and broken \\boxed{3") == "2"
    assert extract_code("```python\na=1\n```\n```py\nb=2\n```") == "b=2"
    assert extract_code("```\nplain\n```") == "plain"


def test_normalize_answer_makes_equal_values_equal() -> None:
    assert normalize_answer("\\dfrac{3}{2}") == normalize_answer("1.5") == "3/2"
    assert normalize_answer("$42$") == normalize_answer("42.0") == "42"
    assert normalize_answer("\\left( 1, 2 \\right)") == "(1,2)"


def test_parse_tool_calls_reports_errors_instead_of_raising() -> None:
    text = (
        '<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>'
        "<tool_call>{not json}</tool_call>"
        '<tool_call>{"arguments": {}}</tool_call>'
        '<tool_call>{"name": "f", "arguments": [1]}</tool_call>'
        '<tool_call>{"name": "g", "parameters": {"x": 2}}</tool_call>'
        '<tool_call>{"name": "h"'
    )
    calls = parse_tool_calls(text)
    assert [(c.name, c.arguments, c.error is None) for c in calls[:1]] == [("add", {"a": 1}, True)]
    assert "invalid JSON" in (calls[1].error or "")
    assert "name" in (calls[2].error or "")
    assert "JSON object" in (calls[3].error or "")
    assert (calls[4].name, calls[4].arguments, calls[4].error) == ("g", {"x": 2}, None)
    assert "unterminated" in (calls[5].error or "")


def test_verdict_needs_an_explicit_statement() -> None:
    assert parse_verdict("All good. VERDICT: CORRECT") == "correct"
    assert parse_verdict("Final verdict: **INCORRECT**, step 3 is wrong") == "incorrect"
    assert parse_verdict("VERDICT: INCORRECT ... after the fix, verdict: correct") == "correct"
    assert parse_verdict("Verdict - PASS") == "correct"
    assert parse_verdict("This looks correct to me.") is None
    assert parse_verdict("<think>VERDICT: CORRECT</think> hmm") is None


def test_route_parsing() -> None:
    routes = ["direct", "compute", "careful"]
    assert parse_route("<route>Compute</route>", routes) == "compute"
    assert parse_route("<route>nope</route> I'd say careful.", routes) == "careful"
    assert parse_route("direct or careful?", routes) is None


def test_system_prompt_adds_protocol_format_and_tools() -> None:
    plain = build_system_prompt("You are a solver.", "math")
    assert plain.startswith("You are a solver.")
    assert DELIVERY_INSTRUCTION in plain and "\\boxed{answer}" in plain
    assert "tool_call" not in plain and "run Python" not in plain
    code = build_system_prompt(
        "Coder.", "code", python_tool=True, tool_lines=["run_tests(code): test"], max_turns=3
    )
    assert "```python" in code and "run Python" in code and "- run_tests(code)" in code
    assert "at most 3 turns" in code
    single_turn = build_system_prompt("Coder.", "code", python_tool=True, max_turns=1)
    assert "run Python" not in single_turn
    assert "Print YES" in build_system_prompt("S.", "code", format_override="Print YES")


def test_user_message_shows_task_deliveries_and_instruction() -> None:
    assert render_user_message("Q?") == "Q?"
    message = render_user_message("Q?", [("Solver", "x=1")], "Check it.")
    assert "## Task\nQ?" in message and "### From Solver\nx=1" in message
    assert message.endswith("## Your job now\nCheck it.")
