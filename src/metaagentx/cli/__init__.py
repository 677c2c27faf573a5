"""The `metaagentx` command. Thin: parse arguments, load config, call the library.

Commands live in `models` (one model), `training` (data and weights), `evaluation` (judging
and inspecting) and `run`; this module only names them. `main` is the console script.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from metaagentx import __version__
from metaagentx.cli import evaluation, models, training
from metaagentx.cli.common import DEBUG_ENV, console, run_app

app = typer.Typer(
    name="metaagentx",
    help="Train one LLM end to end with RL to design and execute multi-agent systems (MetaAgent-X).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option("--debug", help=f"Show the traceback of errors too (or set {DEBUG_ENV}=1)."),
    ] = False,
) -> None:
    if debug:
        os.environ[DEBUG_ENV] = "1"


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(__version__)


def _group(name: str, help: str) -> typer.Typer:
    group = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


tiny_app = _group("tiny", "Build the tiny offline model and tokenizer.")
data_app = _group("data", "Inspect benchmark files and datasets.")
sft_app = _group("sft", "Cold-start SFT: teacher data, then training.")
config_app = _group("config", "Inspect run configs.")

tiny_app.command("build")(models.tiny_build)
app.command("generate")(models.generate)
app.command("serve-model")(models.serve_model)
app.command("design")(models.design)
app.command("run")(models.run)
app.command("rollout")(training.rollout)
app.command("train")(training.train_command)
app.command("export")(training.export_command)
sft_app.command("collect")(training.sft_collect)
sft_app.command("train")(training.sft_train)
data_app.command("show")(evaluation.data_show)
data_app.command("check")(evaluation.data_check)
app.command("eval")(evaluation.eval_command)
app.command("report")(evaluation.report_command)
config_app.command("show")(evaluation.config_show)
app.command("quickstart")(evaluation.quickstart)
app.command("ablate")(evaluation.ablate)


def main() -> None:
    """The console script: `metaagentx ...`."""
    run_app(app)
