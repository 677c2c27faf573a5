"""vLLM OpenAI servers the project starts for a run (`generation.vllm.placement=server` with no
URLs given), each a `python -m vllm.entrypoints.openai.api_server` process of its own.

They start with the development routes on (`VLLM_SERVER_DEV_MODE=1`: weight reloads) and runtime
LoRA loading allowed, log to a file in the run directory, and are stopped with their process
group when the run ends. A server that exits or does not answer `/health` in time is an error
that quotes the end of its log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_arguments(options: Mapping[str, Any]) -> list[str]:
    """Engine options as the server's command-line flags (`max_model_len=512` ->
    `--max-model-len 512`; True -> a bare flag; False and None are left out)."""
    args: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        args.append(flag) if value is True else args.extend([flag, str(value)])
    return args


class VLLMServer:
    """One started server; `url` is its OpenAI base URL. Use as a context manager or `stop()`."""

    def __init__(
        self,
        model_path: str | Path,
        options: Mapping[str, Any],
        *,
        log_path: str | Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout_s: float = 600.0,
    ) -> None:
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}/v1"
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_path),
            "--host",
            host,
            "--port",
            str(self.port),
            *server_arguments(options),
        ]
        full_env = {
            **os.environ,
            "VLLM_SERVER_DEV_MODE": "1",
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            **(env or {}),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
            )
        try:
            self._wait_ready(startup_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the vLLM server for {self.url} exited with code {self.process.returncode} "
                    f"while starting; the end of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url[: -len("/v1")] + "/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(
            f"the vLLM server for {self.url} did not come up within {timeout_s:g}s "
            f"(generation.vllm.startup_timeout_s); the end of {self.log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 20.0) -> None:
        """Terminate the server's process group; kill it if it outlives `grace_s`."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
