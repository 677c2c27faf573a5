"""metaagentx: train one LLM to design and execute multi-agent systems with RL (MetaAgent-X)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metaagentx")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
