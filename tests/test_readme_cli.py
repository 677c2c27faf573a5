"""The README's command table and the CLI agree: every command it lists exists and takes the
options it shows (checked against each command's `--help`), and every command is listed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from metaagentx.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
runner = CliRunner()


def _table_rows() -> list[str]:
    text = README.read_text()
    section = text.split("\n## CLI\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `metaagentx")]


def _usage(row: str) -> str:
    return row.split("`")[1].replace("\\|", "|")


def _command_words(usage: str) -> list[str]:
    words = []
    for word in usage.split()[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    return words


def _all_commands() -> set[str]:
    def walk(command: Any, prefix: tuple[str, ...]) -> set[str]:
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            found: set[str] = set()
            for name, sub in command.commands.items():
                found |= walk(sub, (*prefix, name))
            return found
        return {" ".join(prefix)}

    return walk(typer.main.get_command(app), ())


ROWS = _table_rows()


def test_the_table_lists_every_command_once():
    listed = [" ".join(_command_words(_usage(row))) for row in ROWS]
    assert sorted(listed) == sorted(_all_commands())


@pytest.mark.parametrize("row", ROWS, ids=[" ".join(_command_words(_usage(r))) for r in ROWS])
def test_each_listed_option_is_in_the_commands_help(row: str):
    usage = _usage(row)
    words = _command_words(usage)
    shown = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert shown.exit_code == 0, shown.output
    options = set(re.findall(r"--[a-z][a-z-]*", usage))
    missing = {option for option in options if option not in shown.output}
    assert not missing, f"`{usage}` shows {sorted(missing)}, which --help does not have"


def test_the_quickstart_section_and_help_agree_on_fast():
    said = re.search(
        r"`--fast` runs a much\s+smaller version of every stage \(([^)]+)\)", README.read_text()
    )
    assert said, "the README no longer says how long --fast takes"
    shown = runner.invoke(app, ["quickstart", "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert said.group(1) in " ".join(shown.output.split())
