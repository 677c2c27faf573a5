"""The `metaagentx` command. Thin: parse arguments, load config, call the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from metaagentx import __version__

app = typer.Typer(
    name="metaagentx",
    help="Train one LLM end to end with RL to design and execute multi-agent systems (MetaAgent-X).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
tiny_app = typer.Typer(help="Build the tiny offline model and tokenizer.", no_args_is_help=True)
app.add_typer(tiny_app, name="tiny")
data_app = typer.Typer(help="Inspect benchmark files and datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
sft_app = typer.Typer(help="Cold-start SFT: teacher data, then training.", no_args_is_help=True)
app.add_typer(sft_app, name="sft")
config_app = typer.Typer(help="Inspect run configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True)


def _main_rank() -> bool:
    """False on torchrun's ranks other than 0 (they train silently)."""
    from metaagentx.train.distributed import world_from_env

    return world_from_env().rank == 0


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(__version__)


@tiny_app.command("build")
def tiny_build(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write the model and tokenizer into.")
    ],
    size: Annotated[
        str, typer.Option(help="Model size preset: nano (64x2), tiny (128x2), small (256x4).")
    ] = "tiny",
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary size.")] = 2048,
    seed: Annotated[int, typer.Option(help="Seed for the weights and the generated corpus.")] = 0,
) -> None:
    """Build a tiny Qwen3-architecture model and BPE tokenizer (offline) and save them."""
    from metaagentx.tiny import SIZES, build_tiny

    if size not in SIZES:
        raise _fail(f"unknown size '{size}'; choose one of {', '.join(SIZES)}")
    try:
        path = build_tiny(out, size=size, vocab_size=vocab_size, seed=seed)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"tiny model ({size}) saved to [bold]{path}[/]")


