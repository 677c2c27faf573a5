"""The hf backend returns exactly what was sampled, with log-probs a trainer can recompute."""

from __future__ import annotations

import warnings

import pytest
import torch

from metaagentx.llm.base import GenerationRequest, SamplingParams
from metaagentx.llm.chat import render_prompt_ids


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You solve tasks."}, {"role": "user", "content": text}]


PROMPTS = ["hi", "Compute 4821*37-19.", "Write a function that adds two numbers and test it well."]


def _recompute_one(model, prompt_ids, response_ids, temperature=1.0):
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(ids).logits[0].float() / temperature
    logp = torch.log_softmax(logits, dim=-1)
    start = len(prompt_ids) - 1
    return [logp[start + j, tok].item() for j, tok in enumerate(response_ids)]


def _recompute_padded(model, pad_id, pairs):
    """One left-padded forward over several (prompt, response) sequences."""
    seqs = [p + r for p, r in pairs]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s) :] = torch.tensor(s)
        mask[i, width - len(s) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logp = torch.log_softmax(
            model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float(), -1
        )
    out = []
    for i, (p, r) in enumerate(pairs):
        start = width - len(seqs[i]) + len(p) - 1
        out.append([logp[i, start + j, tok].item() for j, tok in enumerate(r)])
    return out


def test_batched_sampling_logprobs_match_a_separate_forward(hf_generator):
    requests = [
        GenerationRequest(
            messages=_messages(p),
            sampling=SamplingParams(temperature=1.0, max_new_tokens=24, seed=i),
        )
        for i, p in enumerate(PROMPTS)
    ]
    results = hf_generator.generate(requests)
    lengths = {len(r.prompt_ids) for r in results}
    assert len(lengths) == 3  # really left-padded: prompts of different lengths shared a batch
    for request, result in zip(requests, results, strict=True):
        assert result.prompt_ids == render_prompt_ids(hf_generator.tokenizer, request.messages)
        assert len(result.response_ids) == len(result.logprobs) > 0
        ref = _recompute_one(hf_generator.model, result.prompt_ids, result.response_ids)
        assert max(abs(a - b) for a, b in zip(ref, result.logprobs, strict=True)) < 1e-4
    padded = _recompute_padded(
        hf_generator.model,
        hf_generator.tokenizer.pad_token_id,
        [(r.prompt_ids, r.response_ids) for r in results],
    )
    for ref, result in zip(padded, results, strict=True):
        assert max(abs(a - b) for a, b in zip(ref, result.logprobs, strict=True)) < 1e-4


def test_logprobs_follow_the_temperature(hf_generator):
    result = hf_generator.generate(
        [
            GenerationRequest(
                messages=_messages("hi"),
                sampling=SamplingParams(temperature=0.6, max_new_tokens=12, seed=3),
            )
        ]
    )[0]
    ref = _recompute_one(
        hf_generator.model, result.prompt_ids, result.response_ids, temperature=0.6
    )
    assert max(abs(a - b) for a, b in zip(ref, result.logprobs, strict=True)) < 1e-4


def test_greedy_is_batch_independent_and_seeded_sampling_reproducible(hf_generator):
    greedy = [
        GenerationRequest(
            messages=_messages(p), sampling=SamplingParams(temperature=0, max_new_tokens=16)
        )
        for p in PROMPTS
    ]
    together = hf_generator.generate(greedy)
    alone = [hf_generator.generate([r])[0] for r in greedy]
    assert [r.response_ids for r in together] == [r.response_ids for r in alone]

    seeded = GenerationRequest(
        messages=_messages("hi"),
        sampling=SamplingParams(temperature=1.0, max_new_tokens=16, seed=42),
    )
    first = hf_generator.generate([seeded])[0]
    again = hf_generator.generate([greedy[2], seeded, greedy[1]])[1]
    assert first.response_ids == again.response_ids
    other = hf_generator.generate(
        [
            GenerationRequest(
                messages=_messages("hi"),
                sampling=SamplingParams(temperature=1.0, max_new_tokens=16, seed=43),
            )
        ]
    )[0]
    assert other.response_ids != first.response_ids


def test_finish_reasons_and_prompt_ids(hf_generator):
    tok = hf_generator.tokenizer
    prompt = tok("hello world", add_special_tokens=False)["input_ids"]
    result = hf_generator.generate(
        [
            GenerationRequest(
                prompt_ids=prompt, sampling=SamplingParams(temperature=0, max_new_tokens=5)
            )
        ]
    )[0]
    assert result.prompt_ids == prompt
    assert result.finish_reason == "length" and len(result.response_ids) == 5
    assert result.text == tok.decode(result.response_ids, skip_special_tokens=True)


def test_stop_string_ends_the_row_and_is_cut_from_text(hf_generator):
    request = GenerationRequest(
        messages=_messages("hi"), sampling=SamplingParams(temperature=0, max_new_tokens=12)
    )
    free = hf_generator.generate([request])[0]
    # stop on a piece of text the model is known to produce at its 4th token
    stop_text = hf_generator.tokenizer.decode(free.response_ids[3:4])
    assert stop_text
    stopped = hf_generator.generate(
        [
            GenerationRequest(
                messages=_messages("hi"),
                sampling=SamplingParams(temperature=0, max_new_tokens=12, stop=(stop_text,)),
            )
        ]
    )[0]
    assert stopped.finish_reason == "stop" and stopped.stop_reason == stop_text
    assert stopped.response_ids == free.response_ids[: len(stopped.response_ids)]
    assert len(stopped.response_ids) <= 4
    assert stop_text not in stopped.text


def test_eos_ends_generation_and_stays_in_the_ids(hf_generator):
    model, tok = hf_generator.model, hf_generator.tokenizer
    eos = tok.eos_token_id
    messages = _messages("hi")
    prompt = render_prompt_ids(tok, messages)
    # make the end-of-turn token the certain next token by boosting its output bias for a moment
    head = model.get_output_embeddings()
    original_bias = head.bias
    bias = torch.zeros(head.out_features)
    bias[eos] = 100.0
    head.bias = torch.nn.Parameter(bias)
    try:
        result = hf_generator.generate(
            [
                GenerationRequest(
                    prompt_ids=prompt,
                    sampling=SamplingParams(temperature=1.0, max_new_tokens=8, seed=0),
                )
            ]
        )[0]
    finally:
        head.bias = original_bias
    assert result.response_ids == [eos]
    assert result.finish_reason == "stop" and result.text == ""
    assert result.logprobs[0] == pytest.approx(0.0, abs=1e-4)


def test_rows_of_different_lengths_are_dropped_from_the_batch(hf_generator):
    before = hf_generator.stats.forward_passes
    requests = [
        GenerationRequest(
            messages=_messages("a"), sampling=SamplingParams(temperature=0, max_new_tokens=2)
        ),
        GenerationRequest(
            messages=_messages("b"), sampling=SamplingParams(temperature=0, max_new_tokens=20)
        ),
    ]
    short, long = hf_generator.generate(requests)
    assert len(short.response_ids) == 2 and len(long.response_ids) == 20
    assert hf_generator.stats.forward_passes - before == 20  # one prefill + 19 decode steps


def test_bad_requests_fail_clearly(hf_generator):
    with pytest.raises(ValueError, match="exactly one of messages or prompt_ids"):
        GenerationRequest()
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)
    with pytest.raises(ValueError, match="'role' and 'content'"):
        hf_generator.generate([GenerationRequest(messages=[{"text": "x"}])])
    too_long = [1] * (hf_generator.max_positions + 1)
    with pytest.raises(ValueError, match="context"):
        hf_generator.generate([GenerationRequest(prompt_ids=too_long)])


