"""The built-in synthetic suite: tasks a tiny model can learn and where the MAS design matters.

The quickstart trains a ~1M-parameter model from scratch on a CPU in minutes (see
notes/quickstart-evidence.md), so every family has short prompts, digits a tokenizer can split,
and an exact programmatic answer. Each family exists for a reason:

- `arith` (math): "Compute 4821*37-19." Levels 1-2 (2-3 numbers of 1-3 digits) are partly
  learnable in-weights; level 3 (3-4 numbers of 2-4 digits) is hopeless in-weights but easy with
  the python tool (copy the expression into print(...), copy the output into \\boxed{}), so the
  designer must learn to pick tool-using designs. Level 4 (4-5 numbers of 3-5 digits) makes the
  copy long enough that a temperature-1 executor often slips, so voting or a checking agent
  raises accuracy: the level where ensembles/reflection beat a single tool agent.
- `word_arith` (math): "What is 4821 times 37 minus 19?" The executor has to translate words into
  an expression before using the tool. The bottleneck is execution skill, not pattern choice:
  every tool design is right in principle, and accuracy rises only if RL sharpens the executor.
- `code_fn` (code): "Write a Python function f(x) that returns 3*x+7." Small functions from
  templates, graded by call tests (one public test for `run_tests`, hidden tests for the
  reward), so a coder + tester design can catch mistakes before answering. Level 2 composes two
  steps. Level 3 takes the level-1/2 templates that carry constants and makes the constants 3-5
  digits: a long copy inside a program, where a temperature-1 executor slips and the public test
  catches it, so writing, testing and rewriting (code_test) beats one unchecked attempt.

The skill suite (`synthetic:skill`, and its halves `synthetic:skill_math`, `synthetic:skill_code`)
is a miniature benchmark where both the design and the executor's skill decide accuracy, so RL
can improve both roles (the swap test can tell them apart). The best structure differs by level:

- `code_fn:1`: one agent suffices. The executor must turn a sentence into a program (a skill, not
  a lookup); a tester adds nothing when the attempt is right.
- `arith:2`: a tool is needed (products of 3-digit numbers are hopeless in-weights), and one tool
  agent suffices: the copy is short (at most 9 digits), so slips are rare and votes agree.
- `arith:4`: voting or checking repairs errors: 12-25 digits to copy twice (expression, output)
  make a temperature-1 executor slip often; independent tool agents rarely slip alike.
- `code_fn:3`: where the roles interact: long constants in code; `run_tests` catches a slip, but
  code_test only pays if the executor rewrites after a failing report instead of copying its
  first attempt. A student taught by a slipping teacher (`sft.teacher_copy_error_rate`) has
  not learned that yet, so the one-agent design is better until the executor improves.

Executor skill is the bottleneck in all four: every failure of a well-chosen design is an
executor's copy or translation error, which the SFT student makes at temperature 1 and RL on
agent turns can sharpen away; longer copies leave more room than the quickstart's `arith:3`.
configs/miniature/base.yaml trains on this suite and evaluates each level separately.

Deterministic for a seed. Train and held-out tasks draw from disjoint seed ranges and, in
addition, from disjoint halves of the problem space (a hash of the prompt), so no held-out prompt
can ever appear in training, even by coincidence.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metaagentx.tasks.base import Task, TestCase
from metaagentx.tasks.errors import DatasetError
from metaagentx.tasks.registry import did_you_mean

SPLITS = ("train", "test")
HELDOUT_SEED_OFFSET = 1_000_000_000  # held-out streams start here; train streams stay below
HELDOUT_FRACTION = 0.2  # the share of the problem space reserved for held-out tasks

_OPS = ("+", "-", "*")
_OP_WORDS = {"+": "plus", "-": "minus", "*": "times"}


def _in_split(prompt: str, split: str) -> bool:
    """Partition of the problem space by content: a prompt belongs to exactly one split."""
    bucket = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big") / 2**32
    return (bucket < HELDOUT_FRACTION) == (split == "test")


def _number(rng: random.Random, lo_digits: int, hi_digits: int) -> int:
    digits = rng.randint(lo_digits, hi_digits)
    return rng.randint(10 ** (digits - 1) if digits > 1 else 1, 10**digits - 1)


_ARITH_LEVELS = {1: (2, 2, 1, 2), 2: (3, 3, 1, 3), 3: (3, 4, 2, 4), 4: (4, 5, 3, 5)}


def _expression(rng: random.Random, level: int) -> str:
    lo_n, hi_n, lo_d, hi_d = _ARITH_LEVELS[level]
    count = rng.randint(lo_n, hi_n)
    parts = [str(_number(rng, lo_d, hi_d))]
    for _ in range(count - 1):
        parts += [rng.choice(_OPS), str(_number(rng, lo_d, hi_d))]
    return "".join(parts)


def _evaluate(expression: str) -> int:
    """Evaluate + - * with the usual precedence, without eval()."""
    terms: list[int] = []
    sign, product, number = 1, 1, ""
    pending = "*"
    for ch in expression + "+":
        if ch.isdigit():
            number += ch
            continue
        value = int(number)
        number = ""
        product = product * value if pending == "*" else value
        if ch == "*":
            pending = "*"
            continue
        terms.append(sign * product)
        sign, product, pending = (1 if ch == "+" else -1), 1, "*"
    return sum(terms)


def _arith(rng: random.Random, level: int) -> tuple[str, str, dict[str, Any]]:
    expression = _expression(rng, level)
    return (f"Compute {expression}.", str(_evaluate(expression)), {"expression": expression})


def _word_arith(rng: random.Random, level: int) -> tuple[str, str, dict[str, Any]]:
    expression = _expression(rng, level)
    words = "".join(f" {_OP_WORDS[c]} " if c in _OP_WORDS else c for c in expression)
    return (f"What is {words}?", str(_evaluate(expression)), {"expression": expression})


@dataclass(frozen=True)
class _FnTemplate:
    """A function described in one short sentence, its reference code and behaviour.

    `compute` mirrors `code` in Python so expected outputs never need exec of any source; the
    tests check, through the sandbox, that `code` passes its own tests.
    """

    describe: Callable[[dict[str, int]], str]
    code: Callable[[dict[str, int]], str]
    compute: Callable[[dict[str, int], Any], Any]
    args: Callable[[random.Random], Any]


def _int(rng: random.Random) -> Any:
    return rng.randint(-20, 20)


def _int_list(rng: random.Random) -> Any:
    return [rng.randint(-9, 9) for _ in range(rng.randint(1, 6))]


def _word(rng: random.Random) -> Any:
    return "".join(rng.choice("abc") for _ in range(rng.randint(1, 7)))


_CODE_LEVEL1 = (
    _FnTemplate(
        lambda p: f"returns {p['a']}*x+{p['b']}",
        lambda p: f"def f(x):\n    return {p['a']}*x+{p['b']}\n",
        lambda p, x: p["a"] * x + p["b"],
        _int,
    ),
    _FnTemplate(
        lambda p: f"returns x*x-{p['b']}",
        lambda p: f"def f(x):\n    return x*x-{p['b']}\n",
        lambda p, x: x * x - p["b"],
        _int,
    ),
    _FnTemplate(
        lambda p: "returns the sum of the list x",
        lambda p: "def f(x):\n    return sum(x)\n",
        lambda p, x: sum(x),
        _int_list,
    ),
    _FnTemplate(
        lambda p: "returns the largest number in the list x",
        lambda p: "def f(x):\n    return max(x)\n",
        lambda p, x: max(x),
        _int_list,
    ),
    _FnTemplate(
        lambda p: "returns the string x reversed",
        lambda p: "def f(x):\n    return x[::-1]\n",
        lambda p, x: x[::-1],
        _word,
    ),
    _FnTemplate(
        lambda p: "returns how many times 'a' occurs in the string x",
        lambda p: "def f(x):\n    return x.count('a')\n",
        lambda p, x: x.count("a"),
        _word,
    ),
)

_CODE_LEVEL2 = (
    _FnTemplate(
        lambda p: f"returns the sum of the list x times {p['a']}",
        lambda p: f"def f(x):\n    return sum(x)*{p['a']}\n",
        lambda p, x: sum(x) * p["a"],
        _int_list,
    ),
    _FnTemplate(
        lambda p: f"returns the list x with {p['b']} added to each item",
        lambda p: f"def f(x):\n    return [v+{p['b']} for v in x]\n",
        lambda p, x: [v + p["b"] for v in x],
        _int_list,
    ),
    _FnTemplate(
        lambda p: "returns the even numbers of the list x, in order",
        lambda p: "def f(x):\n    return [v for v in x if v%2==0]\n",
        lambda p, x: [v for v in x if v % 2 == 0],
        _int_list,
    ),
    _FnTemplate(
        lambda p: f"returns x*{p['a']} if x is even, else x+{p['b']}",
        lambda p: f"def f(x):\n    return x*{p['a']} if x%2==0 else x+{p['b']}\n",
        lambda p, x: x * p["a"] if x % 2 == 0 else x + p["b"],
        _int,
    ),
    _FnTemplate(
        lambda p: f"returns the string x repeated {p['a']} times",
        lambda p: f"def f(x):\n    return x*{p['a']}\n",
        lambda p, x: x * p["a"],
        _word,
    ),
)

# level 3: the templates that carry constants, with 3-5 digit constants (a long copy in code)
_CODE_LEVEL3 = (*_CODE_LEVEL1[:2], *_CODE_LEVEL2[:2], _CODE_LEVEL2[3])
_CODE_LEVELS = {1: _CODE_LEVEL1, 2: _CODE_LEVEL2, 3: _CODE_LEVEL3}

CODE_TESTS_PER_TASK = 5  # one public, four hidden


def _code_params(rng: random.Random, level: int) -> dict[str, int]:
    if level == 3:
        return {"a": _number(rng, 3, 5), "b": _number(rng, 3, 5)}
    return {"a": rng.randint(2, 19), "b": rng.randint(1, 29)}


def _code_fn(rng: random.Random, level: int) -> tuple[str, list[TestCase], dict[str, Any]]:
    template = rng.choice(_CODE_LEVELS[level])
    params = _code_params(rng, level)
    inputs: list[Any] = []
    for _ in range(50):  # distinct inputs where the input space allows
        x = template.args(rng)
        if x not in inputs:
            inputs.append(x)
        if len(inputs) == CODE_TESTS_PER_TASK:
            break
    tests = [TestCase("call", [x], template.compute(params, x), "f") for x in inputs]
    prompt = f"Write a Python function f(x) that {template.describe(params)}."
    return prompt, tests, {"reference_solution": template.code(params), "fn_name": "f"}


FAMILIES: dict[str, tuple[str, tuple[int, ...]]] = {
    "arith": ("math", (1, 2, 3, 4)),
    "word_arith": ("math", (1, 2, 3)),
    "code_fn": ("code", (1, 2, 3)),
}

# named suites: (family, level) pairs, interleaved (see the module docstring for why these)
SUITES: dict[str, tuple[tuple[str, int], ...]] = {
    "skill": (("arith", 2), ("arith", 4), ("code_fn", 1), ("code_fn", 3)),
    "skill_math": (("arith", 2), ("arith", 4)),
    "skill_code": (("code_fn", 1), ("code_fn", 3)),
}


def _make(family: str, rng: random.Random, level: int) -> tuple[str, dict[str, Any]]:
    if family == "arith":
        prompt, answer, meta = _arith(rng, level)
        return prompt, {"answer": answer, "metadata": meta}
    if family == "word_arith":
        prompt, answer, meta = _word_arith(rng, level)
        return prompt, {"answer": answer, "metadata": meta}
    prompt, tests, meta = _code_fn(rng, level)
    return prompt, {
        "public_tests": tuple(tests[:1]),
        "hidden_tests": tuple(tests[1:]),
        "metadata": meta,
    }


def generate(
    family: str, n: int, *, level: int = 1, split: str = "train", seed: int = 0
) -> list[Task]:
    """`n` tasks of one family and level; the same arguments always give the same tasks."""
    if family not in FAMILIES:
        raise ValueError(f"unknown synthetic family {family!r}; families: {sorted(FAMILIES)}")
    domain, levels = FAMILIES[family]
    if level not in levels:
        raise ValueError(f"{family} has levels {levels}, not {level}")
    split = "test" if split in ("test", "heldout", "held_out", "eval") else split
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    base = (HELDOUT_SEED_OFFSET if split == "test" else 0) + seed * 10_000_019
    tasks: list[Task] = []
    prompts: set[str] = set()
    stream = 0
    while len(tasks) < n:
        if stream > 200 * (n + 10):
            break  # the level's problem space ran out of distinct prompts for this split
        rng = random.Random(f"{family}/{level}/{base + stream}")
        stream += 1
        prompt, fields = _make(family, rng, level)
        if prompt in prompts or not _in_split(prompt, split):
            continue
        prompts.add(prompt)
        metadata = {"family": family, "level": level, **fields.pop("metadata")}
        tasks.append(
            Task(
                id=f"synthetic/{family}/L{level}/{split}/{seed}/{len(tasks)}",
                domain=domain,
                prompt=prompt,
                difficulty=float(level),
                source=f"synthetic:{family}",
                metadata=metadata,
                **fields,
            )
        )
    return tasks


def _interleaved(
    pairs: tuple[tuple[str, int], ...], n_per_level: int, split: str, seed: int
) -> list[Task]:
    """`n_per_level` tasks of each (family, level), interleaved level by level."""
    groups = [generate(f, n_per_level, level=lv, split=split, seed=seed) for f, lv in pairs]
    return [task for row in zip(*groups, strict=False) for task in row] + [
        t for g in groups for t in g[min(len(x) for x in groups) :]
    ]


def synthetic_suite(
    n_per_level: int,
    *,
    split: str = "train",
    seed: int = 0,
    families: tuple[str, ...] | None = None,
) -> list[Task]:
    """Every level of the chosen families, `n_per_level` tasks each, interleaved."""
    pairs = tuple((f, lv) for f in (families or tuple(FAMILIES)) for lv in FAMILIES[f][1])
    return _interleaved(pairs, n_per_level, split, seed)


def load_synthetic(
    name: str, split: str = "train", *, limit: int | None = None, seed: int = 0
) -> Any:
    """`synthetic`, `synthetic:FAMILY`, `synthetic:FAMILY:LEVEL` or `synthetic:SUITE`
    (default 200 tasks)."""
    from metaagentx.tasks.datasets import LoadResult

    parts = name.split(":")
    n = limit if limit is not None else 200
    if len(parts) == 2 and parts[1] in SUITES:
        pairs = SUITES[parts[1]]
        tasks = _interleaved(pairs, max(1, -(-n // len(pairs))), split, seed)[:n]
        return LoadResult(source=name, format="synthetic", rows=len(tasks), tasks=tasks)
    if len(parts) > 1 and parts[1] not in FAMILIES:
        hint = did_you_mean(parts[1], [*FAMILIES, *SUITES])
        raise DatasetError(
            f"unknown synthetic family '{parts[1]}' in '{name}'{hint}; families: "
            f"{sorted(FAMILIES)}; suites: {sorted(SUITES)}"
        )
    if len(parts) >= 3:
        if not parts[2].isdigit():
            levels = FAMILIES[parts[1]][1]
            raise DatasetError(f"'{name}': the level must be one of {list(levels)}")
        tasks = generate(parts[1], n, level=int(parts[2]), split=split, seed=seed)
    else:
        families = tuple(FAMILIES) if len(parts) == 1 else (parts[1],)
        n_levels = sum(len(FAMILIES[f][1]) for f in families)
        per_level = max(1, -(-n // n_levels))
        tasks = synthetic_suite(per_level, split=split, seed=seed, families=families)[:n]
    return LoadResult(source=name, format="synthetic", rows=len(tasks), tasks=tasks)
