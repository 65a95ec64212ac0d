"""The workspace as MCP tools, over the same :class:`Workspace` methods as the CLI.

Who calls is asked of ``caller`` at each call (the local operator over stdio; over HTTP the
token's principal, see :mod:`soloist.interfaces.mcp.http`): what it may call follows its
scopes (:data:`TOOL_SCOPES`), and what it does is recorded under its actor. The writes
(start, approve, reject) are logged by the workspace itself; every read appends one
:data:`CALL_EVENT`, so the log also shows who looked.

A user's mistake (an unknown run, inputs the playbook's schema refuses) is an error result
carrying the one-sentence message, for the model to read; never a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, cast

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from soloist.control.access import Principal
from soloist.errors import PermissionDenied, SoloistError
from soloist.interfaces.mcp import rows
from soloist.workspace.audit_calls import record_call

if TYPE_CHECKING:
    from soloist.store.base import ApprovalRow
    from soloist.workspace import Workspace

Caller = Callable[[], Principal]

#: the scope each tool needs (scopes nest: see soloist.control.access)
TOOL_SCOPES: dict[str, str] = {
    "list_playbooks": "read", "get_run": "read", "list_runs": "read",
    "search_memory": "read", "get_fact": "read", "list_approvals": "read",
    "start_run": "run", "approve": "approve", "reject": "approve",
}
#: the event each read-only call appends
CALL_EVENT = "mcp.call"

INSTRUCTIONS = (
    "A Soloist workspace: deployed playbooks, their runs, the approvals waiting for a "
    "person, and memory (facts with their history, documents). Start runs with start_run; "
    "a step that needs a person waits in list_approvals until someone decides.")

_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
_START = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                         open_world_hint=True)
# Approving lets a step's effects happen (an email is sent); rejecting undoes the run's
# earlier effects: neither can be taken back by calling again.
_DECIDE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                          open_world_hint=True)

_NOT_A_PERSON = (
    " Your client's own confirmation prompt is not a person's decision: call this only "
    "when the person this connection acts for has decided, having seen the exact intents "
    "(list_approvals). The decision is recorded with this connection's actor "
    "(token:NAME over HTTP, the local operator over stdio), so the log shows who.")

Limit = Annotated[int, Field(ge=1, le=500, description="At most this many.")]


@contextmanager
def logging_untouched() -> Iterator[None]:
    """``MCPServer()`` calls ``logging.basicConfig``: the host process's logging stays its own."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


class _Calls:
    """Runs one tool call: the scope check, the log, the workspace call off the event loop
    (the store blocks), and a user's mistake turned into a tool error."""

    def __init__(self, ws: Workspace, caller: Caller) -> None:
        self.ws = ws
        self.caller = caller

    async def __call__(self, tool: str, arguments: dict[str, Any],
                       work: Callable[[Principal], dict[str, Any]]) -> dict[str, Any]:
        principal = self.caller()
        needed = TOOL_SCOPES[tool]

        def run() -> dict[str, Any]:
            if not principal.may(needed):
                raise PermissionDenied(f"the token {principal.name!r} does not have the "
                                       f"{needed!r} scope that {tool} needs")
            if needed == "read":
                record_call(self.ws, CALL_EVENT, tool, arguments, principal.actor)
            return work(principal)

        try:
            return await anyio.to_thread.run_sync(run)
        except SoloistError as exc:
            # An error result of our own, as the SDK passes it on: the model reads the
            # sentence alone (a ToolError would be prefixed and logged as a failure).
            return cast(dict[str, Any], CallToolResult(
                content=[TextContent(type="text", text=exc.message)], is_error=True))


def _decided(ws: Workspace, before: ApprovalRow) -> dict[str, Any]:
    """The approval as it is now decided (the gate returns it as it was found)."""
    now = [a for a in ws.show(before.run_id).approvals if a.id == before.id]
    return {"approval": rows.jsonable(now[0] if now else before)}


