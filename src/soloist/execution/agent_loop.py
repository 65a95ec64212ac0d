"""The agent loop: a model proposes tool calls, policy decides, reads run, writes are staged.

One call of :func:`run_agent` is the execute phase of an ``agent`` step. The model sees
only the tools granted to the agent (narrowed by the step); every proposed call is put to
the policy engine first, whatever the conversation says, so text in an email cannot make
the agent use a tool it was not given. Reads run at once and their results
go back to the model; writes become intents in the step's outbox and the model is told
they are staged. The loop ends with an output that matches the step's schema, after a
bounded number of repair turns. Every call, decision and tool result becomes an event,
written with the step's outcome.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from soloist import jsonvalues
from soloist.control.agents import Agent
from soloist.control.policies import Policies, PolicyDecision, ToolRequest, decide
from soloist.errors import AgentFailed, DeterministicError, InputError, InvalidOutput, SoloistError
from soloist.execution.context import StepContext, ToolCall
from soloist.execution.costs import cost_usd
from soloist.execution.llm.base import ChatRequest, Message, ToolSpec
from soloist.execution.llm.guard import Budgets, CallGuard, CallSite
from soloist.execution.llm.router import Route
from soloist.execution.llm.structured import parse_json_output, repair_prompt, schema_instructions
from soloist.execution.tools.base import Tool
from soloist.memory.context import WorkingContext
from soloist.store.base import LLMCallRow, NewEvent

MAX_REPAIRS = 2
MAX_TOOL_RESULT_CHARS = 8000


class Router(Protocol):
    def route(self, model_or_tier: str) -> Route: ...


@dataclass
class AgentStep:
    """What one agent step asks: the task, its tools and the shape of its answer."""

    agent: Agent
    task: str
    tools: list[Tool]
    output_schema: dict[str, Any] | None
    playbook: str
    guidance: str | None = None
    budgets: Budgets = field(default_factory=Budgets)
    context: WorkingContext | None = None  # what memory adds, built under a token budget


@dataclass
class AgentResult:
    output: Any
    events: list[NewEvent] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)  # why a person must look first
    calls: list[LLMCallRow] = field(default_factory=list)  # for the cost ledger
    cost_usd: float = 0.0
    turns: int = 0


def tool_spec(tool: Tool) -> ToolSpec:
    schema = tool.args_schema or {"type": "object", "properties": {}}
    return ToolSpec(name=tool.name, description=tool.description, parameters=schema)


def system_prompt(step: AgentStep) -> str:
    parts = [step.agent.instructions.strip(),
             "Tools that change the world (writes) are not carried out when you call them: "
             "they are staged and run after your answer is checked (and, where policy says "
             "so, approved by a person). Reads run at once."]
    if step.context is not None:
        parts.append(step.context.memory_text())
    if step.output_schema is not None:
        parts.append(schema_instructions(step.output_schema))
    return "\n\n".join(p for p in parts if p)


def run_agent(step: AgentStep, ctx: StepContext, router: Router, policies: Policies,
              workspace: str, guard: CallGuard | None = None,
              evaluate: Callable[[str, Any], Any] | None = None,
              route: Route | None = None) -> AgentResult:
    """``route`` is where the agent's model was already routed to, if the caller did."""
    agent = step.agent
    route = route if route is not None else router.route(agent.model)
    site = CallSite(ctx.run_id, ctx.step_id, step.playbook, step.budgets)
    tools = {tool.name: tool for tool in step.tools}
    granted = frozenset(tools)
    result = AgentResult(output=None)

    def event(kind: str, data: dict[str, Any]) -> None:
        result.events.append(NewEvent(kind, data, ctx.run_id, ctx.step_id,
                                      f"agent:{agent.name}@v{agent.version}", time.time()))

    if step.context is not None:
        event("context.built", step.context.record())
    task = step.task if not step.guidance else (
        f"{step.task}\n\nGuidance from a person after a previous attempt: {step.guidance}")
    messages = [Message.system(system_prompt(step)), Message.user(task)]
    specs = tuple(tool_spec(t) for t in step.tools)
    repairs = 0
    try:
        for turn in range(1, agent.max_turns + 1):
            result.turns = turn
            # The schema goes along even with tools: each provider knows how to combine
            # them (native structured output, a constrained grammar, or instructions).
            request = ChatRequest(
                model=route.model, messages=tuple(messages), tools=specs, temperature=0,
                response_schema=step.output_schema)
            if guard is not None:
                response, row = guard.call(route, request, site, result.cost_usd)
                cost, cached = row.cost_usd, row.cached
                result.calls.append(row)
            else:
                response = route.provider.complete(request)
                cost = cost_usd(response.usage, route.price)
                cached = False
            result.cost_usd += cost
            event("llm.call", {
                "provider": route.provider.name, "model": response.model or route.model,
                "turn": turn, "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
                "latency_ms": round(response.latency_ms, 3), "cost_usd": cost,
                "cached": cached, "tool_calls": [c.name for c in response.tool_calls],
                "finish_reason": response.finish_reason})
            if guard is not None:
                guard.check_after(site, result.cost_usd)
            messages.append(response.as_message())
            if response.tool_calls:
                for call in response.tool_calls:
                    content = _tool_call(step, ctx, tools, granted, call.name, call.arguments,
                                         policies, workspace, event, result, evaluate)
                    messages.append(Message.tool(call.id, content))
                continue
            try:
                result.output = _final(response.text, step.output_schema)
            except InvalidOutput as exc:
                repairs += 1
                event("agent.invalid_output", {"problems": exc.problems, "repair": repairs})
                if repairs > MAX_REPAIRS:
                    raise
                messages.append(Message.user(repair_prompt(exc)))
                continue
            event("agent.output", {"turns": turn, "cost_usd": result.cost_usd})
            return result
        raise DeterministicError(f"agent {agent.name} gave no final answer within "
                                 f"{agent.max_turns} turns")
    except SoloistError as exc:
        raise AgentFailed(f"agent {agent.name}: {exc}", result, exc) from exc


