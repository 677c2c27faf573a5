"""Concurrent single requests are merged into batched model calls."""

from __future__ import annotations

import asyncio
import threading

import pytest

from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator, SamplingParams
from metaagentx.llm.batcher import RequestBatcher


def _request(i: int) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": f"task number {i}: " + "x" * (i % 5)}],
        sampling=SamplingParams(temperature=0, max_new_tokens=8),
        metadata={"i": i},
    )


def test_32_concurrent_requests_use_fewer_model_calls_with_identical_greedy_results(hf_generator):
    alone = [hf_generator.generate([_request(i)])[0] for i in range(32)]
    calls_before = hf_generator.stats.generate_calls
    batcher = RequestBatcher(hf_generator, max_batch_size=64, max_wait_s=0.05)
    results: list[GenerationResult | None] = [None] * 32
    start = threading.Barrier(32)

    def worker(i: int) -> None:
        start.wait()
        results[i] = batcher.submit(_request(i)).result(timeout=120)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    calls = hf_generator.stats.generate_calls - calls_before
    assert calls == batcher.stats.batches < 32
    assert batcher.stats.requests == 32
    assert [r.response_ids for r in results] == [r.response_ids for r in alone]
    assert [r.metadata["i"] for r in results] == list(range(32))


def test_asyncio_callers_are_batched(hf_generator):
    batcher = RequestBatcher(hf_generator, max_batch_size=8, max_wait_s=0.05)

    async def main():
        return await asyncio.gather(*(batcher.agenerate(_request(i)) for i in range(16)))

    results = asyncio.run(main())
    batcher.close()
    assert len(results) == 16
    assert batcher.stats.batches <= 4 and batcher.stats.largest_batch <= 8


class FailsOnMarkedRequests(Generator):
    """A test double that raises when a batch holds a request marked bad."""

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, requests):
        self.calls += 1
        if any(r.metadata.get("bad") for r in requests):
            raise ValueError("bad request in batch")
        return [
            GenerationResult([1], [2], [-0.1], "ok", "stop", metadata=dict(r.metadata))
            for r in requests
        ]


def test_one_bad_request_does_not_fail_its_batch_mates():
    backend = FailsOnMarkedRequests()
    batcher = RequestBatcher(backend, max_batch_size=16, max_wait_s=0.05)
    futures = [
        batcher.submit(GenerationRequest(prompt_ids=[1], metadata={"bad": i == 2, "i": i}))
        for i in range(16)
    ]
    with pytest.raises(ValueError, match="bad request"):
        futures[2].result(timeout=10)
    good = [i for i in range(16) if i != 2]
    assert [futures[i].result(timeout=10).metadata["i"] for i in good] == good
    # halved until the bad one is alone: 1 + 2 * log2(16) calls, not one per batch-mate
    assert backend.calls <= 9 and batcher.stats.split_batches == 4
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(GenerationRequest(prompt_ids=[1]))


class RecordsBatches(Generator):
    """A test double that records the size of every batch it is given."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def generate(self, requests):
        self.sizes.append(len(requests))
        return [GenerationResult([1], [2], [-0.1], "ok", "stop") for _ in requests]


def _submit_spaced(batcher: RequestBatcher, count: int, gap_s: float) -> None:
    """Submit `count` requests `gap_s` apart, then wait for all of them."""
    import time

    futures = []
    for _ in range(count):
        futures.append(batcher.submit(GenerationRequest(prompt_ids=[1])))
        time.sleep(gap_s)
    for f in futures:
        f.result(timeout=10)


def test_a_staggered_burst_is_gathered_until_the_queue_goes_quiet_up_to_a_cap():
    backend = RecordsBatches()
    batcher = RequestBatcher(backend, max_batch_size=64, max_wait_s=0.1)
    # eight requests 20 ms apart span 140 ms, more than one 100 ms window, but every gap is
    # shorter than the quiet gap: one batch
    _submit_spaced(batcher, 8, 0.02)
    assert backend.sizes == [8]
    # a steady stream never goes quiet: the cap (10 gaps = 1 s) still runs a batch
    _submit_spaced(batcher, 30, 0.05)
    batcher.close()
    assert len(backend.sizes) >= 3 and sum(backend.sizes) == 38
    assert max(backend.sizes[1:]) < 30


def test_continuous_batching_admits_staggered_requests_with_identical_results(hf_generator):
    import time

    from metaagentx.llm.batcher import ContinuousBatcher

    requests = [
        GenerationRequest(
            messages=[{"role": "user", "content": f"task {i} " + "y" * (i % 7)}],
            sampling=SamplingParams(
                temperature=0 if i % 2 else 1.0, max_new_tokens=4 + i % 9, seed=i
            ),
        )
        for i in range(24)
    ]
    alone = [hf_generator.generate([r])[0] for r in requests]
    forward_before = hf_generator.stats.forward_passes
    batcher = ContinuousBatcher(hf_generator, max_batch_size=8, max_wait_s=0.002)
    results: list[GenerationResult | None] = [None] * 24

    def worker(i: int) -> None:
        time.sleep(0.01 * (i % 5))  # arrivals while earlier rows are mid-decode
        results[i] = batcher.submit(requests[i]).result(timeout=120)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert [r.response_ids for r in results] == [r.response_ids for r in alone]
    for got, ref in zip(results, alone, strict=True):
        assert max(abs(a - b) for a, b in zip(got.logprobs, ref.logprobs, strict=True)) < 1e-4
        assert got.prompt_ids == ref.prompt_ids and got.finish_reason == ref.finish_reason
    assert batcher.stats.requests == 24 and batcher.stats.largest_batch <= 8
    # far fewer forward passes than decoding the 24 requests one after another
    assert hf_generator.stats.forward_passes - forward_before < sum(
        len(r.response_ids) for r in alone
    )


def test_continuous_batching_fails_a_bad_request_alone(hf_generator):
    from metaagentx.llm.batcher import ContinuousBatcher

    batcher = ContinuousBatcher(hf_generator, max_wait_s=0.02)
    good = batcher.submit(_request(1))
    bad = batcher.submit(GenerationRequest(prompt_ids=[1] * (hf_generator.max_positions + 5)))
    with pytest.raises(ValueError, match="context"):
        bad.result(timeout=60)
    assert len(good.result(timeout=60).response_ids) == 8
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(_request(2))
