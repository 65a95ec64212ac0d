from __future__ import annotations

from typing import Any

import pytest

from soloist.config import parse_toml
from soloist.errors import ConfigError
from soloist.execution.costs import Price
from soloist.execution.llm.anthropic_provider import AnthropicProvider
from soloist.execution.llm.base import LLMProvider
from soloist.execution.llm.config import LLMConfig, build_provider
from soloist.execution.llm.openai_provider import OpenAIProvider

TOML = """
[llm.providers.openai]
kind = "openai"
api_key = "sk-test"
timeout = 30

[llm.providers.ollama]
kind = "openai"
base_url = "http://127.0.0.1:11434/v1"

[llm.providers.claude]
kind = "anthropic"
api_key = "secret:ANTHROPIC_API_KEY"

[llm.providers.tiny]
kind = "local"
model_path = "models/tiny.gguf"

[llm.tiers]
planner = "claude:claude-sonnet-4-5"
worker = "openai:gpt-4o-mini"
light = "ollama:llama3.2:3b"

[llm.prices."gpt-4o-mini"]
input = 0.15
output = 0.60

[llm.prices."claude:claude-sonnet-4-5"]
input = 3
output = 15
"""


def load(text: str = TOML) -> LLMConfig:
    return LLMConfig(parse_toml(text).llm)


def test_the_config_is_read() -> None:
    config = load()
    assert set(config.providers) == {"openai", "ollama", "claude", "tiny"}
    assert config.providers["openai"].timeout == 30
    assert config.providers["ollama"].timeout == 60
    assert config.providers["claude"].api_key == "secret:ANTHROPIC_API_KEY"
    assert config.providers["tiny"].kind == "local"


def test_tiers_resolve_to_provider_and_model() -> None:
    config = load()
    assert config.resolve("planner") == ("claude", "claude-sonnet-4-5")
    assert config.resolve("worker") == ("openai", "gpt-4o-mini")
    assert config.resolve("light") == ("ollama", "llama3.2:3b")


def test_provider_colon_model_resolves() -> None:
    config = load()
    assert config.resolve("openai:gpt-4o") == ("openai", "gpt-4o")
    assert config.resolve("ollama:qwen2.5:7b-instruct") == ("ollama", "qwen2.5:7b-instruct")


@pytest.mark.parametrize(("target", "message"), [
    ("mistral:large", "unknown LLM provider 'mistral'"),
    ("gpt-4o", "neither a tier"),
    ("", "neither a tier"),
])
def test_unknown_targets_are_config_errors(target: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load().resolve(target)


def test_a_bare_model_is_fine_with_a_single_provider() -> None:
    config = load('[llm.providers.ollama]\nkind = "openai"\nbase_url = "http://x/v1"\n')
    assert config.resolve("llama3:8b") == ("ollama", "llama3:8b")
    assert config.resolve("ollama:llama3") == ("ollama", "llama3")


def test_an_unset_tier_is_a_config_error() -> None:
    config = load('[llm.providers.openai]\nkind = "openai"\n')
    with pytest.raises(ConfigError, match="no model is configured for the planner tier"):
        config.resolve("planner")


@pytest.mark.parametrize(("extra", "message"), [
    ('[llm.tiers]\nplanner = "gpt-4o"\n', "must be 'provider:model'"),
    ('[llm.tiers]\nboss = "openai:gpt-4o"\n', "unknown tier 'boss'"),
    ('[llm.tiers]\nworker = "nobody:gpt-4o"\n', "provider 'nobody'"),
    ('[llm.providers.x]\nkind = "cohere"\n', r"\[llm.providers.x\] kind must be"),
    ('[llm.providers.y]\nkind = "openai"\ntimeout = -1\n',
     r"\[llm.providers.y\] timeout must be above 0"),
    ('[llm.providers.z]\nkind = "openai"\napi-key = "k"\n',
     r"unknown key api-key in \[llm.providers.z\]; did you mean api_key\?"),
    ('[llm.prices.m]\ninput = -1\n', r"\[llm.prices.m\] input must be at least 0"),
])
def test_invalid_config_is_a_clear_config_error(extra: str, message: str) -> None:
    text = '[llm.providers.openai]\nkind = "openai"\n' + extra
    with pytest.raises(ConfigError, match=message):
        load(text)


def test_no_llm_section_is_an_empty_config() -> None:
    config = LLMConfig(parse_toml("").llm)
    assert config.providers == {} and config.tiers == {}
    with pytest.raises(ConfigError, match="must be a table"):
        parse_toml('llm = "openai"\n')


def test_prices_prefer_provider_qualified_keys() -> None:
    config = load()
    assert config.price("openai", "gpt-4o-mini") == Price(input=0.15, output=0.60)
    assert config.price("ollama", "gpt-4o-mini") == Price(input=0.15, output=0.60)
    assert config.price("claude", "claude-sonnet-4-5") == Price(input=3.0, output=15.0)
    assert config.price("other", "claude-sonnet-4-5") is None
    assert config.price("ollama", "llama3.2:3b") is None


def test_build_openai_and_compatible_providers() -> None:
    config = load()
    openai_provider: Any = build_provider(config, "openai")
    with openai_provider:
        assert isinstance(openai_provider, OpenAIProvider)
        assert isinstance(openai_provider, LLMProvider)
        assert openai_provider.name == "openai" and openai_provider.timeout == 30
    ollama: Any = build_provider(config, "ollama")
    with ollama:
        assert isinstance(ollama, OpenAIProvider) and ollama.name == "ollama"


def test_secret_references_need_a_resolver() -> None:
    config = load()
    with pytest.raises(ConfigError, match="secret 'ANTHROPIC_API_KEY'"):
        build_provider(config, "claude")
    asked: list[str] = []

    def resolve(name: str) -> str:
        asked.append(name)
        return "sk-ant-test"

    provider: Any = build_provider(config, "claude", resolve_secret=resolve)
    with provider:
        assert isinstance(provider, AnthropicProvider) and provider.name == "claude"
    assert asked == ["ANTHROPIC_API_KEY"]


def test_unknown_and_local_providers() -> None:
    config = load()
    with pytest.raises(ConfigError, match="unknown LLM provider 'nope'"):
        build_provider(config, "nope")
    with pytest.raises(ConfigError, match=r"models/tiny\.gguf does not exist"):
        build_provider(config, "tiny")