@app.command()
def generate(
    model: Annotated[
        str, typer.Option("--model", help="Model directory (or hub name when online).")
    ],
    prompt: Annotated[str, typer.Option("--prompt", help="User message (or raw text with --raw).")],
    max_new_tokens: Annotated[int, typer.Option(help="Maximum new tokens.")] = 64,
    temperature: Annotated[float, typer.Option(help="0 for greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling threshold.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Top-k sampling; 0 disables it.")] = 0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
    system: Annotated[str | None, typer.Option(help="Optional system message.")] = None,
    raw: Annotated[
        bool, typer.Option(help="Feed the prompt as raw text, without the chat template.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Generate one response with the hf backend; --json shows exact token ids and log-probs."""
    from metaagentx.llm.base import GenerationRequest, SamplingParams
    from metaagentx.llm.hf import HFGenerator

    try:
        sampling = SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            stop=tuple(stop or ()),
            seed=seed,
        )
        generator = HFGenerator.from_pretrained(model, device=device)
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    if raw:
        ids = generator.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            raise _fail("the prompt is empty")
        request = GenerationRequest(prompt_ids=ids, sampling=sampling)
    else:
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        request = GenerationRequest(messages=messages, sampling=sampling)
    result = generator.generate([request])[0]
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        console.print(result.text, markup=False, highlight=False)
        err_console.print(
            f"[dim]{len(result.prompt_ids)} prompt tokens, {len(result.response_ids)} new tokens, "
            f"finish: {result.finish_reason}[/]"
        )


@app.command("serve-model")
def serve_model(
    model: Annotated[str, typer.Option("--model", help="Model directory to serve.")],
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    host: Annotated[
        str, typer.Option(help="Bind address; keep 127.0.0.1 unless you mean to expose it.")
    ] = "127.0.0.1",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    dtype: Annotated[str, typer.Option(help="float32, bfloat16, float16 or auto.")] = "float32",
    max_batch_size: Annotated[int, typer.Option(help="Largest batch of merged requests.")] = 64,
    batch_wait_ms: Annotated[
        float, typer.Option(help="How long to wait for more requests to batch.")
    ] = 5.0,
    served_name: Annotated[
        str | None, typer.Option(help="Model name reported by /v1/models.")
    ] = None,
) -> None:
    """Serve a model over an OpenAI-compatible API (/v1/chat/completions, /v1/models)."""
    from metaagentx.llm.server import serve

    if not Path(model).expanduser().exists():
        raise _fail(f"model directory '{model}' does not exist")
    console.print(f"serving [bold]{model}[/] on http://{host}:{port}/v1", highlight=False)
    try:
        serve(
            model,
            host=host,
            port=port,
            device=device,
            dtype=dtype,
            max_batch_size=max_batch_size,
            batch_wait_ms=batch_wait_ms,
            served_name=served_name,
        )
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None


@data_app.command("show")
def data_show(
    name_or_path: Annotated[
        str,
        typer.Argument(
            help="Registered name (aime2024, apps, synthetic, ...), local file, or HF dataset."
        ),
    ],
    limit: Annotated[int, typer.Option(help="How many tasks to show.")] = 5,
    split: Annotated[str | None, typer.Option(help="Split (default: the dataset's own).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines instead of a table.")
    ] = False,
) -> None:
    """Show the first tasks of a dataset in the unified Task schema."""
    from rich.table import Table

    from metaagentx.tasks.datasets import show_tasks

    try:
        rows = show_tasks(name_or_path, limit=limit, split=split)
    except (ValueError, OSError, KeyError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"{name_or_path}: first {len(rows)} tasks", show_lines=True)
    for column in ("id", "domain", "prompt", "reference", "difficulty"):
        table.add_column(column, overflow="fold")
    for row in rows:
        tests = len(row.get("public_tests") or []) + len(row.get("hidden_tests") or [])
        reference = row.get("answer") if row.get("answer") is not None else f"{tests} tests"
        prompt = row["prompt"] if len(row["prompt"]) <= 300 else row["prompt"][:300] + " ..."
        table.add_row(
            str(row["id"]), row["domain"], prompt, str(reference), str(row.get("difficulty"))
        )
    console.print(table)


@data_app.command("check")
def data_check(
    name_or_path: Annotated[
        str, typer.Argument(help="Registered name, local file, or HF dataset.")
    ],
    split: Annotated[str | None, typer.Option(help="Split (default: the dataset's own).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Count rows and tasks, and list malformed rows with their reasons."""
    from metaagentx.tasks.datasets import check_tasks

    try:
        report = check_tasks(name_or_path, split=split)
    except (ValueError, OSError, KeyError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    console.print(
        f"[bold]{report['source']}[/] ({report['format']}): {report['rows']} rows -> "
        f"{report['tasks']} tasks, {report['skipped']} skipped",
        highlight=False,
    )
    console.print(
        f"domains: {report['domains']}  test kinds: {report['test_kinds']}", highlight=False
    )
    for bad in report["malformed"]:
        console.print(
            f"  [yellow]skipped[/] row {bad['row']} ({bad['id']}): {bad['reason']}", highlight=False
        )


@app.command("design")
def design(
    question: Annotated[
        str, typer.Option("--question", help="The task to design a multi-agent system for.")
    ],
    model: Annotated[str, typer.Option("--model", help="Model directory that plays the designer.")],
    domain: Annotated[str, typer.Option(help="math or code.")] = "math",
    temperature: Annotated[float, typer.Option(help="0 for greedy.")] = 0.0,
    max_new_tokens: Annotated[int, typer.Option(help="Token budget of the design.")] = 1024,
    compact: Annotated[
        bool, typer.Option(help="Use the short designer prompt (small models).")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the design as JSON.")] = False,
) -> None:
    """Ask the model for one design (analysis, pattern, script) and check it statically."""
    from metaagentx.llm.base import GenerationRequest, SamplingParams
    from metaagentx.llm.hf import HFGenerator
    from metaagentx.rollout.extract import extract_design
    from metaagentx.rollout.prompts import designer_messages

    if domain not in ("math", "code"):
        raise _fail(f"unknown domain '{domain}'; choose math or code")
    try:
        generator = HFGenerator.from_pretrained(model, device=device)
        sampling = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    messages = designer_messages(question, domain, compact=compact)
    result = generator.generate(
        [GenerationRequest(messages=messages, sampling=sampling, role="designer")]
    )[0]
    parsed = extract_design(result.text, task_prompt=question)
    if as_json:
        payload = {
            "text": result.text,
            "pattern": parsed.pattern,
            "valid": parsed.valid,
            "reason": parsed.reason,
            "detail": parsed.detail,
            "script": parsed.script,
            "response_ids": result.response_ids,
        }
        typer.echo(json.dumps(payload))
        return
    console.print(result.text, markup=False, highlight=False)
    verdict = (
        "[green]valid[/]" if parsed.valid else f"[red]rejected ({parsed.reason})[/] {parsed.detail}"
    )
    console.print(f"pattern: {parsed.pattern}  design: {verdict}", highlight=False)


TESTS_HELP = (
    "Code tests (--domain code), a .json/.jsonl file or inline JSON: "
    '{"inputs": [...], "outputs": [...]} stdin/stdout pairs (call tests with "fn_name"), '
    '{"functional": "<asserts, or def check(candidate) ... check(f)>"}, '
    '{"public_tests": [...], "hidden_tests": [...]}, or a list of '
    '{"kind": "stdio|call|functional", "input": ..., "expected": ..., "fn_name": ...} tests; '
    "the first of several tests is shown to agents (run_tests), all are graded. "
    "Without --tests a code run is not graded."
)


@app.command("run")
def run(
    question: Annotated[
        str, typer.Option("--question", help="The task text, injected as `question`.")
    ],
    model: Annotated[str, typer.Option("--model", help="Model directory that plays every role.")],
    script: Annotated[
        Path | None,
        typer.Option(
            "--script",
            help="A design script to execute (statically checked like the model's designs); "
            "without it the model designs one first.",
        ),
    ] = None,
    domain: Annotated[str, typer.Option(help="math or code: decides the answer format.")] = "math",
    answer: Annotated[
        str | None, typer.Option(help="Reference answer (math) to grade the result against.")
    ] = None,
    tests: Annotated[str | None, typer.Option("--tests", help=TESTS_HELP)] = None,
    dialect: Annotated[
        str,
        typer.Option(
            help="Workflow API of the script (sandbox.dialect): metaagentx (ours), pettingllms "
            "(the MetaAgent-X authors') or auto (read from the script)."
        ),
    ] = "auto",
    temperature: Annotated[
        float, typer.Option(help="Sampling temperature of every call (0 = greedy).")
    ] = 0.0,
    max_new_tokens: Annotated[int, typer.Option(help="Token budget of one agent turn.")] = 256,
    design_max_new_tokens: Annotated[int, typer.Option(help="Token budget of the design.")] = 1024,
    compact: Annotated[
        bool, typer.Option(help="Use the short designer prompt (small models).")
    ] = False,
    isolation: Annotated[
        str,
        typer.Option(
            help="Sandbox isolation: auto, strict, process or unsafe (no hidden filesystem: "
            "never for grading)."
        ),
    ] = "auto",
    timeout_s: Annotated[float, typer.Option(help="Wall-clock limit of the execution.")] = 120.0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print exactly one JSON object, whatever happens.")
    ] = False,
) -> None:
    """Execute a design in the sandbox (--script, or designed by the model first) and grade it:
    math with --answer, code with --tests (without them the run is not graded).

    --json prints exactly one JSON object. Exit code: 0 when the execution ran (even if wrong),
    1 when it never reported, 2 for bad arguments, rejected designs or no sandbox."""
    from metaagentx.cli_run import RunOptions, run_command

    options = RunOptions(
        question=question,
        model=model,
        script=script,
        domain=domain,
        answer=answer,
        tests=tests,
        dialect=dialect,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        design_max_new_tokens=design_max_new_tokens,
        compact=compact,
        isolation=isolation,
        timeout_s=timeout_s,
        device=device,
        as_json=as_json,
    )
    code = run_command(options)
    if code:
        raise typer.Exit(code=code)


@app.command("rollout")
def rollout(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the JSONL (default: output_dir).")
    ] = None,
) -> None:
    """Build one rollout tree (M designs x N executions per problem) and write it as JSONL."""
    from rich.table import Table

    from metaagentx.config import ConfigError, load_config, save_config
    from metaagentx.rollout.factory import open_rollout, train_mixture
    from metaagentx.rollout.trajectory import write_jsonl
    from metaagentx.sandbox.layers import SandboxUnavailable

    try:
        config = load_config(config_path, overrides or [])
        tasks = train_mixture(config).next_batch(config.trainer.batch_problems)
    except (ConfigError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    out_dir = out or Path(config.output_dir)
    save_config(config, out_dir)
    try:
        with open_rollout(config) as stack:
            tree = stack.engine.rollout_sync(tasks)
    except (SandboxUnavailable, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    tree_path = out_dir / "rollout.jsonl"
    with tree_path.open("w") as f:
        for record in tree.to_records():
            f.write(json.dumps(record) + "\n")
    n = write_jsonl(out_dir / "trajectories.jsonl", tree.trajectories())
    table = Table(title=f"rollout of {len(tasks)} problems")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(tree.metrics().items()):
        table.add_row(key, f"{value:.4g}")
    console.print(table)
    console.print(
        f"wrote {tree_path} and {n} trajectories to {out_dir / 'trajectories.jsonl'}",
        highlight=False,
    )


@app.command("train")
def train_command(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """RL: hierarchical rollouts, role-aware advantages, stagewise co-evolution, checkpoints;
    exports output_dir/model at the end.

    Several ranks: `torchrun --nproc-per-node N -m metaagentx train CONFIG`, or
    `distributed.launcher=ray distributed.num_trainers=N` (Ray Train workers)."""
    from metaagentx.config import ConfigError, load_config
    from metaagentx.distributed import RayRunError, launch
    from metaagentx.rl.trainer import train_rank
    from metaagentx.sandbox.layers import SandboxUnavailable

    try:
        config = load_config(config_path, overrides or [])
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        metrics = launch(train_rank, config)
    except (SandboxUnavailable, ValueError, OSError, RayRunError, ImportError) as exc:
        raise _fail(str(exc)) from None
    if _main_rank():
        console.print(
            f"done: {config.trainer.steps} steps in {config.output_dir}; last accuracy "
            f"{metrics.get('accuracy/all', float('nan')):.3f}; model in "
            f"{Path(config.output_dir) / 'model'}",
            highlight=False,
        )


@app.command("export")
def export_command(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR|CHECKPOINT",
            help="A run directory (its newest valid checkpoint) or RUN_DIR/checkpoints/step-N.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    merge_lora: Annotated[
        bool, typer.Option(help="lora runs: write merged full models instead of adapters.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out.")] = False,
    push_to_hub: Annotated[
        str | None, typer.Option(help="Also upload to this Hugging Face repo (user/name).")
    ] = None,
    private: Annotated[bool, typer.Option(help="--push-to-hub: create a private repo.")] = False,
) -> None:
    """A checkpoint (saved at any world size) as a Hugging Face model directory: config,
    safetensors, tokenizer, generation config and a model card; per-role directories for
    separate models; PEFT adapters (or merged models) for lora."""
    from metaagentx.train.checkpoint import CheckpointError
    from metaagentx.train.engine import export_checkpoint
    from metaagentx.train.export import push_to_hub as upload

    try:
        path = export_checkpoint(source, out, merge_lora=merge_lora, overwrite=overwrite)
    except (CheckpointError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"exported {source} to {path}", highlight=False)
    if push_to_hub:
        try:
            url = upload(path, push_to_hub, private=private)
        except (ValueError, OSError) as exc:
            raise _fail(f"push to {push_to_hub} failed: {exc}") from None
        console.print(f"pushed to {url}", highlight=False)


@sft_app.command("collect")
def sft_collect(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """Rejection-sample SFT records (correct executions only) from the teacher; resumable."""
    from metaagentx.config import ConfigError, load_config
    from metaagentx.sandbox.layers import SandboxUnavailable
    from metaagentx.sft.collect import collect

    try:
        config = load_config(config_path, overrides or [])
        report = collect(config, console=console)
    except (ConfigError, SandboxUnavailable, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    summary = report.to_dict()
    console.print(
        f"{summary['problems']} problems ({summary['resumed_problems']} from before) -> "
        f"kept {summary['kept']} in {summary['path']}",
        highlight=False,
    )
    for reason, n in summary["rejected"].items():
        console.print(f"  rejected {reason}: {n}", highlight=False)


@sft_app.command("train")
def sft_train(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """Supervised fine-tuning on collected records; saves output_dir/model for RL."""
    from metaagentx.config import ConfigError, load_config
    from metaagentx.distributed import RayRunError, launch
    from metaagentx.sandbox.layers import SandboxUnavailable
    from metaagentx.sft.train import train_sft_rank

    try:
        config = load_config(config_path, overrides or [])
        metrics = launch(train_sft_rank, config)
    except (ConfigError, SandboxUnavailable, ValueError, OSError, RayRunError, ImportError) as exc:
        raise _fail(str(exc)) from None
    if not _main_rank():
        return
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(("val/", "loss"))}
    console.print_json(json.dumps(shown))
    console.print(f"model saved to {Path(config.output_dir) / 'model'}", highlight=False)


@app.command("eval")
def eval_command(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (YAML).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    label: Annotated[
        str, typer.Option(help="Name of this evaluation (e.g. after_sft, after_rl): file names.")
    ] = "eval",
) -> None:
    """avg@k accuracy with 95% CIs on eval.benchmarks x eval.modes; writes output_dir/eval/.

    k = eval.samples: k executions of the one design per problem (single_agent, fixed:<pattern>),
    or k designs x 1 execution each (designed; a rejected design scores 0)."""
    from rich.table import Table

    from metaagentx.config import ConfigError, load_config
    from metaagentx.eval.evaluate import evaluate
    from metaagentx.eval.tables import COLUMNS, baseline_rows
    from metaagentx.sandbox.layers import SandboxUnavailable

    try:
        config = load_config(config_path, overrides or [])
        report = evaluate(config, label=label, console=err_console)
    except (ConfigError, SandboxUnavailable, ValueError, OSError, KeyError) as exc:
        raise _fail(str(exc)) from None
    paths = report.write(Path(config.output_dir) / "eval")
    table = Table(title=f"evaluation '{label}': avg@{config.eval.samples}, % [95% CI]")
    for column in COLUMNS[1:]:
        table.add_column(column, overflow="fold")
    for row in baseline_rows([report.to_dict()]):
        table.add_row(*(row[c] for c in COLUMNS[1:]))
    console.print(table)
    console.print(
        f"wrote {paths['json']}, {paths['markdown']} and {paths['records']}", highlight=False
    )


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="HTML file to write (default RUN_DIR/report.html).")
    ] = None,
    trace_steps: Annotated[
        int, typer.Option(help="Latest training steps in the trace browser.")
    ] = 2,
    trace_problems: Annotated[int, typer.Option(help="Problems shown per step.")] = 6,
) -> None:
    """Write one self-contained HTML report: config, curves, baselines, patterns, traces."""
    from metaagentx.eval.report import write_report

    try:
        path = write_report(
            run_dir, out, trace_steps=max(trace_steps, 0), trace_problems=max(trace_problems, 0)
        )
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"report written to [bold]{path}[/]", highlight=False)


@config_app.command("show")
def config_show(
    config_path: Annotated[
        Path | None, typer.Argument(metavar="[CONFIG]", help="A run config (default: defaults).")
    ] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="Only keys starting with this prefix.")
    ] = None,
) -> None:
    """Print every config key with its value (the default, or CONFIG's), type and description;
    `key=value` overrides apply with or without CONFIG."""
    from rich.table import Table

    from metaagentx.config import ConfigError, load_config
    from metaagentx.config_keys import config_keys, show_value

    overrides = list(overrides or [])
    if config_path is not None and "=" in str(config_path) and not config_path.exists():
        overrides, config_path = [str(config_path), *overrides], None  # overrides on defaults
    try:
        rows = config_keys(load_config(config_path, overrides))
    except (ConfigError, OSError) as exc:
        raise _fail(str(exc)) from None
    rows = [r for r in rows if key is None or r.key.startswith(key)]
    if not rows:
        raise _fail(f"no config key starts with '{key}'")
    table = Table(show_lines=False)
    table.add_column("key", no_wrap=True)  # a key is only useful whole: copy it into an override
    table.add_column("value", overflow="fold", max_width=30)
    table.add_column("type", overflow="fold", max_width=24)
    table.add_column("description")
    for row in rows:
        table.add_row(row.key, show_value(row.value), row.type, row.description)
    console.print(table)


@app.command("quickstart")
def quickstart(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/quickstart"),
    fast: Annotated[
        bool, typer.Option(help="A much smaller run (about 2 minutes) to check the pipeline.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the whole run.")] = 0,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides of the embedded config.")
    ] = None,
) -> None:
    """The whole method offline on a CPU: tiny model, teacher data, SFT, baselines, RL, eval, report."""
    from metaagentx.config import ConfigError
    from metaagentx.quickstart import quickstart_config, run_quickstart
    from metaagentx.sandbox.layers import SandboxUnavailable

    try:
        config = quickstart_config(out, fast=fast, seed=seed, overrides=overrides)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        run_quickstart(config, console)
    except (SandboxUnavailable, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
