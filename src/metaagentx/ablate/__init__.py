"""Ablations: the pipeline's RL stage run per arm and seed from one SFT model, then tabulated
(`metaagentx ablate CONFIG`). The numbers and figures themselves live in `eval.ablation`."""

from metaagentx.ablate.results import collect_result
from metaagentx.ablate.runner import check_same_arms, redraw, run_ablation
from metaagentx.ablate.spec import Ablation, AblationSpec, load_ablation

__all__ = [
    "Ablation",
    "AblationSpec",
    "check_same_arms",
    "collect_result",
    "load_ablation",
    "redraw",
    "run_ablation",
]
