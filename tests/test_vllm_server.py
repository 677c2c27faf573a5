"""vLLM OpenAI servers as the training generator: exact ids over HTTP, weight sync through the
dev routes, deadlines. Runs where vLLM is installed (CI's vLLM venv); skipped elsewhere."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

from metaagentx.config import VLLMConfig  # noqa: E402
from metaagentx.distributed.vllm_servers import VLLMServer  # noqa: E402
from metaagentx.distributed.weight_sync import SyncCheck, WeightSync  # noqa: E402
from metaagentx.llm.base import GenerationRequest, SamplingParams  # noqa: E402
from metaagentx.llm.vllm_backend import WeightSyncTimeout, engine_args  # noqa: E402
from metaagentx.llm.vllm_server import VLLMServerGenerator  # noqa: E402
from metaagentx.rollout.roles import EXECUTOR, ROLES  # noqa: E402
from metaagentx.train.distributed import World  # noqa: E402
from metaagentx.train.logprobs import largest_gap  # noqa: E402
from vllm_support import child_pids, paused, perturb, tiny_policy  # noqa: E402

CPU_ENGINE = VLLMConfig(enforce_eager=True, max_model_len=1024)


def greedy(prompt: str, execution: str) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": prompt}],
        sampling=SamplingParams(temperature=0.0, max_new_tokens=16),
        metadata={"execution_id": execution},
    )


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with VLLMServer(tiny_model_dir, engine_args("float32", CPU_ENGINE), log_path=log,
                    env={"VLLM_CPU_KVCACHE_SPACE": "1"}, startup_timeout_s=300) as started:
        yield started


@pytest.fixture(scope="module")
def client(server, hf_generator):
    generator = VLLMServerGenerator([server.url], hf_generator.tokenizer, sync_timeout_s=60)
    yield generator
    generator.close()


def test_served_ids_and_logprobs_equal_the_hf_backend(client, hf_generator):
    asks = [greedy(p, f"e{i}") for i, p in enumerate(["What is 2 + 3?", "Say hello."])]
    for ours, theirs in zip(client.generate(asks), hf_generator.generate(asks), strict=True):
        assert ours.prompt_ids == theirs.prompt_ids
        assert ours.response_ids == theirs.response_ids
        assert largest_gap(ours.logprobs, theirs.logprobs) < 1e-4


def test_weights_synced_to_the_server_match_the_trainer(client, tiny_model_dir, tmp_path):
    policy, tokenizer = tiny_policy(tiny_model_dir)
    perturb(policy.model_for(EXECUTOR), 0.05, seed=5)
    sync = WeightSync(policy, tokenizer, World(), dict.fromkeys(ROLES, client), tmp_path,
                      shared=True, check=SyncCheck(tokens=8, tolerance=1e-4))
    assert sync.sync(ROLES)[f"sync/{EXECUTOR}_logprob_gap"] < 1e-4


def test_a_stuck_server_times_out_naming_it(client, server, tmp_path):
    client.sync_timeout_s = 3.0
    started = time.monotonic()
    stuck = paused([server.process.pid, *child_pids(server.process.pid)])
    with stuck, pytest.raises(WeightSyncTimeout, match=f"vLLM server {server.url}"):
        client.reload_weights(tmp_path)
    assert time.monotonic() - started < 10
