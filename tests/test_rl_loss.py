"""PPO loss: gradient equals a per-sequence loop reference; clipping at its boundaries; k3 KL;
the policy losses of the registry (ppo_clip, gspo, reinforce) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from metaagentx.rl.loss import PPOLossConfig, aggregate, k3_kl, ppo_loss
from metaagentx.rl.policy_losses import POLICY_LOSSES, get_policy_loss, gspo, ppo_clip, reinforce
from metaagentx.train.logprobs import token_logprobs

B, T, V = 3, 7, 11
TEMP = 0.7


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64)
    targets = torch.randint(0, V, (B, T), generator=g)
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[0, :2] = False  # a prompt
    mask[2, :] = False
    mask[2, 3:5] = True  # a short response in the middle (tool outputs around it)
    with torch.no_grad():
        logp = torch.log_softmax(logits / TEMP, -1).gather(-1, targets[..., None])[..., 0]
    # old log-probs off by up to ~0.5 nats, so some ratios clip and some dual-clip
    old = logp + 0.5 * torch.randn(B, T, generator=g, dtype=torch.float64)
    old[~mask] = 0.0  # the rollout stores nothing meaningful off the mask
    ref = logp + 0.3 * torch.randn(B, T, generator=g, dtype=torch.float64)
    adv = torch.randn(B, generator=g, dtype=torch.float64)[:, None].expand(B, T).clone()
    adv[1] = -adv[1].abs()  # one sequence with a negative advantage for the dual clip
    return logits, targets, mask, old, ref, adv


def _reference_loss(logits, targets, mask, old, ref, adv, cfg: PPOLossConfig) -> torch.Tensor:
    """Per-sequence, per-token loops with scalar math: the definition, no vectorisation."""
    seq_losses, token_losses, count = [], [], 0
    for b in range(B):
        terms = []
        for t in range(T):
            if not mask[b, t]:
                continue
            lp_all = torch.log_softmax(logits[b, t] / TEMP, dim=-1)
            lp = lp_all[targets[b, t]]
            probs = lp_all.exp()
            ent = -(probs * lp_all).sum()
            a = adv[b, t]
            ratio = torch.exp(lp - old[b, t])
            clipped = torch.clamp(ratio, 1 - cfg.clip_low, 1 + cfg.clip_high)
            pg = torch.max(-a * ratio, -a * clipped)
            if cfg.dual_clip is not None and a < 0:
                pg = torch.min(pg, -a * cfg.dual_clip)
            r = ref[b, t] - lp
            kl = torch.exp(r) - r - 1
            terms.append(pg + cfg.kl_coef * kl - cfg.entropy_coef * ent)
        token_losses += terms
        count += len(terms)
        if terms:
            seq_losses.append(sum(terms) / len(terms))
    if cfg.aggregation == "token-mean":
        return sum(token_losses) / count
    return sum(seq_losses) / len(seq_losses)


def _vector_loss(logits, targets, mask, old, ref, adv, cfg, **kw):
    logp, ent = token_logprobs(logits, targets, TEMP, with_entropy=True)
    return ppo_loss(logp, old, adv, mask, cfg, ref_logprobs=ref, entropy=ent, **kw)


CONFIGS = [
    PPOLossConfig(),
    PPOLossConfig(clip_low=0.2, clip_high=0.28, dual_clip=3.0, kl_coef=0.1, entropy_coef=0.01),
    PPOLossConfig(dual_clip=1.5, kl_coef=0.05, aggregation="seq-mean-token-mean"),
    PPOLossConfig(clip_high=0.3, entropy_coef=0.02, aggregation="seq-mean-token-mean"),
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_gradient_matches_loop_reference(cfg):
    logits, targets, mask, old, ref, adv = _data()
    l1 = logits.clone().requires_grad_(True)
    loss, metrics = _vector_loss(l1, targets, mask, old, ref, adv, cfg)
    loss.backward()
    l2 = logits.clone().requires_grad_(True)
    ref_loss = _reference_loss(l2, targets, mask, old, ref, adv, cfg)
    ref_loss.backward()
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-10, abs=1e-12)
    torch.testing.assert_close(l1.grad, l2.grad, rtol=1e-9, atol=1e-12)
    assert l1.grad[~mask].abs().max() == 0  # untrained tokens get no gradient
    assert 0 < metrics["clip_frac"] < 1  # the data really exercises clipping
    if cfg.dual_clip is not None and cfg.dual_clip < 2:
        assert metrics["dual_clip_frac"] > 0


@pytest.mark.parametrize("policy_loss", sorted(POLICY_LOSSES))
@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean"])
def test_micro_batches_with_global_normaliser_sum_to_full_batch(aggregation, policy_loss):
    dual = 3.0 if policy_loss == "ppo_clip" else None
    cfg = PPOLossConfig(
        dual_clip=dual, kl_coef=0.1, entropy_coef=0.01, aggregation=aggregation,
        policy_loss=policy_loss,
    )  # fmt: skip
    logits, targets, mask, old, ref, adv = _data(1)
    full = logits.clone().requires_grad_(True)
    _vector_loss(full, targets, mask, old, ref, adv, cfg)[0].backward()
    acc = logits.clone().requires_grad_(True)
    n_tok, n_seq = float(mask.sum()), float(mask.any(-1).sum())
    for rows in (slice(0, 1), slice(1, 3)):
        loss, _ = _vector_loss(
            acc[rows], targets[rows], mask[rows], old[rows], ref[rows], adv[rows], cfg,
            num_tokens=n_tok, num_seqs=n_seq,
        )  # fmt: skip
        loss.backward()
    torch.testing.assert_close(acc.grad, full.grad, rtol=1e-10, atol=1e-13)


def test_seq_mean_with_packed_seq_ids_equals_rows():
    cfg = PPOLossConfig(aggregation="seq-mean-token-mean")
    _, _, mask, old, _, adv = _data(2)
    logp = old + 0.1
    rows, _ = ppo_loss(logp, old, adv, mask, cfg)
    seq_ids = torch.arange(B)[:, None].expand(B, T).reshape(1, -1)
    flat, _ = ppo_loss(
        logp.reshape(1, -1), old.reshape(1, -1), adv.reshape(1, -1), mask.reshape(1, -1), cfg,
        seq_ids=seq_ids,
    )  # fmt: skip
    assert float(flat) == pytest.approx(float(rows))


def _one_token(log_ratio: float, advantage: float, cfg: PPOLossConfig):
    logp = torch.tensor([log_ratio], dtype=torch.float64, requires_grad=True)
    loss, metrics = ppo_loss(
        logp,
        torch.zeros(1, dtype=torch.float64),
        torch.tensor([advantage], dtype=torch.float64),
        torch.ones(1, dtype=torch.bool),
        cfg,
    )
    loss.backward()
    return loss.item(), logp.grad.item(), metrics


@pytest.mark.parametrize(
    ("ratio", "adv", "loss", "grad", "clipped"),
    [
        # A > 0: the ratio is capped above at 1 + clip_high (0.28 here), not below
        (1.27, 1.0, -1.27, -1.27, 0.0),
        (1.29, 1.0, -1.28, 0.0, 1.0),
        (0.5, 1.0, -0.5, -0.5, 0.0),
        # A < 0: capped below at 1 - clip_low (0.2), not above
        (0.81, -1.0, 0.81, 0.81, 0.0),
        (0.79, -1.0, 0.8, 0.0, 1.0),
        (2.0, -1.0, 2.0, 2.0, 0.0),
        # A == 0 contributes nothing
        (1.5, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_clip_boundaries(ratio, adv, loss, grad, clipped):
    cfg = PPOLossConfig(clip_low=0.2, clip_high=0.28)
    got_loss, got_grad, metrics = _one_token(math.log(ratio), adv, cfg)
    assert got_loss == pytest.approx(loss)
    assert got_grad == pytest.approx(grad)  # d(-A*r)/dlogp = -A*r where not clipped
    assert metrics["clip_frac"] == clipped
    assert metrics["ratio_mean"] == pytest.approx(ratio)


@pytest.mark.parametrize(
    ("ratio", "adv", "loss", "grad", "dual"),
    [
        (2.9, -2.0, 5.8, 5.8, 0.0),  # below c: ordinary PPO, gradient flows
        (3.1, -2.0, 6.0, 0.0, 1.0),  # above c: loss bounded at c*|A|, no gradient
        (10.0, 2.0, -2.4, 0.0, 0.0),  # positive advantages are never dual-clipped
    ],
)
def test_dual_clip_boundaries(ratio, adv, loss, grad, dual):
    cfg = PPOLossConfig(dual_clip=3.0)
    got_loss, got_grad, metrics = _one_token(math.log(ratio), adv, cfg)
    assert got_loss == pytest.approx(loss)
    assert got_grad == pytest.approx(grad)
    assert metrics["dual_clip_frac"] == dual


def test_k3_kl_zero_when_policy_equals_reference():
    logits, targets, mask, old, _, adv = _data(3)
    logp = token_logprobs(logits, targets, TEMP)[0].requires_grad_(True)
    assert k3_kl(logp, logp.detach()).abs().max() == 0
    cfg = PPOLossConfig(kl_coef=0.5)
    with_kl, m = ppo_loss(logp, old, adv, mask, cfg, ref_logprobs=logp.detach())
    (grad_kl,) = torch.autograd.grad(with_kl, logp)
    no_kl, _ = ppo_loss(logp, old, adv, mask, PPOLossConfig())
    (grad_no,) = torch.autograd.grad(no_kl, logp)
    assert with_kl.item() == no_kl.item()
    assert m["kl_ref"] == 0.0
    torch.testing.assert_close(grad_kl, grad_no, rtol=0, atol=0)
    # elsewhere k3 is positive and matches exp(r) - r - 1
    r = torch.tensor([-1.0, 0.5])
    assert k3_kl(torch.zeros(2), r).tolist() == pytest.approx((r.exp() - r - 1).tolist())


def test_token_logprobs_matches_generator_convention():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 13, generator=g)
    targets = torch.randint(0, 13, (2, 5), generator=g)
    for temp in (1.0, 0.6):
        logp, ent = token_logprobs(logits, targets, temp, with_entropy=True)
        full = torch.log_softmax(logits / temp, -1)
        torch.testing.assert_close(logp, full.gather(-1, targets[..., None])[..., 0])
        torch.testing.assert_close(ent, -(full.exp() * full).sum(-1))
    greedy, none = token_logprobs(logits, targets, 0.0)
    assert none is None
    torch.testing.assert_close(greedy, token_logprobs(logits, targets, 1.0)[0])


def test_masked_garbage_does_not_leak():
    logp = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    old = torch.tensor([[float("-inf"), -2.1, -0.4]])
    loss, metrics = ppo_loss(
        logp, old, torch.ones(1, 3), torch.tensor([[False, True, True]]), PPOLossConfig()
    )
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(logp.grad).all()
    assert logp.grad[0, 0] == 0
    assert metrics["num_tokens"] == 2


def test_aggregate_and_config_validation():
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[True, True, False], [True, False, False]])
    assert float(aggregate(v, m, "token-mean")) == pytest.approx(7 / 3)
    assert float(aggregate(v, m, "seq-mean-token-mean")) == pytest.approx((1.5 + 4) / 2)
    assert float(aggregate(v, m, "token-mean", num_tokens=7)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        PPOLossConfig(dual_clip=1.0)
    with pytest.raises(ValueError):
        PPOLossConfig(aggregation="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ref_logprobs"):
        ppo_loss(v, v, v, m, PPOLossConfig(kl_coef=0.1))


def _leaf(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def _f64(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_ppo_clip_per_token_by_hand():
    # ratios 1.5, 0.7, 1.1, 4.0 against old 0; clip 0.2 / 0.28, dual clip 3
    logp = _leaf([math.log(1.5), math.log(0.7), math.log(1.1), math.log(4.0)])
    adv = _f64([1.0, -1.0, 1.0, -1.0])
    out = ppo_clip(
        logp, torch.zeros(4), adv, torch.ones(4, dtype=torch.bool),
        clip_low=0.2, clip_high=0.28, dual_clip=3.0,
    )  # fmt: skip
    out.per_token.sum().backward()
    # -1.5 vs -1.28: capped; 0.7 vs 0.8: capped; 1.1 inside; 4.0 bounded by c*|A| = 3
    assert out.per_token.tolist() == pytest.approx([-1.28, 0.8, -1.1, 3.0])
    assert out.clipped.tolist() == [True, True, False, False]
    assert out.dual_clipped.tolist() == [False, False, False, True]
    assert logp.grad.tolist() == pytest.approx([0.0, 0.0, -1.1, 0.0])
    assert out.ratio.tolist() == pytest.approx([1.5, 0.7, 1.1, 4.0])


def test_gspo_clips_one_ratio_per_sequence_by_hand():
    # packed: sequence 0 = tokens 0-1, sequence 1 = tokens 2-4 (token 4 is off the mask)
    logp = _leaf([0.1, 0.3, -0.05, 0.15, 5.0])
    seq_ids = torch.tensor([0, 0, 1, 1, 1])
    mask = torch.tensor([True, True, True, True, False])
    adv = _f64([1.0, 1.0, -1.0, -1.0, -1.0])
    out = gspo(logp, torch.zeros(5), adv, mask, clip_low=0.2, clip_high=0.2, seq_ids=seq_ids)
    (out.per_token * mask).sum().backward()
    s0, s1 = math.exp(0.2), math.exp(0.05)  # geometric means of the tokens' ratios
    # s0 = 1.2214 > 1.2 with A > 0: capped at -1.2, no gradient; s1 inside: -A * s1
    assert out.per_token[:4].tolist() == pytest.approx([-1.2, -1.2, s1, s1])
    assert out.clipped[:4].tolist() == [True, True, False, False]
    assert not out.dual_clipped.any()
    assert out.ratio[:4].tolist() == pytest.approx([s0, s0, s1, s1])
    # every token of a sequence gets the sequence's ratio, not its own exp(0.15) or exp(-0.05)
    assert logp.grad.tolist() == pytest.approx([0.0, 0.0, s1, s1, 0.0])
    # the same sequences as rows of a 2-D batch
    rows = gspo(
        logp.detach()[:4].reshape(2, 2), torch.zeros(2, 2), adv[:4].reshape(2, 2),
        torch.ones(2, 2, dtype=torch.bool), clip_low=0.2, clip_high=0.2,
    )  # fmt: skip
    assert rows.per_token.flatten().tolist() == pytest.approx([-1.2, -1.2, s1, s1])


def test_gspo_ratio_with_the_papers_small_clip_range():
    # mean log-ratio 2e-4: s = 1.0002 sits inside [1 - 3e-4, 1 + 4e-4]; 6e-4 leaves it
    logp = _leaf([1e-4, 3e-4, 5e-4, 7e-4])
    seq_ids = torch.tensor([0, 0, 1, 1])
    out = gspo(
        logp, torch.zeros(4), torch.ones(4), torch.ones(4, dtype=torch.bool),
        clip_low=3e-4, clip_high=4e-4, seq_ids=seq_ids,
    )  # fmt: skip
    out.per_token.sum().backward()
    assert out.clipped.tolist() == [False, False, True, True]
    assert out.per_token.tolist() == pytest.approx([-math.exp(2e-4)] * 2 + [-(1 + 4e-4)] * 2)
    assert logp.grad.tolist() == pytest.approx([-math.exp(2e-4)] * 2 + [0.0, 0.0])


def test_reinforce_is_minus_advantage_times_logprob():
    logp = _leaf([-1.0, -2.0, -0.5])
    mask = torch.tensor([True, True, False])
    old = _f64([float("-inf"), 3.0, 0.0])  # ignored: no ratio
    out = reinforce(logp, old, _f64([2.0, -1.0, 3.0]), mask, clip_low=0.2, clip_high=0.2)
    out.per_token.sum().backward()
    assert out.per_token.tolist() == pytest.approx([2.0, -2.0, 0.0])
    assert logp.grad.tolist() == pytest.approx([-2.0, 1.0, 0.0])
    assert not out.clipped.any() and not out.dual_clipped.any()


def test_policy_loss_metrics_through_ppo_loss():
    logp = _f64([0.1, 0.3, -0.05, 0.15])[None]
    old = torch.zeros(1, 4, dtype=torch.float64)
    adv = _f64([1.0, 1.0, -1.0, -1.0])[None]
    mask = torch.ones(1, 4, dtype=torch.bool)
    seq_ids = torch.tensor([[0, 0, 1, 1]])
    losses = {}
    for name in ("ppo_clip", "gspo", "reinforce"):
        cfg = PPOLossConfig(policy_loss=name)
        losses[name] = ppo_loss(logp, old, adv, mask, cfg, seq_ids=seq_ids)
    # token ratios 1.105, 1.35, 0.95, 1.16: only 1.35 (A > 0) leaves [0.8, 1.2]
    assert losses["ppo_clip"][1]["clip_frac"] == 0.25
    assert losses["gspo"][1]["clip_frac"] == 0.5  # sequence 0's ratio exp(0.2) is clipped
    assert losses["reinforce"][1]["clip_frac"] == 0.0
    for _, metrics in losses.values():  # the token-level k1 whatever the loss
        assert metrics["approx_kl"] == pytest.approx(-0.5 / 4)
    assert float(losses["reinforce"][0]) == pytest.approx((-0.1 - 0.3 - 0.05 + 0.15) / 4)


def test_every_policy_loss_has_the_same_gradient_at_ratio_one():
    """On-policy (old == current) all three are -A * grad logp: they differ only once the
    weights move away from the old log-probs."""
    logits, targets, mask, _, _, adv = _data(4)
    grads = []
    for name in sorted(POLICY_LOSSES):
        leaf = logits.clone().requires_grad_(True)
        logp, _ = token_logprobs(leaf, targets, TEMP)
        loss, _ = ppo_loss(logp, logp.detach(), adv, mask, PPOLossConfig(policy_loss=name))
        loss.backward()
        grads.append(leaf.grad)
    assert grads[0].abs().max() > 0
    for grad in grads[1:]:
        torch.testing.assert_close(grad, grads[0], rtol=1e-12, atol=1e-15)


def test_policy_loss_registry_and_validation():
    assert set(POLICY_LOSSES) >= {"ppo_clip", "gspo", "reinforce"}
    assert get_policy_loss("gspo") is gspo
    with pytest.raises(ValueError, match="choose one of gspo, ppo_clip, reinforce"):
        get_policy_loss("grpo")
    with pytest.raises(ValueError, match="unknown policy loss"):
        PPOLossConfig(policy_loss="vanilla")
    with pytest.raises(ValueError, match="dual_clip"):
        PPOLossConfig(policy_loss="gspo", dual_clip=3.0)
