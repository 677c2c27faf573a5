"""One hostile request costs only itself: a prompt over the cap, a long prompt, a failing batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from metaagentx.config import Config, GenerationConfig
from metaagentx.llm.base import (
    DEFAULT_MAX_PROMPT_TOKENS,
    GenerationRequest,
    PromptTooLong,
    SamplingParams,
)
from metaagentx.llm.batcher import ContinuousBatcher, RequestBatcher
from metaagentx.llm.hf import HFGenerator, fits, length_groups

LONG = 600  # prompt tokens: far over twice the short prompts and over the 256-token floor
POISON = 1999  # a token id no short prompt here contains


def _short(i: int, max_new: int = 8) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": f"task {i} " + "z" * (i % 4)}],
        sampling=SamplingParams(temperature=0 if i % 2 else 1.0, max_new_tokens=max_new, seed=i),
        metadata={"i": i},
    )


def _ids(length: int, last: int = 7) -> GenerationRequest:
    return GenerationRequest(
        prompt_ids=[11 + j % 50 for j in range(length - 1)] + [last],
        sampling=SamplingParams(temperature=0, max_new_tokens=4),
    )


@contextmanager
def forwards(
    generator: HFGenerator, fail: Callable[[int, object], bool] = lambda n, ids: False
) -> Iterator[list[tuple[int, int]]]:
    """Record (rows, positions) of every model forward; raise in the n-th one where `fail`."""
    seen: list[tuple[int, int]] = []

    def hook(module, args, kwargs):
        seen.append(tuple(kwargs["attention_mask"].shape))
        if fail(len(seen), kwargs["input_ids"]):
            raise RuntimeError("injected failure")

    handle = generator.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def _same(got, ref) -> None:
    assert got.response_ids == ref.response_ids and got.prompt_ids == ref.prompt_ids
    assert max(abs(a - b) for a, b in zip(got.logprobs, ref.logprobs, strict=True)) < 1e-4


def test_the_padding_rule_and_grouping():
    assert fits(256, 1) and fits(400, 200)
    assert not fits(257, 100) and not fits(401, 200)
    lengths = [30, 600, 31, 30, 1300, 250, 590]
    assert length_groups(lengths, 64) == [[0, 3, 2, 5], [6, 1], [4]]
    assert length_groups(lengths, 2) == [[0, 3], [2, 5], [6, 1], [4]]


def test_prompt_too_long_names_the_cap():
    error = PromptTooLong(9000, 8192)
    assert isinstance(error, ValueError) and (error.tokens, error.cap) == (9000, 8192)
    assert "9000 tokens" in str(error) and "8192" in str(error)
    assert "generation.max_prompt_tokens" in str(error)
    assert GenerationConfig().max_prompt_tokens == DEFAULT_MAX_PROMPT_TOKENS


def test_the_hf_backend_enforces_its_cap_before_any_compute(hf_generator):
    capped = HFGenerator(hf_generator.model, hf_generator.tokenizer, max_prompt_tokens=40)
    assert HFGenerator(hf_generator.model, hf_generator.tokenizer).max_prompt_tokens == 8192
    with forwards(capped) as seen, pytest.raises(PromptTooLong, match="41 tokens"):
        capped.generate([_ids(10), _ids(41)])
    assert seen == []
    assert capped.prompt_length(_ids(41)) == 41


def test_continuous_batching_fails_a_prompt_over_the_cap_alone(hf_generator):
    from metaagentx.rollout.factory import make_batcher

    config = Config()
    config.generation.max_prompt_tokens = 100
    alone = [hf_generator.generate([_short(i)])[0] for i in range(4)]
    batcher = make_batcher(hf_generator, config)
    assert isinstance(batcher, ContinuousBatcher)
    with forwards(hf_generator) as seen:
        futures = [batcher.submit(r) for r in [_short(0), _short(1), _ids(101), _short(2)]]
        futures.append(batcher.submit(_short(3)))
        with pytest.raises(PromptTooLong, match=r"101 tokens.*cap of 100"):
            futures[2].result(timeout=60)
        results = [f.result(timeout=60) for i, f in enumerate(futures) if i != 2]
    batcher.close()
    for got, ref in zip(results, alone, strict=True):
        _same(got, ref)
    assert max(width for _, width in seen) < 100  # the long prompt was never computed


def test_request_batcher_fails_a_prompt_over_the_cap_at_submit(hf_generator):
    batcher = RequestBatcher(hf_generator, max_wait_s=0.05, max_prompt_tokens=100)
    calls = hf_generator.stats.generate_calls
    futures = [batcher.submit(r) for r in [_short(0), _ids(101), _short(1)]]
    with pytest.raises(PromptTooLong, match="101 tokens"):
        futures[1].result(timeout=60)
    assert [f.result(timeout=60).metadata["i"] for f in (futures[0], futures[2])] == [0, 1]
    batcher.close()
    assert hf_generator.stats.generate_calls - calls == 1  # the others ran as one batch
    assert batcher.stats.split_batches == 0


def test_a_long_prompt_pads_no_short_one_in_generate(hf_generator):
    requests = [_short(i) for i in range(3)] + [_ids(LONG)]
    alone = [hf_generator.generate([r])[0] for r in requests]
    with forwards(hf_generator) as seen:
        together = hf_generator.generate(requests)
    for got, ref in zip(together, alone, strict=True):
        _same(got, ref)
    assert all(rows == 1 for rows, width in seen if width >= LONG)
    assert any(rows == 3 for rows, _ in seen)  # the short ones still shared their batch


def test_a_long_prompt_pads_no_short_one_in_continuous_batching(hf_generator):
    import time

    shorts = [_short(i, max_new=12) for i in range(6)] + [_short(0, max_new=12)] * 2
    alone = [hf_generator.generate([r])[0] for r in shorts]
    shared = hf_generator.stats.shared_prefills
    batcher = ContinuousBatcher(hf_generator, max_wait_s=0.05)
    with forwards(hf_generator) as seen:
        futures = [batcher.submit(r) for r in [*shorts[:4], _ids(LONG), *shorts[6:]]]
        time.sleep(0.08)  # a long prompt, then short ones, arrive while others decode
        futures += [batcher.submit(r) for r in [_ids(3 * LONG), *shorts[4:6]]]
        results = [f.result(timeout=120) for f in futures]
    batcher.close()
    got = results[:4] + results[8:] + results[5:7]
    for result, ref in zip(got, alone, strict=True):
        _same(result, ref)
    assert all(rows == 1 for rows, width in seen if width >= LONG)
    assert any(rows >= 4 for rows, _ in seen)
    assert hf_generator.stats.shared_prefills - shared >= 2  # identical prompts: one prefill


def test_a_request_that_fails_the_batch_fails_alone(hf_generator):
    requests = [_short(i) for i in range(5)] + [_ids(20, last=POISON)] + [_short(5)]
    alone = [hf_generator.generate([r])[0] for r in requests if r.prompt_ids is None]
    batcher = ContinuousBatcher(hf_generator, max_wait_s=0.05)
    assert all(POISON not in r.prompt_ids for r in alone)

    def poisoned(n: int, ids) -> bool:  # a prefill (not a sampled token) holding the poison
        return ids.shape[1] > 1 and bool((ids == POISON).any())

    with forwards(hf_generator, fail=poisoned):
        futures = [batcher.submit(r) for r in requests]
        with pytest.raises(RuntimeError, match="injected"):
            futures[5].result(timeout=60)
        results = [f.result(timeout=60) for i, f in enumerate(futures) if i != 5]
    batcher.close()
    for got, ref in zip(results, alone, strict=True):
        _same(got, ref)
    assert batcher.stats.split_batches >= 1


def test_a_failed_decode_step_is_retried_with_the_exact_samples(hf_generator):
    requests = [_short(i, max_new=10) for i in range(6)]
    alone = [hf_generator.generate([r])[0] for r in requests]
    batcher = ContinuousBatcher(hf_generator, max_wait_s=0.05)
    with forwards(hf_generator, fail=lambda n, ids: n == 4):  # one transient failure mid-decode
        results = [f.result(timeout=60) for f in [batcher.submit(r) for r in requests]]
    batcher.close()
    for got, ref in zip(results, alone, strict=True):
        _same(got, ref)
    assert batcher.stats.split_batches == 1


def test_a_batch_that_always_fails_is_retried_a_bounded_number_of_times(hf_generator):
    batcher = ContinuousBatcher(hf_generator, max_wait_s=0.05)
    with forwards(hf_generator, fail=lambda n, ids: True) as seen:
        futures = [batcher.submit(_short(0)) for _ in range(3)]
        futures += [batcher.submit(_short(i)) for i in range(1, 6)]
        for future in futures:
            with pytest.raises(RuntimeError, match="injected"):
                future.result(timeout=60)
    batcher.close()
    assert len(seen) <= 2 * len(futures) - 1
