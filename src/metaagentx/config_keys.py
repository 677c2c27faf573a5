"""Every config key with its value, type and description: what `metaagentx config show` prints.

The descriptions live on the pydantic fields in `metaagentx.config` (the one place a knob is documented);
this walks them, so the listing can never drift from what the loader accepts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, get_origin

from pydantic import BaseModel

from metaagentx.config import Config


@dataclass(frozen=True)
class KeyInfo:
    """One leaf key of a config: its dotted name, value (the default or the loaded one), type
    and description."""

    key: str
    value: Any
    type: str
    description: str


def type_name(annotation: Any) -> str:
    """A readable type: `int | None`, `Literal['a', 'b']` (typing's own spelling, without module
    prefixes)."""
    plain = isinstance(annotation, type) and get_origin(annotation) is None
    text = annotation.__name__ if plain else str(annotation)
    return re.sub(r"\b(?:typing|collections\.abc|pathlib)\.", "", text)


def config_keys(config: BaseModel | None = None, prefix: str = "") -> list[KeyInfo]:
    """Every leaf key of `config` (default: the defaults), sections expanded in field order."""
    config = config if config is not None else Config()
    rows: list[KeyInfo] = []
    for name, field in type(config).model_fields.items():
        value = getattr(config, name)
        dotted = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            rows.extend(config_keys(value, dotted + "."))
            continue
        rows.append(KeyInfo(dotted, value, type_name(field.annotation), field.description or ""))
    return rows


def show_value(value: Any) -> str:
    """A value as it would be written in YAML or an override (JSON for lists and mappings)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str)
    return str(value)
