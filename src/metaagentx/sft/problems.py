"""Read a synthetic-suite task from its text alone and solve it exactly (no eval of task text).

The teacher sees only what an agent sees: the prompt text. Arithmetic is parsed with `ast` and
only integer literals joined by + - * (and unary minus) are evaluated; code tasks are mapped to
their function by the fixed description templates of `metaagentx.tasks.synthetic`. Anything
else raises `UnsupportedTaskError`, loudly, instead of producing data the teacher cannot vouch
for.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_EXPRESSION_CHARS = 200  # the suite's longest (level 4) is ~30; bounds the work per request

_OP_WORDS = {"plus": "+", "minus": "-", "times": "*"}
_ARITH = re.compile(r"Compute (\d+(?:[+\-*]\d+)+)\.")
_WORD_ARITH = re.compile(r"What is (\d+(?: (?:plus|minus|times) \d+)+)\?")
_CODE = re.compile(r"Write a Python function f\(x\) that (.+)\.")

# description (after "that") -> the body of f; the same 11 templates as tasks.synthetic
_FUNCTIONS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), body)
    for pattern, body in (
        (r"returns (\d+)\*x\+(\d+)", lambda m: f"{m[1]}*x+{m[2]}"),
        (r"returns x\*x-(\d+)", lambda m: f"x*x-{m[1]}"),
        (r"returns the sum of the list x", lambda m: "sum(x)"),
        (r"returns the largest number in the list x", lambda m: "max(x)"),
        (r"returns the string x reversed", lambda m: "x[::-1]"),
        (r"returns how many times 'a' occurs in the string x", lambda m: "x.count('a')"),
        (r"returns the sum of the list x times (\d+)", lambda m: f"sum(x)*{m[1]}"),
        (r"returns the list x with (\d+) added to each item", lambda m: f"[v+{m[1]} for v in x]"),
        (r"returns the even numbers of the list x, in order", lambda m: "[v for v in x if v%2==0]"),
        (
            r"returns x\*(\d+) if x is even, else x\+(\d+)",
            lambda m: f"x*{m[1]} if x%2==0 else x+{m[2]}",
        ),
        (r"returns the string x repeated (\d+) times", lambda m: f"x*{m[1]}"),
    )
)


class UnsupportedTaskError(ValueError):
    """The text is not a synthetic-suite task the teacher can solve."""


@dataclass(frozen=True)
class Problem:
    """A solved task. `expression` is the arithmetic to copy into `print(...)` (math only);
    `answer` is the exact result (math) or the complete program (code)."""

    domain: str
    family: str
    answer: str
    expression: str | None = None


def evaluate(expression: str) -> int:
    """The value of integer literals joined by + - * (unary minus allowed), via `ast` only."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise UnsupportedTaskError(f"expression longer than {MAX_EXPRESSION_CHARS} chars")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise UnsupportedTaskError(f"not an arithmetic expression: {expression!r}") from exc
    return _value(tree.body)


def _value(node: ast.expr) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
    raise UnsupportedTaskError(f"only integers and + - * are allowed, not {ast.dump(node)[:60]}")


def words_to_expression(text: str) -> str:
    """ "4821 times 37 minus 19" -> "4821*37-19"."""
    return "".join(_OP_WORDS.get(token, token) for token in text.split())


def parse_problem(question: str) -> Problem:
    """Recognise and solve one synthetic task from its prompt text."""
    text = question.strip()
    if match := _ARITH.fullmatch(text):
        expression = match[1]
        return Problem("math", "arith", str(evaluate(expression)), expression)
    if match := _WORD_ARITH.fullmatch(text):
        expression = words_to_expression(match[1])
        return Problem("math", "word_arith", str(evaluate(expression)), expression)
    if match := _CODE.fullmatch(text):
        for pattern, body in _FUNCTIONS:
            if described := pattern.fullmatch(match[1]):
                program = f"def f(x):\n    return {body(described)}\n"
                return Problem("code", "code_fn", program)
    raise UnsupportedTaskError(f"not a synthetic-suite task: {text[:80]!r}")


__all__ = [
    "MAX_EXPRESSION_CHARS",
    "Problem",
    "UnsupportedTaskError",
    "evaluate",
    "parse_problem",
    "words_to_expression",
]
