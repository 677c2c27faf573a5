"""The openai backend against a real `metaagentx serve-model` process over HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from metaagentx.llm.base import (
    BackendCapabilityError,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
)
from metaagentx.llm.openai_backend import OpenAIGenerator
from metaagentx.llm.server import ServerThread, create_app
from server_support import free_port


def _messages(text: str):
    return [{"role": "user", "content": text}]


def test_generates_through_the_server_with_exact_token_ids(served_model, hf_generator):
    backend = OpenAIGenerator(served_model, concurrency=4)
    assert backend.model == str(Path(backend.model))  # the served_model names its model directory
    requests = [
        GenerationRequest(
            messages=_messages(t), sampling=SamplingParams(temperature=0, max_new_tokens=10)
        )
        for t in ["hi", "Compute 12+30.", "write code"]
    ]
    remote = backend.generate(requests)
    local = hf_generator.generate(requests)
    for r, ref in zip(remote, local, strict=True):
        assert r.prompt_ids == ref.prompt_ids
        assert r.response_ids == ref.response_ids
        assert r.logprobs == pytest.approx(ref.logprobs, abs=1e-4)
        assert r.text == ref.text
        assert r.finish_reason == "length"
    backend.close()


def test_seeded_sampling_and_stop_strings_pass_through(served_model, hf_generator):
    backend = OpenAIGenerator(served_model)
    sampled = GenerationRequest(
        messages=_messages("hi"), sampling=SamplingParams(temperature=1.0, max_new_tokens=8, seed=5)
    )
    assert (
        backend.generate([sampled])[0].response_ids
        == hf_generator.generate([sampled])[0].response_ids
    )
    free = hf_generator.generate(
        [
            GenerationRequest(
                messages=_messages("hi"), sampling=SamplingParams(temperature=0, max_new_tokens=8)
            )
        ]
    )[0]
    stop = hf_generator.tokenizer.decode(free.response_ids[2:3])
    stopped = backend.generate(
        [
            GenerationRequest(
                messages=_messages("hi"),
                sampling=SamplingParams(temperature=0, max_new_tokens=8, stop=(stop,)),
            )
        ]
    )[0]
    assert stopped.finish_reason == "stop" and len(stopped.response_ids) <= 3
    backend.close()


def test_missing_token_ids_is_a_clear_error(served_model):
    # the served_model leaves token ids out when not asked for them, like a plain OpenAI endpoint
    backend = OpenAIGenerator(
        served_model, extra_body={"return_token_ids": False, "return_tokens_as_token_ids": False}
    )
    request = GenerationRequest(
        messages=_messages("hi"), sampling=SamplingParams(temperature=0, max_new_tokens=4)
    )
    with pytest.raises(BackendCapabilityError, match="prompt token ids, response token ids"):
        backend.generate([request])
    text_only = OpenAIGenerator(
        served_model,
        require_token_ids=False,
        extra_body={"return_token_ids": False, "return_tokens_as_token_ids": False},
    )
    result = text_only.generate([request])[0]
    assert result.text and result.response_ids == []


def test_server_rejects_what_it_cannot_do(served_model):
    client = openai.OpenAI(base_url=served_model, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=client.models.list().data[0].id, messages=_messages("hi"), stream=True
        )
    assert "streaming is not supported" in info.value.response.json()["error"]["message"]
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="gpt-nothing", messages=_messages("hi"))
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=client.models.list().data[0].id, messages=[])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(
            model=client.models.list().data[0].id, messages=_messages("hi"), temperature=-1
        )


def test_unreachable_server_fails_after_bounded_retries():
    port = free_port()  # nothing listens here
    start = time.monotonic()
    with pytest.raises(openai.APIConnectionError):
        OpenAIGenerator(f"http://127.0.0.1:{port}/v1", timeout_s=2, max_retries=1)
    assert time.monotonic() - start < 30


class _Recorder:
    """A generator front that answers every request with fixed ids and remembers it."""

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []
        self.closed = False

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        return GenerationResult([1, 2], [3, 4], [-0.5, -0.25], "hi", "stop", role=request.role)

    def close(self) -> None:
        self.closed = True


def test_a_trainer_server_keeps_role_seed_and_metadata_and_needs_its_key():
    """What rollout workers rely on: their requests arrive as they were made, ids come back."""
    front = _Recorder()
    server = ServerThread(create_app(front, "trainer", owns_batcher=False, api_key="key"))
    request = GenerationRequest(
        messages=_messages("hi"),
        sampling=SamplingParams(temperature=0.7, top_k=3, max_new_tokens=5, seed=11),
        role="designer",
        metadata={"execution_id": "p/d0/e1", "seed": 7, "agent": "Solver"},
    )
    try:
        client = OpenAIGenerator(server.url, "trainer", api_key="key", send_metadata=True)
        result = client.generate([request])[0]
        client.close()
        assert (result.prompt_ids, result.response_ids, result.logprobs) == (
            [1, 2], [3, 4], [-0.5, -0.25])
        (seen,) = front.requests
        assert (seen.role, seen.metadata, seen.sampling, seen.messages) == (
            request.role, request.metadata, request.sampling, request.messages)
        stranger = OpenAIGenerator(server.url, "trainer", api_key="guess", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="API key"):
            stranger.generate([request])
        stranger.close()
    finally:
        server.stop()
    assert not front.closed  # the trainer's generators outlive its server
