"""SFT records -> training sequences, token for token what generation will see.

A record's ids are `render_prompt_ids(tokenizer, messages)` (the chat template with the
generation prompt, exactly what the hf backend conditions on) + the completion's tokens + the
end-of-turn token the generator stops on. The loss mask is 1 on the completion and the
end-of-turn token only, so the prompt (system text, task, other agents' deliveries, tool
outputs) is never trained and SFT teaches the very sequences the generator samples.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from metaagentx.llm.chat import render_prompt_ids
from metaagentx.rl.roles import ROLES


@dataclass(frozen=True)
class SFTExample:
    """One training sequence: ids, a token-aligned loss mask, the role whose weights learn it."""

    role: str
    ids: list[int]
    mask: list[int]

    @property
    def completion_tokens(self) -> int:
        return sum(self.mask)


@dataclass
class SFTDataset:
    """Encoded examples plus what was skipped and why (malformed, too long)."""

    examples: list[SFTExample]
    skipped: Counter[str] = field(default_factory=Counter)

    def roles(self) -> Counter[str]:
        return Counter(e.role for e in self.examples)


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that ends an assistant turn (the chat template's `<|im_end|>` for ChatML)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token to end a completion with")
    return int(tokenizer.eos_token_id)


def encode_record(tokenizer: PreTrainedTokenizerBase, record: dict[str, Any]) -> SFTExample:
    """ids = render_prompt_ids(messages) + tokens(completion) + [end of turn]; the mask marks
    the completion and the end of turn. Raises ValueError on a malformed record."""
    role = record.get("role")
    messages = record.get("messages")
    completion = record.get("completion")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    if not isinstance(completion, str) or not completion:
        raise ValueError("completion must be a non-empty string")
    prompt = render_prompt_ids(tokenizer, messages)
    answer = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    answer.append(end_of_turn_id(tokenizer))
    return SFTExample(role, prompt + answer, [0] * len(prompt) + [1] * len(answer))


def load_dataset(
    path: str | Path, tokenizer: PreTrainedTokenizerBase, max_tokens: int
) -> SFTDataset:
    """Encode every line of a records JSONL; bad or over-long lines are counted, not fatal."""
    dataset = SFTDataset([])
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            example = encode_record(tokenizer, json.loads(line))
        except (ValueError, TypeError, KeyError) as exc:
            reason = "bad_json" if isinstance(exc, json.JSONDecodeError) else "malformed"
            dataset.skipped[reason] += 1
            continue
        if len(example.ids) > max_tokens:
            dataset.skipped["too_long"] += 1
            continue
        dataset.examples.append(example)
    return dataset


class EpochSampler:
    """Batches of example indices: a fresh seeded permutation per epoch; the position is two
    integers, so a resumed run draws exactly the batches an uninterrupted one would."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError("no training examples")
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        order = list(range(self.size))
        random.Random(f"sft/{self.seed}/{self.epoch}").shuffle(order)
        return order

    def next_batch(self, batch_size: int) -> list[int]:
        out: list[int] = []
        while len(out) < batch_size:
            if self.position >= self.size:
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation()
            take = self._order[self.position : self.position + batch_size - len(out)]
            out.extend(take)
            self.position += len(take)
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "size": self.size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["size"] != self.size:
            raise ValueError(f"checkpoint saw {state['size']} examples, the data has {self.size}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation()


__all__ = [
    "EpochSampler",
    "SFTDataset",
    "SFTExample",
    "encode_record",
    "end_of_turn_id",
    "load_dataset",
]
