"""Commands about one model: build the tiny one, generate, serve, design, run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from metaagentx.cli.common import console, err_console, fail

DTYPE_HELP = "Weights dtype: auto (the checkpoint's own), float32, bfloat16 or float16."


def tiny_build(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write the model and tokenizer into.")
    ],
    size: Annotated[
        str, typer.Option(help="Model size preset: nano (64x2), tiny (128x2), small (256x4).")
    ] = "tiny",
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary size.")] = 2048,
    seed: Annotated[int, typer.Option(help="Seed for the weights and the generated corpus.")] = 0,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a non-empty --out (after the new model is written).")
    ] = False,
) -> None:
    """Build a tiny Qwen3-architecture model and BPE tokenizer (offline) and save them."""
    from metaagentx.tiny import SIZES, build_tiny

    if size not in SIZES:
        raise fail(f"unknown size '{size}'; choose one of {', '.join(SIZES)}")
    try:
        path = build_tiny(out, size=size, vocab_size=vocab_size, seed=seed, overwrite=overwrite)
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(f"tiny model ({size}) saved to [bold]{path}[/]")


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
    dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "auto",
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
        generator = HFGenerator.from_pretrained(model, device=device, dtype=dtype)
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    if raw:
        ids = generator.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            raise fail("the prompt is empty")
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


def serve_model(
    model: Annotated[str, typer.Option("--model", help="Model directory to serve.")],
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    host: Annotated[
        str, typer.Option(help="Bind address; keep 127.0.0.1 unless you mean to expose it.")
    ] = "127.0.0.1",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "auto",
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

    def ready(url: str) -> None:
        console.print(f"serving [bold]{model}[/] on {url}", highlight=False)

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
            on_ready=ready,
        )
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None


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
    dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the design as JSON.")] = False,
) -> None:
    """Ask the model for one design (analysis, pattern, script) and check it statically."""
    from metaagentx.llm.base import GenerationRequest, SamplingParams
    from metaagentx.llm.hf import HFGenerator
    from metaagentx.rollout.extract import extract_design
    from metaagentx.rollout.prompts import designer_messages

    if domain not in ("math", "code"):
        raise fail(f"unknown domain '{domain}'; choose math or code")
    try:
        generator = HFGenerator.from_pretrained(model, device=device, dtype=dtype)
        sampling = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None
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
    dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "auto",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print exactly one JSON object, whatever happens.")
    ] = False,
) -> None:
    """Execute a design in the sandbox (--script, or designed by the model first) and grade it:
    math with --answer, code with --tests (without them the run is not graded).

    --json prints exactly one JSON object. Exit code: 0 when the execution ran (even if wrong),
    1 when it never reported, 2 for bad arguments, rejected designs or no sandbox."""
    from metaagentx.cli.run import RunOptions, run_command

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
        dtype=dtype,
        as_json=as_json,
    )
    code = run_command(options)
    if code:
        raise typer.Exit(code=code)
