"""vLLM OpenAI servers as the training generator: token ids in, exact ids and log-probs out.

Prompts are rendered here with the trainer's tokenizer and sent as token-id lists to the
completions endpoint with `return_token_ids`, so nothing is re-tokenised on either side.
Requests carry a session key (an execution's id): all turns of one execution go to the same
server, whose prefix cache then holds the conversation so far; requests without one go to the
server with the fewest in flight.

Weights are synced through the servers' own development routes (`VLLM_SERVER_DEV_MODE=1`):
`/collective_rpc` with `reload_weights(weights_path=...)`, which needs the folder on a path the
servers can read (a shared filesystem across nodes), and, in `lora` sharing,
`/v1/load_lora_adapter` (`VLLM_ALLOW_RUNTIME_LORA_UPDATING=1`). Every call has a deadline and
an error names the server.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai

from metaagentx.llm.base import (
    BackendCapabilityError,
    GenerationRequest,
    GenerationResult,
    Generator,
    check_prompt_length,
)
from metaagentx.llm.chat import RendersPrompts
from metaagentx.llm.openai_backend import FirstCallGate, server_extra
from metaagentx.llm.vllm_backend import WeightSyncTimeout

if TYPE_CHECKING:
    from metaagentx.config import GenerationConfig

SESSION_KEYS = ("execution_id", "design_id", "session")


def session_key(request: GenerationRequest) -> str | None:
    """What keeps a conversation on one server: the first session field of its metadata."""
    for key in SESSION_KEYS:
        value = request.metadata.get(key)
        if value is not None:
            return str(value)
    return None


class ServerRouter:
    """Session affinity across servers: a session always maps to the same one (a stable hash),
    a request without a session goes to the least loaded."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("a server router needs at least one server")
        self.in_flight = [0] * count
        self._lock = threading.Lock()

    def acquire(self, key: str | None) -> int:
        with self._lock:
            if key is not None:
                index = zlib.crc32(key.encode()) % len(self.in_flight)
            else:
                index = min(range(len(self.in_flight)), key=self.in_flight.__getitem__)
            self.in_flight[index] += 1
            return index

    def release(self, index: int) -> None:
        with self._lock:
            self.in_flight[index] -= 1


