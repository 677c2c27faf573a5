"""The default backend: batched sampling with a transformers causal LM, on CPU or GPU.

A hand-written decode loop rather than `model.generate`: training needs the exact sampled ids
and their log-probs, rows of one batch carry different sampling settings (the batcher merges
unrelated callers), stop strings end single rows, and finished rows are dropped from the KV
cache so long stragglers do not drag a full batch along.

Rows are batched only with rows of similar length (`fits`): left padding makes every row of a
batch as long as its longest, so one long prompt (which an untrusted workflow can send) would
otherwise multiply the prefill compute, the KV cache and each decode step of all the others.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from metaagentx.llm.base import (
    DEFAULT_MAX_PROMPT_TOKENS,
    GenerationRequest,
    GenerationResult,
    Generator,
    check_prompt_length,
)
from metaagentx.llm.batch_invariant import BatchInvariant
from metaagentx.llm.chat import RendersPrompts
from metaagentx.llm.kv_cache import (
    cache_keyword,
    left_pad,
    mergeable,
    new_cache,
    select_rows,
    stack_rows,
)
from metaagentx.llm.loading import load_model_and_tokenizer
from metaagentx.llm.sampling import sample_next

# A row may be left-padded to PAD_FACTOR times its own length, or to PAD_FLOOR positions whatever
# its length: below that, a separate batch's extra forward pass per step costs more than padding.
PAD_FACTOR = 2
PAD_FLOOR = 256


def fits(width: int, shortest: int) -> bool:
    """Whether rows as short as `shortest` tokens may share a batch `width` positions wide."""
    return width <= max(PAD_FACTOR * shortest, PAD_FLOOR)


def length_groups(lengths: Sequence[int], max_size: int) -> list[list[int]]:
    """Indices of `lengths` in groups of at most `max_size` whose members all `fits` together:
    sorted by length, a new group starts where the next length would over-pad the group's
    shortest. Equal lengths (identical prompts, prefilled once) share a group unless it is full."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        group = groups[-1] if groups else None
        if group and len(group) < max_size and fits(lengths[i], lengths[group[0]]):
            group.append(i)
        else:
            groups.append([i])
    return groups


@dataclass
class GeneratorStats:
    """Counters a caller can read to see how well requests were batched."""

    generate_calls: int = 0  # calls of Generator.generate
    batches: int = 0  # prefill + decode runs (one per chunk of <= max_batch_size rows)
    forward_passes: int = 0
    sequences: int = 0
    new_tokens: int = 0
    shared_prefills: int = 0  # rows whose prompt was already in their prefill: computed once


@dataclass
class DecodeRow:
    """One request's decode state: what it has sampled so far and how it samples."""

    request: GenerationRequest
    prompt_ids: list[int]
    max_new: int
    seed: int | None  # of `generator`; None when greedy
    generator: torch.Generator | None
    response: list[int]
    logprobs: list[float]
    finish_reason: str | None = None
    stop_reason: str | None = None


