"""Any OpenAI-compatible chat server as a generation backend (teachers, baselines, served models).

Token ids and log-probs come back only from servers that offer them (vLLM and `metaagentx
serve-model` do, through the `return_token_ids` / `return_tokens_as_token_ids` extensions).
Training cannot use a response without them, so `require_token_ids=True` turns their absence
into a clear error instead of a silently untrainable sample. `send_metadata=True` also sends
each request's role and metadata (`request_role`, `request_metadata`), which a trainer's own
server (`llm.server`) copies into its requests: how rollout workers' agent calls keep them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import openai

from metaagentx.llm.base import (
    BackendCapabilityError,
    GenerationRequest,
    GenerationResult,
    Generator,
)

_TOKEN_ID_PREFIX = "token_id:"
T = TypeVar("T")


class FirstCallGate:
    """Runs calls one at a time until one has returned, then lets them all through.

    The openai client builds its response models lazily on first use, and that is not
    thread-safe: concurrent first calls raised pydantic's "BaseModel cannot be instantiated
    directly" in about one run in four."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = threading.Event()

    def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._open.is_set():
            with self._lock:
                if not self._open.is_set():
                    result = fn(*args)
                    self._open.set()
                    return result
        return fn(*args)


class OpenAIGenerator(Generator):
    """Chat completions from an OpenAI-compatible server, with a bound on requests in flight."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str = "EMPTY",
        timeout_s: float = 120.0,
        max_retries: int = 3,
        concurrency: int = 16,
        require_token_ids: bool = True,
        extra_body: dict[str, Any] | None = None,
        send_metadata: bool = False,
    ) -> None:
        # the client retries connection errors, 408/409/429 and 5xx with exponential backoff
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries
        )
        self.base_url = base_url
        self.model = model or self._first_model()
        self.require_token_ids = require_token_ids
        self.extra_body = dict(extra_body or {})
        self.send_metadata = send_metadata
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai")
        self._gate = FirstCallGate()

    def _first_model(self) -> str:
        models = self.client.models.list().data
        if not models:
            raise BackendCapabilityError(f"the server at {self.base_url} lists no models")
        return models[0].id

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(self._pool.map(lambda r: self._gate(self._generate_one, r), requests))

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """One request on the client's pool (`generate` for a whole list)."""
        return self._pool.submit(self._gate, self._generate_one, request)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        if request.messages is None:
            raise ValueError(
                "the openai backend takes chat messages; this request has only prompt_ids"
            )
        params = request.sampling
        body: dict[str, Any] = {"return_token_ids": True, "return_tokens_as_token_ids": True}
        if params.top_k > 0:
            body["top_k"] = params.top_k
        if self.send_metadata:
            body["request_role"] = request.role
            body["request_metadata"] = request.metadata
        body.update(self.extra_body)
        response = self.client.chat.completions.create(
            model=self.model,
            messages=request.messages,  # type: ignore[arg-type]
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
            logprobs=True,
            extra_body=body,
        )
        choice = response.choices[0]
        prompt_ids = server_extra(response, "prompt_token_ids")
        response_ids = server_extra(choice, "token_ids")
        logprob_items = (
            choice.logprobs.content if choice.logprobs and choice.logprobs.content else None
        )
        if response_ids is None and logprob_items is not None:
            response_ids = _ids_from_logprob_tokens([item.token for item in logprob_items])
        logprobs = [item.logprob for item in logprob_items] if logprob_items is not None else None
        if self.require_token_ids:
            missing = [
                name
                for name, value in (
                    ("prompt token ids", prompt_ids),
                    ("response token ids", response_ids),
                    ("log-probs", logprobs),
                )
                if value is None
            ]
            if missing:
                raise BackendCapabilityError(
                    f"the server at {self.base_url} returned no {', '.join(missing)}; training needs "
                    "them. Serve the model with vLLM (>= 0.10.2, which honours return_token_ids) or "
                    "`metaagentx serve-model`, or pass require_token_ids=False for text-only use."
                )
        return GenerationResult(
            prompt_ids=list(prompt_ids or []),
            response_ids=list(response_ids or []),
            logprobs=list(logprobs or []),
            text=choice.message.content or "",
            finish_reason="length" if choice.finish_reason == "length" else "stop",
            role=request.role,
            stop_reason=server_extra(choice, "stop_reason")
            if isinstance(server_extra(choice, "stop_reason"), str)
            else None,
            metadata=dict(request.metadata),
        )


def server_extra(obj: Any, name: str) -> Any:
    """A field the OpenAI schema does not declare (servers' extensions land in model_extra)."""
    value = getattr(obj, name, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(name)
    return value


def _ids_from_logprob_tokens(tokens: list[str]) -> list[int] | None:
    """vLLM's `return_tokens_as_token_ids` spells each token as 'token_id:123'."""
    ids = []
    for token in tokens:
        if not token.startswith(_TOKEN_ID_PREFIX):
            return None
        ids.append(int(token[len(_TOKEN_ID_PREFIX) :]))
    return ids
