"""What one code test sends into the sandbox: stdin for stdio tests, a checker spec otherwise.

No candidate code ever runs in the grader's process, and no test runs in the candidate's: call and
functional tests go to the sandbox's checker (`metaagentx.sandbox.checker`), which keeps the
candidate in a process of its own that never receives the test, the expected values or the verdict
channel. The prelude below is what LeetCode- and HumanEval-style solutions (and their tests)
assume is already imported or defined; both processes load it.
"""

from __future__ import annotations

from typing import Any

from metaagentx.sandbox import plaindata
from metaagentx.tasks.base import TestCase

# What LeetCode-style and HumanEval-style solutions assume is already imported or defined
# (the LeetCodeDataset evaluation prelude: typing names, common modules, list/tree helpers).
PRELUDE = """\
import bisect, collections, functools, heapq, itertools, math, operator, random, re, string
from typing import *
from bisect import *
from collections import *
from functools import *
from heapq import *
from itertools import *
from math import *
from operator import *
inf = float("inf")

class ListNode:
    def __init__(self, val=0, next=None):
        self.val = val
        self.next = next

class TreeNode:
    def __init__(self, val=0, left=None, right=None):
        self.val = val
        self.left = left
        self.right = right

def list_node(values):
    head = None
    for value in reversed(list(values)):
        head = ListNode(value, head)
    return head

def is_same_list(a, b):
    while a is not None and b is not None:
        if a.val != b.val:
            return False
        a, b = a.next, b.next
    return a is None and b is None

def tree_node(values):
    values = list(values)
    if not values or values[0] is None:
        return None
    root = TreeNode(values[0])
    queue, i = collections.deque([root]), 1
    while queue and i < len(values):
        node = queue.popleft()
        if i < len(values) and values[i] is not None:
            node.left = TreeNode(values[i])
            queue.append(node.left)
        i += 1
        if i < len(values) and values[i] is not None:
            node.right = TreeNode(values[i])
            queue.append(node.right)
        i += 1
    return root

def is_same_tree(p, q):
    if p is None or q is None:
        return p is q
    return p.val == q.val and is_same_tree(p.left, q.left) and is_same_tree(p.right, q.right)
"""


def stdin_text(value: Any) -> str:
    """APPS stores some stdin/stdout as a list of lines; everything else is already text."""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value) + "\n"
    return str(value)


def checker_spec(
    test: TestCase, *, fn_name: str | None = None, setup: str | None = None
) -> dict[str, Any]:
    """What the sandbox's checker process gets for a call or functional test (never the
    candidate): the test, the trusted helpers (`setup`: the task's starter code) and the name of
    the candidate's entry point. A call test's arguments travel as plain data; its expected value
    stays on the host."""
    if test.kind == "call":
        if not test.fn_name:
            raise ValueError("a call test needs fn_name")
        args = test.input if isinstance(test.input, list) else [test.input]
        return {
            "kind": "call",
            "prelude": PRELUDE,
            "setup": "",
            "fn_name": test.fn_name,
            "args": plaindata.encode(args),
        }
    if test.kind == "functional":
        return {
            "kind": "functional",
            "prelude": PRELUDE,
            "setup": setup or "",
            "fn_name": fn_name,
            "test": str(test.input),
        }
    raise ValueError(f"no checker for test kind {test.kind!r}")
