"""Sections of the method: data, the M x N rollout, the RL trainer, SFT, evaluation and logging."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from metaagentx.config.base import Section


class RolloutConfig(Section):
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


class DataConfig(Section):
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


class TrainerConfig(Section):
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


class SFTConfig(Section):
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


class EvalConfig(Section):
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


class LoggingConfig(Section):
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
