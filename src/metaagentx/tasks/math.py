"""Math answers: extraction from an agent's final message and exact equivalence.

The reward is the only teacher, and a policy finds every wrong acceptance, so this grader is
strict where others are loose: it takes the *last* `\\boxed{}`/`\\fbox{}` (agents often repeat or
revise answers), never accepts a nearby number (999 is not 1000, 0.333 is not 1/3, 1/2^99 is not
1/2^98: decimals are read as the rationals they write and numbers are compared exactly, never by
rounding), and uses a numeric tolerance only when the task states one (OlympiadBench's `error`).
Symbolic equivalence (LaTeX variants, sets, tuples, intervals, equations, units) is math-verify's
job, made exact in `mathverify_worker`; integers and plain decimals take a fast exact path that
needs no sympy, which is what the synthetic suite hits millions of times.

Forms math-verify collapses are decided before it sees them (`math_exact`):
- matrices and vectors cell by cell, in order, same shape; pmatrix/bmatrix/matrix/array are the
  same matrix, a vmatrix only equals a vmatrix; a tuple `(a, b)` equals the column vector with
  those coordinates (MATH writes vectors as column pmatrices), not a row vector or a 2x2.
- primes are kept: E' != E, f'(x) != f(x).
- percent: a reference `5\\%` is matched by `5\\%` or `5` (MATH's "what percent" answers), not by
  `0.05`; a prediction `5\\%` is the number 5/100: it matches a reference `0.05`, never `5`.
- ellipses: `1, 2, \\ldots, n` only against another ellipsis sequence, item by item.
- constants: `\\mathrm{e}` and `\\mathrm{i}` are e and i, not units.
- digit groups: `10,\\!080`, `14{,}916` are one number (groups of three digits); plain
  `1,000,000` too when the other side is a single item; `(1,000)` and `1,2` stay tuples/lists.
- base subscripts are kept (52_9 != 52_8); a bare `52` answers a reference `52_8`.

Deliberate differences from the published equivalence tests (math-verify, hendrycks/math
`is_equiv`, NeMo-Skills), each case listed in tests/test_tasks_math_published.py:
- the holes above, which those suites expect: 10% == 10, 1 - 1/\\mathrm{e} == 1 + 1/\\mathrm{e}.
- no rounding tolerance: 0.0833333333333333 != 1/12, (0.6, 2.6667] != (3/5, 8/3].
- comma lists are unordered sets (MATH "enter all solutions"); hendrycks compares strings.
- no decimal comma (1,22 is a list), no Indian digit grouping, no plain-text mixed number
  ("3128 1/2"), fonts are kept (\\mathcal{B} != B).
- settings we do not use: answers read from free prose instead of a box or an answer line,
  several boxed answers read as one list (we grade the last box), a multiple-choice letter in a
  sentence, and math-verify's `strict=False` and `allow_set_relation_comp=True`.
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction
from typing import TYPE_CHECKING

from metaagentx.tasks.base import Grade
from metaagentx.tasks.math_exact import (
    compare_base,
    compare_ellipsis,
    compare_matrix,
    compare_percent,
    join_digit_groups,
    join_plain_groups,
    mark_ellipses_and_primes,
    primes_differ,
    split_top_level,
)
from metaagentx.tasks.mathverify_worker import WorkerPool, verify_strings

if TYPE_CHECKING:
    from metaagentx.tasks.base import Task

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_FALLBACK_RES = (
    re.compile(r"####\s*([^\n]+)"),
    # `^.*` is greedy: the line's last "final answer is" ("Final Answer: The final answer is $5$")
    re.compile(r"^.*(?:final answer|the answer)\s*(?:is|:)\s*([^\n]+)", re.I | re.M),
    re.compile(r"^\s*answer\s*:\s*([^\n]+)", re.IGNORECASE | re.MULTILINE),
)
_LEADING_MATH_RE = re.compile(
    r"^[\"'\s]*(?:\$\$(.+?)\$\$|\$(.+?)(?<!\\)\$|\\\((.+?)\\\)|\\\[(.+?)\\\])"
)
_INT_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_RE = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+|\d+)$")
_TRAILING_TEXT_RE = re.compile(r"(?<=\S)\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}\s*$")
# `\\` (a matrix row break) matches first, so its second backslash is never read as `\ `
_SPACING_RE = re.compile(r"\\\\|\\[,;:! ]|\\q?quad\b|\\left\b|\\right\b|\\displaystyle\b")
_CONSTANT_RE = re.compile(r"\\(?:mathrm|textrm|text|mathit|operatorname)\{\s*([ei])\s*\}")
_PERCENT_WORD = r"(?:percent(?:age)?|pct)"
_PERCENT_WORD_RE = re.compile(
    rf"\s*(?:\\(?:text|mbox|mathrm)\{{\s*{_PERCENT_WORD}\s*\}}|\b{_PERCENT_WORD})\s*$"
)


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the balanced `{...}` opening at `start`, and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            continue
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def boxed_answers(text: str) -> list[str]:
    """Every `\\boxed{...}` / `\\fbox{...}` (or `\\boxed 5`) content, in order of appearance."""
    found: list[str] = []
    for match in _BOX_RE.finditer(text):
        pos = match.end()
        if pos < len(text) and text[pos] == "{":
            inner = _braced(text, pos)
            if inner is not None:
                found.append(inner[0].strip())
        elif match.group(0).endswith(" ") or (pos < len(text) and text[pos].isalnum()):
            token = re.match(r"[^\s$]+", text[pos:])
            if token:
                found.append(token.group(0).rstrip(".,"))
    return [f for f in found if f]


def _line_answer(line: str) -> str:
    """The answer in an answer line: its leading `$...$` math, else the text up to the first
    sentence end ("$14{,}916$. I hope it is correct." -> "14{,}916")."""
    math = _LEADING_MATH_RE.match(line)
    if math:
        return next(g for g in math.groups() if g is not None).strip()
    head = re.split(r"\.(?:\s|$)", line.strip(), maxsplit=1)[0]
    return head.strip().strip("$").strip()


def extract_answer(text: str) -> str | None:
    """The answer of a final message: its last boxed answer, else an explicit answer line."""
    if not text:
        return None
    boxed = boxed_answers(text)
    if boxed:
        return boxed[-1]
    for pattern in _FALLBACK_RES:
        matches = pattern.findall(text)
        if matches:
            answer = _line_answer(matches[-1])
            if answer:
                return answer
    return None


def normalize_answer(answer: str, unit: str | None = None) -> str:
    """Strip what never changes a value (math delimiters, spacing, decorations, the unit) and
    spell digit groups, percent, the constants e and i, ellipses and primes one way."""
    s = answer.strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)]
    s = join_digit_groups(s.replace("\\$", "").replace("$", ""))
    s = _SPACING_RE.sub(lambda m: m.group(0) if m.group(0) == "\\\\" else " ", s)
    s = re.sub(r"\\[dtc]frac", r"\\frac", s)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = _PERCENT_WORD_RE.sub("%", s.replace("\\%", "%"))
    s = _CONSTANT_RE.sub(r"\1", s)
    if unit:
        u = unit.replace("$", "").strip()
        for form in (f"\\text{{{u}}}", f"\\mathrm{{{u}}}", f"\\text{{ {u}}}", u):
            if u and s.rstrip().endswith(form) and s.rstrip() != form:
                s = s.rstrip()[: -len(form)]
                break
    s = _TRAILING_TEXT_RE.sub("", s)
    return mark_ellipses_and_primes(s).strip().rstrip(".").strip()


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()
_grader_started = False


def _worker_pool() -> WorkerPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WorkerPool()
        return _pool


def start_grader() -> None:
    """Start the math-verify worker processes that off-main-thread grading uses, in the
    background, once per process (later calls return at once).

    Their start-up (importing sympy) would otherwise stall the first graded executions of a run;
    a rollout calls this so they start while its executions generate. A worker that dies later
    is restarted on its next comparison."""
    global _grader_started
    with _pool_lock:
        if _grader_started:
            return
        _grader_started = True
    threading.Thread(target=_worker_pool().start, name="mathverify-start", daemon=True).start()


def _exact_number(s: str) -> Fraction | None:
    compact = s.strip().replace(" ", "")
    if _INT_RE.match(compact) or _DECIMAL_RE.match(compact):
        return Fraction(compact)
    return None


def _numbers_equal(pred: Fraction, ref: Fraction, tolerance: float | None) -> bool:
    if tolerance is not None:
        return abs(pred - ref) <= Fraction(str(tolerance))
    return pred == ref


def _equal_single(prediction: str, reference: str, tolerance: float | None, timeout_s: int) -> bool:
    if prediction.replace(" ", "") == reference.replace(" ", ""):
        return True
    pred_num, ref_num = _exact_number(prediction), _exact_number(reference)
    if pred_num is not None and ref_num is not None:
        return _numbers_equal(pred_num, ref_num, tolerance)
    if primes_differ(prediction, reference):
        return False

    def equal(pred: str, ref: str) -> bool:
        return _equal_single(pred, ref, tolerance, timeout_s)

    for rule in (compare_percent, compare_base, compare_ellipsis, compare_matrix):
        verdict = rule(prediction, reference, equal)
        if verdict is not None:
            return verdict
    if threading.current_thread() is threading.main_thread():
        return verify_strings(prediction, reference, tolerance, timeout_s)
    return _worker_pool().verify(prediction, reference, tolerance, timeout_s)


def is_equivalent(
    prediction: str | None,
    reference: str,
    *,
    multiple_answers: bool = False,
    unit: str | None = None,
    tolerance: float | None = None,
    timeout_s: int = 5,
) -> bool:
    """Whether an extracted answer equals the reference.

    `multiple_answers`: the reference lists several answers (comma separated); the prediction must
    list the same ones, in any order, each matched once. Safe to call from any thread.
    """
    if prediction is None or not prediction.strip():
        return False
    pred_num, ref_num = _exact_number(prediction), _exact_number(reference)
    if pred_num is not None and ref_num is not None:  # the fast path: no normalisation needed
        return _numbers_equal(pred_num, ref_num, tolerance)
    pred = normalize_answer(prediction, unit)
    ref = normalize_answer(reference, unit)
    if not pred or not ref:
        return False
    pred, ref = join_plain_groups(pred, ref)
    if _equal_single(pred, ref, tolerance, timeout_s):
        return True
    if not multiple_answers:
        return False
    ref_items, pred_items = split_top_level(ref), split_top_level(pred)
    if len(pred_items) == 1 and pred.startswith("\\{") and pred.endswith("\\}"):
        pred_items = split_top_level(pred[2:-2])
    if len(ref_items) != len(pred_items):
        return False
    unused = list(pred_items)
    for item in ref_items:
        match = next((p for p in unused if _equal_single(p, item, tolerance, timeout_s)), None)
        if match is None:
            return False
        unused.remove(match)
    return True


def grade_math_task(task: Task, final_output: str, **_: object) -> Grade:
    """Grade a final message against a math task's reference answer."""
    answer = extract_answer(final_output)
    reference = task.answer or ""
    if answer is None:
        return Grade(0.0, False, {"reason": "no_answer", "reference": reference})
    meta = task.metadata
    correct = is_equivalent(
        answer,
        reference,
        multiple_answers=bool(meta.get("multiple_answers", False)),
        unit=meta.get("unit"),
        tolerance=meta.get("tolerance"),
    )
    return Grade(1.0 if correct else 0.0, correct, {"extracted": answer, "reference": reference})
