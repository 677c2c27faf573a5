"""The authors' message-passing core: `Message`, `MessageType`, `Context`, `WorkflowNode`.

Their nodes take a `Context` (the conversation so far, shared state, metadata) and return a
`Message`; a node that raises returns an ERROR message instead of failing the run. The per-run
limits, the agent trace and the final output are still ours (`metaagentx.mas.execution`): only
the surface a script sees follows their API. Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

import abc
import copy
import enum
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.protocol import ExecutionLimitExceeded
from metaagentx.mas.text import clip

ERROR_CHARS = 2000


class MessageType(enum.Enum):
    """What a message is, as their nodes tell messages apart."""

    USER_INPUT = "user_input"
    AGENT_RESPONSE = "agent_response"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    INTERMEDIATE = "intermediate"
    FINAL_RESULT = "final_result"
    ERROR = "error"


@dataclass
class Message:
    """One message between nodes: `content` (usually text), its type, who sent it."""

    content: Any
    message_type: MessageType = MessageType.INTERMEDIATE
    metadata: dict[str, Any] | None = None
    sender: str | None = None
    recipient: str | None = None
    timestamp: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.metadata is None:
            self.metadata = {}
        if isinstance(self.message_type, str):  # from_dict / a script passing the value
            self.message_type = MessageType(self.message_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "message_type": self.message_type.value,
            "metadata": dict(self.metadata or {}),
            "sender": self.sender,
            "recipient": self.recipient,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(
            content=data.get("content"),
            message_type=MessageType(data.get("message_type", MessageType.INTERMEDIATE.value)),
            metadata=dict(data.get("metadata") or {}),
            sender=data.get("sender"),
            recipient=data.get("recipient"),
            timestamp=float(data.get("timestamp") or time.time()),
        )

    @property
    def text(self) -> str:
        """The content as text: a string as is, a dict or list as JSON, anything else `str`."""
        content = self.content
        if isinstance(content, str):
            return content
        if isinstance(content, (dict, list)):
            return json.dumps(content, ensure_ascii=False, default=str)
        return str(content)

    def __str__(self) -> str:
        return str(self.content)


@dataclass
class Context:
    """What flows through a workflow: every message so far, shared state, metadata.

    Our bookkeeping rides in `metadata` under private keys (`_path`, `_role`, `_round`: where a
    node runs, for the trace); scripts never need them."""

    messages: list[Message] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def add_message(self, message: Message) -> None:
        self.messages.append(message)

    def get_messages_by_type(self, message_type: MessageType) -> list[Message]:
        return [m for m in self.messages if m.message_type == message_type]

    def get_latest_message(self) -> Message | None:
        return self.messages[-1] if self.messages else None

    def set_state(self, key: str, value: Any) -> None:
        self.state[key] = value

    def get_state(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)

    def copy(self) -> Context:
        """A context with its own message list and metadata (state is shared, as in a run)."""
        return Context(list(self.messages), self.state, copy.copy(self.metadata))

    def at(self, path: str, role: str | None = None, round: int | None = None) -> Context:
        """`copy()` placed at `path` (trace bookkeeping for patterns running members)."""
        child = self.copy()
        child.metadata["_path"] = path
        if role is not None:
            child.metadata["_role"] = role
        if round is not None:
            child.metadata["_round"] = round
        return child

    @property
    def question(self) -> str:
        """The first USER_INPUT's text (the task), or ""."""
        for message in self.messages:
            if message.message_type == MessageType.USER_INPUT:
                return message.text
        return ""


class WorkflowNode(abc.ABC):
    """Base of every node in their API: `process(context) -> Message`.

    Calling a node (`node(context)`) runs `process`; an exception becomes an ERROR message (the
    run goes on, as in theirs), except a tripped execution limit, which always ends the run.
    Extra keyword arguments are kept in `config`."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a node needs a non-empty name, got {name!r}")
        self.name = name
        self.config = dict(kwargs)
        self.logger = logging.getLogger(f"workflow.{name}")

    @abc.abstractmethod
    def process(self, context: Context) -> Message:
        """Do this node's work on `context`."""

    def __call__(self, context: Context) -> Message:
        try:
            message = self.process(context)
        except ExecutionLimitExceeded:
            raise
        except Exception as exc:  # their nodes report failures as ERROR messages
            return self._error(context, exc)
        if not isinstance(message, Message):
            message = Message(message, MessageType.AGENT_RESPONSE)
        if message.sender is None:
            message.sender = self.name
        return message

    def _error(self, context: Context, exc: Exception) -> Message:
        text = clip(f"{type(exc).__name__}: {exc}", ERROR_CHARS)
        current_execution().record(
            {
                "type": "node_error",
                "node": self.name,
                "path": path_of(context, self.name),
                "error": text,
            }
        )
        return Message(
            f"Error in node {self.name}: {text}",
            MessageType.ERROR,
            {"error": text, "error_type": type(exc).__name__},
            sender=self.name,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def path_of(context: Context, name: str) -> str:
    """Where a node runs, for the trace: its parent's `_path` joined with its own name."""
    parent = context.metadata.get("_path")
    return f"{parent}/{name}" if parent else name


__all__ = ["Context", "Message", "MessageType", "WorkflowNode", "path_of"]


# Their `workflow.core` also exports the tool registry (imported last: tools imports this module).
from metaagentx.mas.pettingllms.tools import ToolRegistry  # noqa: E402

__all__ += ["ToolRegistry"]
