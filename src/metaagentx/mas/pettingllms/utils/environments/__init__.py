"""`utils.environments` of the authors' scripts: Python execution and web search, both run by
the host (the sandboxed `python` tool; host-side `search`/`fetch` tools when configured)."""

from metaagentx.mas.pettingllms.utils.environments import math_env, search_env
from metaagentx.mas.pettingllms.utils.environments.math_env import (
    MathEnvironment,
    get_math_environment,
    python_execute,
)
from metaagentx.mas.pettingllms.utils.environments.search_env import (
    SearchEnvironment,
    get_search_environment,
)

__all__ = [
    "MathEnvironment",
    "SearchEnvironment",
    "get_math_environment",
    "get_search_environment",
    "math_env",
    "python_execute",
    "search_env",
]
