"""Builds the one Python program that runs a candidate against one test.

Every test becomes a standalone source handed to the sandbox, so no candidate code ever runs in
the grader's process. The expected value of a call test is never put into the program: the
harness prints the candidate's return value after a per-run random marker and the grader compares
it on the host, so a candidate that prints a fake verdict earns nothing. Functional tests carry
their own assertions (that is their format); there the marker is printed only after `check` ran.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from metaagentx.tasks.base import TestCase

# What LeetCode-style and HumanEval-style solutions assume is already imported or defined
# (the LeetCodeDataset evaluation prelude: typing names, common modules, list/tree helpers).
PRELUDE = '''\
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
'''

_CALL_TEMPLATE = '''\
import json as _json, sys as _sys
_pre = {{"__name__": "__candidate__"}}
exec(compile({prelude!r}, "<prelude>", "exec"), _pre)
_ns = dict(_pre)
exec(compile({program!r}, "<candidate>", "exec"), _ns)
_fn = _ns.get({fn_name!r})
if _fn is not None and _fn is _pre.get({fn_name!r}):
    _fn = None  # a prelude name (e.g. operator.add), not the candidate's function
if _fn is None and isinstance(_ns.get("Solution"), type):
    _fn = getattr(_ns["Solution"](), {fn_name!r}, None)
if _fn is None:
    raise NameError("the program defines no function " + {fn_name!r})
_result = _fn(*_json.loads({args!r}))
_sys.stdout.flush()
_sys.__stdout__.write("\\n" + {marker!r} + _json.dumps(_result) + "\\n")
'''

_FUNCTIONAL_TEMPLATE = '''\
import sys as _sys
_ns = {{"__name__": "__candidate__"}}
exec(compile({prelude!r}, "<prelude>", "exec"), _ns)
exec(compile({program!r}, "<candidate>", "exec"), _ns)
exec(compile({test!r}, "<test>", "exec"), _ns)
_sys.stdout.flush()
_sys.__stdout__.write("\\n" + {marker!r} + "passed\\n")
'''


@dataclass(frozen=True)
class HarnessProgram:
    """The source to run, its stdin, and the marker its verdict line starts with (if any)."""

    source: str
    stdin: str
    marker: str | None


def stdin_text(value: Any) -> str:
    """APPS stores some stdin/stdout as a list of lines; everything else is already text."""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value) + "\n"
    return str(value)


def build_program(program: str, test: TestCase) -> HarnessProgram:
    """The standalone source that runs `program` on `test` inside the sandbox."""
    if test.kind == "stdio":
        return HarnessProgram(source=program, stdin=stdin_text(test.input), marker=None)
    marker = f"@@metaagentx-{secrets.token_hex(16)}@@"
    if test.kind == "call":
        import json

        if not test.fn_name:
            raise ValueError("a call test needs fn_name")
        args = test.input if isinstance(test.input, list) else [test.input]
        source = _CALL_TEMPLATE.format(prelude=PRELUDE, program=program, fn_name=test.fn_name,
                                       args=json.dumps(args), marker=marker)
        return HarnessProgram(source=source, stdin="", marker=marker)
    if test.kind == "functional":
        source = _FUNCTIONAL_TEMPLATE.format(prelude=PRELUDE, program=program,
                                             test=str(test.input), marker=marker)
        return HarnessProgram(source=source, stdin="", marker=marker)
    raise ValueError(f"unknown test kind {test.kind!r}")


def verdict_payload(stdout: str, marker: str) -> str | None:
    """The text after the last marker line of the run's stdout, or None if it never printed."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(marker):
            return line[len(marker) :]
    return None
