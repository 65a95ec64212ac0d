"""The ``openai`` provider: OpenAI and any OpenAI-compatible server (Ollama, vLLM, llama.cpp
server, LM Studio, OpenRouter...) through the ``openai`` SDK and its ``base_url``.

Wire mapping (``POST {base_url}/chat/completions``):

* messages -> ``messages`` (assistant ``tool_calls`` as ``function`` calls with JSON-string
  arguments; tool results as ``role: tool`` with ``tool_call_id``);
* tools -> ``tools: [{"type": "function", "function": {name, description, parameters}}]``
  (names outside ``[A-Za-z0-9_-]`` are mapped to valid names and back);
* ``response_schema`` -> ``response_format: {"type": "json_schema", "json_schema":
  {"name": "response", "schema": ..., "strict": false}}``;
* ``max_tokens`` -> ``max_completion_tokens`` against api.openai.com (no ``base_url``), and
  ``max_tokens`` against other servers, which do not all know the newer name.

The SDK's own retries are disabled (``max_retries=0``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import openai

from soloist import jsonvalues
from soloist.control.providers import (
    error_message,
    invalid_reply,
    sdk_failure,
)
from soloist.errors import ConfigError, DeterministicError, InputError, StepFailure
from soloist.execution.llm.base import (
    ChatRequest,
    ChatResponse,
    Message,
    ToolCallRequest,
    Usage,
)
from soloist.execution.llm.naming import ToolNames

_FINISH = {"stop": "stop", "tool_calls": "tool_calls", "function_call": "tool_calls",
           "length": "length", "content_filter": "content_filter"}
DEFAULT_TIMEOUT = 60.0


class OpenAIProvider:
    """A chat provider speaking the OpenAI chat-completions API."""

    def __init__(self, name: str = "openai", *, base_url: str | None = None,
                 api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 client: openai.OpenAI | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self._native = base_url is None
        if client is None:
            if api_key is None and base_url is not None:
                api_key = "not-needed"  # local OpenAI-compatible servers take any key
            try:
                client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout,
                                       max_retries=0)
            except openai.OpenAIError as exc:
                raise ConfigError(f"provider {name}: {exc}") from None
        self._client = client

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the call -------------------------------------------------------------------------

    def build_payload(self, request: ChatRequest, names: ToolNames) -> dict[str, Any]:
        """The JSON body sent for ``request`` (without the SDK's own additions)."""
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": [self._message(m, names) for m in request.messages],
        }
        if request.tools:
            payload["tools"] = [
                {"type": "function",
                 "function": {"name": names.wire(t.name), "description": t.description,
                              "parameters": t.parameters}}
                for t in request.tools
            ]
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.max_tokens is not None:
            field = "max_completion_tokens" if self._native else "max_tokens"
            payload[field] = request.max_tokens
        if request.response_schema is not None:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": request.response_schema,
                                "strict": False},
            }
        return payload

    @staticmethod
    def _message(message: Message, names: ToolNames) -> dict[str, Any]:
        if message.role == "tool":
            return {"role": "tool", "tool_call_id": message.tool_call_id or "",
                    "content": message.content}
        if message.role == "assistant" and message.tool_calls:
            return {
                "role": "assistant",
                "content": message.content or None,
                "tool_calls": [
                    {"id": call.id, "type": "function",
                     "function": {"name": names.wire(call.name),
                                  "arguments": json.dumps(call.arguments)}}
                    for call in message.tool_calls
                ],
            }
        return {"role": message.role, "content": message.content}

    def complete(self, request: ChatRequest) -> ChatResponse:
        names = ToolNames(t.name for t in request.tools)
        payload = self.build_payload(request, names)
        timeout = request.timeout if request.timeout is not None else self.timeout
        started = time.monotonic()
        try:
            raw = self._client.chat.completions.with_raw_response.create(
                **payload, timeout=timeout)
            text = raw.text
        except openai.OpenAIError as exc:
            raise sdk_failure(self.name, exc, openai) from exc
        latency_ms = (time.monotonic() - started) * 1000.0
        return self.parse_reply(text, names, latency_ms, request.model)

    def parse_reply(self, body: str, names: ToolNames, latency_ms: float,
                    requested_model: str) -> ChatResponse:
        """A :class:`ChatResponse` from a chat-completions JSON body."""
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise invalid_reply(self.name, f"the body is not JSON ({exc.msg})") from None
        try:
            return self._response(data, names, latency_ms, requested_model)
        except StepFailure:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise invalid_reply(self.name, f"unexpected shape ({exc!r})") from None

    def _response(self, data: Any, names: ToolNames, latency_ms: float,
                  requested_model: str) -> ChatResponse:
        if not isinstance(data, dict):
            raise invalid_reply(self.name, "the body is not a JSON object")
        if "error" in data and not data.get("choices"):
            raise DeterministicError(
                f"{self.name} answered with an error: {error_message(data, 'no details')}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise invalid_reply(self.name, "no choices")
        choice = choices[0]
        message = choice.get("message") or {}
        calls: list[ToolCallRequest] = []
        for call in message.get("tool_calls") or []:
            function = call["function"]
            arguments = function.get("arguments") or "{}"
            if isinstance(arguments, str):
                try:
                    arguments = jsonvalues.loads(arguments, "the arguments")
                except (json.JSONDecodeError, InputError):
                    raise invalid_reply(
                        self.name, f"the arguments of tool call {function.get('name')!r} "
                        "are not JSON") from None
            if not isinstance(arguments, dict):
                raise invalid_reply(self.name, "tool call arguments are not a JSON object")
            calls.append(ToolCallRequest(id=str(call.get("id") or f"call_{len(calls)}"),
                                         name=names.original(str(function["name"])),
                                         arguments=arguments))
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason")
        content = message.get("content")
        if isinstance(content, list):  # some compatible servers send content parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return ChatResponse(
            text=content or "",
            tool_calls=tuple(calls),
            usage=Usage(input_tokens=int(usage.get("prompt_tokens") or 0),
                        output_tokens=int(usage.get("completion_tokens") or 0)),
            model=str(data.get("model") or requested_model),
            latency_ms=latency_ms,
            finish_reason=_FINISH.get(finish, finish) if finish is not None else None,
            raw_id=str(data["id"]) if data.get("id") is not None else None,
        )
