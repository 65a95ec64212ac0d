"""The agent model: an LLM worker with instructions, a model tier, tools and memory scopes.

Only the definition lives here; the execution plane runs agents.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from soloist.control.playbooks import NAME_PATTERN, Budget, Model

TIERS = ("planner", "worker", "light")
# ``provider:model`` pins one model; model names carry dots, slashes and colons.
_PINNED = re.compile(r"^[A-Za-z0-9_-]+:[A-Za-z0-9_.:/@-]+$")


class MemoryScopes(Model):
    """The memory scopes an agent may read from and write to."""

    read: list[str] = Field(default_factory=list)
    write: list[str] = Field(default_factory=list)


class Agent(Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    instructions: str
    model: str = "worker"  # a tier from soloist.toml, or ``provider:model``
    tools: list[str] = Field(default_factory=list)
    memory: MemoryScopes = Field(default_factory=MemoryScopes)
    max_turns: int = Field(default=8, ge=1, le=100)
    budget: Budget = Field(default_factory=Budget)
    version: int | None = None  # assigned by deploy

    @field_validator("model")
    @classmethod
    def _tier_or_pinned(cls, value: str) -> str:
        if value in TIERS or _PINNED.match(value):
            return value
        tiers = ", ".join(TIERS)
        raise ValueError(f"model {value!r} is neither a tier ({tiers}) nor 'provider:model'")

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: list[str]) -> list[str]:
        repeated = sorted({tool for tool in value if value.count(tool) > 1})
        if repeated:
            raise ValueError(f"tool(s) granted twice: {', '.join(repeated)}")
        return value