def _memory_scope(agent: Agent, tool: Tool, args: dict[str, Any],
                  decision: PolicyDecision) -> PolicyDecision:
    """Memory tools reach only the namespaces the agent is granted (read or write)."""
    tags = set(tool.tags)
    if "memory:read" not in tags and "memory:write" not in tags:
        return decision
    scopes = agent.memory.write if "memory:write" in tags else agent.memory.read
    namespace = str(args.get("namespace", "*"))
    if any(fnmatch.fnmatchcase(namespace, s) for s in scopes) and (
            namespace != "*" or "*" in scopes):
        return decision
    return PolicyDecision("deny", "default:memory-scope",
                          f"agent {agent.name} may not use memory namespace {namespace!r}")


def _final(text: str, schema: dict[str, Any] | None) -> Any:
    if schema is not None:
        return parse_json_output(text, schema)
    try:
        return jsonvalues.loads(text, "the reply")
    except (json.JSONDecodeError, InputError):  # not JSON (or not finite): the text itself
        return text


def _tool_call(step: AgentStep, ctx: StepContext, tools: dict[str, Tool],
               granted: frozenset[str], name: str, args: dict[str, Any], policies: Policies,
               workspace: str, event: Callable[[str, dict[str, Any]], None],
               result: AgentResult, evaluate: Callable[[str, Any], Any] | None) -> str:
    tool = tools.get(name)
    effect = tool.effect_for(args) if tool is not None else "write"
    request = ToolRequest(agent=step.agent.name, playbook=step.playbook, tool=name,
                          effect=effect,
                          tags=tuple(tool.tags) if tool else (), args=args, granted=granted)
    decision: PolicyDecision = decide(request, policies) if evaluate is None else decide(
        request, policies, evaluate)
    if decision.decision != "deny" and tool is not None:
        decision = _memory_scope(step.agent, tool, args, decision)
    event("policy.decision", {"tool": name, "effect": effect, "args": args,
                              "decision": decision.decision, "rule": decision.rule,
                              "reason": decision.reason})
    if tool is None or decision.decision == "deny":
        return json.dumps({"error": f"refused by policy: {decision.reason}"})
    if effect == "write" or decision.decision == "needs_approval":
        try:
            # Checked before it is staged: a bad call goes back to the model to repair,
            # and never sits in the outbox beside good ones that would then half-act.
            tool.admit(args, workspace)
            intent = ctx.stage(tool.name, args, f"{tool.name} {json.dumps(args, default=str)}")
        except SoloistError as exc:
            event("tool.refused", {"tool": name, "args": args, "error": exc.message})
            return json.dumps({"error": f"not staged: {exc.message} Fix the arguments and "
                                        "call the tool again."})
        if decision.decision == "needs_approval":
            result.approvals.append(f"{tool.name}: {decision.reason}")
        event("tool.staged", {"tool": tool.name, "key": intent.idempotency_key,
                              "needs_approval": decision.decision == "needs_approval"})
        return json.dumps({"staged": intent.idempotency_key,
                           "note": "staged; it runs after the step is checked"
                           + (" and approved by a person" if decision.decision ==
                              "needs_approval" else "")})
    call = ToolCall(ctx.run_id, ctx.step_id, f"{ctx.run_id}/{ctx.step_id}/read/{name}",
                    workspace)
    started = time.time()
    try:
        value = tool.invoke(args, call)
    except SoloistError as exc:
        event("tool.call", {"tool": name, "args": args, "error": exc.message,
                            "ms": round((time.time() - started) * 1000, 3)})
        return json.dumps({"error": exc.message})
    text = json.dumps(value, default=str)
    event("tool.call", {"tool": name, "args": args, "result": value,
                        "ms": round((time.time() - started) * 1000, 3)})
    return text[:MAX_TOOL_RESULT_CHARS]
