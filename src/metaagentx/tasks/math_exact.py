"""Answer forms that math-verify collapses, compared part by part before it sees them.

math-verify reads a pmatrix whose row breaks were lost as one product (so a reordered vector
matched), drops primes (E' == E), reads `1, 2, \\ldots, 5` as its last number, and equals 5% with
5. These helpers decide such pairs themselves and hand every scalar part back to the caller's
comparison (`equal`), so parts still get the exact number / math-verify treatment. Each returns
None when its rule does not apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Equal = Callable[[str, str], bool]

# LaTeX digit-group separators (`10,\!080`, `14{,}916`, `14 {, }916`): a comma with a negative thin
# space or in braces never separates list items. Groups of exactly three digits only, so a decimal
# comma (`3{,}14`) or Indian grouping is not silently read as one integer.
_LATEX_GROUP_RE = re.compile(r"(?<=\d)\s*(?:,\s*\\!\s*|\{\s*,\s*\})(?=\d{3}(?!\d))")
_PLAIN_GROUPED_RE = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ELLIPSIS_RE = re.compile(r"\\(?:[lc]?dots[cbmio]?)(?![A-Za-z])|\.\.\.")
_PRIME_MACRO_RE = re.compile(r"\^\s*\{?\s*((?:\\prime\s*)+)\}?")
_PRIMED_RE = re.compile(r"(\\?[A-Za-z]+|[)}\]])\s*('+)")
_BASED_RE = re.compile(r"^(-?\d[0-9A-Z]*)_\{?\s*(\d+)\s*\}?$")
_MATRIX_RE = re.compile(
    r"^\\begin\{([pbBvV]?matrix|smallmatrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.DOTALL
)
_MATRIX_KIND = {"vmatrix": "determinant", "Vmatrix": "norm"}  # the others are all plain matrices


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


def join_digit_groups(answer: str) -> str:
    """`10,\\!080` / `14{,}916` -> `10080` / `14916` (LaTeX-marked thousands separators only)."""
    return _LATEX_GROUP_RE.sub("", answer)


def join_plain_groups(prediction: str, reference: str) -> tuple[str, str]:
    """`1,000,000` as one number, on a side whose other side is a single item (no top-level
    comma) or grouped the same way; `(1,000)` and `1,2` stay tuples and lists."""

    def single(s: str) -> bool:
        return len(split_top_level(s)) == 1 or bool(_PLAIN_GROUPED_RE.match(s))

    pred, ref = prediction, reference
    if _PLAIN_GROUPED_RE.match(prediction) and single(reference):
        pred = prediction.replace(",", "")
    if _PLAIN_GROUPED_RE.match(reference) and single(prediction):
        ref = reference.replace(",", "")
    return pred, ref


def mark_ellipses_and_primes(answer: str) -> str:
    """One spelling for ellipses (`\\ldots`) and primes (`'`), so the rules below can see them."""
    answer = _ELLIPSIS_RE.sub(r"\\ldots ", answer)
    return _PRIME_MACRO_RE.sub(lambda m: "'" * m.group(1).count("\\prime"), answer)


def _percent(answer: str) -> tuple[str, bool]:
    s = answer.rstrip()
    if s.endswith("%") and s.count("%") == 1:
        return s[:-1].rstrip(), True
    return answer, False


def compare_percent(prediction: str, reference: str, equal: Equal) -> bool | None:
    """A reference `5%` is matched by its number of percent, `5%` or `5` (MATH asks "what
    percent" and takes either), not by `0.05`; a prediction `5%` is the number 5/100, so it
    matches a reference `0.05` and never `5`."""
    pred, pred_pct = _percent(prediction)
    ref, ref_pct = _percent(reference)
    if not (pred_pct or ref_pct):
        return None
    if pred_pct and not ref_pct:
        return equal(f"\\frac{{{pred}}}{{100}}", ref)
    return equal(pred, ref)


def _prime_signature(answer: str) -> list[tuple[str, int]]:
    return sorted((base, len(marks)) for base, marks in _PRIMED_RE.findall(answer))


def primes_differ(prediction: str, reference: str) -> bool:
    """Whether the two mark different symbols with primes (E' vs E, f'(x) vs f(x)); an equation
    against a bare value is judged on its right-hand side (`f'(x) = 2x` answers `2x`)."""
    pred, ref = prediction, reference
    if ("=" in pred) != ("=" in ref):
        pred, ref = pred.rsplit("=", 1)[-1], ref.rsplit("=", 1)[-1]
    return _prime_signature(pred) != _prime_signature(ref)


def compare_ellipsis(prediction: str, reference: str, equal: Equal) -> bool | None:
    """Sequences with `\\ldots`: only against another, item by item, in order; items holding the
    ellipsis must match as written (math-verify would keep just the last number)."""
    pred_has, ref_has = "\\ldots" in prediction, "\\ldots" in reference
    if not (pred_has or ref_has):
        return None
    pred_items, ref_items = split_top_level(prediction), split_top_level(reference)
    if not (pred_has and ref_has) or len(pred_items) != len(ref_items):
        return False
    for p, r in zip(pred_items, ref_items, strict=True):
        if "\\ldots" in p or "\\ldots" in r:
            if p.replace(" ", "") != r.replace(" ", ""):
                return False
        elif not equal(p, r):
            return False
    return True


def compare_base(prediction: str, reference: str, _equal: Equal) -> bool | None:
    """Numerals with a base subscript (`52_8`) by digits and base (math-verify drops the
    subscript: 52_9 == 52_8 there). The reference's base governs: a bare `52` answers `52_8`
    (the base the question asked for), while `52_8` answers a bare `52` only as `52_{10}`."""
    pred_m, ref_m = _BASED_RE.match(prediction.strip()), _BASED_RE.match(reference.strip())
    if pred_m is None and ref_m is None:
        return None
    ref_base = int(ref_m.group(2)) if ref_m else 10
    if pred_m is not None and int(pred_m.group(2)) != ref_base:
        return False
    pred_digits = pred_m.group(1) if pred_m else prediction.strip()
    ref_digits = ref_m.group(1) if ref_m else reference.strip()
    return pred_digits.lstrip("0") == ref_digits.lstrip("0")


def _strip_name(answer: str) -> str:
    """`\\mathbf{v} = (...)` -> `(...)`: a matrix or vector answer with its name written first."""
    head, sep, tail = answer.partition("=")
    if sep and "=" not in tail and re.fullmatch(r"\s*\\?[A-Za-z]+(?:\{\\?\w+\})?\s*", head):
        return tail.strip()
    return answer


def _matrix(answer: str) -> tuple[str, list[list[str]]] | None:
    """(kind, rows of cells) of an answer that is one matrix environment, else None."""
    s = _strip_name(answer).strip()
    while len(s) > 2 and s[0] + s[-1] in ("()", "[]") and s[1:].lstrip().startswith("\\begin"):
        s = s[1:-1].strip()  # `\left[ \begin{array}..\end{array} \right]`, `(\begin{pmatrix}..)`
    match = _MATRIX_RE.match(s)
    if match is None or "\\begin" in match.group(2):
        return None
    rows = [row.strip() for row in re.split(r"\\\\(?:\[[^\]]*\])?", match.group(2))]
    while rows and not rows[-1]:
        rows.pop()
    cells = [[cell.strip() for cell in row.split("&")] for row in rows]
    if not cells or any(len(row) != len(cells[0]) or "" in row for row in cells):
        return None
    return _MATRIX_KIND.get(match.group(1), "matrix"), cells


def _vector(answer: str) -> list[str] | None:
    """The coordinates of a tuple `(a, b, c)` or `\\langle a, b, c \\rangle`, else None."""
    s = _strip_name(answer).strip()
    if s.startswith("\\langle") and s.endswith("\\rangle"):
        inner = s[len("\\langle") : -len("\\rangle")]
    elif s.startswith("(") and s.endswith(")") and len(split_top_level(s)) == 1:
        inner = s[1:-1]
    else:
        return None
    items = split_top_level(inner)
    return items if len(items) >= 2 else None


def _as_column(answer: str) -> tuple[str, list[list[str]]] | None:
    coords = _vector(answer)
    return None if coords is None else ("matrix", [[c] for c in coords])


def compare_matrix(prediction: str, reference: str, equal: Equal) -> bool | None:
    """Matrices cell by cell, in order, same shape and kind (a vmatrix is a determinant). A tuple
    equals the column vector of its coordinates (MATH writes vectors as column pmatrices)."""
    pred_m, ref_m = _matrix(prediction), _matrix(reference)
    if pred_m is None and ref_m is None:
        return None
    pred_m = pred_m or _as_column(prediction)
    ref_m = ref_m or _as_column(reference)
    if pred_m is None or ref_m is None:
        other = prediction if pred_m is None else reference
        return None if "\\begin" in other else False  # a matrix expression: math-verify's job
    (pred_kind, pred_cells), (ref_kind, ref_cells) = pred_m, ref_m
    if pred_kind != ref_kind or [len(r) for r in pred_cells] != [len(r) for r in ref_cells]:
        return False
    return all(
        equal(p, r)
        for prow, rrow in zip(pred_cells, ref_cells, strict=True)
        for p, r in zip(prow, rrow, strict=True)
    )
