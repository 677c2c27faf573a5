"""The host side: drive many sandboxed workflow executions at once and serve their RPC.

Each execution is a child of the fork server. Its agent turns arrive as JSON lines and become
`GenerationRequest`s (role "executor", metadata naming the agent) sent through the batcher's
`agenerate`, so concurrent turns from all executions merge into batched generation. Every turn is
recorded with the exact sampled token ids and log-probs; the child only ever sees text. A child
that hangs, floods, lies or dies ends as one ExecutionResult; the runner keeps serving the rest:
lines are bounded in size and JSON depth, requests in flight per execution are bounded, tool calls
run on a bounded pool fair across executions, every field of the final message is checked, and
`run` never raises for what an execution does. The runner knows no tools of its own: the grading
environment (`metaagentx.rollout.environment`) hands each run its `python` and `run_tests`.

An execution's answer counts only if a recorded agent response carries it (`final.carried_by_agent`,
checked here against the host's own record of the turns); otherwise its status is
"no_agent_answer" and it earns nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from metaagentx.llm.base import GenerationRequest, GenerationResult, SamplingParams
from metaagentx.mas.limits import Limits
from metaagentx.sandbox.client import ChildExit, ForkServerClient, ForkServerDied
from metaagentx.sandbox.final import (
    carried_by_agent,
    child_usage,
    number_field,
    object_field,
    text_field,
    trace_events,
)
from metaagentx.sandbox.forkserver import SETUP_FAILED
from metaagentx.sandbox.pools import FairPool
from metaagentx.sandbox.records import AgentCall, ExecutionResult, ExecutionStatus, derive_seed
from metaagentx.sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

ToolHandler = Callable[[dict[str, Any]], "str | Awaitable[str]"]
AnswerExtractor = Callable[[str, dict[str, Any]], "str | None"]
EXIT_GRACE_S = 3.0
ROLES = {"system", "user", "assistant", "tool"}


class AsyncGenerator(Protocol):
    """What the runner needs from the batcher (`metaagentx.llm.batcher.RequestBatcher`)."""

    async def agenerate(self, request: GenerationRequest) -> GenerationResult: ...


class _Limit(Exception):
    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass
class _State:
    task: dict[str, Any]
    tools: Mapping[str, ToolHandler]
    metadata: dict[str, Any]
    sampling: SamplingParams
    calls: list[AgentCall] = field(default_factory=list)
    llm_calls: int = 0
    tool_calls: int = 0
    final: dict[str, Any] | None = None
    finished: bool = False  # final message in and every stream closed, before the exit report
    violation: str | None = None  # a host-enforced limit the child broke (output, message, ...)
    host_error: str | None = None
    output: bytearray = field(default_factory=bytearray)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)
    owner: str = ""  # whose share of the tool pool this execution's calls use
    agent_turns: dict[str, int] = field(default_factory=dict)  # LLM calls so far, per agent


class Runner:
    """Runs workflow scripts in the sandbox with bounded concurrency; see the module docstring."""

    def __init__(
        self,
        generator: AsyncGenerator,
        settings: SandboxSettings | None = None,
        *,
        sampling: SamplingParams | None = None,
        answer_extractor: AnswerExtractor | None = None,
        client: ForkServerClient | None = None,
        pool: FairPool | None = None,
        host_tools: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """`settings.limits` are the workflow library's limits for every run (see `run`);
        `answer_extractor` reads an answer from a final output (and from each agent response, to
        check the answer came from an agent); tool handlers run on `pool`. `host_tools` are the
        specs (`{name, description, parameters}`) of the host-side tools every run's `tools`
        serve: each child reads them as `task["host_tools"]`."""
        self.generator = generator
        self.host_tools = [dict(spec) for spec in host_tools]
        self.settings = settings or SandboxSettings()
        # sampling.max_new_tokens caps every agent turn, like settings.max_new_tokens
        self.sampling = sampling or SamplingParams(max_new_tokens=self.settings.max_new_tokens)
        self.answer_extractor = answer_extractor
        self.client = client or ForkServerClient(self.settings)
        self._owns_client = client is None
        self.pool = pool or FairPool()
        self._owns_pool = pool is None
        # one semaphore per event loop: callers such as `rollout_sync` run each batch under a
        # fresh `asyncio.run`, and a semaphore that once waited is bound to its loop
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    @property
    def isolation(self) -> list[str]:
        """The active layers (after the first run or `await start()`)."""
        return list(self.client.layers)

    async def start(self) -> None:
        """Start the fork server; raises SandboxUnavailable when strict isolation cannot hold."""
        if not self.client.running:  # a thread hop per run would cost ~0.2 ms
            await asyncio.to_thread(self.client.start)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
        if self._owns_pool:
            self.pool.close()

    async def run_many(self, jobs: Sequence[tuple[str, dict[str, Any]]]) -> list[ExecutionResult]:
        """Run (script, task) pairs concurrently, results in order."""
        return list(await asyncio.gather(*(self.run(script, task) for script, task in jobs)))

    async def run(
        self,
        script: str,
        task: dict[str, Any],
        *,
        tools: Mapping[str, ToolHandler] | None = None,
        metadata: dict[str, Any] | None = None,
        limits: Limits | None = None,
        sampling: SamplingParams | None = None,
        dialect: str | None = None,
    ) -> ExecutionResult:
        """Execute `script` with `task` injected; `tools` adds handlers (e.g. run_tests);
        `limits` replaces `settings.limits` for this run. `metadata` is copied into every agent
        request; a `metadata["seed"]` makes sampling reproducible: each agent turn gets a seed
        derived from (seed, agent name, the agent's turn number). `sampling` replaces the
        runner's sampling parameters for this run. `dialect` is the workflow dialect the static
        check resolved for `script` (the child then need not detect it again; None: the
        settings' `dialect`). Never raises for what the execution does: a host-side failure
        ends it as a runtime_error."""
        semaphore = self._semaphore()
        await self.start()
        header = {
            "source": script,
            "task": {**task, "host_tools": self.host_tools} if self.host_tools else task,
            "limits": (limits or self.settings.limits).to_dict(),
            "dialect": dialect or self.settings.dialect,
        }
        started = time.monotonic()
        state = _State(task=header["task"], tools=dict(tools or {}),
                       metadata=dict(metadata or {}), sampling=sampling or self.sampling)
        state.owner = str(state.metadata.get("execution_id") or f"run-{id(state)}")
        async with semaphore:
            try:
                return await self._run(header, state, started)
            except Exception as exc:  # a host-side fault ends this execution only
                log.warning("execution %s ended by a host-side failure: %r", state.owner, exc)
                return self._result(state, None, started, f"host error: {exc!r}")

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop not in self._semaphores:
            for old in [old for old in self._semaphores if old.is_closed()]:
                del self._semaphores[old]
            self._semaphores[loop] = asyncio.Semaphore(self.settings.max_concurrency)
        return self._semaphores[loop]

    def _limits(self) -> dict[str, float | int]:
        s = self.settings
        return {
            "timeout_s": s.timeout_s,
            "cpu_s": max(1, math.ceil(s.timeout_s) + 1),
            "memory_mb": s.memory_mb,
            "file_size_mb": s.file_size_mb,
            "nofile": s.nofile,
            "nproc": s.nproc,
            "scratch_mb": s.scratch_mb,
        }

    async def _run(self, header: dict[str, Any], state: _State, started: float) -> ExecutionResult:
        io_host, io_child = socket.socketpair()
        out_host, out_child = socket.socketpair()
        try:
            exec_id, done = self.client.spawn(
                "workflow",
                self._limits(),
                [io_child.fileno(), out_child.fileno(), out_child.fileno()],
            )
        except ForkServerDied as exc:
            io_host.close()
            out_host.close()
            return self._result(state, None, started, f"sandbox unavailable: {exc}")
        finally:
            io_child.close()
            out_child.close()
        reader, writer = await asyncio.open_unix_connection(
            sock=io_host, limit=self.settings.max_message_bytes
        )
        out_reader, out_writer = await asyncio.open_unix_connection(sock=out_host)
        kill = lambda: self.client.kill(exec_id)  # noqa: E731
        serving = asyncio.create_task(self._serve(reader, writer, state, kill))
        collecting = asyncio.create_task(self._collect_output(out_reader, state, kill))
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[ChildExit] = loop.create_future()
        done.add_done_callback(functools.partial(_settle_threadsafe, loop, exited))
        deadline = loop.time() + self.settings.timeout_s + EXIT_GRACE_S
        ended: ChildExit | None = None
        try:
            writer.write((json.dumps(header) + "\n").encode())
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            streams = asyncio.gather(serving, collecting, return_exceptions=True)
            await asyncio.wait(
                {exited, streams},
                timeout=deadline - loop.time(),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if (
                not exited.done()
                and streams.done()
                and state.final is not None
                and state.violation is None
            ):
                # Its last word is in and it closed every stream: the result is complete. The
                # kernel's teardown of the child (~2-3 ms) is not waited for; the kill makes sure
                # nothing of it lingers, and the fork server still reaps it.
                state.finished = True
                exited.cancel()  # the exit report, when it comes, is dropped
                kill()
            else:
                try:
                    ended = await asyncio.wait_for(
                        asyncio.shield(exited), max(0.0, deadline - loop.time())
                    )
                except asyncio.TimeoutError:
                    kill()
                    ended = await asyncio.wait_for(exited, 10.0)
        except asyncio.CancelledError:  # cut by the caller (e.g. a straggler deadline)
            kill()
            raise
        except (ForkServerDied, asyncio.TimeoutError) as exc:
            state.host_error = f"sandbox child lost: {exc!r}"
        finally:
            for task_ in (serving, collecting):
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task_, EXIT_GRACE_S)
            for handler in list(state.handlers):
                handler.cancel()
            for w in (writer, out_writer):
                w.close()
        return self._result(state, ended, started, None)

    async def _collect_output(
        self, reader: asyncio.StreamReader, state: _State, kill: Callable[[], None]
    ) -> None:
        cap = self.settings.max_output_bytes
        while chunk := await reader.read(65536):
            state.output += chunk
            if len(state.output) > cap:
                del state.output[cap:]
                state.violation = state.violation or "output_bytes"
                kill()
                return

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: _State,
        kill: Callable[[], None],
    ) -> None:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                state.violation = state.violation or "message_bytes"
                kill()
                return
            except ConnectionError:
                return
            if not line:
                return
            try:
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise ValueError("not an object")
            except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
                state.violation = state.violation or "protocol"
                kill()
                return
            kind = msg.get("type")
            if kind in ("llm", "tool") and len(state.handlers) >= self.settings.max_pending_requests:
                state.violation = state.violation or "pending_requests"
                kill()
                return
            if kind in ("llm", "tool"):
                handler = asyncio.create_task(self._answer(msg, writer, state))
                state.handlers.add(handler)
                handler.add_done_callback(state.handlers.discard)
            elif kind == "final" and state.final is None:
                state.final = msg

    async def _answer(
        self, msg: dict[str, Any], writer: asyncio.StreamWriter, state: _State
    ) -> None:
        request_id = msg.get("id")
        try:
            if msg["type"] == "llm":
                result = await self._llm(msg, state)
            else:
                result = await self._tool(msg, state)
            reply: dict[str, Any] = {"id": request_id, "ok": True, "result": result}
        except _Limit as exc:
            state.violation = state.violation or exc.limit
            reply = {
                "id": request_id,
                "ok": False,
                "error": {"kind": "limit_exceeded", "limit": exc.limit, "message": str(exc)},
            }
        except (KeyError, TypeError, ValueError) as exc:
            reply = {
                "id": request_id,
                "ok": False,
                "error": {"kind": "bad_request", "message": str(exc)},
            }
        except Exception as exc:  # a host-side failure (generator, tool) ends this call only
            state.host_error = state.host_error or f"{type(exc).__name__}: {exc}"
            reply = {
                "id": request_id,
                "ok": False,
                "error": {"kind": "host_error", "message": str(exc)},
            }
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()

    async def _llm(self, msg: dict[str, Any], state: _State) -> str:
        s = self.settings
        agent = str(msg["agent"])
        messages = msg["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages must be a non-empty list")
        clean = []
        for m in messages:
            if (
                not isinstance(m, dict)
                or m.get("role") not in ROLES
                or not isinstance(m.get("content"), str)
            ):
                raise ValueError(
                    "each message needs a role in system/user/assistant/tool and string content"
                )
            clean.append({"role": m["role"], "content": m["content"]})
        state.llm_calls += 1
        if state.llm_calls > s.max_llm_calls:
            raise _Limit("llm_calls", f"more than {s.max_llm_calls} LLM calls in one execution")
        cap = min(s.max_new_tokens, state.sampling.max_new_tokens)
        max_tokens = msg.get("max_tokens")
        budget = cap if max_tokens is None else max(1, min(int(max_tokens), cap))
        sampling = dataclasses.replace(state.sampling, max_new_tokens=budget)
        if "seed" in state.metadata:  # reproducible whatever order concurrent agents ask in
            turn = state.agent_turns[agent] = state.agent_turns.get(agent, 0) + 1
            sampling = dataclasses.replace(
                sampling, seed=derive_seed(state.metadata["seed"], agent, turn)
            )
        request = GenerationRequest(
            messages=clean,
            sampling=sampling,
            role="executor",
            metadata={**state.metadata, "agent": agent},
        )
        result = await self.generator.agenerate(request)
        state.calls.append(
            AgentCall(agent, clean, list(result.prompt_ids), list(result.response_ids),
                      list(result.logprobs), result.text, result.finish_reason)
        )  # fmt: skip
        return result.text

    async def _tool(self, msg: dict[str, Any], state: _State) -> str:
        s = self.settings
        name = str(msg["name"])
        arguments = msg.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise ValueError("tool arguments must be an object")
        state.tool_calls += 1
        if state.tool_calls > s.max_tool_calls:
            raise _Limit("tool_calls", f"more than {s.max_tool_calls} tool calls in one execution")
        if name not in state.tools:
            raise ValueError(f"unknown tool {name!r}")
        handler = state.tools[name]
        if asyncio.iscoroutinefunction(handler):
            return str(await handler(arguments))
        out = await self.pool.run(state.owner, handler, arguments)
        return str(await out) if asyncio.iscoroutine(out) else str(out)

    def _result(
        self, state: _State, ended: ChildExit | None, started: float, error: str | None
    ) -> ExecutionResult:
        status, error = self._classify(state, ended, error)
        final = state.final or {}
        final_output = text_field(final.get("final_output")) if status == "ok" else None
        answer = None
        if final_output is not None:
            extractor = self.answer_extractor
            extract = None if extractor is None else (lambda text: extractor(text, state.task))
            answer = None if extract is None else extract(final_output)
            if not carried_by_agent(final_output, answer, [c.text for c in state.calls], extract):
                status, final_output, answer = "no_agent_answer", None, None
                error = "no recorded agent response carries the final answer"
        ok = status == "ok"
        usage = {
            "agents": number_field(object_field(final.get("usage")).get("agents")),
            "llm_calls": float(len(state.calls)),
            "tool_calls": float(state.tool_calls),
            "prompt_tokens": float(sum(len(c.prompt_ids) for c in state.calls)),
            "completion_tokens": float(sum(len(c.response_ids) for c in state.calls)),
            **child_usage(ended, final),
            "output_bytes": float(len(state.output)),
        }
        printed = text_field(final.get("stdout")) or ""
        return ExecutionResult(
            status=status,
            final_output=final_output,
            answer=answer,
            trace=state.calls,
            usage=usage,
            isolation=list(self.client.layers),
            duration=time.monotonic() - started,
            error=error,
            error_kind=None if ok else (
                status if status == "no_agent_answer"
                else text_field(final.get("error_kind")) or state.violation),
            delivery=text_field(final.get("delivery")) if ok else None,
            stdout=printed + state.output.decode("utf-8", errors="replace"),
            workflow_trace=trace_events(final.get("trace")),
        )

    @staticmethod
    def _classify(
        state: _State, ended: ChildExit | None, error: str | None
    ) -> tuple[ExecutionStatus, str | None]:
        """Host knowledge (lost child, host limit, timeout, host failure) before the child's word."""
        if error is not None or (ended is None and not state.finished):
            return "runtime_error", error or state.host_error or "the sandbox child was lost"
        if state.violation is not None:
            return "limit_exceeded", f"host limit exceeded: {state.violation}"
        if ended is not None and (ended.timed_out or ended.signal == 24):  # 24: SIGXCPU, CPU rlimit
            return "timeout", "wall-clock timeout" if ended.timed_out else "CPU-time limit"
        if state.host_error is not None:
            return "runtime_error", state.host_error
        if state.final is not None and (ended is None or ended.returncode == 0):
            reported = state.final.get("status")
            if reported == "ok":
                return "ok", None
            status: ExecutionStatus = (
                reported
                if reported in ("design_error", "runtime_error", "limit_exceeded")
                else "runtime_error"
            )
            return status, text_field(state.final.get("error")) or str(reported)
        assert ended is not None
        if ended.returncode == SETUP_FAILED:
            return "runtime_error", "sandbox setup failed: " + state.output.decode(
                errors="replace"
            )[-500:]
        how = (
            f"signal {ended.signal}"
            if ended.signal is not None
            else f"exit code {ended.returncode}"
        )
        return "runtime_error", f"the script ended without a result ({how})"


def _settle_threadsafe(
    loop: asyncio.AbstractEventLoop, target: asyncio.Future[ChildExit], source: Future[ChildExit]
) -> None:
    """Pass the client thread's exit report to the execution's loop (if both still exist)."""

    def settle() -> None:
        if target.done():
            return
        if source.exception() is not None:
            target.set_exception(source.exception())  # type: ignore[arg-type]
        else:
            target.set_result(source.result())

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(settle)
