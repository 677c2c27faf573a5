"""The default backend: batched sampling with a transformers causal LM, on CPU or GPU.

A hand-written decode loop rather than `model.generate`: training needs the exact sampled ids
and their log-probs, rows of one batch carry different sampling settings (the batcher merges
unrelated callers), stop strings end single rows, and finished rows are dropped from the KV
cache so long stragglers do not drag a full batch along.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator
from metaagentx.llm.chat import render_prompt_ids
from metaagentx.llm.loading import load_model_and_tokenizer
from metaagentx.llm.sampling import sample_next


@dataclass
class GeneratorStats:
    """Counters a caller can read to see how well requests were batched."""

    generate_calls: int = 0  # calls of Generator.generate
    batches: int = 0  # prefill + decode runs (one per chunk of <= max_batch_size rows)
    forward_passes: int = 0
    sequences: int = 0
    new_tokens: int = 0


@dataclass
class _Row:
    request: GenerationRequest
    prompt_ids: list[int]
    max_new: int
    generator: torch.Generator | None
    response: list[int]
    logprobs: list[float]
    finish_reason: str | None = None
    stop_reason: str | None = None


class HFGenerator(Generator):
    """Generate with an in-process transformers model (the trainer's own model object)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch_size: int = 64,
        seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set one (e.g. the eos token)")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        # torch's intra-op thread count is per calling thread (OpenMP), and a batcher runs
        # generate() in its own thread; setting it here makes every caller decode alike.
        # Small models decode faster with 1 thread: the per-op fork/join costs more than it saves.
        self.num_threads = num_threads
        self.stats = GeneratorStats()
        self.eos_ids = _eos_ids(model, tokenizer)
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 1 << 30))
        self._seeds = random.Random(seed)
        self._lock = threading.Lock()  # one model, one decode loop at a time

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        dtype: str = "float32",
        device: str = "auto",
        attn_implementation: str = "sdpa",
        max_batch_size: int = 64,
        seed: int = 0,
        num_threads: int | None = None,
    ) -> HFGenerator:
        model, tokenizer = load_model_and_tokenizer(
            path, dtype=dtype, device=device, attn_implementation=attn_implementation
        )
        return cls(
            model, tokenizer, max_batch_size=max_batch_size, seed=seed, num_threads=num_threads
        )

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The exact ids the model is conditioned on for `request`."""
        if request.prompt_ids is not None:
            return list(request.prompt_ids)
        assert request.messages is not None
        return render_prompt_ids(self.tokenizer, request.messages)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        rows = [self._make_row(i, r) for i, r in enumerate(requests)]
        with self._lock, torch.inference_mode():
            if self.num_threads is not None:
                torch.set_num_threads(self.num_threads)
            self.stats.generate_calls += 1
            # similar lengths together: less left padding in each chunk
            order = sorted(range(len(rows)), key=lambda i: len(rows[i].prompt_ids))
            for start in range(0, len(order), self.max_batch_size):
                self._run_batch([rows[i] for i in order[start : start + self.max_batch_size]])
        return [self._to_result(row) for row in rows]

    def _make_row(self, index: int, request: GenerationRequest) -> _Row:
        prompt = self.prompt_ids(request)
        room = self.max_positions - len(prompt)
        if room < 1:
            raise ValueError(
                f"request {index}: prompt has {len(prompt)} tokens, the model's context is "
                f"{self.max_positions}"
            )
        params = request.sampling
        generator = None
        if params.temperature > 0:
            seed = params.seed if params.seed is not None else self._seeds.randrange(1 << 62)
            generator = torch.Generator().manual_seed(seed)
        return _Row(request, prompt, min(params.max_new_tokens, room), generator, [], [])

    def _run_batch(self, rows: list[_Row]) -> None:
        device = self.model.device
        pad = self.tokenizer.pad_token_id
        width = max(len(r.prompt_ids) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            attention[i, width - len(row.prompt_ids) :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        settings = _row_settings(rows, device)

        self.stats.batches += 1
        self.stats.sequences += len(rows)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.forward_passes += 1
        cache = out.past_key_values
        logits = out.logits[:, -1, :]
        live = list(range(len(rows)))  # batch position -> index into rows
        while True:
            temperature, top_k, top_p = (s[live] for s in settings)
            tokens, logprobs = sample_next(
                logits, temperature, top_k, top_p, [rows[i].generator for i in live]
            )
            for token, logprob, i in zip(tokens.tolist(), logprobs.tolist(), live, strict=True):
                self._append(rows[i], token, logprob)
            keep = [pos for pos, i in enumerate(live) if rows[i].finish_reason is None]
            if not keep:
                break
            if len(keep) < len(live):  # drop finished rows from the batch and its KV cache
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                attention, positions, tokens = attention[index], positions[index], tokens[index]
                live = [live[pos] for pos in keep]
            attention = torch.cat([attention, attention.new_ones((len(live), 1))], dim=1)
            positions = positions[:, -1:] + 1
            out = self.model(
                input_ids=tokens[:, None],
                attention_mask=attention,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
            )
            self.stats.forward_passes += 1
            logits = out.logits[:, -1, :]

    def _append(self, row: _Row, token: int, logprob: float) -> None:
        row.response.append(token)
        row.logprobs.append(logprob)
        self.stats.new_tokens += 1
        if token in self.eos_ids:
            row.finish_reason = "stop"
        elif row.request.sampling.stop and (hit := self._stop_hit(row)):
            row.finish_reason, row.stop_reason = "stop", hit
        elif len(row.response) >= row.max_new:
            row.finish_reason = "length"

    def _stop_hit(self, row: _Row) -> str | None:
        stops = row.request.sampling.stop
        # a stop string of c characters spans at most 4c byte-level tokens (+1 for a token
        # that straddles its start), so decoding that tail is enough to see it complete now
        window = 4 * max(len(s) for s in stops) + 1
        tail = self.tokenizer.decode(row.response[-window:], skip_special_tokens=True)
        return next((s for s in stops if s in tail), None)

    def _to_result(self, row: _Row) -> GenerationResult:
        text = self.tokenizer.decode(row.response, skip_special_tokens=True)
        if row.stop_reason is not None:
            text = text[: text.find(row.stop_reason)] if row.stop_reason in text else text
        assert row.finish_reason in ("stop", "length")
        return GenerationResult(
            prompt_ids=row.prompt_ids,
            response_ids=row.response,
            logprobs=row.logprobs,
            text=text,
            finish_reason=row.finish_reason,
            role=row.request.role,
            stop_reason=row.stop_reason,
            metadata=dict(row.request.metadata),
        )


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(x) for x in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError("neither the model nor the tokenizer names an end-of-sequence token")
    return frozenset(ids)


def _row_settings(rows: list[_Row], device: torch.device) -> tuple[torch.Tensor, ...]:
    params = [r.request.sampling for r in rows]
    return (
        torch.tensor([p.temperature for p in params], dtype=torch.float32, device=device),
        torch.tensor([p.top_k for p in params], dtype=torch.long, device=device),
        torch.tensor([p.top_p for p in params], dtype=torch.float32, device=device),
    )
