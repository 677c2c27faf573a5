"""Sections of the engine: which model, how it generates (hf, vLLM, OpenAI), where rollouts run
(Ray) and how training is distributed (torchrun/Ray, FSDP)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from metaagentx.config.base import Section


class ModelConfig(Section):
    """Which model to load and how."""

    path: str | None = Field(
        None,
        description="Local HF model directory (e.g. one made by `metaagentx tiny build`) or a hub name.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32", description="Weights dtype for training and the hf backend."
    )
    device: str = Field(
        "auto", description="'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1', ..."
    )
    attn_implementation: Literal["sdpa", "eager"] = Field(
        "sdpa", description="Attention kernel for transformers models."
    )
    parameter_sharing: Literal["shared", "lora", "separate"] = Field(
        "shared",
        description="One model for both roles (paper default), a LoRA adapter per role, or two models.",
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank (parameter_sharing=lora).")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (parameter_sharing=lora).")
    trust_remote_code: bool = Field(
        False, description="Passed to transformers when loading a model directory."
    )


class VLLMConfig(Section):
    """vLLM as the generator of evaluation and training (generation.backend=vllm)."""

    placement: Literal["colocated", "server"] = Field(
        "colocated",
        description="colocated: an engine per trainer rank (per parameter owner) in its own process, sharing the rank's GPU and sleeping through the update; server: vLLM OpenAI servers (server_urls, or num_servers started by the project), shared by all ranks.",
    )
    server_urls: list[str] = Field(
        default_factory=list,
        description="server placement: URLs (http://host:port/v1) of running servers, started with VLLM_SERVER_DEV_MODE=1 (and VLLM_ALLOW_RUNTIME_LORA_UPDATING=1 for lora); empty: the project starts num_servers. In separate sharing these serve the executor.",
    )
    designer_server_urls: list[str] = Field(
        default_factory=list,
        description="server placement, separate sharing: the designer model's servers (empty: started by the project).",
    )
    num_servers: int = Field(
        1,
        ge=1,
        description="server placement: servers the project starts per model when no URLs are given.",
    )
    server_gpus: list[str] = Field(
        default_factory=list,
        description="server placement: CUDA_VISIBLE_DEVICES of each started server, in order (empty: inherit).",
    )
    startup_timeout_s: float = Field(
        600.0, gt=0.0, description="Longest wait for a server the project starts to answer /health."
    )
    gpu_memory_utilization: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Fraction of GPU memory for each engine (KV cache included).",
    )
    max_model_len: int | None = Field(
        None, ge=16, description="Longest prompt + response an engine serves (None: the model's)."
    )
    enforce_eager: bool = Field(
        False, description="Skip CUDA graphs (faster start, slower decode; CPU engines need it)."
    )
    cpu_kv_cache_gib: int = Field(
        1,
        ge=1,
        description="CPU engines only: KV-cache size in whole GiB (VLLM_CPU_KVCACHE_SPACE).",
    )
    sync_dir: str | None = Field(
        None,
        description="Where synced weights are written for the engines to read (server placement across nodes: a shared filesystem); None: output_dir/weight-sync.",
    )
    sync_timeout_s: float = Field(
        300.0,
        gt=0.0,
        description="Deadline of one weight reload; past it the run stops with an error naming the engine.",
    )
    sync_check: bool = Field(
        True,
        description="After each sync, compare the engine's greedy log-probs on a probe prompt with the trainer's (catches stale or mis-routed weights).",
    )
    sync_check_tokens: int = Field(8, ge=1, description="Tokens the sync check generates.")
    sync_check_tolerance: float = Field(
        0.05,
        gt=0.0,
        description="Largest log-prob difference (nats) the sync check accepts (float32 engines agree within 1e-5; bf16 engines need a few hundredths).",
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Any other vllm.LLM / server argument (e.g. tensor_parallel_size).",
    )


class GenerationConfig(Section):
    """Which generation backend serves rollouts and how it samples."""

    backend: Literal["hf", "openai", "vllm"] = Field(
        "hf",
        description="hf: transformers in-process; openai: any OpenAI-compatible server; vllm: vLLM offline engine (GPU).",
    )
    temperature: float = Field(1.0, ge=0.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling threshold.")
    top_k: int = Field(0, ge=0, description="Top-k sampling; 0 disables it.")
    max_new_tokens: int = Field(512, ge=1, description="Maximum tokens per response.")
    max_batch_size: int = Field(
        64,
        ge=1,
        description="Largest batch one generate call runs (hf backend and request batcher).",
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="hf backend: torch intra-op threads while generating (None keeps torch's default; 1 is fastest for tiny models).",
    )
    deterministic: bool | None = Field(
        None,
        description="hf backend: batch-invariant decoding, so a seeded request samples the same tokens and log-probs whatever requests share its batch (under continuous batching that follows arrival times, i.e. CPU load): the same seed gives the same run. Costs generation speed (bench/determinism.py: 0.55x tokens/s in the worst case on the tiny model, ~6% of an RL step). None: on for CPU models, off on GPUs; false: batched kernels, where runs differ at ~1e-7 in logits and now and then in a sampled token.",
    )
    batch_wait_ms: float = Field(
        5.0,
        ge=0.0,
        description="How long the request batcher waits for more requests before running a batch: it runs once none has come for this long (at most 10x this after the first).",
    )
    max_prompt_tokens: int = Field(
        8192,
        ge=1,
        description="Longest prompt, in tokens, of one generation request: a longer one (an untrusted workflow writes its agents' prompts) fails alone with PromptTooLong before any compute. Enforced by the hf backend's batcher, and by the request batcher where the backend can count the prompt (prompt ids; an openai/vllm server enforces its own context limit on chat prompts).",
    )
    base_url: str | None = Field(
        None, description="openai backend: server URL, e.g. http://127.0.0.1:8000/v1."
    )
    api_key: str = Field("EMPTY", description="openai backend: API key (local servers ignore it).")
    served_model: str | None = Field(
        None,
        description="openai backend: model name to request; defaults to the server's first model.",
    )
    timeout_s: float = Field(120.0, gt=0.0, description="openai backend: per-request timeout.")
    max_retries: int = Field(
        3, ge=0, description="openai backend: retries with exponential backoff on transient errors."
    )
    concurrency: int = Field(16, ge=1, description="openai backend: requests in flight at once.")
    vllm: VLLMConfig = Field(
        default_factory=VLLMConfig,
        description="vllm backend: engines or servers, and the weight sync after each update.",
    )


class RayRolloutConfig(Section):
    """Rollout workers: Ray actors that run and grade the executions, each with its own grading
    environment (sandbox), while the trainer keeps the tree and serves every agent call from
    its own generators (so all workers' calls share its batches)."""

    rollout_workers: int = Field(
        0,
        ge=0,
        description="Rollout workers per trainer rank; 0: executions run in the trainer process. Ray is found as for launcher=ray: the running one, ray_address, or a local one sized for the workers.",
    )
    cpus_per_worker: float = Field(
        1.0,
        gt=0.0,
        description="CPUs Ray reserves for each rollout worker (its sandboxed executions run there).",
    )
    on_worker_loss: Literal["retry", "zero"] = Field(
        "retry",
        description="What happens to the executions a dying worker had in flight: retry re-runs them on a live worker (same seeds, so the same samples); zero scores them 0 (status worker_lost). Either way only that worker's executions are touched, and the losses are counted (executions/worker_lost).",
    )


class DistributedConfig(Section):
    """How training scales: ranks, launcher, FSDP2 sharding and its memory options.

    One process trains alone. Under `torchrun --nproc-per-node N -m metaagentx train ...` (or
    `launcher: ray`), each of the N ranks rolls out its share of the problems (each problem's
    whole M x N tree on one rank) and the update runs FSDP2-sharded across the ranks.
    """

    launcher: Literal["auto", "torchrun", "ray"] = Field(
        "auto",
        description="auto: one process, or the ranks torchrun started; torchrun: require torchrun's environment; ray: start num_trainers workers with Ray Train.",
    )
    num_trainers: int = Field(
        1,
        ge=1,
        description="Training ranks (ray: workers to start; torchrun: checked against WORLD_SIZE).",
    )
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="torch.distributed backend; auto: nccl on CUDA, gloo on CPU."
    )
    fsdp: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Shard weights, gradients and optimizer state with FSDP2; auto: when more than one rank.",
    )

    @field_validator("fsdp", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        """YAML reads a bare on/off as true/false; take them as the words."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    param_dtype: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="FSDP mixed precision: dtype of gathered parameters and compute (master weights stay in model.dtype).",
    )
    reduce_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="FSDP mixed precision: dtype of the gradient reduce-scatter."
    )
    cpu_offload: bool = Field(
        False,
        description="FSDP: keep sharded parameters, gradients and optimizer state in CPU memory.",
    )
    activation_checkpointing: bool = Field(
        False,
        description="Recompute each decoder layer's activations in backward (less memory, ~30% more compute).",
    )
    ray_address: str | None = Field(
        None,
        description="launcher=ray and rollout workers: address of a running Ray cluster (else RAY_ADDRESS); none starts a local one.",
    )
    use_gpu: bool = Field(False, description="launcher=ray: one GPU per worker.")
    cpus_per_trainer: float = Field(1.0, gt=0.0, description="launcher=ray: CPUs per worker.")
    ray: RayRolloutConfig = Field(
        default_factory=RayRolloutConfig,
        description="Rollout workers on Ray: executions and grading off the trainer process.",
    )
