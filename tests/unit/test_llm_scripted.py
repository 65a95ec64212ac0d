from __future__ import annotations

import threading

import pytest

from soloist.errors import TransientError
from soloist.execution.llm.base import (
    ChatRequest,
    ChatResponse,
    LLMProvider,
    Message,
    ToolCallRequest,
)
from soloist.testing.llm import ScriptedProvider, ScriptExhausted, reply, tool_call


def ask(text: str, model: str = "m1") -> ChatRequest:
    return ChatRequest(model=model, messages=(Message.user(text),))


def test_answers_in_order_and_records_requests() -> None:
    provider = ScriptedProvider([
        tool_call("crm.lookup", {"email": "a@b.c"}, id="c1"),
        TransientError("busy", retry_after=1.5),
        lambda request: ChatResponse(text=request.messages[-1].content.upper()),
        reply("done", input_tokens=3, output_tokens=2, model="fixed"),
    ])
    assert isinstance(provider, LLMProvider)
    first = provider.complete(ask("who is a@b.c?"))
    assert first.tool_calls == (ToolCallRequest(id="c1", name="crm.lookup",
                                                arguments={"email": "a@b.c"}),)
    assert first.finish_reason == "tool_calls" and first.model == "m1"
    with pytest.raises(TransientError) as caught:
        provider.complete(ask("again"))
    assert caught.value.retry_after == 1.5
    assert provider.complete(ask("shout", model="m2")).text == "SHOUT"
    last = provider.complete(ask("bye"))
    assert (last.text, last.model, last.usage.input_tokens) == ("done", "fixed", 3)
    assert [r.messages[-1].content for r in provider.requests] == \
        ["who is a@b.c?", "again", "shout", "bye"]
    assert provider.calls == 4 and provider.remaining == 0


def test_an_exhausted_script_fails_loudly() -> None:
    provider = ScriptedProvider([reply()])
    provider.complete(ask("one"))
    with pytest.raises(ScriptExhausted, match="no scripted response left for call 2"):
        provider.complete(ask("two"))
    provider.add(reply("three"))
    assert provider.complete(ask("three")).text == "three"


def test_as_message_continues_the_conversation() -> None:
    response = tool_call("search", {"q": "x"}, id="t1", text="let me look")
    message = response.as_message()
    assert message.role == "assistant" and message.content == "let me look"
    assert message.tool_calls[0].id == "t1"
    follow_up = Message.tool("t1", "nothing found")
    assert follow_up.role == "tool" and follow_up.tool_call_id == "t1"


def test_thread_safe() -> None:
    provider = ScriptedProvider([reply(str(i)) for i in range(200)])
    threads = [threading.Thread(target=lambda: [provider.complete(ask("x"))
                                                for _ in range(50)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert provider.calls == 200 and provider.remaining == 0


def test_models_round_trip_through_json() -> None:
    request = ChatRequest(model="m", messages=(
        Message.system("s"), Message.user("u"),
        Message.assistant("", [ToolCallRequest(id="1", name="t", arguments={"a": [1]})]),
        Message.tool("1", "r")), temperature=0, response_schema={"type": "object"})
    assert ChatRequest.model_validate_json(request.model_dump_json()) == request
