"""`utils` of the authors' scripts: only `utils.environments` (their model client and logging
helpers are the host's business here)."""

from metaagentx.mas.pettingllms.utils import environments

__all__ = ["environments"]