class VLLMServerGenerator(RendersPrompts, Generator):
    """Completions from one or more vLLM OpenAI servers, with exact token ids and log-probs.

    `adapters` maps a role to the LoRA name its requests ask for (`lora` sharing); other roles
    ask for the served base model."""

    def __init__(
        self,
        base_urls: Sequence[str],
        tokenizer: Any,
        *,
        model: str | None = None,
        api_key: str = "EMPTY",
        timeout_s: float = 120.0,
        max_retries: int = 3,
        concurrency: int = 64,
        sync_timeout_s: float = 300.0,
        max_prompt_tokens: int | None = None,
    ) -> None:
        if not base_urls:
            raise ValueError("the vllm server backend needs at least one server URL")
        self.base_urls = [u.rstrip("/") for u in base_urls]
        self.tokenizer = tokenizer
        self.sync_timeout_s = sync_timeout_s
        self.max_prompt_tokens = max_prompt_tokens
        self.clients = [
            openai.OpenAI(base_url=u, api_key=api_key, timeout=timeout_s, max_retries=max_retries)
            for u in self.base_urls
        ]
        self.model = model or self.clients[0].models.list().data[0].id
        self.router = ServerRouter(len(self.clients))
        self.adapters: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vllm-http")
        self._gate = FirstCallGate()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(self._pool.map(lambda r: self._gate(self._generate_one, r), requests))

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Send one request now: the servers batch continuously, so nothing waits here."""
        return self._pool.submit(self._gate, self._generate_one, request)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        return await asyncio.wrap_future(self.submit(request))

    @classmethod
    def from_config(
        cls, base_urls: Sequence[str], tokenizer: Any, generation: GenerationConfig
    ) -> VLLMServerGenerator:
        """Clients of `base_urls` with `generation`'s timeouts, retries, concurrency and caps."""
        return cls(
            base_urls,
            tokenizer,
            model=generation.served_model,
            timeout_s=generation.timeout_s,
            max_retries=generation.max_retries,
            concurrency=generation.concurrency,
            sync_timeout_s=generation.vllm.sync_timeout_s,
            max_prompt_tokens=generation.max_prompt_tokens,
        )

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        prompt = self.prompt_ids(request)
        check_prompt_length(len(prompt), self.max_prompt_tokens)
        s = request.sampling
        body: dict[str, Any] = {"return_token_ids": True}
        if s.top_k > 0:
            body["top_k"] = s.top_k
        index = self.router.acquire(session_key(request))
        try:
            response = self.clients[index].completions.create(
                model=self.adapters.get(request.role, self.model),
                prompt=prompt,
                max_tokens=s.max_new_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                seed=s.seed,
                stop=list(s.stop) or None,
                logprobs=0,
                extra_body=body,
            )
        finally:
            self.router.release(index)
        choice = response.choices[0]
        ids = server_extra(choice, "token_ids")
        logprobs = choice.logprobs.token_logprobs if choice.logprobs else None
        if ids is None or logprobs is None:
            raise BackendCapabilityError(
                f"the server at {self.base_urls[index]} returned no token ids or log-probs; "
                "training needs a vLLM server that honours return_token_ids"
            )
        stop = server_extra(choice, "stop_reason")
        return GenerationResult(
            prompt_ids=prompt,
            response_ids=list(ids),
            logprobs=[float(x) for x in logprobs],
            text=choice.text,
            finish_reason="length" if choice.finish_reason == "length" else "stop",
            role=request.role,
            stop_reason=stop if isinstance(stop, str) else None,
            metadata=dict(request.metadata),
        )

    # ---- weights ---------------------------------------------------------------------------

    def _post(self, url: str, route: str, payload: dict[str, Any], what: str) -> None:
        root = url[: -len("/v1")] if url.endswith("/v1") else url
        try:
            reply = httpx.post(root + route, json=payload, timeout=self.sync_timeout_s)
        except httpx.TimeoutException:
            raise WeightSyncTimeout(
                f"vLLM server {url}: {what} did not finish within {self.sync_timeout_s:g}s "
                "(generation.vllm.sync_timeout_s)"
            ) from None
        except httpx.HTTPError as exc:
            raise RuntimeError(f"vLLM server {url}: {what} failed: {exc}") from exc
        if reply.status_code != 200:
            raise RuntimeError(
                f"vLLM server {url}: {what} failed with HTTP {reply.status_code}: "
                f"{reply.text[:300]} (start it with VLLM_SERVER_DEV_MODE=1 for weight sync)"
            )

    def reload_weights(self, folder: str | Path) -> None:
        """Every server reloads its weights from `folder` (a path the servers can read)."""
        for url in self.base_urls:
            payload = {"method": "reload_weights", "kwargs": {"weights_path": str(folder)}}
            self._post(url, "/collective_rpc", payload, f"reloading weights from {folder}")
            self._post(url, "/reset_prefix_cache", {}, "resetting the prefix cache")

    def load_adapter(self, role: str, folder: str | Path, *, register_only: bool = False) -> None:
        """Every server loads `folder` as a new LoRA name for `role` and drops the old one;
        `register_only`: another rank's client has loaded it, just ask for it from now on."""
        old = self.adapters.get(role)
        name = f"{role}-{Path(folder).name}"
        if register_only:
            self.adapters[role] = name
            return
        for url in self.base_urls:
            payload = {"lora_name": name, "lora_path": str(folder)}
            self._post(url, "/v1/load_lora_adapter", payload, f"loading the {role} adapter")
        self.adapters[role] = name
        if old is not None and old != name:
            for url in self.base_urls:
                self._post(url, "/v1/unload_lora_adapter", {"lora_name": old}, "unloading")

    def sleep(self) -> None:
        """Servers run on GPUs of their own: nothing to free for the update."""

    def wake_up(self) -> None:
        """See `sleep`."""

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for client in self.clients:
            client.close()

