"""Generation backends behind one interface, request batching and chat formatting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metaagentx.llm.base import (
    BackendCapabilityError,
    GenerationRequest,
    GenerationResult,
    Generator,
    PromptTooLong,
    SamplingParams,
)
from metaagentx.llm.batcher import RequestBatcher

if TYPE_CHECKING:
    from metaagentx.config import GenerationConfig, ModelConfig

__all__ = [
    "BackendCapabilityError",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "PromptTooLong",
    "RequestBatcher",
    "SamplingParams",
    "make_generator",
]


def make_generator(model: ModelConfig, generation: GenerationConfig, seed: int = 0) -> Generator:
    """Build the backend a config names. Heavy imports happen only for the chosen backend."""
    if generation.backend in ("hf", "vllm") and not model.path:
        raise ValueError(
            "model.path is not set: point it at a model directory (metaagentx tiny build --out DIR)"
        )
    if generation.backend == "hf":
        from metaagentx.llm.hf import HFGenerator

        return HFGenerator.from_pretrained(
            model.path,
            dtype=model.dtype,
            device=model.device,
            attn_implementation=model.attn_implementation,
            max_batch_size=generation.max_batch_size,
            seed=seed,
            num_threads=generation.torch_threads,
            max_prompt_tokens=generation.max_prompt_tokens,
            deterministic=generation.deterministic,
        )
    if generation.backend == "openai":
        from metaagentx.llm.openai_backend import OpenAIGenerator

        if not generation.base_url:
            raise ValueError(
                "generation.backend=openai needs generation.base_url (e.g. http://127.0.0.1:8000/v1)"
            )
        return OpenAIGenerator(
            generation.base_url,
            generation.served_model,
            api_key=generation.api_key,
            timeout_s=generation.timeout_s,
            max_retries=generation.max_retries,
            concurrency=generation.concurrency,
        )
    if generation.backend == "vllm":
        return _vllm_generator(model, generation, seed)
    raise ValueError(f"unknown generation backend '{generation.backend}'")


def _vllm_generator(model: ModelConfig, generation: GenerationConfig, seed: int) -> Generator:
    """A vLLM engine in its own process, or the running servers `generation.vllm.server_urls`
    names (evaluation does not start servers; training does: `distributed.vllm`)."""
    v = generation.vllm
    if v.placement == "server":
        from transformers import AutoTokenizer

        from metaagentx.llm.vllm_server import VLLMServerGenerator

        if not v.server_urls:
            raise ValueError("generation.vllm.placement=server needs generation.vllm.server_urls")
        return VLLMServerGenerator.from_config(
            v.server_urls, AutoTokenizer.from_pretrained(model.path), generation
        )
    from metaagentx.llm.vllm_backend import VLLMGenerator, engine_args

    return VLLMGenerator.from_config(model.path, engine_args(model.dtype, v, seed=seed), v)
