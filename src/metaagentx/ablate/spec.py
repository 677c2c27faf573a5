"""What an ablation runs: one pipeline config, a few seeds, and arms that each override it.

An ablation file is small YAML (see configs/ablations/miniature.yaml):

    pipeline: ../miniature/base.yaml   # a full config in the quickstart's format (relative to
                                       # this file); "quickstart": the embedded default
    overrides: []                      # key=value applied to the pipeline, before the arms
    output_dir: runs/ablate
    seeds: [0, 1, 2]
    baseline: stagewise_k10            # every arm is compared with it, seed by seed
    swap: [stagewise_k10]              # arms that also get the swap test
    arms:
      stagewise_k10: []
      stagewise_k1: [trainer.phase_steps=1]

Every arm starts RL from the same SFT model (trained once with the pipeline's seed), so arms
differ only in what they override; an arm's run with seed s sets `seed=s`, which fixes its
problem order and every sample, and the baseline's run with the same seed is its pair.
Every arm's config is built when the file is loaded, so a misspelt key fails before any work.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from metaagentx.config import Config, ConfigError, build_config, load_config
from metaagentx.eval.compare import flatten

QUICKSTART = "quickstart"
AFTER_SFT, AFTER_RL = "after_sft", "after_rl"  # evaluation labels
# where two runs' configs may differ without being different experiments: where they and their
# SFT model live, their seed, how they logged, and whether they were resumed
_NOT_THE_EXPERIMENT = ("output_dir", "seed", "model.path", "logging.", "trainer.resume")


def experiment_differences(before: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple]:
    """Where two configs (as dicts) differ as experiments: dotted key -> (before, now), sorted."""
    a, b = flatten(before), flatten(now)
    keys = (k for k in a.keys() | b.keys() if not k.startswith(_NOT_THE_EXPERIMENT))
    return {k: (a.get(k), b.get(k)) for k in sorted(keys) if a.get(k) != b.get(k)}


class AblationSpec(BaseModel):
    """An ablation: the pipeline, the seeds and the arms (see the module doc)."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(
        QUICKSTART,
        description="A full config in the quickstart's format, relative to the ablation file; "
        "'quickstart': the embedded default.",
    )
    overrides: list[str] = Field(default_factory=list, description="key=value for the pipeline.")
    output_dir: str = Field("runs/ablate", description="Where everything is written.")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="RL seeds of every arm.")
    baseline: str = Field(description="The arm every other arm is paired with.")
    swap: list[str] = Field(
        default_factory=list,
        description="Arms whose RL model also gets the swap test against the SFT model "
        "(shared parameters only).",
    )
    arms: dict[str, list[str]] = Field(min_length=1, description="Arm name -> its key=value.")
    workers: int = Field(1, ge=1, description="Runs trained at the same time (processes).")

    @model_validator(mode="after")
    def _names(self) -> AblationSpec:
        known = set(self.arms)
        for name in (self.baseline, *self.swap):
            if name not in known:
                raise ValueError(f"arm '{name}' is not in arms ({', '.join(sorted(known))})")
        bad = [a for a in self.arms if not a or any(c in a for c in "/\\ ") or a.startswith(".")]
        if bad:
            raise ValueError(f"arm names must be plain folder names, got {bad}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {self.seeds}")
        return self


class Ablation:
    """A loaded ablation: the spec, the pipeline config and each arm's config."""

    def __init__(self, spec: AblationSpec, pipeline: Config, origin: Path | None = None):
        self.spec = spec
        self.origin = origin
        self.out = Path(spec.output_dir)
        self.pipeline = build_config(pipeline.model_dump(mode="json"), [f"output_dir={self.out}"])
        self.arm_configs = {name: self.arm_config(name, spec.seeds[0]) for name in spec.arms}
        for name in spec.swap:
            if self.arm_configs[name].model.parameter_sharing != "shared":
                raise ConfigError(f"swap arm '{name}' needs model.parameter_sharing=shared")

    def run_dir(self, arm: str, seed: int) -> Path:
        return self.out / "runs" / arm / f"seed{seed}"

    def eval_dir(self, arm: str, seed: int) -> Path:
        return self.run_dir(arm, seed) / "eval"

    def sft_eval_dir(self, seed: int) -> Path:
        return self.out / "sft-eval" / f"seed{seed}"

    def arm_config(self, arm: str, seed: int, *extra: str) -> Config:
        """The pipeline with the arm's overrides, its seed and its run folder."""
        try:
            own = [f"seed={seed}", f"output_dir={self.run_dir(arm, seed)}", *extra]
            return build_config(self.pipeline.model_dump(mode="json"), [*self.spec.arms[arm], *own])
        except ConfigError as exc:
            raise ConfigError(f"arm '{arm}': {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json")


def load_ablation(path: str | Path, overrides: list[str] | None = None) -> Ablation:
    """Read an ablation file; `overrides` (spec keys like `workers=2` or `seeds=[0]`) win."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"ablation file '{path}' does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of ablation settings")
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' must look like key=value")
        data[key] = yaml.safe_load(value)
    try:
        spec = AblationSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "ablation"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    pipeline = _pipeline(spec, path.parent)
    return Ablation(spec, pipeline, origin=path)


def _pipeline(spec: AblationSpec, here: Path) -> Config:
    if spec.pipeline == QUICKSTART:
        source = resources.files("metaagentx") / "quickstart.yaml"
        with resources.as_file(source) as file:
            return load_config(file, spec.overrides)
    file = here / spec.pipeline
    if not file.is_file():
        raise ConfigError(f"pipeline config '{file}' does not exist")
    return load_config(file, spec.overrides)


__all__ = [
    "AFTER_RL",
    "AFTER_SFT",
    "QUICKSTART",
    "Ablation",
    "AblationSpec",
    "experiment_differences",
    "load_ablation",
]
