"""Typed run configuration: YAML files plus dotted `key=value` overrides from the command line.

Every section is a pydantic model with `extra="forbid"`, so a misspelt key fails loudly with the
closest valid key suggested, instead of being silently ignored. The resolved config is written
into every run directory (`save_config`) so a run can always be reproduced.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metaagentx.sandbox.settings import SandboxSettings
from metaagentx.tool_settings import HostTool, ToolsConfig


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and what is wrong."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
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


class VLLMConfig(_Section):
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


class GenerationConfig(_Section):
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


class RolloutConfig(_Section):
    """The Executor-Designer Hierarchical Rollout (paper: M=4 designs x N=4 executions)."""

    mode: str = Field(
        "designed",
        description="'designed' (the model designs), 'single_agent', or 'fixed:<pattern>'.",
    )
    num_designs: int = Field(4, ge=1, description="M: designs sampled per problem.")
    num_executions: int = Field(4, ge=1, description="N: executions per valid design.")
    designer_max_new_tokens: int = Field(1024, ge=1, description="Token budget of one design.")
    executor_max_new_tokens: int = Field(512, ge=1, description="Token budget of one agent turn.")
    designer_temperature: float | None = Field(
        None, ge=0.0, description="Designer sampling temperature (None: generation.temperature)."
    )
    executor_temperature: float | None = Field(
        None,
        ge=0.0,
        description="Executor sampling temperature (None: generation.temperature). Sampled, not greedy, so the N executions differ.",
    )
    straggler_deadline_s: float = Field(
        600.0, gt=0.0, description="Unfinished executions are cut (reward 0) after this long."
    )
    compact_prompt: bool = Field(
        False,
        description="Use the short designer prompt (for small-context models such as the tiny one).",
    )
    designer_examples: list[str] | None = Field(
        None, description="Example designs shown to the designer (None: the prompt's default pair)."
    )
    designer_prompt: (
        Literal["full", "compact", "minimal", "pettingllms", "pettingllms_simple"] | None
    ) = Field(
        None,
        description="Designer prompt style; minimal is one line of instructions and the task (for a tiny model taught the format by SFT); pettingllms is the MetaAgent-X authors' code-generation prompt with their few-shots and format, pettingllms_simple their one-line prompt their checkpoints are trained on (evaluate a released checkpoint with it). None: compact or full by compact_prompt.",
    )
    designs_dir: str | None = Field(
        None,
        description="Example designs for the designer prompt and fixed:<pattern> modes: a folder or a package name (e.g. metaagentx.sft.designs, the programmatic teacher's). None: the packaged designs.",
    )
    code_reward: Literal["all_passed", "pass_fraction"] = Field(
        "all_passed",
        description="Code correctness: 0/1 when all tests pass (paper), or the pass fraction.",
    )
    format_bonus: float = Field(
        0.0, ge=0.0, description="Added to a correct, cleanly formatted answer (paper's code: 0.1)."
    )
    overlong_penalty: float = Field(
        0.0,
        ge=0.0,
        description="Subtracted when an agent turn hit its token cap (paper's code: 0.1).",
    )
    stray_code_penalty: float = Field(
        0.0,
        ge=0.0,
        description="Subtracted when a final math answer holds a code block (paper's code: 0.1).",
    )
    code_test_timeout_s: float = Field(
        5.0,
        gt=0.0,
        description="Per-test timeout of code grading, for the reward and the run_tests tool (a benchmark's own per-task limit wins).",
    )


class DataConfig(_Section):
    """Which tasks train and validate: registered names, local files or HF datasets."""

    train: list[str] = Field(
        default_factory=lambda: ["synthetic"],
        description="Training sources: synthetic[:FAMILY[:LEVEL]], a registered name (math_train, apps, ...), a local .json/.jsonl/.parquet/.csv file, or a Hugging Face dataset owner/name[:config[:split]] (e.g. openai/gsm8k:main).",
    )
    train_split: str | None = Field(
        "train",
        description="Split of every training source (a registered name's file, a Hugging Face split unless the id names one; local files have one).",
    )
    weights: list[float] | None = Field(
        None, description="Sampling ratio per training source (None: equal); mixes domains."
    )
    val: list[str] = Field(
        default_factory=lambda: ["synthetic"],
        description="Held-out sources, written like data.train (e.g. openai/gsm8k:main:test).",
    )
    val_split: str | None = Field(
        "test", description="Split of every held-out source (as data.train_split)."
    )
    val_size: int = Field(64, ge=1, description="Held-out tasks per source used for validation.")
    limit: int | None = Field(None, ge=1, description="Use at most this many tasks per source.")
    strict: bool = Field(
        False,
        description="Raise on the first malformed row (naming file:line) instead of skipping it; skipped rows are counted and named in the log either way.",
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Our field name -> the dataset's column, renamed before adaptation for local files and Hugging Face datasets (registered names keep their schema), e.g. {prompt: query, answer: final}; ours: prompt/question/problem, answer, solution, id, tests, ...",
    )
    format: str | None = Field(
        None,
        description="Row adapter for local files and Hugging Face datasets (e.g. generic_math, math, aime, humaneval, apps_raw, task; `metaagentx data check` shows the detected one); None: detected from the rows.",
    )


class TrainerConfig(_Section):
    """The RL update and the Stagewise Co-evolution schedule."""

    steps: int = Field(100, ge=0, description="RL steps.")
    batch_problems: int = Field(8, ge=1, description="Problems per RL step.")
    schedule: Literal["stagewise", "simultaneous", "designer_only", "executor_only"] = Field(
        "stagewise", description="Which roles learn at each step."
    )
    phase_steps: int = Field(30, ge=1, description="K: steps per stagewise phase (paper: ~30).")
    first_role: Literal["executor", "designer"] = Field(
        "executor", description="Role trained in the first stagewise phase."
    )
    advantage: Literal["grpo", "grpo_mean_only", "rloo"] = Field(
        "grpo", description="Group-relative advantage estimator."
    )
    executor_group: Literal["design", "problem"] = Field(
        "design",
        description="Executor advantage groups: the N executions of one design, or all executions of a problem.",
    )
    designer_lr: float = Field(1e-6, gt=0.0, description="Learning rate while the designer learns.")
    executor_lr: float = Field(1e-6, gt=0.0, description="Learning rate while the executor learns.")
    clip_ratio: float = Field(0.2, gt=0.0, description="PPO clip range (lower side).")
    clip_ratio_high: float | None = Field(
        None, gt=0.0, description="Upper clip range (DAPO clip-higher); None: same as clip_ratio."
    )
    dual_clip: float | None = Field(
        None,
        gt=1.0,
        description="Dual-clip constant c for negative advantages (e.g. 3.0); None: off.",
    )
    loss_aggregation: Literal["token-mean", "seq-mean-token-mean"] = Field(
        "token-mean", description="How token losses are averaged."
    )
    policy_loss: Literal["ppo_clip", "gspo", "reinforce"] = Field(
        "ppo_clip",
        description="Policy loss: ppo_clip (token ratios; dual clip, clip-higher), gspo (one clipped ratio per sequence, GSPO-token; use clip ranges like 3e-4/4e-4 and seq-mean-token-mean as the paper did) or reinforce (-A*logp, no ratio or clip).",
    )
    epochs: int = Field(
        1,
        ge=1,
        description="Passes over each step's trajectories (verl's ppo_epochs in spirit).",
    )
    mini_batches: int = Field(
        1,
        ge=1,
        description="Optimizer steps per epoch, each on a share of the step's problems with all their trajectories (verl's ppo_mini_batch_size in spirit, as a count). With epochs x mini_batches > 1 later steps run on moved weights, so ratios leave 1 and the clip acts; the LR schedule (warmup too) counts these optimizer steps.",
    )
    warmup_steps: int = Field(
        0,
        ge=0,
        description="Linear LR warmup, in optimizer steps per parameter owner (epochs x mini_batches per RL step).",
    )
    min_lr_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Cosine floor as a fraction of the peak LR (1.0: constant LR).",
    )
    recompute_logprobs: bool = Field(
        True,
        description="Recompute the old log-probs with the training forward once per step, before the first optimizer step (ratio exactly 1 there, and a resume that does not depend on how generation batched); false: the generator's log-probs are the old ones, for every mini-batch and epoch.",
    )
    kl_coef: float = Field(
        0.0, ge=0.0, description="k3 KL penalty to a frozen reference; 0 disables it."
    )
    entropy_coef: float = Field(0.0, ge=0.0, description="Entropy bonus.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    micro_batch_tokens: int = Field(8192, ge=1, description="Tokens per packed micro-batch.")
    logprob_chunk_tokens: int | None = Field(
        None,
        ge=1,
        description="Compute log-probs over this many tokens at a time, so memory is bounded by chunk x vocabulary instead of tokens x vocabulary (set it for large vocabularies, e.g. 1024 for Qwen3); none: all at once.",
    )
    bf16_autocast: bool = Field(
        False,
        description="bf16 autocast for the update: faster on GPUs and on CPUs with native bf16 matmuls (1.6-2.3x measured on one), ~10x slower on AVX2-only CPUs (see bench/README.md).",
    )
    save_every: int = Field(10, ge=1, description="Checkpoint every k steps.")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    val_every: int = Field(10, ge=1, description="Validate on held-out tasks every k steps.")
    resume: bool = Field(
        False, description="Continue from the newest valid checkpoint in the run directory."
    )


class SFTConfig(_Section):
    """Cold-start SFT: collecting teacher data (`sft collect`) and training on it (`sft train`)."""

    data: str | None = Field(
        None,
        description="Chat-format JSONL with role labels: written by `sft collect`, read by `sft train` (None: output_dir/sft_data.jsonl).",
    )
    teacher: Literal["programmatic", "model"] = Field(
        "programmatic",
        description="Who collects: the built-in programmatic teacher (synthetic suite, offline) or the model/backend of model+generation (e.g. generation.backend=openai for a served teacher).",
    )
    teacher_mix: dict[str, dict[str, float]] | None = Field(
        None,
        description="Programmatic teacher: per-domain pattern weights (None: its deliberately weak default).",
    )
    teacher_copy_error_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Programmatic teacher: chance an agent turn slips a digit."
    )
    collect_problems: int = Field(
        512, ge=1, description="Training problems to collect from (drawn from data.train)."
    )
    collect_batch: int = Field(16, ge=1, description="Problems per collection rollout.")
    designer_cap: int = Field(
        4, ge=0, description="At most this many designer records kept per problem."
    )
    executor_cap: int = Field(
        16, ge=0, description="At most this many executor records (agent turns) kept per problem."
    )
    min_design_accuracy: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="A design is kept when valid and at least this fraction of its executions is correct.",
    )
    record_designer_prompt: (
        Literal["full", "compact", "minimal", "pettingllms", "pettingllms_simple"] | None
    ) = Field(
        None,
        description="Prompt style stored in designer records (None: the one the teacher saw), so a big teacher can see the full prompt while the student trains on a short one.",
    )
    steps: int = Field(1000, ge=0, description="Optimizer steps.")
    batch_size: int = Field(32, ge=1, description="Sequences per optimizer step.")
    lr: float = Field(1e-3, gt=0.0, description="Peak learning rate.")
    warmup_steps: int = Field(50, ge=0, description="Linear warmup steps before cosine decay.")
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Cosine floor / peak LR.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    merge_turns: bool = Field(
        True,
        description="Train an agent's earlier turns inside its later turn's sequence instead of "
        "as separate records (same tokens and contexts, fewer tokens).",
    )
    micro_batch_tokens: int = Field(8192, ge=1, description="Tokens per packed micro-batch.")
    logprob_chunk_tokens: int | None = Field(
        None,
        ge=1,
        description="Compute log-probs over this many tokens at a time (see trainer.logprob_chunk_tokens); none: all at once.",
    )
    max_seq_tokens: int = Field(
        2048, ge=2, description="Records longer than this (prompt + completion) are skipped."
    )
    bf16_autocast: bool = Field(False, description="bf16 autocast for the forward/backward.")
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads for training (None: torch's default; 1 avoids oversubscribing a shared CPU).",
    )
    log_every: int = Field(10, ge=1, description="Log metrics every k steps.")
    save_every: int = Field(200, ge=1, description="Checkpoint every k steps.")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    eval_every: int = Field(
        0, ge=0, description="Held-out evaluation every k steps (0: only after the last step)."
    )
    eval_modes: list[Literal["sampled", "greedy"]] = Field(
        default_factory=lambda: ["sampled", "greedy"],
        description="Held-out evaluations: sampled (temperature 1) and/or greedy (temperature 0).",
    )
    resume: bool = Field(
        False, description="Continue from the newest valid SFT checkpoint in output_dir."
    )


class EvalConfig(_Section):
    """Benchmark evaluation."""

    benchmarks: list[str] = Field(
        default_factory=lambda: ["synthetic"],
        description="Registered benchmark names or local files.",
    )
    modes: list[str] = Field(
        default_factory=lambda: ["single_agent", "designed"],
        description="Modes to compare: single_agent, fixed:<pattern>, designed.",
    )
    samples: int = Field(1, ge=1, description="k of avg@k.")
    limit: int | None = Field(
        None, ge=1, description="Evaluate only the first n tasks of each benchmark."
    )


class RayRolloutConfig(_Section):
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


class DistributedConfig(_Section):
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


class LoggingConfig(_Section):
    """Where metrics go."""

    tensorboard: bool = Field(
        True, description="Write TensorBoard event files into the run directory."
    )
    wandb_project: str | None = Field(
        None,
        description="Also log to this Weights & Biases project (pip install 'metaagentx[wandb]'); "
        "a resumed run continues the same W&B run (its id is kept in tracking.json).",
    )
    wandb_entity: str | None = Field(
        None, description="W&B team or user that owns the project; None: your default entity."
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="Also log to MLflow at this tracking URI (http(s)://server, databricks, ...; "
        "pip install 'metaagentx[mlflow]'); None: off. A resumed run continues the same run.",
    )
    mlflow_experiment: str = Field(
        "metaagentx", description="MLflow experiment the run is created in (made if missing)."
    )
    run_name: str | None = Field(
        None, description="Name of the W&B and MLflow runs; None: the run directory's name."
    )
    log_every: int = Field(1, ge=1, description="Log metrics every k steps.")
    progress: bool = Field(True, description="Show rich progress bars.")


class Config(_Section):
    """A whole run."""

    seed: int = Field(0, description="Seed for Python, NumPy and torch RNGs.")
    output_dir: str = Field(
        "runs/default", description="Run directory: resolved config, logs, checkpoints, report."
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    tools: ToolsConfig = Field(
        default_factory=ToolsConfig,
        description="Tools beyond the built-ins: host-side functions and HTTP endpoints agents call by name.",
    )
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


def valid_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    """Every dotted key a config accepts, sections included."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(valid_keys(annotation, dotted + "."))
    return keys


