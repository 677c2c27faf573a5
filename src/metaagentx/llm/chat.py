"""Turning chat messages into the exact prompt ids a model sees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase


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