def test_identical_prompts_are_prefilled_once_and_sampled_independently(hf_generator):
    def request(prompt: str, seed: int) -> GenerationRequest:
        return GenerationRequest(
            messages=_messages(prompt),
            sampling=SamplingParams(temperature=1.0, max_new_tokens=16, seed=seed),
        )

    # four executions of one design share a first prompt; a fifth request differs
    requests = [request(PROMPTS[1], seed) for seed in range(4)] + [request(PROMPTS[2], 9)]
    before = hf_generator.stats.shared_prefills
    together = hf_generator.generate(requests)
    assert hf_generator.stats.shared_prefills - before == 3
    alone = [hf_generator.generate([r])[0] for r in requests]
    for a, b in zip(together, alone, strict=True):
        assert a.response_ids == b.response_ids  # each row keeps its own random stream
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) < 1e-4
    assert len({tuple(r.response_ids) for r in together[:4]}) > 1
    for result in together:  # the copied caches give the model's own log-probs
        ref = _recompute_one(hf_generator.model, result.prompt_ids, result.response_ids)
        assert max(abs(a - b) for a, b in zip(ref, result.logprobs, strict=True)) < 1e-4


def test_decoding_uses_the_installed_transformers_cache_api(hf_generator):
    from dataclasses import fields

    from transformers.modeling_outputs import CausalLMOutputWithPast

    renamed = "cache" in {f.name for f in fields(CausalLMOutputWithPast)}  # transformers 5.x
    assert hf_generator.cache_keyword == ("cache" if renamed else "past_key_values")
    request = GenerationRequest(
        messages=_messages("hi"), sampling=SamplingParams(temperature=0, max_new_tokens=4)
    )
    with warnings.catch_warnings():  # a deprecated cache path warns; tests make that an error
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        hf_generator.generate([request, request])


def test_caches_with_sliding_window_layers_are_never_stacked(hf_generator):
    from transformers.cache_utils import DynamicSlidingWindowLayer

    from metaagentx.llm.hf import DecodeBatch

    def row(text: str):
        request = GenerationRequest(
            messages=_messages(text), sampling=SamplingParams(temperature=0, max_new_tokens=4)
        )
        return hf_generator.make_row(request)

    with hf_generator.decoding():
        running, joining = (
            DecodeBatch(hf_generator, [row("a")]),
            DecodeBatch(hf_generator, [row("b")]),
        )
        assert running.accepts(joining)
        joining.cache.layers[0] = DynamicSlidingWindowLayer(sliding_window=4)
        assert not running.accepts(joining)  # its window cannot be left-padded to a width
