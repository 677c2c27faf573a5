"""The evaluation results file format (`<label>.json`): its marker and reader, kept apart from
`evaluate` so the report can read results without importing the rollout stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_KIND = "metaagentx-eval"
RESULTS_VERSION = 1


def is_results(payload: Any) -> bool:
    """Whether a parsed JSON value is an evaluation result written by `EvalReport.write`."""
    return isinstance(payload, dict) and payload.get("kind") == RESULTS_KIND


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a results JSON written by `EvalReport.write`; refuses other JSON files."""
    data = json.loads(Path(path).read_text())
    if not is_results(data):
        raise ValueError(f"{path} is not a metaagentx evaluation result")
    return data


__all__ = ["RESULTS_KIND", "RESULTS_VERSION", "is_results", "load_results"]
