"""A progress bar over one rollout tree: the designs, then every execution as it ends.

A tree of 64 problems x 4 designs x 4 executions takes minutes on a CPU; without a bar the
`rollout` command looks hung. The engine calls `designed` once it knows how many executions
it will run and `executed` as each one ends (finished, failed or cut).
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RolloutProgress:
    """A rich bar for `RolloutEngine.rollout(progress=...)`; disabled, it only counts."""

    def __init__(self, problems: int, console: Console | None = None, enabled: bool = True):
        self.done = 0
        self._bar = Progress(
            TextColumn("[bold]rollout[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._bar.add_task(f"designing for {problems} problems", total=None)

    def __enter__(self) -> RolloutProgress:
        self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def designed(self, executions: int) -> None:
        self._bar.update(self._task, description="executions", total=executions, completed=0)

    def executed(self) -> None:
        self.done += 1
        self._bar.advance(self._task)
