"""The sandbox child's side of the host RPC: a `Runtime` speaking JSON lines over one socket.

Several workflow threads may call `llm()` at once (ensemble members run concurrently), so each
request carries an id and a single reader thread hands every response to the thread waiting for
that id. Standard library only: this runs inside the sandbox.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from typing import Any, BinaryIO

from metaagentx.mas.protocol import ExecutionLimitExceeded, Message, Runtime


class HostError(RuntimeError):
    """The host refused or failed a request (bad request, tool failure, host gone)."""


class _Slot:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: dict[str, Any] | None = None


class PipeRuntime(Runtime):
    """Runtime whose LLM turns and tool calls are answered by the host over a socket."""

    def __init__(self, sock: socket.socket, reader: BinaryIO, task: dict[str, Any]) -> None:
        self._sock = sock
        self._reader = reader
        self._task = task
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Slot] = {}
        self._pending_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._read_loop, name="host-rpc", daemon=True)
        self._thread.start()

    @property
    def task(self) -> dict[str, Any]:
        return self._task

    def llm(self, agent: str, messages: list[Message], max_tokens: int | None = None) -> str:
        return self._request(
            {"type": "llm", "agent": agent, "messages": messages, "max_tokens": max_tokens}
        )

    def tool(self, agent: str, name: str, arguments: dict[str, Any]) -> str:
        return self._request({"type": "tool", "agent": agent, "name": name, "arguments": arguments})

    def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to the host (thread-safe)."""
        data = (json.dumps(message, ensure_ascii=False, default=str) + "\n").encode()
        with self._send_lock:
            self._sock.sendall(data)

    def _request(self, message: dict[str, Any]) -> str:
        request_id = next(self._ids)
        slot = _Slot()
        with self._pending_lock:
            if self._closed:
                raise HostError("the host connection is closed")
            self._pending[request_id] = slot
        self.send({"id": request_id, **message})
        slot.event.wait()
        reply = slot.reply or {"ok": False, "error": {"kind": "host_gone", "message": "no reply"}}
        if reply.get("ok"):
            return str(reply.get("result", ""))
        error = reply.get("error") or {}
        text = str(error.get("message", "host error"))
        if error.get("kind") == "limit_exceeded":
            raise ExecutionLimitExceeded(str(error.get("limit", "host_limit")), text)
        raise HostError(text)

    def _read_loop(self) -> None:
        try:
            for line in self._reader:
                reply = json.loads(line)
                with self._pending_lock:
                    slot = self._pending.pop(int(reply.get("id", -1)), None)
                if slot is not None:
                    slot.reply = reply
                    slot.event.set()
        except (OSError, ValueError):
            pass
        finally:
            with self._pending_lock:
                self._closed = True
                waiting, self._pending = list(self._pending.values()), {}
            for slot in waiting:
                slot.event.set()
