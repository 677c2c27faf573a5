"""`python -m metaagentx` runs the CLI."""

from metaagentx.cli import main

main()
