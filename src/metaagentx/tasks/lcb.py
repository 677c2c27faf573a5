"""Decoding LiveCodeBench test cases without trusting pickle.

code_generation_lite stores private tests as base64(zlib(pickle(json_string))). Unpickling is
code execution in general, so the payload is first checked opcode by opcode (only the opcodes
that build one string are allowed) and then read by an unpickler that refuses every global.
The decompressed size is capped so a corrupt row cannot exhaust memory.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import pickletools
import zlib
from typing import Any

MAX_DECOMPRESSED_BYTES = 256 << 20

_STRING_OPCODES = frozenset(
    {
        "PROTO",
        "FRAME",
        "STOP",
        "MEMOIZE",
        "PUT",
        "BINPUT",
        "LONG_BINPUT",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
    }
)


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"forbidden global {module}.{name} in test data")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in test data")


def unpickle_string(data: bytes) -> str:
    """The one str a pickle holds; anything else (objects, calls, containers) is refused."""
    for opcode, _arg, _pos in pickletools.genops(data):
        if opcode.name not in _STRING_OPCODES:
            raise ValueError(f"pickle opcode {opcode.name} is not allowed in test data")
    value = _NoGlobalsUnpickler(io.BytesIO(data)).load()
    if not isinstance(value, str):
        raise ValueError(f"expected a pickled str, got {type(value).__name__}")
    return value


def decode_test_cases(blob: str | list[Any]) -> list[dict[str, Any]]:
    """LiveCodeBench public/private test cases: a JSON list, plain or compressed."""
    if isinstance(blob, list):
        return blob
    text = blob.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    raw = base64.b64decode(text, validate=True)
    inflater = zlib.decompressobj()
    data = inflater.decompress(raw, MAX_DECOMPRESSED_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError("compressed test cases exceed the size limit")
    return list(json.loads(unpickle_string(data)))


def encode_test_cases(cases: list[dict[str, Any]]) -> str:
    """The inverse of `decode_test_cases` for the compressed form (fixtures and tests)."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode("ascii")
