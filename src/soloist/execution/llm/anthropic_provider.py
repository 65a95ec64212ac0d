"""The ``anthropic`` provider, through the ``anthropic`` SDK (``POST {base_url}/v1/messages``).

Wire mapping:

* system messages -> the ``system`` parameter (joined by blank lines, wherever they were);
* assistant messages -> ``text`` and ``tool_use`` content blocks; tool results ->
  ``tool_result`` blocks in a user message; consecutive messages of one role are merged,
  as the API wants roles to alternate;
* tools -> ``tools: [{name, description, input_schema}]`` (names outside
  ``[A-Za-z0-9_-]`` are mapped to valid names and back);
* ``max_tokens`` is required by the API: :data:`DEFAULT_MAX_TOKENS` when not given;
* ``temperature`` is sent in the body when set.

Structured output (``response_schema``): when the request has no tools and the schema
describes an object, the schema becomes the input schema of one tool,
``structured_output``, that the model is forced to call (``tool_choice``); its input is
returned as the reply's ``text`` (a JSON document) and not as a tool call. Otherwise
(tools are offered, or the schema is not an object) the schema is added to the system
prompt as instructions, and the reply's text is expected to be the JSON document. Either
way, check the text with ``parse_json_output``.

The SDK's own retries are disabled (``max_retries=0``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic

from soloist.control.providers import (
    error_message,
    invalid_reply,
    sdk_failure,
)
from soloist.errors import ConfigError, StepFailure
from soloist.execution.llm.base import (
    ChatRequest,
    ChatResponse,
    Message,
    ToolCallRequest,
    Usage,
)
from soloist.execution.llm.naming import ToolNames
from soloist.execution.llm.structured import schema_instructions

STRUCTURED_TOOL = "structured_output"
DEFAULT_MAX_TOKENS = 4096
DEFAULT_TIMEOUT = 60.0
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls",
           "max_tokens": "length", "refusal": "content_filter"}


def _forced_tool(request: ChatRequest) -> bool:
    schema = request.response_schema
    return schema is not None and not request.tools and schema.get("type") == "object"


class AnthropicProvider:
    """A chat provider speaking the Anthropic messages API."""

    def __init__(self, name: str = "anthropic", *, base_url: str | None = None,
                 api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 client: anthropic.Anthropic | None = None) -> None:
        self.name = name
        self.timeout = timeout
        if client is None:
            if api_key is None and base_url is not None:
                api_key = "not-needed"
            try:
                client = anthropic.Anthropic(api_key=api_key, base_url=base_url,
                                             timeout=timeout, max_retries=0)
            except anthropic.AnthropicError as exc:
                raise ConfigError(f"provider {name}: {exc}") from None
        self._client = client

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AnthropicProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the call -------------------------------------------------------------------------

    def build_payload(self, request: ChatRequest, names: ToolNames) -> dict[str, Any]:
        """The JSON body sent for ``request`` (without the SDK's own additions)."""
        system = [m.content for m in request.messages if m.role == "system" and m.content]
        if request.response_schema is not None and not _forced_tool(request):
            system.append(schema_instructions(request.response_schema))
        messages: list[dict[str, Any]] = []
        for message in request.messages:
            if message.role == "system":
                continue
            role, blocks = self._blocks(message, names)
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"].extend(blocks)
            else:
                messages.append({"role": role, "content": blocks})
        payload: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": messages,
        }
        if system:
            payload["system"] = "\n\n".join(system)
        tools: list[dict[str, Any]] = [{"name": names.wire(t.name), "description": t.description,
                  "input_schema": t.parameters} for t in request.tools]
        if _forced_tool(request):
            tools = [{"name": STRUCTURED_TOOL,
                      "description": "Return the reply as this structured JSON value.",
                      "input_schema": request.response_schema}]
            payload["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
        if tools:
            payload["tools"] = tools
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        return payload

    @staticmethod
    def _blocks(message: Message, names: ToolNames) -> tuple[str, list[dict[str, Any]]]:
        if message.role == "tool":
            return "user", [{"type": "tool_result", "tool_use_id": message.tool_call_id or "",
                             "content": message.content}]
        blocks: list[dict[str, Any]] = []
        if message.content:
            blocks.append({"type": "text", "text": message.content})
        if message.role == "assistant":
            blocks.extend({"type": "tool_use", "id": call.id, "name": names.wire(call.name),
                           "input": call.arguments} for call in message.tool_calls)
        return message.role, blocks

    def complete(self, request: ChatRequest) -> ChatResponse:
        names = ToolNames(t.name for t in request.tools)
        payload = self.build_payload(request, names)
        timeout = request.timeout if request.timeout is not None else self.timeout
        # ``temperature`` goes through extra_body: the SDK's typed signature may omit it.
        temperature = payload.pop("temperature", None)
        extra_body = {"temperature": temperature} if temperature is not None else None
        started = time.monotonic()
        try:
            raw = self._client.messages.with_raw_response.create(
                **payload, timeout=timeout, extra_body=extra_body)
            text = raw.text()
        except anthropic.AnthropicError as exc:
            raise sdk_failure(self.name, exc, anthropic) from exc
        latency_ms = (time.monotonic() - started) * 1000.0
        return self.parse_reply(text, names, latency_ms, request.model,
                                structured=_forced_tool(request))

    def parse_reply(self, body: str, names: ToolNames, latency_ms: float,
                    requested_model: str, *, structured: bool = False) -> ChatResponse:
        """A :class:`ChatResponse` from a messages-API JSON body."""
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise invalid_reply(self.name, f"the body is not JSON ({exc.msg})") from None
        try:
            return self._response(data, names, latency_ms, requested_model, structured)
        except StepFailure:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise invalid_reply(self.name, f"unexpected shape ({exc!r})") from None

    def _response(self, data: Any, names: ToolNames, latency_ms: float,
                  requested_model: str, structured: bool) -> ChatResponse:
        if not isinstance(data, dict):
            raise invalid_reply(self.name, "the body is not a JSON object")
        if data.get("type") == "error":
            raise invalid_reply(self.name, error_message(data, "an error without details"))
        content = data.get("content")
        if not isinstance(content, list):
            raise invalid_reply(self.name, "no content blocks")
        texts: list[str] = []
        calls: list[ToolCallRequest] = []
        structured_text: str | None = None
        for block in content:
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind == "tool_use":
                arguments = block.get("input") or {}
                if not isinstance(arguments, dict):
                    raise invalid_reply(self.name, "tool_use input is not a JSON object")
                if structured and block.get("name") == STRUCTURED_TOOL:
                    structured_text = json.dumps(arguments)
                    continue
                calls.append(ToolCallRequest(id=str(block["id"]),
                                             name=names.original(str(block["name"])),
                                             arguments=arguments))
        stop = data.get("stop_reason")
        finish = _FINISH.get(stop, stop) if stop is not None else None
        if structured_text is not None:
            finish = "stop" if not calls else finish
        usage = data.get("usage") or {}
        return ChatResponse(
            text=structured_text if structured_text is not None else "".join(texts),
            tool_calls=tuple(calls),
            usage=Usage(input_tokens=int(usage.get("input_tokens") or 0),
                        output_tokens=int(usage.get("output_tokens") or 0)),
            model=str(data.get("model") or requested_model),
            latency_ms=latency_ms,
            finish_reason=finish,
            raw_id=str(data["id"]) if data.get("id") is not None else None,
        )
