"""`utils.environments.search_env` of the authors' scripts: web search and page fetching.

The sandbox has no network, so searching can only be a host-side tool: `search` and `fetch`
call the host tools of those names when the host announced them (`task["host_tools"]`), and
otherwise return a plain "not configured" text instead of raising, so that the agent that asked
reads why and answers without it, and the run goes on. `api_key` is accepted and ignored (the
host holds any credentials). Standard library only.
"""

from __future__ import annotations

from typing import Annotated, Any

from metaagentx.mas.pettingllms.calls import announced, host_tool

SEARCH_TOOL = "search"
FETCH_TOOL = "fetch"


def not_configured(tool: str) -> str:
    """What an agent reads when the host offers no such tool."""
    return (
        f"{tool} is not configured on this host (no network from the sandbox); "
        "continue without it, from what you already know."
    )


class SearchEnvironment:
    """Web search for agents: `search(query)` and `fetch(url)` return text."""

    def __init__(self, api_key: str | None = None, **options: Any) -> None:
        self.api_key = api_key  # unused: the host-side tool holds its own credentials
        self.options = dict(options)

    @property
    def available(self) -> bool:
        """Whether the host offers web search to this execution."""
        return announced(SEARCH_TOOL) is not None

    def search(
        self,
        query: Annotated[str, "What to search the web for."],
        filter_year: Annotated[int | None, "Only results from this year."] = None,
        filter_date: Annotated[str | None, "Only results from this date range."] = None,
    ) -> str:
        """Search the web and return the results (titles, links, snippets) as text."""
        if announced(SEARCH_TOOL) is None:
            return not_configured(SEARCH_TOOL)
        arguments: dict[str, Any] = {"query": str(query)}
        if filter_year is not None:
            arguments["filter_year"] = filter_year
        if filter_date is not None:
            arguments["filter_date"] = filter_date
        return host_tool(SEARCH_TOOL, arguments)

    def fetch(self, url: Annotated[str, "The address of the page to read."]) -> str:
        """Fetch a web page and return its text."""
        if announced(FETCH_TOOL) is None:
            return not_configured(FETCH_TOOL)
        return host_tool(FETCH_TOOL, {"url": str(url)})


_default: SearchEnvironment | None = None


def get_search_environment(api_key: str | None = None) -> SearchEnvironment:
    """The shared environment (created on first use)."""
    global _default
    if _default is None:
        _default = SearchEnvironment(api_key=api_key)
    return _default


def search(
    query: Annotated[str, "What to search the web for."],
    filter_year: Annotated[int | None, "Only results from this year."] = None,
    filter_date: Annotated[str | None, "Only results from this date range."] = None,
) -> str:
    """Search the web and return the results (titles, links, snippets) as text."""
    return get_search_environment().search(query, filter_year, filter_date)


def fetch(url: Annotated[str, "The address of the page to read."]) -> str:
    """Fetch a web page and return its text."""
    return get_search_environment().fetch(url)


__all__ = ["SearchEnvironment", "fetch", "get_search_environment", "not_configured", "search"]
