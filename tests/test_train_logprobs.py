"""Chunked log-probs: the same values and gradients as the full-logits path, no (K, V) tensor
saved for backward, and the LM-head override always removed (see train/logprobs.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from metaagentx.train.attention import packed_attention
from metaagentx.train.logprobs import (
    chunked_lm_head,
    chunked_token_logprobs,
    loss_position_logprobs,
    token_logprobs,
)
from metaagentx.train.packing import PackedBatch, pack_micro_batches
from metaagentx.train.policy import Policy


def assert_close_scaled(got: torch.Tensor, want: torch.Tensor, tol: float, name: str) -> None:
    """max |got - want| <= tol * max(1, max |want|): gradients are sums over tokens and
    vocabulary, so fp32 rounding grows with their scale (the full-logits fp32 path itself
    is ~2e-5 off a float64 one on gradients of magnitude ~10)."""
    err = (got - want).abs().max().item()
    assert err <= tol * max(1.0, want.abs().max().item()), (name, err)


@contextlib.contextmanager
def saved_shapes() -> Iterator[list[torch.Size]]:
    """Record the shape of every tensor autograd saves for backward in the block."""
    shapes: list[torch.Size] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        shapes.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield shapes


def _random_problem(k: int = 23, h: int = 16, v: int = 50, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(k, h, generator=g, dtype=dtype).requires_grad_()
    weight = torch.randn(v, h, generator=g, dtype=dtype).requires_grad_()
    bias = torch.randn(v, generator=g, dtype=dtype).requires_grad_()
    targets = torch.randint(0, v, (k,), generator=g)
    upstream = torch.randn(2, k, generator=g, dtype=dtype)
    return hidden, weight, bias, targets, upstream


def _values_and_grads(logp, ent, upstream, params):
    loss = (upstream[0] * logp).sum()
    if ent is not None:
        loss = loss + (upstream[1] * ent).sum()
    return [logp, ent, *torch.autograd.grad(loss, params)]


@pytest.mark.parametrize("chunk", [1, 7, 23, 40, None])
@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("with_entropy", [False, True])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_chunked_equals_full_logits(chunk, temperature, with_entropy, dtype, tol):
    hidden, weight, bias, targets, upstream = _random_problem(dtype=dtype)
    params = [hidden, weight, bias]
    lp, ent = token_logprobs(F.linear(hidden, weight, bias), targets, temperature, with_entropy)
    want = _values_and_grads(lp, ent, upstream, params)
    lp, ent = chunked_token_logprobs(
        hidden, weight, targets, temperature,
        chunk_tokens=chunk, with_entropy=with_entropy, bias=bias,
    )  # fmt: skip
    got = _values_and_grads(lp, ent, upstream, params)
    assert (got[1] is None) == (not with_entropy)
    assert lp.dtype == dtype and lp.shape == targets.shape
    for name, a, b in zip(["logp", "entropy", "hidden", "weight", "bias"], got, want, strict=True):
        if a is not None:
            assert_close_scaled(a, b, tol, name)
    # the check can fail: a different temperature gives different values
    other, _ = chunked_token_logprobs(hidden, weight, targets, 0.5, chunk_tokens=chunk, bias=bias)
    assert (other - got[0]).abs().max() > 1e-2


def test_chunked_saves_no_vocabulary_wide_tensor():
    hidden, weight, _, targets, _ = _random_problem(k=40, h=8, v=97)
    with saved_shapes() as full:
        token_logprobs(hidden @ weight.T, targets, 1.0, with_entropy=True)
    with saved_shapes() as chunked:
        lp, ent = chunked_token_logprobs(hidden, weight, targets, chunk_tokens=8, with_entropy=True)
    assert any(s[-1] == 97 for s in full)  # the full path keeps (K, V) tensors
    assert not any(s[-1] == 97 for s in chunked), chunked
    (lp.sum() + ent.sum()).backward()  # recomputation runs and fills the gradients
    assert hidden.grad is not None and weight.grad is not None


def test_chunked_bf16_hidden_gives_fp32_logprobs():
    hidden, weight, _, targets, _ = _random_problem()
    lp, ent = chunked_token_logprobs(
        hidden.detach().bfloat16(), weight.detach().bfloat16(), targets, 0.7,
        chunk_tokens=5, with_entropy=True,
    )  # fmt: skip
    ref, _ = token_logprobs(hidden @ weight.T, targets, 0.7, with_entropy=True)
    assert lp.dtype == torch.float32 and ent is not None and ent.dtype == torch.float32
    torch.testing.assert_close(lp, ref.detach(), rtol=0.05, atol=0.3)
    with pytest.raises(ValueError, match="chunk_tokens"):
        chunked_token_logprobs(hidden, weight, targets, chunk_tokens=0)


# ---- inside the model call ------------------------------------------------------------------


def _load(path: Path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with torch.no_grad():  # near-initial weights give near-uniform logits: perturb them
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.train()


def _packed_batch(vocab: int) -> PackedBatch:
    g = torch.Generator().manual_seed(3)
    lengths = [9, 17, 4, 12, 21]
    ids = [torch.randint(0, vocab, (n,), generator=g) for n in lengths]
    masks = [torch.arange(n) >= n // 3 for n in lengths]  # a prompt, then a response
    batch = pack_micro_batches(ids, masks, max_tokens=1000)
    assert len(batch) == 1 and len(batch[0].indices) == len(lengths)
    return batch[0]


def _run(model, batch, entropy, chunk, upstream):
    """Values and parameter gradients of one `loss_position_logprobs` call."""
    model.zero_grad(set_to_none=True)
    with packed_attention(model):
        lp, ent, keep = loss_position_logprobs(
            model, batch, 0.8, entropy=entropy, chunk_tokens=chunk
        )
    loss = (upstream[0, : lp.numel()] * lp).sum()
    if entropy == "grad":
        loss = loss + (upstream[1, : lp.numel()] * ent).sum()
    else:
        assert ent is None or not ent.requires_grad  # metric: detached
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return lp.detach(), None if ent is None else ent.detach(), keep, grads


def _assert_same_as_full(model, batch, entropy, chunk=7):
    upstream = torch.randn(2, batch.num_loss_tokens, generator=torch.Generator().manual_seed(1))
    want = _run(model, batch, entropy, None, upstream)
    got = _run(model, batch, entropy, chunk, upstream)
    assert batch.num_loss_tokens > 3 * chunk  # several chunks
    assert_close_scaled(got[0], want[0], 1e-5, "logp")
    assert torch.equal(got[2], want[2])
    if entropy == "none":
        assert got[1] is None and want[1] is None
    else:
        assert_close_scaled(got[1], want[1], 1e-5, "entropy")
    assert got[3].keys() == want[3].keys() and got[3]
    for name, g in got[3].items():
        assert_close_scaled(g, want[3][name], 1e-5, name)
        assert g.abs().max() > 0, name
    return want[3]


@pytest.mark.parametrize("entropy", ["grad", "metric", "none"])
def test_model_chunked_equals_full_logits(tiny_model_dir, entropy):
    model = _load(tiny_model_dir)
    batch = _packed_batch(model.config.vocab_size)
    grads = _assert_same_as_full(model, batch, entropy)
    assert "forward" not in model.get_output_embeddings().__dict__
    assert "lm_head.weight" in grads or "model.embed_tokens.weight" in grads  # head (tied)


def test_model_chunked_under_lora(tiny_model_dir):
    policy = Policy.build(_load(tiny_model_dir), "lora")
    with policy.activate("executor") as model:
        with torch.no_grad():  # LoRA B starts at zero: make the adapter change the output
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.05)
        batch = _packed_batch(model.config.vocab_size)
        grads = _assert_same_as_full(model, batch, "grad")
    assert grads and all("lora_" in n for n in grads)  # only the adapter trains


def test_model_chunked_saves_no_vocabulary_wide_tensor(tiny_model_dir):
    model = _load(tiny_model_dir)
    batch = _packed_batch(model.config.vocab_size)
    vocab = model.get_output_embeddings().weight.shape[0]
    shapes = {}
    for chunk in (None, 7):
        with saved_shapes() as shapes[chunk], packed_attention(model):
            loss_position_logprobs(model, batch, 1.0, entropy="grad", chunk_tokens=chunk)
    assert any(s[-1] == vocab for s in shapes[None])
    assert not any(s[-1] == vocab for s in shapes[7])


def test_model_chunked_bf16_autocast_close_to_fp32(tiny_model_dir):
    model = _load(tiny_model_dir)
    batch = _packed_batch(model.config.vocab_size)
    with torch.no_grad(), packed_attention(model):
        ref, _, _ = loss_position_logprobs(model, batch, 1.0)
        lp, ent, _ = loss_position_logprobs(
            model, batch, 1.0, entropy="metric", bf16_autocast=True, chunk_tokens=7
        )
    assert lp.dtype == torch.float32 and ent is not None and ent.dtype == torch.float32
    torch.testing.assert_close(lp, ref, rtol=0.05, atol=0.1)


def test_head_override_is_removed_even_when_the_forward_raises(tiny_model_dir):
    model = _load(tiny_model_dir)
    batch = _packed_batch(model.config.vocab_size)
    head = model.get_output_embeddings()

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    layer = model.model.layers[-1].register_forward_pre_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        loss_position_logprobs(model, batch, 1.0, chunk_tokens=4)
    layer.remove()
    assert "forward" not in head.__dict__
    out = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False)
    assert out.logits.shape[-1] == head.weight.shape[0]  # full logits again

    # an instance forward set by someone else (e.g. accelerate's hooks) is put back
    def previous(hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, head.weight)

    head.forward = previous
    with chunked_lm_head(model, batch.targets[0], 1.0, chunk_tokens=4) as h:
        assert h is head and head.forward is not previous
        out = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False)
        assert out.logits.shape == (1, batch.num_tokens, 2)
    assert head.__dict__["forward"] is previous
    del head.forward
