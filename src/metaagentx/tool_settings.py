"""Typed settings for host-side tools: `metaagentx.config` nests `ToolsConfig` as `tools:`.

Self-contained on purpose (pydantic + stdlib + the built-in tool names of `mas.tools`) so
`metaagentx.config` can import it without pulling the rollout package. What loads and calls the tools is
`rollout.host_tools`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from metaagentx.mas.tools import BUILTIN_TOOLS, TOOL_ALIASES

RESERVED_NAMES = frozenset(BUILTIN_TOOLS) | frozenset(TOOL_ALIASES)
_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class HostTool(BaseModel):
    """One tool that runs on the host: a Python function or an HTTP endpoint (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ...,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name agents call it by (an identifier; not a built-in tool name such as python or run_tests).",
    )
    description: str | None = Field(
        None,
        description="What the tool does, shown to agents; default: the function's docstring (required for url tools).",
    )
    parameters: dict[str, Any] | None = Field(
        None,
        description="JSON schema of the arguments object; default: from the function's signature, or any object for url tools.",
    )
    function: str | None = Field(
        None,
        description="A Python callable on the host, 'package.module:attr', imported when the grading environment is built and called with the arguments as keywords (async functions too).",
    )
    url: str | None = Field(
        None,
        description="An HTTP endpoint the host POSTs the arguments to as JSON; the response (JSON or text) is the result.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="url tools: request headers; ${VAR} in a value is read from the host's environment at load (keeps keys out of saved configs).",
    )
    timeout_s: float = Field(
        30.0,
        gt=0.0,
        description="Past this the call is abandoned and the agent told so (a function's thread cannot be killed and finishes in the background).",
    )
    max_argument_bytes: int = Field(
        16384, ge=2, description="Larger JSON arguments are refused with a message to the agent."
    )
    max_result_chars: int = Field(
        8000,
        ge=1,
        description="Results are clipped to this many characters (a note says how many were cut).",
    )

    @field_validator("function")
    @classmethod
    def _import_path(cls, value: str | None) -> str | None:
        if value is not None and not _IMPORT_PATH.fullmatch(value):
            raise ValueError("'function' must be 'package.module:attr'")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("'url' must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> HostTool:
        """Exactly one of function/url; headers only for url; no built-in name; url tools need a
        description (there is no docstring to take it from)."""
        if (self.function is None) == (self.url is None):
            raise ValueError(f"host tool {self.name!r} needs exactly one of 'function' or 'url'")
        if self.headers and self.url is None:
            raise ValueError(f"host tool {self.name!r}: 'headers' apply to url tools only")
        if self.name in RESERVED_NAMES:
            raise ValueError(
                f"host tool name {self.name!r} is a built-in tool name; choose another"
            )
        if self.url is not None and not (self.description or "").strip():
            raise ValueError(f"host tool {self.name!r} (url) needs a 'description' for the agents")
        return self


class ToolsConfig(BaseModel):
    """Tools beyond the built-ins (`python`, `run_tests`)."""

    model_config = ConfigDict(extra="forbid")

    host: list[HostTool] = Field(
        default_factory=list,
        description="Host-side tools agents may call by name (each: name, description, parameters, function or url, headers, timeout_s, max_argument_bytes, max_result_chars).",
    )

    @model_validator(mode="after")
    def _unique(self) -> ToolsConfig:
        names = [tool.name for tool in self.host]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"host tool names must be unique; repeated: {duplicates}")
        return self


__all__ = ["RESERVED_NAMES", "HostTool", "ToolsConfig"]
