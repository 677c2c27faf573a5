"""The parts of vLLM generation that need no engine: routing, engine arguments, what a weight
sync writes, and the trainer's refusals. Run everywhere."""

from __future__ import annotations

import importlib.util
import re
import socket
import time

import pytest
import torch
from safetensors.torch import load_file

from metaagentx.config import VLLMConfig, build_config
from metaagentx.distributed.vllm_generation import engine_groups
from metaagentx.distributed.vllm_servers import VLLMServer, server_arguments
from metaagentx.llm.base import GenerationRequest
from metaagentx.llm.vllm_backend import Deadline, WeightSyncTimeout, engine_args
from metaagentx.llm.vllm_server import ServerRouter, VLLMServerGenerator, session_key
from metaagentx.rl.trainer import check_generation
from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES
from metaagentx.train.logprobs import largest_gap
from metaagentx.train.weights import adapter_weights, full_weights, write_adapter, write_weights
from rl_support import load


def test_an_execution_keeps_its_server_and_the_rest_go_to_the_least_loaded():
    router = ServerRouter(3)
    first = router.acquire("exec-7")
    assert all(router.acquire("exec-7") == first for _ in range(5))  # affinity, even when busy
    idle = router.acquire(None)
    assert idle != first and router.in_flight[idle] == 1
    assert router.acquire(None) not in (first, idle)  # the third, still empty
    with pytest.raises(ValueError, match="at least one server"):
        ServerRouter(0)


def test_the_session_is_the_execution_then_the_design():
    ask = GenerationRequest(prompt_ids=[1], metadata={"design_id": "d", "execution_id": "e"})
    assert session_key(ask) == "e"
    assert session_key(GenerationRequest(prompt_ids=[1], metadata={"design_id": "d"})) == "d"
    assert session_key(GenerationRequest(prompt_ids=[1])) is None


def test_engine_arguments_round_lora_ranks_up_and_become_server_flags():
    args = engine_args("bfloat16", VLLMConfig(max_model_len=512), seed=3, lora_rank=12)
    assert args["max_lora_rank"] == 16 and args["enable_lora"] and args["seed"] == 3
    assert args["logprobs_mode"] == "processed_logprobs"  # temperature folded, as trained
    with pytest.raises(ValueError, match="LoRA ranks up to 512"):
        engine_args("auto", VLLMConfig(), lora_rank=1024)
    flags = server_arguments({"max_model_len": 512, "enforce_eager": True,
                              "enable_lora": False, "max_num_seqs": None})
    assert flags == ["--max-model-len", "512", "--enforce-eager"]
    custom = engine_args("auto", VLLMConfig(engine_kwargs={"tensor_parallel_size": 2}))
    assert custom["tensor_parallel_size"] == 2


def test_one_engine_per_set_of_generating_weights():
    assert engine_groups("shared") == {"policy": ROLES}
    assert engine_groups("lora") == {"policy": ROLES}
    assert engine_groups("separate") == {DESIGNER: (DESIGNER,), EXECUTOR: (EXECUTOR,)}


def test_synced_weights_carry_the_tied_output_layer(tiny_model_dir, tmp_path):
    model = load(tiny_model_dir)
    assert "lm_head.weight" not in dict(model.named_parameters())  # tied: the trap
    state = full_weights(model, torch.bfloat16)
    assert torch.equal(state["lm_head.weight"], state["model.embed_tokens.weight"])
    assert state["lm_head.weight"].dtype == torch.bfloat16
    saved = load_file(str(write_weights(state, tmp_path) / "model.safetensors"))
    assert saved.keys() == state.keys()
    assert not list(tmp_path.glob(".*"))  # written atomically, no leftovers


def test_an_adapter_is_written_as_a_peft_directory(tiny_model_dir, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    model = get_peft_model(load(tiny_model_dir), LoraConfig(r=4, target_modules="all-linear"),
                           adapter_name=EXECUTOR)
    state = adapter_weights(model, EXECUTOR)
    assert state and all("lora_" in k for k in state)
    folder = write_adapter(model, EXECUTOR, state, tmp_path / "executor-000001")
    loaded = PeftModel.from_pretrained(load(tiny_model_dir), str(folder))
    assert loaded.peft_config["default"].r == 4


def test_largest_gap():
    assert largest_gap([0.0, -1.0], [0.5, -1.25]) == 0.5
    assert largest_gap([], []) == 0.0
    with pytest.raises(ValueError):
        largest_gap([0.0], [])


def test_train_refuses_generators_it_cannot_learn_from():
    with pytest.raises(ValueError, match="openai serves evaluation"):
        check_generation(build_config({}, ["generation.backend=openai"]))
    with pytest.raises(ValueError, match="top_p=1 and top_k=0"):
        check_generation(build_config({}, ["generation.backend=vllm", "generation.top_p=0.9"]))
    check_generation(build_config({}, ["generation.backend=vllm"]))


def test_a_call_past_its_deadline_raises_naming_the_engine():
    deadline = Deadline("vLLM engine 'x' of rank 0", timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(WeightSyncTimeout, match=r"vLLM engine 'x' of rank 0: reloading"):
        deadline("reloading weights", lambda: time.sleep(3))
    assert time.monotonic() - started < 1.5
    deadline.close()


def test_a_server_that_never_answers_a_reload_times_out_naming_it(tmp_path):
    with socket.socket() as silent:  # accepts connections, never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        client = VLLMServerGenerator([url], tokenizer=None, model="m", sync_timeout_s=0.5)
        with pytest.raises(WeightSyncTimeout, match=f"vLLM server {re.escape(url)}"):
            client.reload_weights(tmp_path)
        client.close()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_a_server_that_exits_while_starting_is_an_error_quoting_its_log(tmp_path):
    with pytest.raises(RuntimeError, match=r"exited with code 1 while starting(.|\n)*vllm"):
        VLLMServer(tmp_path, {}, log_path=tmp_path / "server.log", startup_timeout_s=60)
