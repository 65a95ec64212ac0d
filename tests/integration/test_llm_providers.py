"""Both providers, through their real SDKs, against a real local HTTP server."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support.llm_server import (
    Behaviour,
    Delay,
    InvalidJSON,
    LLMTestServer,
    RecordedRequest,
    Reply,
    Status,
    ToolCall,
    bad_request,
    rate_limited,
    server_error,
)

from soloist.config import parse_table
from soloist.config.sections import LLMSection
from soloist.errors import DeterministicError, TransientError
from soloist.execution.llm import parse_json_output
from soloist.execution.llm.anthropic_provider import STRUCTURED_TOOL, AnthropicProvider
from soloist.execution.llm.base import (
    ChatRequest,
    ChatResponse,
    Message,
    ToolSpec,
)
from soloist.execution.llm.config import LLMConfig, build_provider
from soloist.execution.llm.openai_provider import OpenAIProvider

TOOL = ToolSpec(name="crm.lookup", description="Find a contact by email",
                parameters={"type": "object", "properties": {"email": {"type": "string"}},
                            "required": ["email"]})
SCHEMA: dict[str, Any] = {"type": "object",
                          "properties": {"label": {"type": "string"},
                                         "score": {"type": "number"}},
                          "required": ["label", "score"]}
TIMEOUT = 5.0


@dataclass
class Harness:
    kind: str
    server: LLMTestServer
    provider: OpenAIProvider | AnthropicProvider

    def script(self, *behaviours: Behaviour) -> None:
        self.server.add(*behaviours)

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self.provider.complete(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests


@pytest.fixture(params=["openai", "anthropic"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    kind = str(request.param)
    with LLMTestServer() as server:
        provider: OpenAIProvider | AnthropicProvider
        if kind == "openai":
            provider = OpenAIProvider("local-openai", base_url=server.openai_base_url,
                                      api_key="sk-test", timeout=TIMEOUT)
        else:
            provider = AnthropicProvider("local-anthropic",
                                         base_url=server.anthropic_base_url,
                                         api_key="sk-ant-test", timeout=TIMEOUT)
        with provider:
            yield Harness(kind, server, provider)
        assert server.unexpected == 0, "the provider made more calls than scripted"


def sent_key(sent: RecordedRequest) -> str | None:
    """The API key of a request (``x-api-key``, or a bearer token in newer SDKs)."""
    if "x-api-key" in sent.headers:
        return sent.headers["x-api-key"]
    scheme, _, token = sent.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def ask(text: str = "Hello?", **changes: Any) -> ChatRequest:
    fields: dict[str, Any] = {"model": "test-model",
                              "messages": (Message.system("Be terse."), Message.user(text))}
    fields.update(changes)
    return ChatRequest.model_validate(fields)


def test_text_reply(harness: Harness) -> None:
    harness.script(Reply("Hi there.", input_tokens=21, output_tokens=4))
    response = harness.complete(ask(temperature=0.2, max_tokens=64))
    assert response.text == "Hi there." and response.tool_calls == ()
    assert response.usage.input_tokens == 21 and response.usage.output_tokens == 4
    assert response.model == "test-model" and response.finish_reason == "stop"
    assert response.raw_id and response.latency_ms > 0

    [sent] = harness.requests
    body = sent.body
    assert body["model"] == "test-model" and body["temperature"] == 0.2
    assert body["max_tokens"] == 64
    if harness.kind == "openai":
        assert sent.path == "/v1/chat/completions"
        assert sent.headers["authorization"] == "Bearer sk-test"
        assert body["messages"] == [{"role": "system", "content": "Be terse."},
                                    {"role": "user", "content": "Hello?"}]
    else:
        assert sent.path == "/v1/messages"
        assert sent_key(sent) == "sk-ant-test"
        assert body["system"] == "Be terse."
        assert body["messages"] == [{"role": "user",
                                     "content": [{"type": "text", "text": "Hello?"}]}]


def test_tool_call_round_trip(harness: Harness) -> None:
    harness.script(ToolCall("crm_lookup", {"email": "ann@example.com"}, id="call-7",
                            input_tokens=30, output_tokens=9),
                   Reply("Ann is a lead.", input_tokens=45, output_tokens=6))
    first_request = ask("Who is ann@example.com?", tools=(TOOL,))
    first = harness.complete(first_request)
    assert first.finish_reason == "tool_calls" and first.text == ""
    [call] = first.tool_calls
    assert (call.id, call.name, call.arguments) == ("call-7", "crm.lookup",
                                                   {"email": "ann@example.com"})
    assert (first.usage.input_tokens, first.usage.output_tokens) == (30, 9)

    conversation = (*first_request.messages, first.as_message(),
                    Message.tool(call.id, '{"name": "Ann", "stage": "lead"}'))
    second = harness.complete(ask(messages=conversation, tools=(TOOL,)))
    assert second.text == "Ann is a lead." and second.usage.input_tokens == 45

    sent_first, sent_second = (r.body for r in harness.requests)
    if harness.kind == "openai":
        expected_tools = [{"type": "function", "function": {
            "name": "crm_lookup", "description": TOOL.description,
            "parameters": TOOL.parameters}}]
        assert sent_first["tools"] == sent_second["tools"] == expected_tools
        assert sent_second["messages"][-2] == {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "call-7", "type": "function", "function": {
                "name": "crm_lookup", "arguments": '{"email": "ann@example.com"}'}}]}
        assert sent_second["messages"][-1] == {
            "role": "tool", "tool_call_id": "call-7",
            "content": '{"name": "Ann", "stage": "lead"}'}
    else:
        expected_tools = [{"name": "crm_lookup", "description": TOOL.description,
                           "input_schema": TOOL.parameters}]
        assert sent_first["tools"] == sent_second["tools"] == expected_tools
        assert sent_second["messages"][-2] == {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call-7", "name": "crm_lookup",
             "input": {"email": "ann@example.com"}}]}
        assert sent_second["messages"][-1] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call-7",
             "content": '{"name": "Ann", "stage": "lead"}'}]}


def test_429_is_transient_with_retry_after(harness: Harness) -> None:
    harness.script(rate_limited(2))
    with pytest.raises(TransientError, match="rate limit") as caught:
        harness.complete(ask())
    assert caught.value.retry_after == 2
    assert len(harness.requests) == 1  # the SDK did not retry on its own


def test_500_is_transient(harness: Harness) -> None:
    harness.script(server_error(500))
    with pytest.raises(TransientError, match="500") as caught:
        harness.complete(ask())
    assert caught.value.retry_after is None
    assert len(harness.requests) == 1


def test_overloaded_529_is_transient(harness: Harness) -> None:
    harness.script(Status(529, "overloaded", {"retry-after-ms": "1500"}))
    with pytest.raises(TransientError) as caught:
        harness.complete(ask())
    assert caught.value.retry_after == 1.5


def test_timeout_is_transient(harness: Harness) -> None:
    harness.script(Delay(10))
    with pytest.raises(TransientError, match="did not answer in time"):
        harness.complete(ask(timeout=0.3))
    assert len(harness.requests) == 1


def test_400_is_deterministic(harness: Harness) -> None:
    harness.script(bad_request("max_tokens is too large"))
    with pytest.raises(DeterministicError, match="400: max_tokens is too large"):
        harness.complete(ask())
    assert len(harness.requests) == 1


def test_401_is_deterministic_with_a_hint(harness: Harness) -> None:
    harness.script(Status(401, "invalid x-api-key"))
    with pytest.raises(DeterministicError, match="check the provider's api_key"):
        harness.complete(ask())


def test_invalid_json_is_deterministic(harness: Harness) -> None:
    harness.script(InvalidJSON())
    with pytest.raises(DeterministicError, match="cannot be understood"):
        harness.complete(ask())


def test_structured_output(harness: Harness) -> None:
    answer = {"label": "lead", "score": 0.8}
    if harness.kind == "openai":
        harness.script(Reply(json.dumps(answer)))
    else:
        harness.script(ToolCall(STRUCTURED_TOOL, answer))
    response = harness.complete(ask("Classify.", response_schema=SCHEMA, temperature=0))
    assert parse_json_output(response.text, SCHEMA) == answer
    assert response.tool_calls == () and response.finish_reason == "stop"

    [sent] = harness.requests
    if harness.kind == "openai":
        assert sent.body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "response", "schema": SCHEMA, "strict": False}}
    else:
        assert sent.body["tools"] == [{"name": STRUCTURED_TOOL,
                                       "description": sent.body["tools"][0]["description"],
                                       "input_schema": SCHEMA}]
        assert sent.body["tool_choice"] == {"type": "tool", "name": STRUCTURED_TOOL}


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    makers: list[Callable[[], OpenAIProvider | AnthropicProvider]] = [
        lambda: OpenAIProvider(base_url=f"http://127.0.0.1:{port}/v1", timeout=2),
        lambda: AnthropicProvider(base_url=f"http://127.0.0.1:{port}", timeout=2),
    ]
    for make in makers:
        with make() as provider, pytest.raises(TransientError, match="cannot reach"):
            provider.complete(ask())


def test_providers_built_from_config() -> None:
    with LLMTestServer([Reply("from openai"), Reply("from anthropic")]) as server:
        config = LLMConfig(parse_table(LLMSection, {
            "providers": {
                "local": {"kind": "openai", "base_url": server.openai_base_url},
                "claude": {"kind": "anthropic", "base_url": server.anthropic_base_url,
                           "api_key": "secret:CLAUDE"},
            },
            "tiers": {"worker": "local:qwen2.5:7b", "planner": "claude:claude-x"},
        }, "llm"))
        texts = []
        for tier in ("worker", "planner"):
            name, model = config.resolve(tier)
            provider: Any = build_provider(config, name, resolve_secret=lambda _: "k")
            with provider:
                texts.append(provider.complete(ask(model=model)).text)
        assert texts == ["from openai", "from anthropic"]
        assert [r.body["model"] for r in server.requests] == ["qwen2.5:7b", "claude-x"]
        assert sent_key(server.requests[1]) == "k"


def test_the_server_closes_promptly_with_a_request_in_flight() -> None:
    import threading
    import time

    server = LLMTestServer([Delay(30)]).start()
    with OpenAIProvider(base_url=server.openai_base_url, timeout=0.2) as provider, \
            pytest.raises(TransientError):
        provider.complete(ask())
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 3
    assert not any(t.name == "llm-test-server" for t in threading.enumerate())


def test_an_exhausted_script_is_counted() -> None:
    with LLMTestServer() as server, \
            OpenAIProvider(base_url=server.openai_base_url, timeout=2) as provider:
        with pytest.raises(TransientError, match="script exhausted"):
            provider.complete(ask())
        assert server.unexpected == 1 and server.remaining == 0
