"""The provider-neutral model of a chat call, and the protocol every provider implements.

A provider turns a :class:`ChatRequest` into a :class:`ChatResponse` synchronously (the
worker runs steps in threads) and raises only :mod:`soloist.errors` failures:
:class:`~soloist.errors.TransientError` for timeouts, connection errors, 429 and 5xx
(``retry_after`` from the ``Retry-After`` header when the server sent one), and
:class:`~soloist.errors.DeterministicError` for every other 4xx and for replies that
cannot be understood. Providers never retry on their own: retries belong to Soloist's
persisted retry policy.

All models are frozen pydantic models, so a conversation can be persisted with
``model_dump(mode="json")`` and loaded back with ``model_validate``.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]

FinishReason = str
"""Normalized across providers: ``stop``, ``tool_calls``, ``length``,
``content_filter``; any other value is passed through as the provider sent it."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCallRequest(_Model):
    """The model asks for a tool to be called."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(_Model):
    """One message of a conversation.

    ``tool_calls`` only on assistant messages; ``tool_call_id`` only (and always) on tool
    messages, naming the :class:`ToolCallRequest` the content answers.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str = "",
                  tool_calls: tuple[ToolCallRequest, ...] | list[ToolCallRequest] = ()
                  ) -> Message:
        return cls(role="assistant", content=content, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, content: str) -> Message:
        return cls(role="tool", content=content, tool_call_id=tool_call_id)


class ToolSpec(_Model):
    """A tool offered to the model; ``parameters`` is a JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}})


class ChatRequest(_Model):
    """One call to a chat model.

    ``response_schema`` asks for structured output: the reply's ``text`` is then a JSON
    document meant to match it (check it with
    :func:`soloist.execution.llm.structured.parse_json_output`). ``timeout`` is in
    seconds; ``None`` uses the provider's configured timeout.
    """

    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    response_schema: dict[str, Any] | None = None
    timeout: float | None = None


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ChatResponse(_Model):
    """The model's reply. ``latency_ms`` is wall time of the call as the client saw it."""

    text: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    latency_ms: float = 0.0
    finish_reason: FinishReason | None = None
    raw_id: str | None = None

    def as_message(self) -> Message:
        """The assistant message to append to the conversation."""
        return Message.assistant(self.text, self.tool_calls)


@runtime_checkable
class LLMProvider(Protocol):
    """A chat model backend (``openai``, ``anthropic``, later ``local``, or a test double)."""

    name: str

    def complete(self, request: ChatRequest) -> ChatResponse:
        """Make one call; raise TransientError or DeterministicError on failure."""
        ...
