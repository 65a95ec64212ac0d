from __future__ import annotations

import pytest

from soloist.execution.costs import (
    CostRecord,
    Price,
    cache_key,
    cost_record,
    cost_usd,
    total_usd,
)
from soloist.execution.llm.base import ChatRequest, ChatResponse, Message, ToolSpec, Usage


def request(**changes: object) -> ChatRequest:
    base: dict[str, object] = {
        "model": "gpt-4o-mini",
        "messages": (Message.system("be brief"), Message.user("hello")),
        "tools": (ToolSpec(name="crm.lookup", description="find",
                           parameters={"type": "object",
                                       "properties": {"email": {"type": "string"}}}),),
        "temperature": 0,
        "response_schema": {"type": "object"},
    }
    base.update(changes)
    return ChatRequest.model_validate(base)


def test_cost_is_per_million_tokens() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000)
    assert cost_usd(usage, Price(input=0.15, output=0.60)) == pytest.approx(0.45)
    assert cost_usd(Usage(input_tokens=1234, output_tokens=56), Price(3.0, 15.0)) == \
        pytest.approx((1234 * 3.0 + 56 * 15.0) / 1e6)


def test_unpriced_and_empty_usage_cost_nothing() -> None:
    assert cost_usd(Usage(input_tokens=100, output_tokens=100), None) == 0.0
    assert cost_usd(Usage(), Price(1.0, 1.0)) == 0.0


def test_cost_record_from_a_response() -> None:
    response = ChatResponse(text="hi", usage=Usage(input_tokens=2000, output_tokens=1000),
                            model="gpt-4o-mini", latency_ms=120.5)
    record = cost_record("openai", response, Price(1.0, 2.0))
    assert record == CostRecord(provider="openai", model="gpt-4o-mini", input_tokens=2000,
                                output_tokens=1000, latency_ms=120.5,
                                cost_usd=record.cost_usd, cached=False)
    assert record.cost_usd == pytest.approx(0.004)
    cached = cost_record("openai", response, Price(1.0, 2.0), cached=True)
    assert cached.cached and cached.cost_usd == 0.0 and cached.input_tokens == 2000
    assert total_usd([record, cached, record]) == pytest.approx(0.008)


def test_cache_key_is_stable_and_hex() -> None:
    key = cache_key(request())
    assert key is not None and len(key) == 64
    assert key == cache_key(request())
    assert key == cache_key(ChatRequest.model_validate(request().model_dump(mode="json")))


def test_cache_key_ignores_timeout_and_max_tokens() -> None:
    assert cache_key(request()) == cache_key(request(timeout=5.0, max_tokens=100))


@pytest.mark.parametrize("change", [
    {"model": "gpt-4o"},
    {"messages": (Message.user("hello"),)},
    {"messages": (Message.system("be brief"), Message.user("hello!"))},
    {"tools": ()},
    {"response_schema": None},
    {"response_schema": {"type": "array"}},
])
def test_cache_key_changes_with_what_the_model_sees(change: dict[str, object]) -> None:
    assert cache_key(request(**change)) != cache_key(request())


@pytest.mark.parametrize("temperature", [None, 0.2, 1.0])
def test_no_cache_key_unless_temperature_is_zero(temperature: float | None) -> None:
    assert cache_key(request(temperature=temperature)) is None
    assert cache_key(request(temperature=0.0)) is not None