class HFGenerator(RendersPrompts, Generator):
    """Generate with an in-process transformers model (the trainer's own model object)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch_size: int = 64,
        seed: int = 0,
        num_threads: int | None = None,
        context: Callable[[], AbstractContextManager[object]] | None = None,
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
        deterministic: bool | None = None,
    ) -> None:
        """`context`, when given, is entered around every piece of decode work: e.g. a
        `Policy.activate(role)` that switches a PEFT adapter in for this generator's role.
        A request whose prompt has more than `max_prompt_tokens` tokens fails with
        `PromptTooLong` before any compute. `deterministic` decodes with `BatchInvariant`
        ops, so a seeded request samples the same tokens and log-probs whatever shares its
        batch (which, under continuous batching, depends on arrival times); None: on for a
        model on the CPU, off on accelerators (one-row products would waste a GPU)."""
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set one (e.g. the eos token)")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_prompt_tokens = max_prompt_tokens
        # torch's intra-op thread count is per calling thread (OpenMP), and a batcher runs
        # generate() in its own thread; setting it here makes every caller decode alike.
        # Small models decode faster with 1 thread: the per-op fork/join costs more than it saves.
        self.num_threads = num_threads
        self._context = context
        self.deterministic = model.device.type == "cpu" if deterministic is None else deterministic
        self.stats = GeneratorStats()
        self.eos_ids = _eos_ids(model, tokenizer)
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 1 << 30))
        self.cache_keyword = cache_keyword(model)
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
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
        deterministic: bool | None = None,
    ) -> HFGenerator:
        model, tokenizer = load_model_and_tokenizer(
            path, dtype=dtype, device=device, attn_implementation=attn_implementation
        )
        return cls(
            model,
            tokenizer,
            max_batch_size=max_batch_size,
            seed=seed,
            num_threads=num_threads,
            max_prompt_tokens=max_prompt_tokens,
            deterministic=deterministic,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        rows = [self.make_row(r, index=i) for i, r in enumerate(requests)]
        with self.decoding():
            self.stats.generate_calls += 1
            lengths = [len(r.prompt_ids) for r in rows]
            for group in length_groups(lengths, self.max_batch_size):
                batch = DecodeBatch(self, [rows[i] for i in group])
                while batch.rows:
                    batch.step()
        return [self.to_result(row) for row in rows]

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """Hold the model for decode work (prefill, steps) on the calling thread."""
        with (
            self._lock,
            torch.inference_mode(),
            self._context() if self._context else nullcontext(),
            BatchInvariant() if self.deterministic else nullcontext(),
        ):
            if self.num_threads is not None:
                torch.set_num_threads(self.num_threads)
            yield

    def make_row(
        self, request: GenerationRequest, index: int = 0, max_prompt_tokens: int | None = None
    ) -> DecodeRow:
        """Validate one request and prepare its decode state (prompt ids, RNG, budget).
        `max_prompt_tokens`, when given, replaces this generator's own cap (a batcher's
        configured one)."""
        prompt = self.prompt_ids(request)
        cap = self.max_prompt_tokens if max_prompt_tokens is None else max_prompt_tokens
        check_prompt_length(len(prompt), cap)
        room = self.max_positions - len(prompt)
        if room < 1:
            raise ValueError(
                f"request {index}: prompt has {len(prompt)} tokens, the model's context is "
                f"{self.max_positions}"
            )
        params = request.sampling
        seed = None
        if params.temperature > 0:
            seed = params.seed if params.seed is not None else self._seeds.randrange(1 << 62)
        row = DecodeRow(request, prompt, min(params.max_new_tokens, room), seed, None, [], [])
        self.restart_row(row)
        return row

    def restart_row(self, row: DecodeRow) -> None:
        """Back to before its first token, RNG reseeded: a row retried after a failed batch
        samples exactly what it would have sampled had nothing failed."""
        row.response, row.logprobs = [], []
        row.finish_reason = row.stop_reason = None
        row.generator = None if row.seed is None else torch.Generator().manual_seed(row.seed)

    def _append(self, row: DecodeRow, token: int, logprob: float) -> None:
        row.response.append(token)
        row.logprobs.append(logprob)
        self.stats.new_tokens += 1
        if token in self.eos_ids:
            row.finish_reason = "stop"
        elif row.request.sampling.stop and (hit := self._stop_hit(row)):
            row.finish_reason, row.stop_reason = "stop", hit
        elif len(row.response) >= row.max_new:
            row.finish_reason = "length"

    def _stop_hit(self, row: DecodeRow) -> str | None:
        stops = row.request.sampling.stop
        # a stop string of c characters spans at most 4c byte-level tokens (+1 for a token
        # that straddles its start), so decoding that tail is enough to see it complete now
        window = 4 * max(len(s) for s in stops) + 1
        tail = self.tokenizer.decode(row.response[-window:], skip_special_tokens=True)
        return next((s for s in stops if s in tail), None)

    def to_result(self, row: DecodeRow) -> GenerationResult:
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


class DecodeBatch:
    """Rows decoded together over one KV cache; rows leave when done and new rows may join.

    `HFGenerator.generate` runs one batch to completion; the continuous batcher keeps one batch
    running and lets newly arrived requests join between steps (`absorb`), so a request never
    waits for a whole batch of longer generations to finish. Call only inside
    `generator.decoding()`.
    """

    def __init__(self, generator: HFGenerator, rows: list[DecodeRow]) -> None:
        """Prefill `rows` (left-padded) and keep the logits of their next token.

        Rows with the same prompt are prefilled once and their cache copied: a rollout asks
        for N executions of one design and M designs of one problem, whose first prompts are
        identical, and on a small model the prefill is most of a short turn's cost."""
        self.generator = generator
        model = generator.model
        device = model.device
        pad = generator.tokenizer.pad_token_id
        first_of: dict[tuple[int, ...], int] = {}
        source = [first_of.setdefault(tuple(r.prompt_ids), len(first_of)) for r in rows]
        prompts = list(first_of)
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            input_ids[i, width - len(prompt) :] = torch.tensor(prompt)
            attention[i, width - len(prompt) :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        self.cache = new_cache(model)
        out = model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{generator.cache_keyword: self.cache},
        )
        stats = generator.stats
        stats.batches += 1
        stats.sequences += len(rows)
        stats.forward_passes += 1
        self.rows = list(rows)
        self.attention = attention
        self.last_position = positions[:, -1:]
        self.logits = out.logits[:, -1, :]
        if len(prompts) < len(rows):  # one cache row per request again
            stats.shared_prefills += len(rows) - len(prompts)
            index = torch.tensor(source, device=device)
            select_rows(self.cache, index)
            self.attention, self.last_position = self.attention[index], self.last_position[index]
            self.logits = self.logits[index]
        self.settings = _row_settings(self.rows, device)

    @property
    def width(self) -> int:
        """Cache positions per row, padding included."""
        return self.attention.shape[1]

    def accepts(self, other: DecodeBatch) -> bool:
        """Whether `other` may join: caches that can be stacked, and no over-padding of either
        batch's shortest row."""
        if not (mergeable(self.cache) and mergeable(other.cache)):
            return False
        shortest = min(len(r.prompt_ids) + len(r.response) for r in self.rows + other.rows)
        return fits(max(self.width, other.width), shortest)

    def absorb(self, other: DecodeBatch) -> None:
        """Join `other`'s rows: both caches are left-padded to one length and stacked."""
        width = max(self.width, other.width)
        stack_rows(self.cache, other.cache, width)
        self.attention = torch.cat(
            [left_pad(self.attention, width, 1), left_pad(other.attention, width, 1)]
        )
        self.last_position = torch.cat([self.last_position, other.last_position])
        self.logits = torch.cat([self.logits, other.logits])
        self.settings = tuple(
            torch.cat([a, b]) for a, b in zip(self.settings, other.settings, strict=True)
        )
        self.rows += other.rows

    def step(self) -> list[DecodeRow]:
        """Sample one token for every row; drop and return the rows that finished; run the
        forward pass that gives the survivors' next logits."""
        generator = self.generator
        temperature, top_k, top_p = self.settings
        tokens, logprobs = sample_next(
            self.logits, temperature, top_k, top_p, [r.generator for r in self.rows]
        )
        for row, token, logprob in zip(self.rows, tokens.tolist(), logprobs.tolist(), strict=True):
            generator._append(row, token, logprob)
        finished = [r for r in self.rows if r.finish_reason is not None]
        if finished:
            keep = [i for i, r in enumerate(self.rows) if r.finish_reason is None]
            self.rows = [self.rows[i] for i in keep]
            if not self.rows:
                return finished
            index = torch.tensor(keep, device=self.attention.device)
            select_rows(self.cache, index)
            self.attention, self.last_position = self.attention[index], self.last_position[index]
            self.settings = tuple(x[index] for x in self.settings)
            tokens = tokens[index]
        self.attention = torch.cat(
            [self.attention, self.attention.new_ones((len(self.rows), 1))], dim=1
        )
        self.last_position = self.last_position + 1
        out = generator.model(
            input_ids=tokens[:, None],
            attention_mask=self.attention,
            position_ids=self.last_position,
            use_cache=True,
            **{generator.cache_keyword: self.cache},
        )
        generator.stats.forward_passes += 1
        self.logits = out.logits[:, -1, :]
        return finished


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


def _row_settings(rows: list[DecodeRow], device: torch.device) -> tuple[torch.Tensor, ...]:
    params = [r.request.sampling for r in rows]
    return (
        torch.tensor([p.temperature for p in params], dtype=torch.float32, device=device),
        torch.tensor([p.top_k for p in params], dtype=torch.long, device=device),
        torch.tensor([p.top_p for p in params], dtype=torch.float32, device=device),
    )
