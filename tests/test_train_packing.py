"""Sequence packing: layout, token budget, and equivalence of packed and unpacked Qwen3 forwards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from metaagentx.rl.loss import PPOLossConfig, ppo_loss
from metaagentx.train.logprobs import packed_token_logprobs, token_logprobs
from metaagentx.train.packing import (
    pack_micro_batches,
    pack_sequences,
    plan_micro_batches,
)

VOCAB = 600  # requested; the trained BPE may end a few tokens short


def test_plan_respects_budget_and_keeps_every_sequence():
    lengths = [5, 9, 1, 13, 7, 3, 3, 20, 8]
    plan = plan_micro_batches(lengths, max_tokens=16)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    for b in plan:
        assert sum(lengths[i] for i in b) <= 16 or len(b) == 1
    assert [7] in plan  # 20 > budget: alone, never dropped or truncated
    # first-fit decreasing by hand: 20 | 13+3 | 9+7 | 8+5+3 | 1 (every earlier bin is full)
    assert plan == [[7], [3, 5], [1, 4], [0, 6, 8], [2]]
    assert plan_micro_batches(lengths, 16) == plan  # deterministic
    with pytest.raises(ValueError):
        plan_micro_batches([3, 0], 8)


def test_pack_layout_by_hand():
    ids = [[10, 11, 12], [20, 21], [30, 31, 32, 33]]
    masks = [[0, 1, 1], [0, 1], [0, 0, 1, 0]]
    b = pack_sequences(ids, masks, indices=[2, 0])
    assert b.input_ids.tolist() == [[30, 31, 32, 33, 10, 11, 12]]
    assert b.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2]]
    assert b.targets.tolist() == [[31, 32, 33, 0, 11, 12, 0]]
    assert b.loss_mask.tolist() == [[False, True, False, False, True, True, False]]
    assert b.seq_ids.tolist() == [[0, 0, 0, 0, 1, 1, 1]]
    assert (b.num_tokens, b.num_loss_tokens, b.num_loss_seqs) == (7, 3, 2)
    old = {0: [0.0, -1.0, -2.0], 2: [0.0, 0.0, -3.0, -4.0]}
    aligned = b.align(old)
    assert aligned.tolist() == [[0.0, -3.0, -4.0, 0.0, -1.0, -2.0, 0.0]]
    back = b.unpack(aligned)
    assert back[2].tolist() == old[2] and back[0].tolist() == old[0]
    assert b.broadcast([0.5, 9.0, -1.5]).tolist() == [[-1.5] * 4 + [0.5] * 3]
    with pytest.raises(ValueError, match="values for"):
        b.align({0: [1.0], 2: [1.0]})
    with pytest.raises(ValueError, match="loss mask"):
        pack_sequences([[1, 2]], [[1]])


@pytest.fixture(scope="module")
def nano_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from metaagentx.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("nano"), size="nano", vocab_size=VOCAB)


def _load(path: Path, attn: str):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(
        path, attn_implementation=attn, dtype=torch.float32
    )
    # the saved weights are near-initial; random ones make the logits far from uniform
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _batch(vocab: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = [5, 17, 1, 12, 9, 2, 23, 7]
    ids = [torch.randint(0, vocab, (n,), generator=g) for n in lengths]
    masks = []
    for n in lengths:
        m = torch.zeros(n, dtype=torch.bool)
        m[n // 3 :] = True  # a prompt, then a response
        masks.append(m)
    return ids, masks


def _unpacked_logprobs(model, ids, temperature: float):
    """Reference: one forward per sequence, no packing, no padding."""
    out = []
    for t in ids:
        logits = model(input_ids=t[None], use_cache=False).logits[0]
        lp, ent = token_logprobs(logits[:-1], t[1:], temperature, with_entropy=True)
        out.append((lp, ent))
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_forward_equals_unpacked(nano_dir, attn):
    model = _load(nano_dir, attn).eval()
    ids, masks = _batch(model.config.vocab_size)
    temperature = 0.8
    batches = pack_micro_batches(ids, masks, max_tokens=32)
    assert len(batches) > 1 and any(len(b.indices) > 2 for b in batches)
    with torch.no_grad():
        ref = _unpacked_logprobs(model, ids, temperature)
        diffs, leaks = [], []
        for b in batches:
            lp, ent = packed_token_logprobs(model, b, temperature, with_entropy=True)
            got_lp, got_ent = b.unpack(lp), b.unpack(ent)
            # control: the same row run as one causal sequence (sequences see each other)
            logits = model(input_ids=b.input_ids, use_cache=False).logits
            leaky = b.unpack(token_logprobs(logits, b.targets, temperature)[0])
            for i in b.indices:
                diffs += [got_lp[i][1:] - ref[i][0], got_ent[i][1:] - ref[i][1]]
                leaks.append(leaky[i][1:] - ref[i][0])
    worst = torch.cat(diffs).abs().max().item()
    assert worst < 1e-5, worst
    assert torch.cat(leaks).abs().max().item() > 0.1  # so the check above can fail


def test_packed_gradient_equals_unpacked(nano_dir):
    """The whole PPO step: packed micro-batches with a global token count vs per-sequence."""
    model = _load(nano_dir, "sdpa").train()
    ids, masks = _batch(model.config.vocab_size, seed=1)
    advantages = [0.7, -1.2, 0.3, 1.0, -0.4, 0.9, -0.8, 0.2]
    cfg = PPOLossConfig(dual_clip=3.0, entropy_coef=0.01)
    n_tok = float(sum(int(m[1:].sum()) for m in masks))
    with torch.no_grad():
        ref = _unpacked_logprobs(model, ids, 1.0)
    # old log-probs: the current ones, nudged so the ratio is not identically 1
    old = [torch.cat([torch.zeros(1), lp - 0.1 * (k % 3)]) for k, (lp, _) in enumerate(ref)]

    model.zero_grad()
    for t, m, o, a in zip(ids, masks, old, advantages, strict=True):
        logits = model(input_ids=t[None], use_cache=False).logits[0, :-1]
        lp, ent = token_logprobs(logits, t[1:], 1.0, with_entropy=True)
        loss, _ = ppo_loss(
            lp, o[1:], torch.full_like(lp, a), m[1:], cfg, entropy=ent, num_tokens=n_tok
        )
        loss.backward()
    unpacked = {n: p.grad.clone() for n, p in model.named_parameters()}

    model.zero_grad()
    for b in pack_micro_batches(ids, masks, max_tokens=40):
        lp, ent = packed_token_logprobs(model, b, 1.0, with_entropy=True)
        loss, _ = ppo_loss(
            lp, b.align(old), b.broadcast(advantages), b.loss_mask, cfg, entropy=ent,
            num_tokens=n_tok,
        )  # fmt: skip
        loss.backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, unpacked[n], rtol=1e-4, atol=1e-6, msg=n)
