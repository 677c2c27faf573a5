"""The one interface every generation backend implements.

Training needs the exact token ids that were sampled and their log-probs, so a result carries
both; text is for humans and graders. A backend takes a whole list of requests at once so it
can batch them; `RequestBatcher` turns many concurrent single requests into such lists.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length"]

# The default of `generation.max_prompt_tokens`: a hostile workflow controls its agents' prompt
# text, and an unbounded prompt costs every request batched beside it.
DEFAULT_MAX_PROMPT_TOKENS = 8192


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one response.

    temperature 0 means greedy decoding. Log-probs are always those of the sampled tokens under
    softmax(logits / temperature) (raw logits when greedy); top-k/top-p truncation is not folded
    into them, the same convention verl and vLLM use, so the trainer can recompute them exactly.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if isinstance(self.stop, str):  # a lone string is a common slip; keep it as one stop
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))


@dataclass
class GenerationRequest:
    """One prompt: chat messages (formatted with the model's chat template) or raw prompt ids."""

    messages: list[dict[str, Any]] | None = None
    prompt_ids: list[int] | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    role: str = "executor"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt_ids is None):
            raise ValueError("a GenerationRequest needs exactly one of messages or prompt_ids")
        if self.prompt_ids is not None and len(self.prompt_ids) == 0:
            raise ValueError("prompt_ids is empty")


@dataclass
class GenerationResult:
    """What was generated, token for token.

    `response_ids` are exactly the sampled ids (an end-of-sequence token included when one was
    sampled); `logprobs[i]` belongs to `response_ids[i]`. `text` is the decoded response with
    special tokens and a matched stop string removed.
    """

    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: FinishReason
    role: str = "executor"
    stop_reason: str | None = None  # the stop string that ended generation, if any
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_ids": self.prompt_ids,
            "response_ids": self.response_ids,
            "logprobs": self.logprobs,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "stop_reason": self.stop_reason,
            "role": self.role,
        }


class Generator(abc.ABC):
    """A generation backend: a batch of requests in, one result per request out, in order."""

    @abc.abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate one response for each request."""

    def prompt_length(self, request: GenerationRequest) -> int | None:
        """Tokens in `request`'s prompt, or None where only a server can count them (a chat
        prompt sent to a server, which then enforces its own context limit). Batchers use it to
        fail an over-long prompt before it joins a batch."""
        return None if request.prompt_ids is None else len(request.prompt_ids)

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to free
        """Release resources (servers, engines). Safe to call twice."""


class BackendCapabilityError(RuntimeError):
    """A backend cannot provide something the caller needs (e.g. token ids for training)."""


class PromptTooLong(ValueError):
    """A prompt is longer than the prompt-token cap; it fails alone, before any compute."""

    def __init__(self, tokens: int, cap: int) -> None:
        super().__init__(
            f"the prompt has {tokens} tokens, more than the cap of {cap} "
            "(generation.max_prompt_tokens)"
        )
        self.tokens = tokens
        self.cap = cap


def check_prompt_length(tokens: int | None, cap: int | None) -> None:
    """Raise `PromptTooLong` when a counted prompt (`tokens` not None) is over `cap` (not None)."""
    if tokens is not None and cap is not None and tokens > cap:
        raise PromptTooLong(tokens, cap)
