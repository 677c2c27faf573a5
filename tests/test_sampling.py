import math

import torch

from metaagentx.llm.sampling import filter_logprobs, sample_next


def test_top_k_and_top_p_keep_the_right_tokens():
    logp = torch.log_softmax(torch.tensor([[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]]), -1)
    out = filter_logprobs(logp, top_k=torch.tensor([2, 0]), top_p=torch.tensor([1.0, 0.5]))
    assert torch.isfinite(out[0]).tolist() == [True, True, False, False]
    # probs ~ [0.64, 0.24, 0.09, 0.03]: the mass above token 1 is 0.64 >= 0.5, so only token 0 stays
    assert torch.isfinite(out[1]).tolist() == [True, False, False, False]
    assert out[0, 0] == logp[0, 0]


def test_top_p_always_keeps_one_token():
    logp = torch.log_softmax(torch.tensor([[0.0, 0.0]]), -1)
    out = filter_logprobs(logp, top_k=torch.tensor([0]), top_p=torch.tensor([1e-6]))
    assert torch.isfinite(out).sum() == 1


def test_greedy_rows_and_logprob_convention():
    logits = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
    tokens, logprobs = sample_next(
        logits,
        temperature=torch.tensor([0.0, 0.5]),
        top_k=torch.tensor([0, 1]),
        top_p=torch.tensor([1.0, 1.0]),
        generators=[None, torch.Generator().manual_seed(0)],
    )
    assert tokens.tolist() == [1, 1]  # greedy, and top-k=1 sampling
    assert math.isclose(
        logprobs[0].item(), torch.log_softmax(logits[0], -1)[1].item(), rel_tol=1e-6
    )
    # temperature is in the log-prob; the top-k truncation is not
    assert math.isclose(
        logprobs[1].item(), torch.log_softmax(logits[1] / 0.5, -1)[1].item(), rel_tol=1e-6
    )


def test_sampling_frequencies_match_the_distribution():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).repeat(4000, 1)
    gens = [torch.Generator().manual_seed(i) for i in range(4000)]
    tokens, _ = sample_next(
        logits, torch.ones(4000), torch.zeros(4000, dtype=torch.long), torch.ones(4000), gens
    )
    freq = torch.bincount(tokens, minlength=3).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2]), atol=0.03)


def test_only_truncating_rows_are_filtered_and_seeded_draws_do_not_depend_on_batch_mates():
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    temperature = torch.ones(4)
    top_k = torch.tensor([0, 3, 0, 50])  # 50 == vocab: no truncation
    top_p = torch.tensor([1.0, 1.0, 0.3, 1.0])

    def draw(rows):
        gens = [torch.Generator().manual_seed(100 + i) for i in rows]
        return sample_next(logits[rows], temperature[rows], top_k[rows], top_p[rows], gens)

    tokens, logprobs = draw([0, 1, 2, 3])
    for i in range(4):  # each row alone samples the same token with the same log-prob
        alone_tokens, alone_logprobs = draw([i])
        assert alone_tokens.item() == tokens[i].item()
        assert alone_logprobs.item() == logprobs[i].item()
    assert tokens[1].item() in logits[1].topk(3).indices.tolist()
    kept = torch.isfinite(
        filter_logprobs(torch.log_softmax(logits[2:3], -1), top_k[2:3], top_p[2:3])
    )
    assert kept[0, tokens[2]].item()
