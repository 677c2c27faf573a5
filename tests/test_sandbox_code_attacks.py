"""Code verdicts cannot be forged: hostile candidates against call and functional tests.

The candidate runs in a process that never holds the test, the expected values or the verdict
channel (`metaagentx.sandbox.checker`); values cross as plain data. Each attack in
`code_attacks` earned full reward on the old single-process harness (frame/gc lookups, fake
verdict lines, always-equal objects); here every one must earn nothing, while the same tests still
pass a correct program. Run as root and, in CI, as an unprivileged user.
"""

from __future__ import annotations

import pytest

from code_attacks import ATTACKS, attack
from metaagentx.sandbox import plaindata
from metaagentx.tasks.base import TestCase
from metaagentx.tasks.code import DefaultSandbox, grade_program, run_one_test

FUNCTIONAL = TestCase(
    "functional",
    "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(10) == 20\n\n"
    "check(double)\n",
)
CALL = TestCase("call", [21], 42, "double")
CORRECT = "def double(x):\n    return 2 * x\n"


@pytest.mark.parametrize("test", [FUNCTIONAL, CALL], ids=["functional", "call"])
def test_a_correct_program_passes(test: TestCase) -> None:
    assert grade_program(CORRECT, [test]).all_passed


@pytest.mark.parametrize("test", [FUNCTIONAL, CALL], ids=["functional", "call"])
@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_attack_earns_nothing(kind: str, test: TestCase) -> None:
    grade = grade_program(attack(kind, "double"), [test])
    assert not grade.all_passed, (kind, grade.details)


def test_the_candidate_never_receives_the_test() -> None:
    """A candidate that prints everything it can reach while it is being tested: neither the
    test's text nor its expected values appear."""
    spy = (
        "import gc, sys\n"
        "def double(x):\n"
        "    seen = [repr(o) for o in gc.get_objects() if isinstance(o, (dict, list, tuple))]\n"
        "    f = sys._getframe()\n"
        "    while f is not None:\n"
        "        seen += [repr(f.f_locals), repr(f.f_globals)]\n"
        "        f = f.f_back\n"
        "    print('\\n'.join(seen))\n"
        "    return 0\n"
    )
    functional = TestCase("functional", "leak = 'zq_marker_987654'\n"
                          "def check(candidate):\n    assert candidate(3) == 'zq_expected_31337'\n"
                          "\ncheck(double)\n")
    for test in (functional, TestCase("call", [7], "zq_expected_31337", "double")):
        result = run_one_test(spy, test, DefaultSandbox(), timeout_s=10.0, memory_mb=512,
                              max_output_bytes=32 << 20, fn_name="double")
        assert result.status == "ok" and len(result.stdout) > 10_000, result.stderr[-500:]
        for secret in ("zq_marker_987654", "zq_expected_31337", "check(candidate)"):
            assert secret not in result.stdout


def test_returned_values_keep_their_types_across_the_boundary() -> None:
    program = (
        "def f(kind):\n"
        "    return {'tuple': (1, 2), 'set': {1, 2}, 'dict': {1: 'a'}, 'nested': [(1, [2.5])],\n"
        "            'none': None, 'inf': float('inf')}[kind]\n"
    )
    checks = (
        "def check(candidate):\n"
        "    assert candidate('tuple') == (1, 2) and type(candidate('tuple')) is tuple\n"
        "    assert candidate('set') == {1, 2}\n"
        "    assert candidate('dict') == {1: 'a'}\n"
        "    assert candidate('nested') == [(1, [2.5])]\n"
        "    assert candidate('none') is None\n"
        "    assert candidate('inf') == float('inf')\n\ncheck(f)\n"
    )
    grade = grade_program(program, [TestCase("functional", checks)], fn_name="f")
    assert grade.all_passed, grade.details


def test_linked_lists_and_trees_cross_as_shapes() -> None:
    program = (
        "class Solution:\n"
        "    def reverse(self, head):\n"
        "        prev = None\n"
        "        while head:\n"
        "            head.next, prev, head = prev, head, head.next\n"
        "        return prev\n"
        "    def depth(self, root):\n"
        "        return 0 if root is None else 1 + max(self.depth(root.left), self.depth(root.right))\n"
    )
    checks = (
        "def check(candidate):\n"
        "    assert is_same_list(candidate(list_node([1, 2, 3])), list_node([3, 2, 1]))\n\n"
        "check(Solution().reverse)\n"
        "assert Solution().depth(tree_node([3, 9, 20, None, None, 15, 7])) == 3\n"
    )
    assert grade_program(program, [TestCase("functional", checks)]).all_passed
    wrong = program.replace("return prev", "return head")
    assert not grade_program(wrong, [TestCase("functional", checks)]).all_passed


def test_trusted_helpers_come_from_the_task_not_the_candidate() -> None:
    """HumanEval/32-style: the test calls a helper (`poly`) defined by the task's prompt; a
    candidate that redefines it to always return 0 does not fool the test."""
    setup = "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n" \
            "def find_zero(xs):\n    '''stub'''\n"
    checks = "def check(candidate):\n    assert abs(poly([-6, 1], candidate([-6, 1]))) < 1e-6\n\n" \
             "check(find_zero)\n"
    honest = setup.replace("    '''stub'''\n", "    return 6.0\n")
    cheat = "def poly(xs, x):\n    return 0\ndef find_zero(xs):\n    return 123.0\n"
    test = TestCase("functional", checks)
    assert grade_program(honest, [test], fn_name="find_zero", setup=setup).all_passed
    assert not grade_program(cheat, [test], fn_name="find_zero", setup=setup).all_passed


def test_stdlib_modules_import_in_the_candidate() -> None:
    program = "import hashlib\ndef digest(text):\n    return hashlib.md5(text.encode()).hexdigest()\n"
    test = TestCase("call", ["x"], "9dd4e461268c8034f5c8564e155c67a6", "digest")
    assert grade_program(program, [test]).all_passed


def test_plain_data_refuses_objects_and_bounds_nesting() -> None:
    class Sneaky(int):
        pass

    for value in (Sneaky(1), object(), [[1]] * 0 + [Sneaky(2)]):
        with pytest.raises(plaindata.PlainDataError):
            plaindata.encode(value)
    deep: list = []
    for _ in range(plaindata.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(plaindata.PlainDataError):
        plaindata.encode(deep)
    with pytest.raises(plaindata.PlainDataError):
        plaindata.decode({"$eval": "1"})
    value = {1: (2, {3}), "k": [b"x", 1.5, complex(1, 2), frozenset({4})]}
    assert plaindata.decode(plaindata.encode(value)) == value