def _unknown_key_error(key: str) -> ConfigError:
    keys = valid_keys()
    parent, _, leaf = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in keys if k.rpartition(".")[0] == parent}
    close = [siblings[m] for m in difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)]
    close = (
        close
        or [full for name, full in siblings.items() if leaf and leaf in name][:1]
        or difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
        or [k for k in keys if k.rpartition(".")[2] == leaf][:1]
    )
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _check_keys(data: Mapping[str, Any], model: type[BaseModel] = Config, prefix: str = "") -> None:
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        field = model.model_fields.get(name)
        if field is None:
            raise _unknown_key_error(dotted)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"config key '{dotted}' is a section and needs a mapping, got {value!r}"
                )
            _check_keys(value, annotation, dotted + ".")


def parse_override(item: str) -> tuple[str, Any]:
    """`trainer.steps=10` -> ("trainer.steps", 10); values are parsed as YAML scalars/lists."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override '{item}' is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{item}': value is not valid YAML: {exc}") from exc
    return key, value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{key}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"config key '{where}': {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def build_config(data: Mapping[str, Any] | None = None, overrides: Sequence[str] = ()) -> Config:
    """Validate a config mapping after applying `key=value` overrides."""
    merged: dict[str, Any] = copy.deepcopy(dict(data or {}))
    _check_keys(merged)
    known = set(valid_keys())
    for item in overrides:
        key, value = parse_override(item)
        if key not in known:
            raise _unknown_key_error(key)
        _check_keys(_nest(key, value))
        _set_dotted(merged, key, value)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping; a top-level `base:` (a path or list of paths, relative to the file)
    names configs merged underneath it, so ablations stay a few lines on a shared base."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"config file '{path}' includes itself through 'base'")
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from exc
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping at the top level")
    bases = loaded.pop("base", None) or []
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = _merge(merged, _read_yaml(path.parent / base, (*seen, path)))
    return _merge(merged, loaded)


def _merge(low: dict[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(low)
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config file (or the defaults when `path` is None) and apply overrides."""
    data = {} if path is None else _read_yaml(Path(path))
    return build_config(data, overrides)


def save_config(config: Config, run_dir: str | Path, name: str = "config.yaml") -> Path:
    """Write the resolved config as `name` in `run_dir` and return its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _set_dotted(out, key, value)
    return out


__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "GenerationConfig",
    "HostTool",
    "LoggingConfig",
    "ModelConfig",
    "RayRolloutConfig",
    "RolloutConfig",
    "SFTConfig",
    "SandboxSettings",
    "ToolsConfig",
    "TrainerConfig",
    "build_config",
    "load_config",
    "parse_override",
    "save_config",
    "valid_keys",
]
