"""Holes the math grader had, one test each: every one passed a wrong answer or failed a right one.

Each pair is (prediction, reference); the reward is `is_equivalent(prediction, reference)`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from metaagentx.tasks.math import extract_answer, is_equivalent, normalize_answer

VEC = "\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}"  # MATH-500 precalculus/263
MAT = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"


def test_normalisation_keeps_matrix_row_breaks() -> None:
    assert normalize_answer(VEC) == VEC
    assert normalize_answer("\\begin{pmatrix}1\\\\2\\end{pmatrix}") == (
        "\\begin{pmatrix}1\\\\2\\end{pmatrix}"
    )


@pytest.mark.parametrize(
    "prediction",
    [
        "\\begin{pmatrix} -7 \\\\ -14 \\\\ -2 \\end{pmatrix}",  # reordered: was graded correct
        "\\begin{pmatrix} -2 & -14 & -7 \\end{pmatrix}",  # a row, not the column
        "\\begin{pmatrix} -2 \\\\ -14 \\end{pmatrix}",
        "(-7, -14, -2)",
        "-2, -14, -7",
        "-196",
    ],
)
def test_reordered_or_reshaped_vectors_are_wrong(prediction: str) -> None:
    assert not is_equivalent(prediction, VEC)


@pytest.mark.parametrize(
    "prediction",
    [
        "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",  # transposed: was graded correct
        "\\begin{pmatrix} 4 & 3 \\\\ 2 & 1 \\end{pmatrix}",
        "\\begin{vmatrix} 1 & 2 \\\\ 3 & 4 \\end{vmatrix}",  # a determinant
        "\\begin{pmatrix} 1 & 2 & 3 & 4 \\end{pmatrix}",
        "(1, 2, 3, 4)",
    ],
)
def test_transposed_or_reshaped_matrices_are_wrong(prediction: str) -> None:
    assert not is_equivalent(prediction, MAT)


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("\\begin{pmatrix}-2\\\\-14\\\\-7\\end{pmatrix}", VEC),  # no spaces: was graded wrong
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", MAT),
        ("\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", MAT),
        ("\\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right]", MAT),
        ("\\mathbf{v} = \\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}", VEC),
        (
            "\\begin{pmatrix} 0.5 \\\\ -\\frac{18}{5} \\end{pmatrix}",
            "\\begin{pmatrix} 1/2 \\\\ -18/5 \\end{pmatrix}",
        ),
        ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\\\ \\end{pmatrix}", MAT),  # a trailing row break
        ("(-2, -14, -7)", VEC),  # a tuple is the column vector of its coordinates
        ("\\langle -2, -14, -7 \\rangle", VEC),
    ],
)
def test_equal_matrices_and_vectors_in_any_spelling(prediction: str, reference: str) -> None:
    assert is_equivalent(prediction, reference)
    assert is_equivalent(reference, prediction)


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [("E'", "E"), ("f'(x)", "f(x)"), ("f''(x)", "f'(x)"), ("A'B", "AB'"), ("y'=2x", "y=2x")],
)
def test_primes_are_kept(prediction: str, reference: str) -> None:
    assert not is_equivalent(prediction, reference)
    assert not is_equivalent(reference, prediction)
    assert is_equivalent("f^{\\prime}(x)", "f'(x)")
    assert is_equivalent("f'(x) = 2x", "2x")  # an equation answers its right-hand side


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("5", "3+2\\mathrm{i}", False),  # was graded correct: \mathrm{i} stripped as a unit
        ("3+2i", "3+2\\mathrm{i}", True),
        ("2", "2\\mathrm{e}", False),
        ("2e", "2\\mathrm{e}", True),
        ("1 + \\frac{1}{\\mathrm{e}}", "1 - \\frac{1}{\\mathrm{e}}", False),
        ("10", "10\\text{ cm}", True),  # units are still units
    ],
)
def test_constants_e_and_i_are_not_units(prediction: str, reference: str, expected: bool) -> None:
    assert is_equivalent(prediction, reference) is expected


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", False),  # was graded correct
        ("2^{-99}", "\\frac{1}{2^{99}}", True),
        ("\\frac{1}{2004!}", "\\frac{1}{2006!}", False),
        ("\\{\\frac{1}{2^{99}}, 1\\}", "\\{\\frac{1}{2^{98}}, 1\\}", False),
        ("\\frac{\\pi}{2^{99}}", "\\frac{\\pi}{2^{98}}", False),
        ("0.3333333333", "\\frac{1}{3}", False),  # was graded correct (10-place rounding)
        ("\\frac{10\\sqrt{10.5}}{27}", "\\frac{5\\sqrt{42}}{27}", True),
        ("\\sqrt{3+2\\sqrt{2}}", "1+\\sqrt{2}", True),
        ("\\frac{\\sqrt{3}}{2}", "\\cos\\frac{\\pi}{6}", True),
        ("(1, 4.5)", "(1, \\frac{9}{2})", True),
    ],
)
def test_exact_numbers_are_compared_exactly(
    prediction: str, reference: str, expected: bool
) -> None:
    assert is_equivalent(prediction, reference) is expected


def test_a_stated_tolerance_still_applies() -> None:
    assert is_equivalent("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", tolerance=1e-6)
    assert is_equivalent("\\sqrt{2}", "1.414", tolerance=0.001)
    assert not is_equivalent("\\sqrt{2}", "1.41", tolerance=0.001)


def test_exactness_holds_in_the_worker_processes_too() -> None:
    pairs = [
        ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", False),
        ("0.3333333333", "\\frac{1}{3}", False),
        ("\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", MAT, False),
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", MAT, True),
        ("0.1", "\\frac{1}{10}", True),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: is_equivalent(p[0], p[1]), pairs))
    assert results == [p[2] for p in pairs]


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("5\\%", "5", False),  # was graded correct: 5% is 0.05
        ("5\\%", "5\\%", True),
        ("5", "5\\%", True),  # "what percent": the number of percent
        ("0.05", "5\\%", False),  # ... and only that number
        ("5\\%", "0.05", True),  # 5% is exactly 0.05
        ("12.5\\%", "\\frac{1}{8}", True),
        ("28 percent", "28\\%", True),
        ("28\\text{ percent}", "28\\%", True),
        ("29\\%", "28\\%", False),
    ],
)
def test_percent_only_where_the_reference_has_it(
    prediction: str, reference: str, expected: bool
) -> None:
    assert is_equivalent(prediction, reference) is expected


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("1, 2, \\ldots, 5", "1, 2, \\ldots, 6", False),
        ("5", "1, 2, \\ldots, 5", False),  # math-verify reads the sequence as its last number
        ("3, \\ldots, 5", "1, 2, \\ldots, 5", False),
        ("1, 2, 3, 4, 5", "1, 2, \\ldots, 5", False),
        ("1,2,\\dots,5", "1, 2, \\ldots, 5", True),
        ("1, 2, \\cdots, n", "1, 2, \\ldots, n", True),
        ("1, \\frac{1}{2}, \\ldots", "1, 0.5, \\ldots", True),
    ],
)
def test_ellipsis_only_against_ellipsis(prediction: str, reference: str, expected: bool) -> None:
    assert is_equivalent(prediction, reference) is expected


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("10,\\!080", "10080", True),  # was read as the list 10, 080
        ("10080", "10,\\!080", True),
        ("14{,}916", "14916", True),
        ("14 {, }916", "14{,}916", True),
        ("\\$16,\\!386.20", "16386.20", True),
        ("11,\\! 111,\\! 111,\\! 100", "11111111100", True),
        ("\\frac{1}{29,\\!322,\\!216}", "\\frac{1}{29322216}", True),
        ("1,000,000", "1000000", True),
        ("1000000", "1,000,000", True),
        ("10,\\!081", "10080", False),
        ("(1,000)", "1000", False),  # a tuple stays a tuple
        ("1,2", "12", False),
        ("1,22", "1.22", False),  # no decimal comma
        ("1,000", "1, 0", False),
    ],
)
def test_digit_group_separators(prediction: str, reference: str, expected: bool) -> None:
    assert is_equivalent(prediction, reference) is expected


def test_grouped_numbers_stay_lists_among_multiple_answers() -> None:
    assert is_equivalent("1,000", "1000, 0", multiple_answers=True) is False
    assert is_equivalent("0, 1000", "1000, 0", multiple_answers=True)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Final Answer: The final answer is $14{,}916$. I hope it is correct.", "14{,}916"),
        ("Final Answer: The final answer is 42. I hope it is correct.", "42"),
        ("The answer is $\\frac{3}{4}$, as shown.", "\\frac{3}{4}"),
        ("Final answer: \\(x = 3.5\\).", "x = 3.5"),
        ("The final answer is 3.5", "3.5"),
    ],
)
def test_answer_line_gives_its_math_not_the_sentence(text: str, answer: str) -> None:
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("52_9", "52_8", False),  # math-verify drops the base subscript
        ("2516_9", "2516_8", False),
        ("52_{8}", "52_8", True),
        ("-37_8", "-37_9", False),
        ("52", "52_8", True),  # the base the question asked for
        ("52_8", "52", False),  # ... but a written base must be the reference's
        ("24_{10}", "24", True),
        ("42", "52_8", False),
        ("x_1", "x_2", False),
    ],
)
def test_base_subscripts_are_kept(prediction: str, reference: str, expected: bool) -> None:
    assert is_equivalent(prediction, reference) is expected
