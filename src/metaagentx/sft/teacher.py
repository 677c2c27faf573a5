"""The programmatic teacher: a `Generator` that plays the designer and every agent on the
synthetic suite, so the offline quickstart has cold-start data without any downloaded model.

Designer requests (role "designer", messages from `rollout.prompts.designer_messages`) get one
of the short designs in `sft/designs/`, drawn from a configurable per-domain mix that on purpose
includes weak choices (a no-tool `single` agent on arithmetic it cannot do in-weights), so RL
has a real gap to close. The reply is exactly `DesignExample.as_reply(compact=True)`, the same
format the designer prompt's few-shot example uses. Agent requests (anything else: the runner
sends role "executor") get correct, short turns from `sft.executor`.

Deterministic for a seed: each reply's randomness comes from (teacher seed, the request's
`sampling.seed`, the messages) when the caller seeds the request (the rollout derives one per
execution, agent and turn), else from (teacher seed, the messages, how many times this exact
prompt was seen before), so identical prompts (M designs of one problem) get independent draws.
Temperature 0 is the teacher's mode: the mix's heaviest pattern and no copy errors.

Results carry TEXT ONLY: `prompt_ids`, `response_ids` and `logprobs` are empty lists, because
teacher samples are tokenised later by SFT with the student's tokenizer and chat template. Never
feed them to an RL update (that needs the sampled ids). `max_new_tokens` and stop strings are
not applied (the teacher does not count tokens); the SFT collector checks lengths after
tokenising.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator
from metaagentx.rollout.prompts import INTRO, DesignExample, load_examples
from metaagentx.sft.executor import read_request, write_turn
from metaagentx.sft.problems import UnsupportedTaskError, parse_problem

TEACHER_DESIGNS_DIR = Path(__file__).resolve().parent / "designs"

# Which domains each teacher design suits (the scripts are domain-agnostic; the choice is not).
PATTERN_DOMAINS: dict[str, tuple[str, ...]] = {
    "single": ("math", "code"),
    "tool": ("math",),
    "vote3": ("math",),
    "reflect": ("math",),
    "code_test": ("code",),
}

# Weak on purpose (shared notes: 50/30/20 single/tool/vote3 left RL a 30-point gain to find).
DEFAULT_DESIGN_MIX: dict[str, dict[str, float]] = {
    "math": {"single": 0.5, "tool": 0.25, "vote3": 0.15, "reflect": 0.1},
    "code": {"single": 0.6, "code_test": 0.4},
}

_DESIGNER_USER = re.compile(
    r"Design a multi-agent system for this task(?: \((?P<domain>\w+)\))?:\n\n(?P<task>.*)",
    re.DOTALL,
)


@functools.cache
def teacher_designs() -> dict[str, DesignExample]:
    """The teacher's designs by pattern name (loaded once from TEACHER_DESIGNS_DIR)."""
    designs = load_examples(TEACHER_DESIGNS_DIR)
    if set(designs) != set(PATTERN_DOMAINS):
        raise RuntimeError(f"teacher designs {sorted(designs)} != {sorted(PATTERN_DOMAINS)}")
    return designs


def designer_reply(pattern: str) -> str:
    """The teacher's designer reply for `pattern`: "Analysis: ...\\nPattern: ...\\n```python..."."""
    return teacher_designs()[pattern].as_reply(compact=True)