def build_server(ws: Workspace, caller: Caller, *, approvals: bool) -> MCPServer:
    """An MCP server of the workspace's tools; with ``approvals``, also approve and reject
    (the caller decides whether it may have them: see the stdio and HTTP entries)."""
    from importlib.metadata import version

    with logging_untouched():
        server: MCPServer = MCPServer("soloist", version=version("soloist"),
                                      instructions=INSTRUCTIONS, log_level="WARNING")
    call = _Calls(ws, caller)

    async def list_playbooks() -> dict[str, Any]:
        """The deployed playbooks (latest versions): name, description, the JSON schema of
        their inputs and their steps."""
        return await call("list_playbooks", {}, lambda _p: {
            "playbooks": [rows.playbook(r) for r in ws.definitions("playbook")]})

    async def start_run(
            playbook: Annotated[str, Field(description="The playbook's name.")],
            inputs: Annotated[dict[str, Any] | None, Field(
                description="The run's inputs, checked against the playbook's schema.")]
            = None,
            priority: Annotated[int | None, Field(
                description="Higher runs first (default: the playbook's).")] = None,
    ) -> dict[str, Any]:
        """Start a run of a deployed playbook; it runs on the workspace's workers. Returns
        the run (its id for get_run); a step that needs a person waits in list_approvals."""
        def work(p: Principal) -> dict[str, Any]:
            run_id = ws.start(playbook, inputs or {}, actor=p.actor, priority=priority)
            return {"run": rows.jsonable(ws.get_run(run_id))}

        return await call("start_run", {"playbook": playbook}, work)

    async def get_run(run_id: Annotated[str, Field(description="The run's id.")]
                      ) -> dict[str, Any]:
        """One run with its steps (states, attempts, outputs, errors), its intents (what
        it does or did in the world) and its approvals."""
        return await call("get_run", {"run_id": run_id},
                          lambda _p: rows.run_detail(ws.show(run_id)))

    async def list_runs(
            state: Annotated[str | None, Field(
                description="Only runs in this state (running, done, failed, ...).")] = None,
            playbook: Annotated[str | None, Field(
                description="Only runs of this playbook.")] = None,
            limit: Limit = 50,
    ) -> dict[str, Any]:
        """Runs, newest first."""
        arguments = {"state": state, "playbook": playbook, "limit": limit}
        return await call("list_runs", arguments, lambda _p: {
            "runs": rows.jsonable(ws.runs(state=state, playbook=playbook, limit=limit))})

    async def search_memory(
            query: Annotated[str, Field(description="What to look for, in words.")],
            namespace: Annotated[str, Field(
                description="A namespace or a glob of them (leads/*).")] = "*",
            k: Annotated[int, Field(ge=1, le=100, description="How many hits.")] = 10,
    ) -> dict[str, Any]:
        """The best matching documents and facts in memory."""
        arguments = {"query": query, "namespace": namespace, "k": k}
        return await call("search_memory", arguments, lambda _p: {
            "hits": [h.as_dict() for h in ws.search_memory(query, namespace, k)]})

    async def get_fact(
            namespace: Annotated[str, Field(description="The fact's namespace.")],
            subject: Annotated[str, Field(description="What the fact is about.")],
            key: Annotated[str, Field(description="Which fact about the subject.")],
    ) -> dict[str, Any]:
        """A fact: its current value (null once forgotten or expired), every version with
        who wrote it, when and why, and "why do we believe this": each version with the
        log events of the run step that wrote it."""
        def work(_p: Principal) -> dict[str, Any]:
            history = ws.fact_history(namespace, subject, key)
            return {"fact": rows.jsonable(ws.get_fact(namespace, subject, key)),
                    "history": rows.jsonable(history),
                    "why": [rows.explanation(e) for e in ws.why(namespace, subject, key)]}

        return await call("get_fact", {"namespace": namespace, "subject": subject,
                                       "key": key}, work)

    async def list_approvals(
            run_id: Annotated[str | None, Field(
                description="Only those of this run.")] = None,
    ) -> dict[str, Any]:
        """The approvals waiting for a person, oldest first, each with the exact intents
        approving it lets happen (tool and arguments) and the step's output."""
        return await call("list_approvals", {"run_id": run_id}, lambda _p: {
            "approvals": [rows.pending(a) for a in ws.approvals(run_id=run_id)]})

    async def approve(
            approval_id: Annotated[str, Field(description="The approval's id.")],
            note: Annotated[str | None, Field(description="Why, for the log.")] = None,
    ) -> dict[str, Any]:
        def work(p: Principal) -> dict[str, Any]:
            return _decided(ws, ws.approve(approval_id, note, actor=p.actor))

        return await call("approve", {"approval_id": approval_id}, work)

    async def reject(
            approval_id: Annotated[str, Field(description="The approval's id.")],
            reason: Annotated[str, Field(min_length=1, description="Why, for the log.")],
    ) -> dict[str, Any]:
        def work(p: Principal) -> dict[str, Any]:
            return _decided(ws, ws.reject(approval_id, reason, actor=p.actor))

        return await call("reject", {"approval_id": approval_id}, work)

    for read in (list_playbooks, get_run, list_runs, search_memory, get_fact,
                 list_approvals):
        server.add_tool(read, annotations=_READ)
    server.add_tool(start_run, annotations=_START)
    if approvals:
        server.add_tool(approve, annotations=_DECIDE, description=(
            "Approve a step that waits for a person: its staged intents are then carried "
            "out." + _NOT_A_PERSON))
        server.add_tool(reject, annotations=_DECIDE, description=(
            "Reject a step that waits for a person: the run fails and what it already did "
            "is undone (its compensations)." + _NOT_A_PERSON))
    return server
