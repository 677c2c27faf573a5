"""The openai backend against a real `metaagentx serve-model` process over HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from metaagentx.llm.base import BackendCapabilityError, GenerationRequest, SamplingParams
from metaagentx.llm.openai_backend import OpenAIGenerator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metaagentx",
            "serve-model",
            "--model",
            str(tiny_model_dir),
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve-model exited: {proc.stdout.read().decode()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("serve-model did not come up in 90 s")
    yield base + "/v1"
    proc.terminate()
    proc.wait(timeout=30)


def _messages(text: str):
    return [{"role": "user", "content": text}]


def test_generates_through_the_server_with_exact_token_ids(server, hf_generator):
    backend = OpenAIGenerator(server, concurrency=4)
    assert backend.model == str(Path(backend.model))  # the server names its model directory
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


def test_seeded_sampling_and_stop_strings_pass_through(server, hf_generator):
    backend = OpenAIGenerator(server)
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


def test_missing_token_ids_is_a_clear_error(server):
    # the server leaves token ids out when not asked for them, like a plain OpenAI endpoint
    backend = OpenAIGenerator(
        server, extra_body={"return_token_ids": False, "return_tokens_as_token_ids": False}
    )
    request = GenerationRequest(
        messages=_messages("hi"), sampling=SamplingParams(temperature=0, max_new_tokens=4)
    )
    with pytest.raises(BackendCapabilityError, match="prompt token ids, response token ids"):
        backend.generate([request])
    text_only = OpenAIGenerator(
        server,
        require_token_ids=False,
        extra_body={"return_token_ids": False, "return_tokens_as_token_ids": False},
    )
    result = text_only.generate([request])[0]
    assert result.text and result.response_ids == []


def test_server_rejects_what_it_cannot_do(server):
    client = openai.OpenAI(base_url=server, api_key="x", max_retries=0)
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
    port = _free_port()  # nothing listens here
    start = time.monotonic()
    with pytest.raises(openai.APIConnectionError):
        OpenAIGenerator(f"http://127.0.0.1:{port}/v1", timeout_s=2, max_retries=1)
    assert time.monotonic() - start < 30
