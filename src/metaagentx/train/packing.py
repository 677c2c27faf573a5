"""Sequence packing for the RL update: no padding, position ids restarting per sequence.

Agent calls vary from tens to thousands of tokens, so right-padding a micro-batch to its
longest member wastes most of the compute. Instead, sequences are packed first-fit-decreasing
into rows of at most `max_tokens` tokens and laid end to end in one (1, T) row whose position ids
restart at 0 for every sequence.

Why the attention stays per-sequence: given `position_ids`, no `attention_mask` and no KV cache,
transformers (>= 4.56, masking_utils.find_packed_sequence_indices) detects the restarts and
builds a block-diagonal causal mask for sdpa/eager, and passes cu_seqlens to flash-attention's
varlen kernel. The KV-cache condition matters: a forward with the config's default
`use_cache=True` creates a cache, skips the detection and silently lets sequences attend to
each other, so the log-prob forwards (`train/logprobs.py`) always pass `use_cache=False`. The equivalence with
unpacked forwards is checked in tests/test_rl_packing.py on a tiny Qwen3 (sdpa and eager).

Layout: packed position p predicts the next token of the same sequence (`targets[p]`), and
`loss_mask[p]` is the trainability of that target token; the last position of each sequence
predicts nothing (mask 0), so no sequence is trained to predict its neighbour's first token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch

TokenValues = Sequence[float] | Sequence[int] | Sequence[bool] | torch.Tensor


def plan_micro_batches(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Group sequence indices into micro-batches of at most `max_tokens` tokens each.

    First-fit decreasing (deterministic: ties keep input order). A sequence longer than the
    budget gets a micro-batch of its own rather than being dropped or truncated; indices
    inside a micro-batch are ascending.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        if n < 1:
            raise ValueError(f"sequence {i} is empty")
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(max_tokens - n)
    return [sorted(b) for b in bins]


def _as_tensor(values: TokenValues, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().reshape(-1).to(dtype=dtype, device="cpu")
    return torch.tensor(list(values), dtype=dtype)


@dataclass(frozen=True)
class PackedBatch:
    """One packed micro-batch: (1, T) tensors plus which input sequences it holds."""

    input_ids: torch.Tensor  # (1, T) long
    position_ids: torch.Tensor  # (1, T) long, restarting at 0 per sequence
    targets: torch.Tensor  # (1, T) long: next token of the same sequence, 0 at sequence ends
    loss_mask: torch.Tensor  # (1, T) bool: the target at p is trained
    seq_ids: torch.Tensor  # (1, T) long: local sequence number 0..S-1 (for per-sequence means)
    indices: tuple[int, ...]  # input index of each local sequence
    lengths: tuple[int, ...]

    @property
    def num_tokens(self) -> int:
        """Tokens in the row (what the forward pays for)."""
        return int(self.input_ids.shape[1])

    @property
    def num_loss_tokens(self) -> int:
        """Trained target tokens (sum these over micro-batches for a global token-mean)."""
        return int(self.loss_mask.sum())

    @property
    def num_loss_seqs(self) -> int:
        """Sequences with at least one trained token (for a global seq-mean)."""
        return int(torch.unique(self.seq_ids[self.loss_mask]).numel())

    def to(self, device: torch.device | str) -> PackedBatch:
        """The same batch with its tensors on `device`."""
        return replace(
            self,
            input_ids=self.input_ids.to(device),
            position_ids=self.position_ids.to(device),
            targets=self.targets.to(device),
            loss_mask=self.loss_mask.to(device),
            seq_ids=self.seq_ids.to(device),
        )

    def align(
        self,
        per_token: Sequence[TokenValues] | Mapping[int, TokenValues],
        fill: float = 0.0,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Place token-aligned values (value k belongs to token k of input sequence i, looked
        up as `per_token[i]`) at their target positions: (1, T), `fill` at sequence ends."""
        pieces = []
        for i, n in zip(self.indices, self.lengths, strict=True):
            v = _as_tensor(per_token[i], dtype)
            if v.numel() != n:
                raise ValueError(f"sequence {i}: {v.numel()} values for {n} tokens")
            pieces += [v[1:], torch.full((1,), fill, dtype=dtype)]
        return torch.cat(pieces)[None].to(self.input_ids.device)

    def broadcast(
        self, per_sequence: Sequence[float] | Mapping[int, float] | torch.Tensor
    ) -> torch.Tensor:
        """A per-sequence scalar (e.g. advantage), looked up by input index, at each of its tokens."""
        values = torch.tensor([float(per_sequence[i]) for i in self.indices])
        return values.to(self.input_ids.device)[self.seq_ids]

    def unpack(self, packed: torch.Tensor, fill: float = 0.0) -> dict[int, torch.Tensor]:
        """Inverse of `align`: input index -> token-aligned values (token 0 gets `fill`)."""
        flat = packed.reshape(-1)
        out: dict[int, torch.Tensor] = {}
        start = 0
        for i, n in zip(self.indices, self.lengths, strict=True):
            head = flat.new_full((1,), fill)
            out[i] = torch.cat([head, flat[start : start + n - 1]])
            start += n
        return out


def pack_sequences(
    token_ids: Sequence[TokenValues],
    loss_masks: Sequence[TokenValues],
    indices: Sequence[int] | None = None,
) -> PackedBatch:
    """Pack the sequences `indices` (default: all) end to end into one `PackedBatch`.

    `loss_masks[i]` is token-aligned with `token_ids[i]`: 1 where token k was sampled by an
    active role and is to be trained (0 for prompt, tool outputs, other agents' deliveries).
    """
    chosen = list(range(len(token_ids))) if indices is None else list(indices)
    if not chosen:
        raise ValueError("nothing to pack")
    ids, pos, tgt, msk, sid, lengths = [], [], [], [], [], []
    for local, i in enumerate(chosen):
        t = _as_tensor(token_ids[i], torch.long)
        m = _as_tensor(loss_masks[i], torch.bool)
        n = t.numel()
        if n < 1:
            raise ValueError(f"sequence {i} is empty")
        if m.numel() != n:
            raise ValueError(f"sequence {i}: loss mask has {m.numel()} entries for {n} tokens")
        ids.append(t)
        pos.append(torch.arange(n))
        tgt += [t[1:], torch.zeros(1, dtype=torch.long)]
        msk += [m[1:], torch.zeros(1, dtype=torch.bool)]
        sid.append(torch.full((n,), local, dtype=torch.long))
        lengths.append(n)
    return PackedBatch(
        input_ids=torch.cat(ids)[None],
        position_ids=torch.cat(pos)[None],
        targets=torch.cat(tgt)[None],
        loss_mask=torch.cat(msk)[None],
        seq_ids=torch.cat(sid)[None],
        indices=tuple(chosen),
        lengths=tuple(lengths),
    )


def pack_micro_batches(
    token_ids: Sequence[TokenValues], loss_masks: Sequence[TokenValues], max_tokens: int
) -> list[PackedBatch]:
    """Plan micro-batches by token budget and pack each (see `plan_micro_batches`)."""
    lengths = [len(t) for t in token_ids]
    return [
        pack_sequences(token_ids, loss_masks, group)
        for group in plan_micro_batches(lengths, max_tokens)
    ]
