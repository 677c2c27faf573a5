"""`python -m metaagentx` runs the CLI."""

from metaagentx.cli import app

app(prog_name="metaagentx")
