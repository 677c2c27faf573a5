"""Typed run configuration: YAML files plus dotted `key=value` overrides from the command line.

Every section is a pydantic model with `extra="forbid"`, so a misspelt key fails loudly with the
closest valid key suggested, instead of being silently ignored. The resolved config is written
into every run directory (`save_config`) so a run can always be reproduced.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from metaagentx.config.base import ConfigError, Section
from metaagentx.config.engine import (
    DistributedConfig,
    GenerationConfig,
    ModelConfig,
    RayRolloutConfig,
    VLLMConfig,
)
from metaagentx.config.training import (
    DataConfig,
    EvalConfig,
    LoggingConfig,
    RolloutConfig,
    SFTConfig,
    TrainerConfig,
)
from metaagentx.sandbox.settings import SandboxSettings
from metaagentx.tool_settings import HostTool, ToolsConfig


class Config(Section):
    """A whole run."""

    seed: int = Field(0, description="Seed for Python, NumPy and torch RNGs.")
    output_dir: str = Field(
        "runs/default", description="Run directory: resolved config, logs, checkpoints, report."
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    tools: ToolsConfig = Field(
        default_factory=ToolsConfig,
        description="Tools beyond the built-ins: host-side functions and HTTP endpoints agents call by name.",
    )
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


def valid_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    """Every dotted key a config accepts, sections included."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(valid_keys(annotation, dotted + "."))
    return keys


def _unknown_key_error(key: str) -> ConfigError:
    keys = valid_keys()
    parent, _, leaf = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in keys if k.rpartition(".")[0] == parent}
    close = [siblings[m] for m in difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)]
    close = (
        close
        or [full for name, full in siblings.items() if leaf and leaf in name][:1]
        or difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
        or [k for k in keys if k.rpartition(".")[2] == leaf][:1]
    )
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _check_keys(data: Mapping[str, Any], model: type[BaseModel] = Config, prefix: str = "") -> None:
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        field = model.model_fields.get(name)
        if field is None:
            raise _unknown_key_error(dotted)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"config key '{dotted}' is a section and needs a mapping, got {value!r}"
                )
            _check_keys(value, annotation, dotted + ".")


def parse_override(item: str) -> tuple[str, Any]:
    """`trainer.steps=10` -> ("trainer.steps", 10); values are parsed as YAML scalars/lists."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override '{item}' is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{item}': value is not valid YAML: {exc}") from exc
    return key, value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{key}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"config key '{where}': {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def build_config(data: Mapping[str, Any] | None = None, overrides: Sequence[str] = ()) -> Config:
    """Validate a config mapping after applying `key=value` overrides."""
    merged: dict[str, Any] = copy.deepcopy(dict(data or {}))
    _check_keys(merged)
    known = set(valid_keys())
    for item in overrides:
        key, value = parse_override(item)
        if key not in known:
            raise _unknown_key_error(key)
        _check_keys(_nest(key, value))
        _set_dotted(merged, key, value)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
    _check_learning_rates(config)
    return config


def _check_learning_rates(config: Config) -> None:
    """One shared model updated for both roles in one step takes one learning rate; caught
    here, at load, rather than at the first RL step."""
    trainer = config.trainer
    if (
        trainer.schedule == "simultaneous"
        and config.model.parameter_sharing == "shared"
        and trainer.designer_lr != trainer.executor_lr
    ):
        raise ConfigError(
            f"trainer.schedule=simultaneous with model.parameter_sharing=shared updates one model "
            f"for both roles in each step, so trainer.designer_lr ({trainer.designer_lr:g}) and "
            f"trainer.executor_lr ({trainer.executor_lr:g}) must be equal"
        )


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping; a top-level `base:` (a path or list of paths, relative to the file)
    names configs merged underneath it, so ablations stay a few lines on a shared base."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"config file '{path}' includes itself through 'base'")
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from exc
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping at the top level")
    bases = loaded.pop("base", None) or []
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = _merge(merged, _read_yaml(path.parent / base, (*seen, path)))
    return _merge(merged, loaded)


def _merge(low: dict[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(low)
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config file (or the defaults when `path` is None) and apply overrides."""
    data = {} if path is None else _read_yaml(Path(path))
    return build_config(data, overrides)


def save_config(config: Config, run_dir: str | Path, name: str = "config.yaml") -> Path:
    """Write the resolved config as `name` in `run_dir` and return its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _set_dotted(out, key, value)
    return out


__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "DistributedConfig",
    "EvalConfig",
    "GenerationConfig",
    "HostTool",
    "LoggingConfig",
    "ModelConfig",
    "RayRolloutConfig",
    "RolloutConfig",
    "SFTConfig",
    "SandboxSettings",
    "ToolsConfig",
    "TrainerConfig",
    "VLLMConfig",
    "build_config",
    "load_config",
    "parse_override",
    "save_config",
    "valid_keys",
]
