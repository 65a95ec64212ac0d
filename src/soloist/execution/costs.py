"""What model calls cost: pure functions, no I/O.

Prices are USD per million tokens, per model, from ``[llm.prices]`` in ``soloist.toml``.
A call is recorded as a :class:`CostRecord`; the orchestration rolls records up per step,
run and outcome. Deterministic calls (``temperature == 0``) may be served from a cache
keyed by :func:`cache_key`; a cached reply is recorded with ``cached=True`` and costs
nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from soloist.execution.llm.base import ChatRequest, ChatResponse, Usage

CACHE_KEY_VERSION = "soloist-llm-cache-v1"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input and output tokens."""

    input: float = 0.0
    output: float = 0.0


@dataclass(frozen=True, slots=True)
class CostRecord:
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float
    cached: bool = False


def cost_usd(usage: Usage, price: Price | None) -> float:
    """The cost of ``usage`` at ``price``; 0.0 when the model has no price (local models)."""
    if price is None:
        return 0.0
    return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000


def cost_record(provider: str, response: ChatResponse, price: Price | None, *,
                cached: bool = False) -> CostRecord:
    """The record of one call answered by ``response`` (free when ``cached``)."""
    return CostRecord(
        provider=provider,
        model=response.model,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        latency_ms=0.0 if cached else response.latency_ms,
        cost_usd=0.0 if cached else cost_usd(response.usage, price),
        cached=cached,
    )


def total_usd(records: list[CostRecord]) -> float:
    return sum(record.cost_usd for record in records)


def cache_key(request: ChatRequest) -> str | None:
    """A stable key for a deterministic call, or ``None`` (only ``temperature == 0``).

    sha256 over the canonical JSON of the model, the messages, the tools and the response
    schema (``max_tokens`` and ``timeout`` are not part of it).
    """
    if request.temperature is None or request.temperature != 0:
        return None
    document: dict[str, Any] = {
        "v": CACHE_KEY_VERSION,
        "model": request.model,
        "messages": [m.model_dump(mode="json") for m in request.messages],
        "tools": [t.model_dump(mode="json") for t in request.tools],
        "schema": request.response_schema,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
