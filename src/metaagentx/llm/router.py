"""Send each request to the generator of its role (designer or executor weights).

With `lora` or `separate` parameter sharing the two roles generate with different weights, so
designs go to the designer's generator and agent turns to the executor's; with `shared` both
names point at the same one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Protocol

from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator


class Front(Protocol):
    """What takes one request at a time: a batcher, or a server client that sends at once."""

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]: ...

    async def agenerate(self, request: GenerationRequest) -> GenerationResult: ...

    def close(self) -> None: ...


class RoleRouter(Generator):
    """A batcher-like front that dispatches on `request.role`."""

    def __init__(self, fronts: Mapping[str, Front]) -> None:
        if "executor" not in fronts:
            raise ValueError("a role router needs an 'executor' front (the default route)")
        self.fronts = dict(fronts)

    def front(self, role: str) -> Front:
        return self.fronts.get(role, self.fronts["executor"])

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        return self.front(request.role).submit(request)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        return await self.front(request.role).agenerate(request)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        futures = [self.submit(r) for r in requests]
        return [f.result() for f in futures]

    def close(self) -> None:
        for front in {id(f): f for f in self.fronts.values()}.values():
            front.close()
