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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from metaagentx.llm.chat import render_prompt_ids
from metaagentx.rollout.roles import ROLES


@dataclass(frozen=True)
class SFTExample:
    """One training sequence: ids, a token-aligned loss mask, the role whose weights learn it."""

    role: str
    ids: list[int]
    mask: list[int]
    trained_turns: tuple[int, ...] = ()  # assistant messages inside the prompt that are trained

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


def _validate(record: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str]:
    role = record.get("role")
    messages = record.get("messages")
    completion = record.get("completion")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    if not isinstance(completion, str) or not completion:
        raise ValueError("completion must be a non-empty string")
    return role, messages, completion


def encode_record(
    tokenizer: PreTrainedTokenizerBase,
    record: dict[str, Any],
    train_turns: Sequence[int] = (),
) -> SFTExample:
    """ids = render_prompt_ids(messages) + tokens(completion) + [end of turn]; the mask marks
    the completion and the end of turn. `train_turns` are indices of assistant messages inside
    `messages` to train as well (see `load_dataset`); a turn is marked only where the rendered
    conversation holds, token for token, that turn's prompt followed by its reply, so the mask
    never teaches a token in a context generation would not see. Raises ValueError on a
    malformed record."""
    role, messages, completion = _validate(record)
    eot = end_of_turn_id(tokenizer)
    prompt = render_prompt_ids(tokenizer, messages)
    answer = [*tokenizer(completion, add_special_tokens=False)["input_ids"], eot]
    ids = prompt + answer
    mask = [0] * len(prompt) + [1] * len(answer)
    trained: list[int] = []
    for turn in train_turns:
        message = messages[turn]
        if message.get("role") != "assistant" or not isinstance(message.get("content"), str):
            continue
        before = render_prompt_ids(tokenizer, messages[:turn])
        reply = [*tokenizer(message["content"], add_special_tokens=False)["input_ids"], eot]
        start, stop = len(before), len(before) + len(reply)
        if ids[:start] == before and ids[start:stop] == reply:
            mask[start:stop] = [1] * len(reply)
            trained.append(turn)
    return SFTExample(role, ids, mask, tuple(trained))


def _conversation_key(role: str, messages: Sequence[dict[str, Any]]) -> str:
    return json.dumps([role, list(messages)], sort_keys=True)


def load_dataset(
    path: str | Path,
    tokenizer: PreTrainedTokenizerBase,
    max_tokens: int,
    merge_turns: bool = True,
) -> SFTDataset:
    """Encode every line of a records JSONL; bad or over-long lines are counted, not fatal.

    Collection writes one record per agent call, so an agent's turn k is also the prompt prefix
    of its turn k+1. With `merge_turns`, a record whose prompt + reply is the start of another
    record's conversation is dropped and the longer record trains that reply too: the same
    tokens in the same contexts for ~35% fewer tokens on multi-turn data (counted as "merged").
    """
    dataset = SFTDataset([])
    records: list[dict[str, Any]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            _validate(record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            reason = "bad_json" if isinstance(exc, json.JSONDecodeError) else "malformed"
            dataset.skipped[reason] += 1
            continue
        records.append(record)
    full_keys = [
        _conversation_key(
            r["role"], [*r["messages"], {"role": "assistant", "content": r["completion"]}]
        )
        for r in records
    ]
    known = set(full_keys) if merge_turns else set()
    encoded: list[SFTExample | None] = []
    covered: set[str] = set()
    for record in records:
        role, messages = record["role"], record["messages"]
        keys = {
            i: _conversation_key(role, messages[: i + 1])
            for i, m in enumerate(messages)
            if isinstance(m, dict) and m.get("role") == "assistant"
        }
        turns = [i for i, key in keys.items() if key in known]
        try:
            example = encode_record(tokenizer, record, turns)
        except (ValueError, TypeError, KeyError):
            dataset.skipped["malformed"] += 1
            encoded.append(None)
            continue
        if len(example.ids) > max_tokens:
            dataset.skipped["too_long"] += 1
            encoded.append(None)
            continue
        covered.update(keys[i] for i in example.trained_turns)
        encoded.append(example)
    for key, example in zip(full_keys, encoded, strict=True):
        if example is None:
            continue
        if key in covered:
            dataset.skipped["merged"] += 1
        else:
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
