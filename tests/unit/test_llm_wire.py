"""Request and reply mapping of the providers, without a server."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import pytest

from soloist.control.providers import parse_retry_after, status_failure
from soloist.errors import DeterministicError, TransientError
from soloist.execution.llm.anthropic_provider import STRUCTURED_TOOL, AnthropicProvider
from soloist.execution.llm.base import (
    ChatRequest,
    Message,
    ToolCallRequest,
    ToolSpec,
)
from soloist.execution.llm.naming import ToolNames
from soloist.execution.llm.openai_provider import OpenAIProvider

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}},
                          "required": ["n"]}
TOOL = ToolSpec(name="crm.lookup", description="Find a contact",
                parameters={"type": "object", "properties": {"email": {"type": "string"}}})
CONVERSATION = (
    Message.system("You are terse."),
    Message.user("Who is a@b.c?"),
    Message.assistant("Looking.", [ToolCallRequest(id="c1", name="crm.lookup",
                                                   arguments={"email": "a@b.c"}),
                                   ToolCallRequest(id="c2", name="crm.lookup",
                                                   arguments={"email": "d@e.f"})]),
    Message.tool("c1", "Ann"),
    Message.tool("c2", "Dan"),
    Message.user("Thanks."),
)


@pytest.fixture
def openai_provider() -> Any:
    with OpenAIProvider(base_url="http://127.0.0.1:9/v1") as provider:
        yield provider


@pytest.fixture
def anthropic_provider() -> Any:
    with AnthropicProvider(base_url="http://127.0.0.1:9") as provider:
        yield provider


def test_tool_names_are_made_valid_and_mapped_back() -> None:
    names = ToolNames(["crm.lookup", "crm_lookup", "ok-name", "a" * 70])
    assert names.wire("ok-name") == "ok-name"
    assert names.wire("crm.lookup") == "crm_lookup"
    assert names.wire("crm_lookup") != "crm_lookup" and names.wire("crm_lookup").startswith(
        "crm_lookup_")
    assert len(names.wire("a" * 70)) == 64
    for name in ("crm.lookup", "crm_lookup", "ok-name", "a" * 70):
        assert names.original(names.wire(name)) == name
    assert names.original("unknown") == "unknown"


def test_openai_payload(openai_provider: OpenAIProvider) -> None:
    request = ChatRequest(model="llama3", messages=CONVERSATION, tools=(TOOL,),
                          temperature=0.0, max_tokens=50)
    payload = openai_provider.build_payload(request, ToolNames(["crm.lookup"]))
    assert payload["max_tokens"] == 50 and payload["temperature"] == 0.0
    assert payload["tools"] == [{"type": "function", "function": {
        "name": "crm_lookup", "description": "Find a contact", "parameters": TOOL.parameters}}]
    messages = payload["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool",
                                             "user"]
    assert messages[2]["tool_calls"][1] == {"id": "c2", "type": "function", "function": {
        "name": "crm_lookup", "arguments": json.dumps({"email": "d@e.f"})}}
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "Ann"}
    assert "response_format" not in payload


def test_openai_native_uses_max_completion_tokens_and_json_schema() -> None:
    with OpenAIProvider(api_key="sk-test") as provider:
        request = ChatRequest(model="gpt-4o", messages=(Message.user("n?"),), max_tokens=9,
                              response_schema=SCHEMA)
        payload = provider.build_payload(request, ToolNames())
    assert payload["max_completion_tokens"] == 9 and "max_tokens" not in payload
    assert payload["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "response", "schema": SCHEMA, "strict": False}}


def test_anthropic_payload(anthropic_provider: AnthropicProvider) -> None:
    request = ChatRequest(model="claude", messages=CONVERSATION, tools=(TOOL,))
    payload = anthropic_provider.build_payload(request, ToolNames(["crm.lookup"]))
    assert payload["system"] == "You are terse."
    assert payload["max_tokens"] == 4096 and "temperature" not in payload
    assert payload["tools"] == [{"name": "crm_lookup", "description": "Find a contact",
                                 "input_schema": TOOL.parameters}]
    messages = payload["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "c1", "name": "crm_lookup", "input": {"email": "a@b.c"}},
        {"type": "tool_use", "id": "c2", "name": "crm_lookup", "input": {"email": "d@e.f"}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "Ann"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "Dan"},
        {"type": "text", "text": "Thanks."},
    ]


def test_anthropic_structured_output_forces_a_tool(
        anthropic_provider: AnthropicProvider) -> None:
    request = ChatRequest(model="claude", messages=(Message.user("n?"),),
                          response_schema=SCHEMA, temperature=0)
    payload = anthropic_provider.build_payload(request, ToolNames())
    assert payload["tools"][0]["name"] == STRUCTURED_TOOL
    assert payload["tools"][0]["input_schema"] == SCHEMA
    assert payload["tool_choice"] == {"type": "tool", "name": STRUCTURED_TOOL}
    assert "system" not in payload and payload["temperature"] == 0
    body = json.dumps({"id": "m", "model": "claude", "stop_reason": "tool_use",
                       "content": [{"type": "tool_use", "id": "t", "name": STRUCTURED_TOOL,
                                    "input": {"n": 3}}],
                       "usage": {"input_tokens": 1, "output_tokens": 2}})
    response = anthropic_provider.parse_reply(body, ToolNames(), 1.0, "claude",
                                              structured=True)
    assert json.loads(response.text) == {"n": 3}
    assert response.tool_calls == () and response.finish_reason == "stop"


def test_anthropic_structured_output_with_tools_uses_instructions(
        anthropic_provider: AnthropicProvider) -> None:
    request = ChatRequest(model="claude", messages=CONVERSATION, tools=(TOOL,),
                          response_schema=SCHEMA)
    payload = anthropic_provider.build_payload(request, ToolNames(["crm.lookup"]))
    assert "tool_choice" not in payload
    assert payload["system"].startswith("You are terse.\n\nReply with only a JSON document")
    assert '"required": [' in payload["system"]


@pytest.mark.parametrize("body", [
    "not json", "[]", '{"choices": []}', '{"choices": [{"message": {"tool_calls": '
    '[{"id": "1", "function": {"name": "f", "arguments": "{oops"}}]}}]}',
    '{"error": {"message": "model not loaded"}}',
])
def test_openai_bad_replies_are_deterministic(openai_provider: OpenAIProvider,
                                              body: str) -> None:
    with pytest.raises(DeterministicError):
        openai_provider.parse_reply(body, ToolNames(), 1.0, "m")


@pytest.mark.parametrize("body", [
    "not json", '"text"', '{"content": "hi"}',
    '{"content": [{"type": "tool_use", "id": "1", "name": "f", "input": [1]}]}',
    '{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}',
])
def test_anthropic_bad_replies_are_deterministic(anthropic_provider: AnthropicProvider,
                                                 body: str) -> None:
    with pytest.raises(DeterministicError):
        anthropic_provider.parse_reply(body, ToolNames(), 1.0, "m")


def test_openai_reply_normalization(openai_provider: OpenAIProvider) -> None:
    body = json.dumps({"choices": [{"message": {"content": None, "tool_calls": [
        {"id": "x", "function": {"name": "crm_lookup", "arguments": {"email": "q"}}}]},
        "finish_reason": "length"}]})
    response = openai_provider.parse_reply(body, ToolNames(["crm.lookup"]), 5.0, "asked")
    assert response.model == "asked" and response.usage.input_tokens == 0
    assert response.tool_calls[0].name == "crm.lookup"
    assert response.tool_calls[0].arguments == {"email": "q"}
    assert response.finish_reason == "length" and response.raw_id is None


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"Retry-After": when}, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


@pytest.mark.parametrize(("status", "kind"), [
    (400, DeterministicError), (401, DeterministicError), (404, DeterministicError),
    (422, DeterministicError), (408, TransientError), (429, TransientError),
    (500, TransientError), (503, TransientError), (529, TransientError),
])
def test_status_classification(status: int, kind: type[Exception]) -> None:
    failure = status_failure("p", status, "msg", {"Retry-After": "3"})
    assert type(failure) is kind
    assert failure.retry_after == (3.0 if kind is TransientError else None)
