"""The composition root: one object wires a workspace together.

Every interface (CLI, API, dashboard, MCP) holds a :class:`Workspace` and calls these
methods; none of them talks to the store or the orchestrator directly.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soloist.config import CONFIG_FILE, Settings, load_settings
from soloist.control.modules import WorkspaceModules
from soloist.control.secrets import SecretService
from soloist.errors import InputError, InvalidState, NotFound
from soloist.orchestration.lifecycle import TERMINAL_RUN_STATES, RunState
from soloist.store import open_store
from soloist.store.base import (
    ApprovalRow,
    EventRow,
    IntentRow,
    LLMCallRow,
    RunFilter,
    RunRow,
    StepRow,
)
from soloist.store.permissions import secure_tree
from soloist.workspace.memory_methods import MemoryMethods
from soloist.workspace.memory_methods import positive as _positive
from soloist.workspace.workers import WorkerMethods

# The services below are assembled on first use (see `Workspace`), so that a command that
# only reads runs imports neither the model providers, MCP, embeddings nor the workspace's
# own Python modules; their imports live where they are built.
if TYPE_CHECKING:
    from soloist.control.agents import Agent
    from soloist.control.breakers import Breakers
    from soloist.control.registry import DeployReport, Registry, RollbackReport
    from soloist.execution.llm.config import LLMConfig
    from soloist.execution.llm.guard import Budgets, CallGuard
    from soloist.execution.llm.router import ConfiguredRouter
    from soloist.execution.steps import StepRunner
    from soloist.execution.tools.base import ToolRegistry
    from soloist.execution.tools.mcp import MCPClient
    from soloist.integrations.hooks import HookReply
    from soloist.integrations.ingest import PollReport
    from soloist.integrations.registry import Connectors, ConnectorStatus
    from soloist.memory.anchors import Anchor
    from soloist.memory.context import WorkingContext
    from soloist.memory.documents import Documents
    from soloist.memory.embeddings import Embedder
    from soloist.memory.episodic import VerifyReport
    from soloist.memory.facts import Memory
    from soloist.memory.snapshots import Snapshots
    from soloist.orchestration.gates import Gates
    from soloist.orchestration.scheduler import Scheduler
    from soloist.orchestration.supervisor import Service
    from soloist.orchestration.worker import Worker
    from soloist.workspace.access import Access
    from soloist.workspace.clock import WorkspaceClock
    from soloist.workspace.listing import RunsPage


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    steps: list[StepRow]
    intents: list[IntentRow]
    approvals: list[ApprovalRow]


@dataclass(frozen=True)
class PendingApproval:
    approval: ApprovalRow
    playbook: str
    intents: list[IntentRow]
    output: Any
    #: Keys of these intents that were dispatched before a snapshot restore forgot it
    #: (the dispatch ledger): approving replays their recorded result, never acts again.
    dispatched: list[str] = field(default_factory=list)


class Workspace(MemoryMethods, WorkerMethods):
    def __init__(self, root: Path | str, *, database_url: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.settings: Settings = load_settings(Path(root), env, database_url)
        self.root = self.settings.root
        # Python steps, tool modules and Python definitions are imported from the
        # workspace folder by this loader, never through sys.path (see control/modules.py).
        self.modules = WorkspaceModules(self.root)
        # The store, its key and snapshots are the owner's alone (older versions left
        # them readable by others: tightened here, whenever a workspace is opened).
        secure_tree(self.settings.state_dir)
        self.store = open_store(self.settings.database_url,
                                direct_url=self.settings.database_direct_url)
        try:
            self._assemble()
        except BaseException:
            self.store.close()  # a service that cannot be built leaves no connection open
            raise

    def _assemble(self) -> None:
        """The services over the open store, from the settings (every table of soloist.toml
        was checked when they were read). Only what every command needs is built here; the
        rest are the properties below, built on first use."""
        self.secrets = SecretService(self.store, self.settings.secret_key_file)
        self.secrets.install_redactor()
        self._mcp: MCPClient | None = None
        self._hosts: tuple[str, ...] | None = None
        self._file_roots: tuple[str, ...] | None = None

    @cached_property
    def access(self) -> Access:
        """Tokens, sessions and login links (the API, the dashboard, MCP)."""
        from soloist.workspace.access import Access

        return Access(self.store, self.settings.actor)

    @cached_property
    def clock(self) -> WorkspaceClock:
        """What playbooks' timers read: the real clock, or a rehearsal's moved one."""
        from soloist.workspace.clock import WorkspaceClock

        return WorkspaceClock(self.store, self.settings.workspace.test_clock)

    @cached_property
    def registry(self) -> Registry:
        from soloist.control.registry import Registry

        return Registry(self.store)

    @cached_property
    def memory(self) -> Memory:
        from soloist.memory.facts import Memory

        return Memory(self.store, self.settings.memory.expiry)

    @cached_property
    def documents(self) -> Documents:
        from soloist.memory.documents import Documents
        from soloist.memory.ranking import configured_recipes

        return Documents(self.store, self._embedder(),
                         recipes=configured_recipes(self.settings.memory.search))

    @cached_property
    def snapshots(self) -> Snapshots:
        from soloist.memory.snapshots import Snapshots

        return Snapshots(self.store, self.settings.state_dir / "snapshots")

    @cached_property
    def gates(self) -> Gates:
        from soloist.orchestration.gates import Gates

        return Gates(self.store, self.registry)

    @cached_property
    def tools(self) -> ToolRegistry:
        """The built-in tools, memory's and the measures', those of ``[tools] modules``
        (the workspace's own Python, imported here and only here) and http.request for the
        allowed hosts."""
        from soloist.execution.tools.builtins import builtin_registry
        from soloist.execution.tools.memory import memory_tools
        from soloist.execution.tools.metrics import metrics_tools

        tools = builtin_registry()
        for spec in [*memory_tools(self), *metrics_tools(self)]:
            tools.add(spec)
        for module in self.settings.tool_modules:
            tools.add_module(module, self.modules)
        if self.settings.connectors:
            for spec in self.connectors.tools():
                tools.add(spec)
        self.__dict__["tools"] = tools  # refresh_policies adds to it
        self.refresh_policies()
        return tools

    @cached_property
    def connectors(self) -> Connectors:
        """The ``[connectors.*]`` of soloist.toml, each built on first use."""
        from soloist.integrations.registry import Connectors

        return Connectors(self.settings.connectors, self.store, self.secrets.get,
                          self.settings.state_dir, self.root, self._configured_breakers(),
                          self.actor(None))

    @cached_property
    def llm(self) -> LLMConfig:
        from soloist.execution.llm.config import LLMConfig

        return LLMConfig(self.settings.llm)

    @cached_property
    def router(self) -> ConfiguredRouter:
        from soloist.execution.llm.router import ConfiguredRouter

        return ConfiguredRouter(self.llm, self.secrets.get)

    @cached_property
    def guard(self) -> CallGuard:
        from soloist.execution.llm.guard import CallGuard

        return CallGuard(self.store, self._configured_breakers(),
                         cache=self.llm_cache_enabled())

    def _configured_breakers(self) -> Breakers:
        from soloist.control.breakers import configured_breakers

        return configured_breakers(self.settings.breakers)

    @cached_property
    def runner(self) -> StepRunner:
        from soloist.execution.steps import StepRunner
        from soloist.workspace.memory_access import RunMemory

        return StepRunner(self.tools, str(self.root), agents=self.registry.agent,
                          router=self.router, policies=self.registry.policies,
                          guard=self.guard, budgets=self.budgets,
                          context=self.working_context, modules=self.modules,
                          memory=lambda run_id, pins: RunMemory(self, pins))

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._mcp is not None:
            self._mcp.close()
        if "connectors" in self.__dict__:
            self.connectors.close()
        self.store.close()
        self.modules.unload()

    def _embedder(self) -> Embedder | None:
        """The ``[memory.embeddings]`` embedder (none for ``provider = "none"``); by default
        the local model if installed."""
        from soloist.config.sections import EmbeddingsSection
        from soloist.memory.embeddings import embedder_from_config, local_embeddings_missing

        section = self.settings.memory.embeddings
        if section is None:
            if local_embeddings_missing():
                return None
            section = EmbeddingsSection()
        return embedder_from_config(section, resolve_secret=self.secrets.get)

    def working_context(self, agent: Agent, task: str, run_id: str,
                        playbook: str | None = None, step: str | None = None
                        ) -> WorkingContext:
        """What an agent step sees from memory, under ``[memory] context_tokens``, with
        the step's recent overrides (``[memory] override_examples``) as examples."""
        from soloist.execution.llm.base import ChatRequest, Message
        from soloist.memory.context import build as build_context
        from soloist.workspace import overrides

        budget = self.settings.memory.context_tokens

        def summarise(text: str) -> str:
            route = self.router.route("light")
            reply = route.provider.complete(ChatRequest(
                model=route.model, temperature=0, max_tokens=200, messages=(
                    Message.system("Summarise the facts below in a few short lines."),
                    Message.user(text[:8000]))))
            return reply.text

        return build_context(instructions=agent.instructions, task=task, budget=budget,
                             memory=self.memory, documents=self.documents,
                             read_scopes=agent.memory.read, store=self.store, run_id=run_id,
                             summarise=summarise if self.llm.providers else None,
                             overrides=overrides.examples(
                                 self.store, playbook=playbook, step=step, agent=agent.name,
                                 limit=self.settings.memory.override_examples)
                             if playbook is not None and step is not None else ())

    def overrides(self, agent: str | None = None, playbook: str | None = None,
                  step: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """A person's edits of drafts at gates, newest first: each with its before and
        after, the reason, and the agent steps whose drafts it corrects."""
        from soloist.workspace import overrides

        return overrides.listed(self.store, agent=agent, playbook=playbook, step=step,
                                limit=limit)

    def llm_cache_enabled(self) -> bool:
        return self.settings.worker.llm_cache

    def budgets(self, playbook: str) -> Budgets:
        """The daily budgets from ``[budgets]`` in soloist.toml (the run budget is the
        playbook's own ``budget.cost_usd``)."""
        from soloist.execution.llm.guard import Budgets

        section = self.settings.budgets
        return Budgets(None, section.playbook(playbook), section.workspace_daily_usd)

    def refresh_policies(self) -> None:
        """http.request may reach the hosts that the deployed policies allow, and the file
        tools write in the workspace and the policies' ``file_roots``."""
        from soloist.execution.tools.builtins import file_tools
        from soloist.execution.tools.http import http_request_tool

        deployed = self.registry.policies()
        hosts = tuple(deployed.allowed_hosts)
        if hosts != self._hosts:
            self.tools.add(http_request_tool(hosts))
            self._hosts = hosts
        roots = tuple(deployed.file_roots)
        if roots != self._file_roots:
            # The store's file and the key may live outside .soloist/: never a tool's target.
            store_path = getattr(self.store, "path", None)
            protected = [str(self.settings.secret_key_file)] + ([
                store_path + suffix for suffix in ("", "-wal", "-shm", "-journal")]
                if isinstance(store_path, str) and store_path != ":memory:" else [])
            for spec in file_tools(roots, protected):
                self.tools.add(spec)
            self._file_roots = roots

    def connect_tools(self) -> None:
        """Add the tools of the MCP servers in soloist.toml (started on first need)."""
        from soloist.execution.tools.mcp import MCPServerConfig, register_servers

        if self._mcp is not None:
            return
        configs = [MCPServerConfig.from_section(name, server)
                   for name, server in self.settings.mcp.servers.items()]
        self._mcp = register_servers(self.tools, configs)

    def actor(self, actor: str | None) -> str:
        return actor or f"person:{self.settings.actor}"

    # -- registry ------------------------------------------------------------------
    def deploy(self, actor: str | None = None) -> DeployReport:
        # What runs will find: the registered tools, and the MCP servers whose tools are
        # only listed once a worker starts them.
        from soloist.control.checks import ToolNames
        from soloist.workspace.memory_access import seeder

        servers = self.settings.mcp.servers
        tools = ToolNames(frozenset(self.tools.tools), frozenset(servers), {
            spec.name: spec.compensate.tool for spec in self.tools.tools.values()
            if spec.compensate is not None})
        return self.registry.deploy(self.root, self.actor(actor), tools, self.modules,
                                    self._connector_problems(), seeder(self))

    def _connector_problems(self) -> list[str]:
        """The secrets soloist.toml's connectors refer to that are not set."""
        from soloist.control.checks import connector_problems

        if not self.settings.connectors:
            return []
        names = {row.name for row in self.secrets.list()}
        try:  # for the lines: the tables themselves were read when the workspace opened
            text: str | None = (self.root / CONFIG_FILE).read_text(encoding="utf-8")
        except OSError:
            text = None
        return list(connector_problems(self.settings.connectors, names, text))

    def rollback(self, kind: str, name: str, version: int, actor: str | None = None, *,
                 write: bool = False) -> RollbackReport:
        """Deploy ``version`` again; say whether the file on disk would undo it at the next
        deploy, or (``write``) write the rolled-back content to that file."""
        return self.registry.rollback(kind, name, version, self.actor(actor), root=self.root,
                                      write=write)

    def definitions(self, kind: str | None = None) -> list[Any]:
        with self.store.read() as tx:
            return tx.registry.all_latest(kind)

    def history(self, kind: str, name: str) -> list[Any]:
        with self.store.read() as tx:
            rows = tx.registry.history(kind, name)
        if not rows:
            raise NotFound(f"no {kind} named {name!r} was ever deployed")
        return rows

    def diff(self, kind: str, name: str, old: int, new: int) -> str:
        """What changed from version ``old`` to ``new``: a unified diff of the two
        definitions as YAML."""
        from soloist.workspace.operations import diff_versions

        return diff_versions(self, kind, name, old, new)

    # -- runs ------------------------------------------------------------------------
    def start(self, playbook: str, inputs: dict[str, Any] | None = None, *,
              actor: str | None = None, priority: int | None = None) -> str:
        from soloist.orchestration import runs

        definition = self.registry.latest_playbook(playbook)
        who = self.actor(actor)
        pins = self.registry.pins_for(definition)
        with self.store.transaction() as tx:
            return runs.start_run(tx, runs.StartRequest(
                definition, inputs or {}, {"manual": who}, who, priority, pins))

    def start_many(self, playbook: str, rows: list[tuple[str, dict[str, Any]]], *,
                   actor: str | None = None) -> list[str]:
        """A run for each row of inputs, all or none (``(where, inputs)`` pairs: ``where``
        names the row, ``leads.csv:3``, in the error of a row that does not fit)."""
        from soloist.workspace.operations import start_many

        return start_many(self, playbook, rows, self.actor(actor))

    def get_run(self, run_id: str) -> RunRow:
        with self.store.read() as tx:
            run = tx.runs.get(run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}; `soloist runs` lists them")
        return run

    def wait(self, run_id: str, timeout: float = 60.0, *,
             until_waiting: bool = False) -> RunRow:
        """Block until the run ends (or waits at a gate, with ``until_waiting``)."""
        deadline = time.time() + timeout
        woken = threading.Event()
        self.store.add_listener(woken.set)
        try:
            while True:
                run = self.get_run(run_id)
                if run.state in TERMINAL_RUN_STATES:
                    return run
                if until_waiting and self.approvals(run_id=run_id):
                    return run
                if time.time() >= deadline:
                    raise InvalidState(f"run {run_id} is still {run.state} after {timeout:g}s")
                woken.wait(0.05)
                woken.clear()
        finally:
            self.store.remove_listener(woken.set)

    def runs(self, state: str | None = None, playbook: str | None = None,
             limit: int = 50) -> list[RunRow]:
        known = [s.value for s in RunState]
        if state is not None and state not in known:
            raise InputError(f"{state!r} is not a run state; use one of {', '.join(known)}")
        _positive(limit, "the limit")
        with self.store.read() as tx:
            return tx.runs.list(state=state, playbook=playbook, limit=limit)

    def runs_page(self, match: RunFilter | None = None, cursor: str | None = None,
                  limit: int = 50, *, count: bool = False) -> RunsPage:
        """Runs matching ``match``, newest first, a page at a time (see listing.py)."""
        from soloist.workspace.listing import page_runs

        return page_runs(self.store, match or RunFilter(), cursor, limit, count=count)

    def show(self, run_id: str) -> RunDetail:
        run = self.get_run(run_id)
        with self.store.read() as tx:
            return RunDetail(run, tx.steps.for_run(run_id), tx.intents.for_run(run_id),
                             tx.approvals.for_run(run_id))

    def cancel(self, run_id: str, actor: str | None = None) -> RunRow:
        from soloist.orchestration import runs

        run = self.get_run(run_id)
        if run.state == RunState.COMPENSATING:
            waiting = [p.approval.id for p in self.approvals(run_id=run_id)]
            hint = (f"a failed undo waits for you: `soloist approve {waiting[0]}` retries it, "
                    f"`soloist resolve {waiting[0]} --note ...` records you undid it by hand, "
                    f"`soloist reject {waiting[0]} --reason ...` gives up"
                    if waiting else "it ends by itself once its compensations finish")
            raise InvalidState(f"run {run_id} is already stopping (compensating); {hint}.")
        if run.state != RunState.RUNNING:
            raise InvalidState(f"run {run_id} is {run.state}; only a running run can be "
                               "cancelled")
        playbook = self.registry.playbook(run.playbook, run.playbook_version)
        who = self.actor(actor)
        with self.store.transaction() as tx:
            runs.end_run(tx, run_id, playbook, final_state=RunState.CANCELLED,
                         error=f"cancelled by {who}", actor=who, now=self.store.now())
        return self.get_run(run_id)

    def retry_run(self, run_id: str, actor: str | None = None) -> RunRow:
        """Go on with a failed run from its failed steps (see orchestration/rerun.py)."""
        from soloist.orchestration.rerun import retry_run

        with self.store.transaction() as tx:
            retry_run(tx, run_id, self.actor(actor), self.store.now())
        return self.get_run(run_id)

    def retry_matching(self, match: RunFilter, confirm: int, actor: str | None = None
                       ) -> tuple[list[str], dict[str, str]]:
        """:meth:`retry_run` for every failed run ``match`` matches, if they are exactly
        ``confirm`` runs; the runs retried, and those that could not be, with why."""
        from soloist.workspace.operations import bulk

        return bulk(self, match, RunState.FAILED, confirm, self.retry_run, actor)

    def cancel_matching(self, match: RunFilter, confirm: int, actor: str | None = None
                        ) -> tuple[list[str], dict[str, str]]:
        """Cancel every running run ``match`` matches, if they are exactly ``confirm`` runs
        (the count the person saw: a filter that matches more by now cancels nothing).
        The runs cancelled, and those that ended by themselves meanwhile, with why."""
        from soloist.workspace.operations import bulk

        return bulk(self, match, RunState.RUNNING, confirm, self.cancel, actor)

    def costs(self, run_id: str) -> list[LLMCallRow]:
        """The model calls a run made, with tokens and cost (the cost ledger)."""
        with self.store.read() as tx:
            return tx.costs.for_run(run_id)

    def _window(self, days: float, playbook: str | None) -> float:
        """The start of the last ``days``; a playbook named must be one that was deployed."""
        if not days > 0 or math.isinf(days):
            raise InputError(f"the number of days must be positive and finite, not {days:g}")
        if playbook is not None:
            with self.store.read() as tx:
                if tx.registry.latest("playbook", playbook) is None:
                    raise NotFound(f"no playbook named {playbook!r} was ever deployed")
        return time.time() - days * 86400

    def metrics(self, days: float = 30.0, playbook: str | None = None) -> dict[str, Any]:
        """The five operator measures over the runs created in the last ``days``, overall
        and per playbook (defined in soloist/orchestration/measures.py)."""
        from soloist.orchestration import measures

        since = self._window(days, playbook)
        with self.store.read() as tx:
            figures = measures.report(tx, since, playbook)
        return {"days": days, "since": since, "playbook": playbook, **figures}

    def metrics_series(self, days: float = 30.0,
                       playbook: str | None = None) -> list[dict[str, Any]]:
        """The measures per UTC day (runs by the day they were created), for charts."""
        from soloist.orchestration import measures

        since = self._window(days, playbook)
        if days > measures.MAX_SERIES_DAYS:
            raise InputError(f"a series covers at most {measures.MAX_SERIES_DAYS} days, "
                             f"not {days:g}")
        with self.store.read() as tx:
            rows = tx.measures.daily(since, playbook)
        return measures.series(rows, since, time.time())

    def prometheus_metrics(self, days: float = 30.0) -> str:
        """The measures and the engine's state in the Prometheus text format (``/metrics``)."""
        from soloist.orchestration import measures
        from soloist.orchestration.prometheus import prometheus_text

        since = self._window(days, None)
        with self.store.read() as tx:
            figures = measures.report(tx, since)
            now = measures.live(tx)
        return prometheus_text(figures, now, days * 86400)

    # -- gates -----------------------------------------------------------------------
    def approvals(self, run_id: str | None = None) -> list[PendingApproval]:
        with self.store.read() as tx:
            rows = tx.approvals.open(500) if run_id is None else [
                a for a in tx.approvals.for_run(run_id) if a.decision is None]
            out: list[PendingApproval] = []
            for approval in rows:
                step = tx.steps.get(approval.run_id, approval.step_id)
                intents = [i for i in tx.intents.for_step(approval.run_id, approval.step_id)
                           if i.status == "staged"]
                kept = tx.ledger.dispatched([i.idempotency_key for i in intents])
                out.append(PendingApproval(approval, step.playbook if step else "", intents,
                                           step.output if step else None,
                                           [i.idempotency_key for i in intents
                                            if i.idempotency_key in kept]))
        return out

    def approve(self, approval_id: str, note: str | None = None,
                actor: str | None = None,
                edits: Mapping[int, Mapping[str, Any]] | None = None) -> ApprovalRow:
        """Let the step's intents go; ``edits`` (intent index -> new arguments) changes them
        first, each checked as its tool checks arguments and kept as a human override
        beside the original (``approval.override`` in the log)."""
        from soloist.orchestration.gates import Edit
        from soloist.workspace.operations import checked_edit

        checked = [Edit(idx, checked_edit(self, approval_id, idx, args))
                   for idx, args in (edits or {}).items()]
        return self.gates.approve(approval_id, self.actor(actor), note, edits=checked)

    def reject(self, approval_id: str, reason: str, actor: str | None = None) -> ApprovalRow:
        return self.gates.reject(approval_id, self.actor(actor), reason)

    def retry(self, approval_id: str, guidance: str, actor: str | None = None) -> ApprovalRow:
        return self.gates.retry(approval_id, self.actor(actor), guidance)

    def resolve(self, approval_id: str, note: str, actor: str | None = None) -> ApprovalRow:
        """A failed compensation was undone by hand (see orchestration/compensation.py)."""
        return self.gates.resolve(approval_id, self.actor(actor), note)

    # -- log and audit ----------------------------------------------------------------
    def log(self, run_id: str | None = None, after: int = 0, limit: int = 1000
            ) -> list[EventRow]:
        _positive(limit, "the limit")
        if run_id is not None:
            self.get_run(run_id)  # an unknown run is a mistake, not an empty log
        with self.store.read() as tx:
            return tx.events.list(run_id=run_id, after_seq=after, limit=limit)

    def log_head(self) -> int:
        """The sequence number of the newest event (0 for an empty log): the chain head
        that every append moves in its own transaction, one read."""
        with self.store.read() as tx:
            head = tx.events.head()
        return head.seq if head is not None else 0

    def verify(self, anchor: Path | None = None, key: Path | None = None) -> VerifyReport:
        """The chain, its end against the stored head and, with ``anchor``, the log against
        each anchor in that file (``key``: the file that signed them)."""
        from soloist.memory.episodic import verify_against

        return verify_against(self.store, self.settings, anchor, key)

    def anchor(self, to: Path, key: Path | None = None) -> Anchor:
        """Append the verified chain head to ``to``, a file kept outside the store."""
        from soloist.memory.episodic import anchor_head

        return anchor_head(self.store, self.settings, to, key)

    # -- processes -------------------------------------------------------------------
    def worker(self, concurrency: int | None = None, name: str | None = None) -> Worker:
        from soloist.orchestration.worker import Worker, WorkerOptions

        s = self.settings
        options = WorkerOptions(concurrency=concurrency or s.concurrency,
                                lease_seconds=s.lease_seconds, poll_seconds=s.poll_seconds,
                                queue_limits=dict(s.queue_limits))
        self.connect_tools()
        if self.settings.connectors:
            for connector in self.connectors:
                connector.prepare()
        worker = Worker(self.store, self.registry, self.runner, options, name=name)
        # Policies deployed from another process apply within seconds (secrets at once:
        # the store checks their stamp in every write transaction).
        worker.refresh_hooks.append(self.refresh_policies)
        return worker

    def scheduler(self, owner: str | None = None) -> Scheduler:
        from soloist.orchestration.scheduler import Scheduler
        from soloist.orchestration.worker import worker_id

        return Scheduler(self.store, self.registry, self.gates, owner or worker_id())

    def serve(self, *, concurrency: int | None = None, scheduler: bool = True,
              workers: bool = True, on_ready: Callable[[str], None] | None = None,
              services: Sequence[Service] = ()) -> None:
        """Run a worker and/or the scheduler (and ``services``, such as the web server)
        until SIGTERM or SIGINT, then stop cleanly.

        ``on_ready`` is called with the worker's id (or the scheduler's) once a signal
        would stop the process cleanly: before that, SIGTERM is Python's default."""
        from soloist.orchestration.supervisor import Supervisor
        from soloist.orchestration.worker import worker_id

        worker = self.worker(concurrency) if workers else None
        owner = worker.id if worker is not None else worker_id()
        services = list(services)
        if workers and self.settings.connectors:
            from soloist.integrations.ingest import Poller

            sources = self.connectors.sources()
            if sources:
                services.append(Poller(self.store, sources, owner))
        Supervisor(worker, self.scheduler(owner) if scheduler else None,
                   on_ready=None if on_ready is None else lambda: on_ready(owner),
                   services=services).run()

    # -- connectors ------------------------------------------------------------------
    def connector_status(self, name: str | None = None) -> list[ConnectorStatus]:
        """Each connector's health, bucket, breaker, cursors and backlog (``soloist
        connectors``), as every worker shares them through the store."""
        return self.connectors.status(name)

    def test_connector(self, name: str) -> str:
        """One real round trip with the connector's server: what was checked, or a
        SoloistError saying in one sentence what is wrong."""
        return self.connectors.get(name).test()

    def receive_webhook(self, path: str, headers: Mapping[str, str],
                        body: bytes) -> HookReply:
        """Check and store one delivery to ``/hooks/PATH``; the HTTP answer to give, a 2xx
        only once the delivery is committed to the store."""
        from soloist.integrations.hooks import receive

        return receive(self.connectors, path, headers, body)

    def sync_connector(self, name: str) -> list[PollReport]:
        """Poll every source of the connector now, into its backlog."""
        from soloist.integrations.ingest import poll_once

        connector = self.connectors.get(name)
        return [poll_once(self.store, connector, source) for source in connector.sources()]
