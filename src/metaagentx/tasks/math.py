"""Math answers: extraction from an agent's final message and exact equivalence.

The reward is the only teacher, so this grader is strict where the paper's code is loose: it takes
the *last* `\\boxed{}`/`\\fbox{}` (agents often repeat or revise answers), never accepts a nearby
number (999 is not 1000; decimals equal fractions only when they are exactly equal, up to 10
decimal places of float noise), and uses a numeric tolerance only when the task states one
(OlympiadBench's `error` field). Symbolic equivalence (LaTeX variants, sets, tuples, intervals,
equations, units) is math-verify's job; integers and plain decimals take a fast exact path that
needs no sympy, which is what the synthetic suite hits millions of times.
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction
from typing import TYPE_CHECKING

from metaagentx.tasks.base import Grade
from metaagentx.tasks.mathverify_worker import WorkerPool, verify_strings

if TYPE_CHECKING:
    from metaagentx.tasks.base import Task

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_FALLBACK_RES = (
    re.compile(r"####\s*([^\n]+)"),
    re.compile(r"(?:final answer|the answer)\s*(?:is|:)\s*([^\n]+)", re.IGNORECASE),
    re.compile(r"^\s*answer\s*:\s*([^\n]+)", re.IGNORECASE | re.MULTILINE),
)
_INT_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_RE = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+|\d+)$")
_TRAILING_TEXT_RE = re.compile(r"(?<=\S)\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}\s*$")
_SPACING_RE = re.compile(r"\\[,;:! ]|\\left\b|\\right\b|\\displaystyle\b")


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
            answer = matches[-1].strip().rstrip(".").strip().strip("$").strip()
            if answer:
                return answer
    return None


def normalize_answer(answer: str, unit: str | None = None) -> str:
    """Strip what never changes a value: math delimiters, spacing, decorations, the unit."""
    s = answer.strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)]
    s = s.replace("\\$", "").replace("$", "")
    s = _SPACING_RE.sub(" ", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = s.replace("\\%", "%")
    if unit:
        u = unit.replace("$", "").strip()
        for form in (f"\\text{{{u}}}", f"\\mathrm{{{u}}}", f"\\text{{ {u}}}", u):
            if u and s.rstrip().endswith(form) and s.rstrip() != form:
                s = s.rstrip()[: -len(form)]
                break
    s = _TRAILING_TEXT_RE.sub("", s)
    return s.strip().rstrip(".").strip()


def split_top_level(answer: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside (), [], {} — the items of a multiple-answer string."""
    items: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(answer):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            items.append(answer[start:i])
            start = i + 1
    items.append(answer[start:])
    items = [re.sub(r"^\s*(?:\\text\{\s*and\s*\}|and)\s+", "", it).strip() for it in items]
    return [it for it in items if it]


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
    compact = s.replace(" ", "")
    if _INT_RE.match(compact) or _DECIMAL_RE.match(compact):
        return Fraction(compact)
    return None


def _equal_single(prediction: str, reference: str, tolerance: float | None, timeout_s: int) -> bool:
    if prediction.replace(" ", "") == reference.replace(" ", ""):
        return True
    pred_num, ref_num = _exact_number(prediction), _exact_number(reference)
    if pred_num is not None and ref_num is not None:
        if tolerance is not None:
            return abs(pred_num - ref_num) <= Fraction(str(tolerance))
        return pred_num == ref_num
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
    pred = normalize_answer(prediction, unit)
    ref = normalize_answer(reference, unit)
    if not pred or not ref:
        return False
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
