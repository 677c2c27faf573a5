"""Turning chat messages into the exact prompt ids a model sees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from metaagentx.llm.base import GenerationRequest


def render_prompt_ids(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[dict[str, Any]],
    add_generation_prompt: bool = True,
) -> list[int]:
    """Token ids of `messages` under the tokenizer's chat template, ready for the reply."""
    if not messages:
        raise ValueError("messages is empty")
    for i, message in enumerate(messages):
        if "role" not in message or "content" not in message:
            raise ValueError(f"message {i} needs 'role' and 'content', got keys {sorted(message)}")
    if tokenizer.chat_template is None:
        raise ValueError("the tokenizer has no chat template; pass prompt_ids instead of messages")
    encoded = tokenizer.apply_chat_template(
        list(messages), add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


class RendersPrompts:
    """For backends that render chat prompts with a local tokenizer (`self.tokenizer`): the
    exact ids a request conditions on, and their count for the batchers' prompt cap."""

    tokenizer: PreTrainedTokenizerBase

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The exact ids the model is conditioned on for `request`."""
        if request.prompt_ids is not None:
            return list(request.prompt_ids)
        return render_prompt_ids(self.tokenizer, request.messages or [])

    def prompt_length(self, request: GenerationRequest) -> int:
        return len(self.prompt_ids(request))
