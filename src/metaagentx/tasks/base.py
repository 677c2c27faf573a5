"""The one task schema every domain, dataset adapter and the synthetic suite produce.

A `Task` is plain data (JSON round-trips through `to_dict`/`from_dict`) because rollouts write
tasks into JSONL and workers receive them over pipes. It keeps the reference (answer or hidden
tests) apart from what agents may see: `public_view()` is the only thing that goes into the
sandbox, so a workflow script can never read the reference answer or the hidden tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Domain = Literal["math", "code"]
TestKind = Literal["stdio", "call", "functional"]

DOMAINS: tuple[str, ...] = ("math", "code")
TEST_KINDS: tuple[str, ...] = ("stdio", "call", "functional")


@dataclass(frozen=True)
class TestCase:
    """One code test.

    kind "stdio": `input` is the stdin text, `expected` the expected stdout text.
    kind "call": `input` is the JSON list of positional arguments for `fn_name` (a top-level
        function, or a method of `class Solution`), `expected` the JSON return value.
    kind "functional": `input` is Python source (a `check(candidate)` function plus its call, or
        a block of assertions) run after the candidate; it passes when it raises nothing.
    """

    __test__ = False  # not a pytest class

    kind: TestKind
    input: Any
    expected: Any = None
    fn_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "input": self.input,
            "expected": self.expected,
            "fn_name": self.fn_name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestCase:
        kind = data["kind"]
        if kind not in TEST_KINDS:
            raise ValueError(f"unknown test kind {kind!r}")
        return cls(
            kind=kind,
            input=data["input"],
            expected=data.get("expected"),
            fn_name=data.get("fn_name"),
        )


@dataclass(frozen=True)
class Grade:
    """The outcome of grading one final output: score in [0, 1], exact correctness, why."""

    score: float
    correct: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "correct": self.correct, "details": self.details}


@dataclass(frozen=True)
class Task:
    """A problem with its reference.

    Math tasks carry `answer` (LaTeX string). Code tasks carry `public_tests` (shown to agents
    through the `run_tests` tool) and `hidden_tests` (used for the reward; the public ones are
    graded too when `grade_public` is true, which is the usual benchmark convention). `metadata`
    holds grading options: `multiple_answers`, `unit`, `tolerance` (math); `float_tolerance`,
    `starter_code`, `fn_name` (code); anything else is informational.
    """

    id: str
    domain: Domain
    prompt: str
    answer: str | None = None
    public_tests: tuple[TestCase, ...] = ()
    hidden_tests: tuple[TestCase, ...] = ()
    difficulty: str | float | None = None
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    grade_public: bool = True
    graded: bool = True  # False: a question without a reference (typed at the CLI), run only

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"task {self.id}: unknown domain {self.domain!r}")
        if self.graded and self.domain == "math" and not (self.answer or "").strip():
            raise ValueError(f"task {self.id}: math task without a reference answer")
        if self.graded and self.domain == "code" and not (self.public_tests or self.hidden_tests):
            raise ValueError(f"task {self.id}: code task without tests")
        object.__setattr__(self, "public_tests", tuple(self.public_tests))
        object.__setattr__(self, "hidden_tests", tuple(self.hidden_tests))

    @property
    def reward_tests(self) -> tuple[TestCase, ...]:
        """The tests the reward is computed on."""
        if self.grade_public:
            return self.public_tests + self.hidden_tests
        return self.hidden_tests or self.public_tests

    def public_view(self) -> dict[str, Any]:
        """Exactly what the sandbox may see: the prompt and the public tests, nothing else."""
        view: dict[str, Any] = {"id": self.id, "domain": self.domain, "question": self.prompt}
        if self.domain == "code":
            view["public_tests"] = [t.to_dict() for t in self.public_tests]
            if self.metadata.get("starter_code"):
                view["starter_code"] = self.metadata["starter_code"]
        return view

    def grade(self, final_output: str, **options: Any) -> Grade:
        """Grade a final agent message: math by answer equivalence, code by running tests.

        `options` go to the domain grader (e.g. `runner=`, `timeout_s=` for code).
        """
        if not self.graded:
            raise ValueError(f"task {self.id} has no reference to grade against")
        if self.domain == "math":
            from metaagentx.tasks.math import grade_math_task  # lazy: avoids an import cycle

            return grade_math_task(self, final_output, **options)
        from metaagentx.tasks.code import grade_code_task

        return grade_code_task(self, final_output, **options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "domain": self.domain,
            "prompt": self.prompt,
            "answer": self.answer,
            "public_tests": [t.to_dict() for t in self.public_tests],
            "hidden_tests": [t.to_dict() for t in self.hidden_tests],
            "difficulty": self.difficulty,
            "source": self.source,
            "metadata": dict(self.metadata),
            "grade_public": self.grade_public,
            "graded": self.graded,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        return cls(
            id=str(data["id"]),
            domain=data["domain"],
            prompt=data["prompt"],
            answer=data.get("answer"),
            public_tests=tuple(TestCase.from_dict(t) for t in data.get("public_tests", ())),
            hidden_tests=tuple(TestCase.from_dict(t) for t in data.get("hidden_tests", ())),
            difficulty=data.get("difficulty"),
            source=data.get("source", ""),
            metadata=dict(data.get("metadata") or {}),
            grade_public=bool(data.get("grade_public", True)),
            graded=bool(data.get("graded", True)),
        )
