"""vLLM's offline engine behind the `Generator` interface, for GPU rollouts.

vLLM cannot be installed on a CPU-only machine, so it is imported only when this backend is
built. The engine runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0), which lets
`update_weights` copy the trainer's new weights straight into the engine's model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator
from metaagentx.llm.chat import render_prompt_ids


class VLLMGenerator(Generator):
    """Batched generation with `vllm.LLM`; log-probs of the sampled tokens come from the engine."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.5,
        seed: int = 0,
        **engine_kwargs: Any,
    ) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                "the vllm backend needs vLLM on a GPU machine: pip install 'metaagentx[vllm]'"
            ) from exc
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=str(model_path),
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
            enable_prefix_caching=True,
            **engine_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        prompts = [
            r.prompt_ids
            if r.prompt_ids is not None
            else render_prompt_ids(self.tokenizer, r.messages or [])
            for r in requests
        ]
        params = [
            self._vllm.SamplingParams(
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p,
                top_k=r.sampling.top_k if r.sampling.top_k > 0 else -1,
                max_tokens=r.sampling.max_new_tokens,
                stop=list(r.sampling.stop) or None,
                seed=r.sampling.seed,
                logprobs=0,  # the sampled token's own log-prob
            )
            for r in requests
        ]
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False
        )
        results = []
        for request, prompt, output in zip(requests, prompts, outputs, strict=True):
            completion = output.outputs[0]
            ids = list(completion.token_ids)
            logprobs = [
                step[token].logprob for step, token in zip(completion.logprobs, ids, strict=True)
            ]
            results.append(
                GenerationResult(
                    prompt_ids=list(prompt),
                    response_ids=ids,
                    logprobs=logprobs,
                    text=completion.text,
                    finish_reason="length" if completion.finish_reason == "length" else "stop",
                    role=request.role,
                    stop_reason=completion.stop_reason
                    if isinstance(completion.stop_reason, str)
                    else None,
                    metadata=dict(request.metadata),
                )
            )
        return results

    def update_weights(
        self, state_dict: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]
    ) -> None:
        """Load the trainer's weights (HF parameter names) into the engine's model."""
        items = list(state_dict.items()) if isinstance(state_dict, Mapping) else list(state_dict)
        self.llm.apply_model(lambda model: model.load_weights(iter(items)))
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
