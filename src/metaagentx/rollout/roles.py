"""The two roles one model plays; plain strings so configs, records and metrics share them."""

from __future__ import annotations

DESIGNER = "designer"
EXECUTOR = "executor"
ROLES: tuple[str, ...] = (DESIGNER, EXECUTOR)