def check_mix(mix: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Validated per-domain weights (domains missing from `mix` keep DEFAULT_DESIGN_MIX)."""
    merged = {domain: dict(weights) for domain, weights in DEFAULT_DESIGN_MIX.items()}
    for domain, weights in mix.items():
        if domain not in DEFAULT_DESIGN_MIX:
            raise ValueError(f"unknown domain {domain!r} in design_mix; use math or code")
        for pattern, weight in weights.items():
            if domain not in PATTERN_DOMAINS.get(pattern, ()):
                suits = [p for p, d in PATTERN_DOMAINS.items() if domain in d]
                raise ValueError(f"pattern {pattern!r} does not suit {domain}; use {suits}")
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"weight of {pattern!r} must be finite and >= 0, got {weight}")
        if not sum(weights.values()) > 0:
            raise ValueError(f"the {domain} mix needs a positive total weight")
        merged[domain] = {p: float(w) for p, w in weights.items() if w > 0}
    return merged


class ProgrammaticTeacher(Generator):
    """Teacher for the synthetic suite (see the module docstring).

    design_mix: per-domain pattern weights, e.g. `{"math": {"single": 1, "tool": 1}}`
        (normalised; a domain left out keeps DEFAULT_DESIGN_MIX).
    copy_error_rate: probability that an agent turn slips one copied digit (expression, tool
        output, answer or program constant); 0 gives only correct executions.
    seed: the teacher's seed.
    """

    def __init__(
        self,
        design_mix: Mapping[str, Mapping[str, float]] | None = None,
        *,
        copy_error_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= copy_error_rate <= 1.0:
            raise ValueError(f"copy_error_rate must be in [0, 1], got {copy_error_rate}")
        self.design_mix = check_mix(design_mix or {})
        self.copy_error_rate = copy_error_rate
        self.seed = seed
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        teacher_designs()  # fail at construction, not mid-rollout, if a design is missing

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [self._one(request) for request in requests]

    def draw_pattern(self, domain: str, rng: random.Random | None) -> str:
        """A pattern from the domain's mix (`rng` None: the heaviest, first on ties)."""
        weights = self.design_mix[domain]
        if rng is None:
            return max(weights, key=lambda p: weights[p])
        point = rng.random() * sum(weights.values())
        for pattern, weight in weights.items():
            point -= weight
            if point < 0:
                return pattern
        return pattern  # float round-off at the very top

    def _one(self, request: GenerationRequest) -> GenerationResult:
        messages = request.messages
        if messages is None:
            raise ValueError("the programmatic teacher reads chat messages, not prompt ids")
        rng = self._rng(request)
        if _is_designer(request):
            domain = _designer_domain(messages)
            pattern = self.draw_pattern(domain, rng)
            text, info = designer_reply(pattern), {"pattern": pattern, "domain": domain}
        else:
            view = read_request(messages)
            slip = rng if rng is not None and rng.random() < self.copy_error_rate else None
            text = write_turn(view, slip)
            info = {"agent_role": view.role, "domain": view.domain, "slip": slip is not None}
        return GenerationResult(
            prompt_ids=[],
            response_ids=[],
            logprobs=[],
            text=text,
            finish_reason="stop",
            role=request.role,
            metadata={"teacher": info},
        )

    def _rng(self, request: GenerationRequest) -> random.Random | None:
        """The reply's own random stream (None at temperature 0; see the module docstring)."""
        if request.sampling.temperature == 0:
            return None
        blob = json.dumps(request.messages, sort_keys=True, ensure_ascii=False).encode()
        digest = hashlib.blake2b(blob, digest_size=16).hexdigest()
        if request.sampling.seed is not None:
            return random.Random(f"{self.seed}/{request.sampling.seed}/{digest}")
        with self._lock:
            occurrence = self._seen[digest]
            self._seen[digest] += 1
        return random.Random(f"{self.seed}/{digest}/{occurrence}")


def _is_designer(request: GenerationRequest) -> bool:
    if request.role == "designer":
        return True
    first = (request.messages or [{}])[0]
    return first.get("role") == "system" and str(first.get("content", "")).startswith(INTRO)


def _designer_domain(messages: list[dict[str, object]]) -> str:
    """The task's domain from the designer's user message (its label, else the task text)."""
    user = next((str(m["content"]) for m in reversed(messages) if m.get("role") == "user"), "")
    match = _DESIGNER_USER.fullmatch(user.strip())
    if match is None:
        raise UnsupportedTaskError("not a designer request from rollout.prompts.designer_messages")
    domain = match["domain"] or parse_problem(match["task"]).domain
    if domain not in DEFAULT_DESIGN_MIX:
        raise UnsupportedTaskError(f"the teacher designs for math and code, not {domain!r}")
    return domain


__all__ = [
    "DEFAULT_DESIGN_MIX",
    "PATTERN_DOMAINS",
    "TEACHER_DESIGNS_DIR",
    "ProgrammaticTeacher",
    "check_mix",
    "designer_reply",
    "teacher_designs",
]
