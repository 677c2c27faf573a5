"""Plain data across a process boundary: Python values <-> JSON, exact builtin types only.

Code grading keeps the candidate program and the tests in different processes; the arguments of
each call and its return value cross between them through this codec. Only exact builtin types
(and the linked-list / binary-tree shapes LeetCode tests use) are encoded, so a candidate cannot
smuggle an object whose `__eq__` always says yes: a subclass of `int` or `list`, or any custom
object, is refused at encoding. Tuples, sets, dicts with any plain keys, bytes, complex numbers
and non-finite floats are tagged so they decode to the same types. Decoding is strict (unknown
tags refused) and bounded in nesting and size. Standard library only: it runs in the sandbox.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 64
MAX_ITEMS = 1_000_000  # elements in one value (list items, dict entries, nodes)
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_JSON_KEYS = (str, int, float, bool)  # json.dumps turns these dict keys into strings


class PlainDataError(ValueError):
    """A value that is not plain data, or an encoding that is malformed or too large."""


class _Budget:
    def __init__(self) -> None:
        self.items = 0

    def spend(self, n: int = 1) -> None:
        self.items += n
        if self.items > MAX_ITEMS:
            raise PlainDataError(f"value has more than {MAX_ITEMS} elements")


def encode(value: Any) -> Any:
    """A JSON-able form of `value`; PlainDataError for anything that is not plain data."""
    return _encode(value, 0, _Budget())


def _encode(value: Any, depth: int, budget: _Budget) -> Any:
    if depth > MAX_DEPTH:
        raise PlainDataError(f"value nested deeper than {MAX_DEPTH}")
    budget.spend()
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$f": repr(value)}
    deeper = depth + 1
    if kind is list:
        return [_encode(v, deeper, budget) for v in value]
    if kind is tuple:
        return {"$t": [_encode(v, deeper, budget) for v in value]}
    if kind in (set, frozenset):
        items = [_encode(v, deeper, budget) for v in value]
        return {"$s" if kind is set else "$fs": items}
    if kind is dict:
        return {"$d": [[_encode(k, deeper, budget), _encode(v, deeper, budget)]
                       for k, v in value.items()]}
    if kind is bytes:
        return {"$b": value.hex()}
    if kind is complex:
        return {"$c": [_encode(value.real, deeper, budget), _encode(value.imag, deeper, budget)]}
    name = kind.__name__
    if name == "ListNode":
        return {"$ln": _list_values(value, deeper, budget)}
    if name == "TreeNode":
        return {"$tn": _tree_values(value, deeper, budget)}
    raise PlainDataError(f"a value of type {name} is not plain data")


def _list_values(node: Any, depth: int, budget: _Budget) -> list[Any]:
    values = []
    while node is not None:
        budget.spend()
        values.append(_encode(node.val, depth, budget))
        node = node.next
    return values


def _tree_values(root: Any, depth: int, budget: _Budget) -> list[Any]:
    """Level order with None for missing children, trailing Nones dropped (LeetCode's form)."""
    values: list[Any] = []
    queue = [root]
    head = 0
    while head < len(queue):
        node = queue[head]
        head += 1
        budget.spend()
        if node is None:
            values.append(None)
            continue
        values.append(_encode(node.val, depth, budget))
        queue += [node.left, node.right]
    while values and values[-1] is None:
        values.pop()
    return values


def decode(data: Any, *, list_node: Callable[[list[Any]], Any] | None = None,
           tree_node: Callable[[list[Any]], Any] | None = None) -> Any:
    """The value `encode` made `data` from; `list_node`/`tree_node` rebuild those shapes (as
    plain lists when not given)."""
    return _decode(data, 0, _Budget(), list_node, tree_node)


def _decode(data: Any, depth: int, budget: _Budget, list_node: Any, tree_node: Any) -> Any:
    if depth > MAX_DEPTH:
        raise PlainDataError(f"value nested deeper than {MAX_DEPTH}")
    budget.spend()
    if data is None or type(data) in (bool, int, float, str):
        return data

    def sub(item: Any) -> Any:
        return _decode(item, depth + 1, budget, list_node, tree_node)

    if type(data) is list:
        return [sub(v) for v in data]
    if type(data) is not dict or len(data) != 1:
        raise PlainDataError("malformed plain data")
    ((tag, body),) = data.items()
    if tag == "$f" and body in _FLOATS:
        return _FLOATS[body]
    if tag == "$b" and type(body) is str:
        return bytes.fromhex(body)
    if type(body) is not list:
        raise PlainDataError(f"malformed plain data under {tag!r}")
    if tag == "$t":
        return tuple(sub(v) for v in body)
    if tag in ("$s", "$fs"):
        items = [sub(v) for v in body]
        try:
            return set(items) if tag == "$s" else frozenset(items)
        except TypeError as exc:
            raise PlainDataError(f"unhashable set element: {exc}") from exc
    if tag == "$d":
        return _decode_dict(body, sub)
    if tag == "$c" and len(body) == 2:
        return complex(sub(body[0]), sub(body[1]))
    if tag in ("$ln", "$tn"):
        values = [sub(v) for v in body]
        build = list_node if tag == "$ln" else tree_node
        return values if build is None else build(values)
    raise PlainDataError(f"unknown plain-data tag {tag!r}")


def _decode_dict(body: list[Any], sub: Callable[[Any], Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in body:
        if type(pair) is not list or len(pair) != 2:
            raise PlainDataError("malformed dict entry")
        try:
            out[sub(pair[0])] = sub(pair[1])
        except TypeError as exc:
            raise PlainDataError(f"unhashable dict key: {exc}") from exc
    return out


def json_like(value: Any) -> Any:
    """What `json.dumps` then `json.loads` would make of a decoded value (tuples become lists),
    for call tests whose expected values are stored as JSON; PlainDataError for values JSON
    cannot hold (sets, bytes, complex, non-string dict keys)."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple):
        return [json_like(v) for v in value]
    if type(value) is dict and all(k is None or type(k) in _JSON_KEYS for k in value):
        return {_json_key(k): json_like(v) for k, v in value.items()}
    raise PlainDataError(f"a {type(value).__name__} return value is not JSON")


def _json_key(key: Any) -> str:
    if type(key) is str:
        return key
    if key is None or type(key) is bool:
        return {None: "null", True: "true", False: "false"}[key]
    return repr(key) if type(key) is float else str(key)
