"""A small OpenAI-compatible HTTP server over any `Generator` (`metaagentx serve-model`).

It lets OpenAI-client code (teachers, evaluation, other tools) talk to a local model, and it is
what the `openai` backend is tested against. It speaks the vLLM extensions that training needs:
`return_token_ids` (prompt and response ids in the reply) and `return_tokens_as_token_ids`
(log-prob tokens spelled 'token_id:N'). Concurrent HTTP requests join one continuously batched
decode loop (`ContinuousBatcher`).

A trainer also serves its own generators this way (`ServerThread`) to its rollout workers, whose
agent calls then join its batches. For them it takes two extensions, `request_role` and
`request_metadata`, copied into the `GenerationRequest` (role routing, execution ids for session
affinity), and an optional API key, since it may listen beyond the loopback.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from metaagentx import __version__
from metaagentx.errors import UserError
from metaagentx.llm.base import GenerationRequest, SamplingParams
from metaagentx.llm.batcher import ContinuousBatcher
from metaagentx.llm.router import Front


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown OpenAI fields are accepted and ignored
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=-1)
    n: int = Field(1, ge=1, le=64)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0)
    stream: bool = False
    return_token_ids: bool = False
    return_tokens_as_token_ids: bool = False
    request_role: str = "executor"  # which generator serves it (a role router's route)
    request_metadata: dict[str, Any] = Field(default_factory=dict)  # the request's own metadata


def create_app(
    batcher: Front,
    model_name: str,
    default_max_tokens: int = 512,
    token_text=None,
    *,
    owns_batcher: bool = True,
    api_key: str | None = None,
) -> FastAPI:
    """The FastAPI app; `token_text(id) -> str` spells a token for log-prob entries. The app
    closes `batcher` when it shuts down unless `owns_batcher` is false (a trainer's generators
    outlive the server). With `api_key`, a request needs `Authorization: Bearer <api_key>`."""

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        if owns_batcher:
            batcher.close()

    app = FastAPI(title="metaagentx serve-model", version=__version__, lifespan=lifespan)
    created = int(time.time())

    # errors in OpenAI's shape, so OpenAI clients show the message instead of a bare status code
    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    if api_key is not None:

        @app.middleware("http")
        async def require_key(request: Request, call_next):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return _error(401, "a valid API key is required (Authorization: Bearer <key>)")
            return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        )
        return _error(400, f"invalid request: {problems}")

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": model_name, "object": "model", "created": created, "owned_by": "metaagentx"}
            ],
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest) -> dict[str, Any]:
        if body.stream:
            raise HTTPException(400, "streaming is not supported by this server; set stream=false")
        if body.top_logprobs:
            raise HTTPException(
                400,
                "top_logprobs > 0 is not supported; only the sampled token's log-prob is returned",
            )
        if body.model is not None and body.model != model_name:
            raise HTTPException(
                404, f"model '{body.model}' is not served here; this server serves '{model_name}'"
            )
        max_tokens = body.max_completion_tokens or body.max_tokens or default_max_tokens
        stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
        messages = [m.model_dump() for m in body.messages]
        try:
            requests = [
                GenerationRequest(
                    messages=messages,
                    sampling=SamplingParams(
                        temperature=body.temperature,
                        top_p=body.top_p,
                        top_k=max(body.top_k, 0),
                        max_new_tokens=max_tokens,
                        stop=stops,
                        seed=None if body.seed is None else body.seed + i,
                    ),
                    role=body.request_role,
                    metadata=dict(body.request_metadata),
                )
                for i in range(body.n)
            ]
            results = await asyncio.gather(*(batcher.agenerate(r) for r in requests))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        choices = []
        for i, result in enumerate(results):
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason,
                "stop_reason": result.stop_reason,
                "logprobs": None,
            }
            if body.logprobs:
                choice["logprobs"] = {
                    "content": [
                        {
                            "token": f"token_id:{tok}"
                            if body.return_tokens_as_token_ids or token_text is None
                            else token_text(tok),
                            "logprob": lp,
                            "bytes": None,
                            "top_logprobs": [],
                        }
                        for tok, lp in zip(result.response_ids, result.logprobs, strict=True)
                    ]
                }
            if body.return_token_ids:
                choice["token_ids"] = result.response_ids
            choices.append(choice)
        prompt_tokens = len(results[0].prompt_ids)
        completion_tokens = sum(len(r.response_ids) for r in results)
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if body.return_token_ids:
            reply["prompt_token_ids"] = results[0].prompt_ids
        return reply

    return app


def _error(status: int, message: str) -> JSONResponse:
    kind = {401: "authentication_error", 404: "not_found_error"}.get(
        status, "invalid_request_error"
    )
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}}, status_code=status
    )


def serve(
    model_dir: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "auto",
    dtype: str = "auto",
    max_batch_size: int = 64,
    batch_wait_ms: float = 5.0,
    default_max_tokens: int = 512,
    served_name: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Load `model_dir` with the hf backend and serve it until interrupted.

    The port is bound first, so a bad or busy port fails before minutes of model loading;
    `on_ready(url)` runs once the server accepts requests."""
    from metaagentx.llm.hf import HFGenerator

    listener = bind(host, port)
    try:
        generator = HFGenerator.from_pretrained(
            model_dir, device=device, dtype=dtype, max_batch_size=max_batch_size
        )
        batcher = ContinuousBatcher(
            generator, max_batch_size=max_batch_size, max_wait_s=batch_wait_ms / 1000
        )
        tokenizer = generator.tokenizer
        app = create_app(
            batcher,
            served_name or model_dir,
            default_max_tokens=default_max_tokens,
            token_text=lambda token_id: tokenizer.decode([token_id]),
        )
        url = _url(host, listener.getsockname()[1])
        server = _AnnouncingServer(
            uvicorn.Config(app, log_level="warning"), lambda: on_ready and on_ready(url)
        )
        server.run(sockets=[listener])
    finally:
        listener.close()


class PortError(UserError, OSError):
    """The server cannot listen where it was asked to."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: a free port), or one line saying why not."""
    if not 0 <= port <= 65535:
        raise PortError(f"port {port} is out of range; choose one in 1-65535 (0: any free port)")
    try:
        return socket.create_server((host, port), family=_family(host))
    except OSError as exc:
        raise PortError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
            "or --host"
        ) from exc


def _url(host: str, port: int) -> str:
    """The OpenAI base URL (".../v1") of a server on host:port."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls `on_ready` once it accepts requests."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], object]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_ready()


class ServerThread:
    """`app` served by uvicorn on a thread of this process until `stop()`, on `port` (0: a free
    one, bound before the thread starts so `url` is right at once)."""

    def __init__(
        self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 30.0
    ) -> None:
        self._socket = bind(host, port)
        self.host, self.port = host, self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="metaagentx-server",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server for {self.url} did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        """The OpenAI base URL (".../v1")."""
        return _url(self.host, self.port)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()
        self._socket.close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
