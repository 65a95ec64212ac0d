"""Every model call goes through here: breaker, cache, budget, then the cost ledger.

* The provider's circuit breaker (state in the store, shared by all workers) is checked
  first; an open breaker makes the step wait without spending an attempt.
* A deterministic call (temperature 0) is answered from the response cache when the same
  model saw the same messages, tools and schema before; the hit costs nothing and is
  recorded as cached.
* Budgets (per run, per playbook per day, per workspace per day) are checked before the
  call with an estimate and after it with the actual cost; going over is a semantic
  failure, so a person decides, never a silent overspend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from soloist.control.breakers import (
    BreakerPolicy,
    Breakers,
    after_call,
    before_call,
)
from soloist.errors import BreakerOpen, SemanticError, StepFailure
from soloist.execution.costs import Price, cache_key, cost_usd
from soloist.execution.llm.base import ChatRequest, ChatResponse, Usage
from soloist.execution.llm.router import Route
from soloist.store.base import BreakerRow, LLMCallRow, Store

#: Characters per token for the pre-call estimate (no tokenizer download at run time).
CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_ESTIMATE = 512


@dataclass(frozen=True)
class Budgets:
    run_usd: float | None = None
    playbook_daily_usd: float | None = None
    workspace_daily_usd: float | None = None


@dataclass(frozen=True)
class CallSite:
    """Who is calling: for the ledger and the budgets."""

    run_id: str | None
    step_id: str | None
    playbook: str | None
    budgets: Budgets = Budgets()


def estimate_usd(request: ChatRequest, price: Price | None) -> float:
    if price is None:
        return 0.0
    chars = sum(len(m.content) + sum(len(str(c.arguments)) for c in m.tool_calls)
                for m in request.messages)
    chars += sum(len(str(t.parameters)) + len(t.description) for t in request.tools)
    usage = Usage(input_tokens=chars // CHARS_PER_TOKEN,
                  output_tokens=request.max_tokens or DEFAULT_OUTPUT_ESTIMATE)
    return cost_usd(usage, price)


def start_of_day(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


class CallGuard:
    def __init__(self, store: Store, breakers: Breakers | None = None,
                 cache: bool = True) -> None:
        self.store = store
        self.breakers = breakers or Breakers()
        self.cache = cache

    def call(self, route: Route, request: ChatRequest, site: CallSite,
             spent_unrecorded: float = 0.0) -> tuple[ChatResponse, LLMCallRow]:
        """One call, guarded; ``spent_unrecorded`` is what this step spent so far."""
        name = f"llm:{route.provider.name}"
        now = self.store.now()
        key = cache_key(request) if self.cache else None
        with self.store.read() as tx:
            state = tx.breakers.get(name)
            cached = tx.cache.get(key) if key else None
        if key is not None and cached is not None:
            response = ChatResponse.model_validate(cached)
            with self.store.transaction() as tx:
                tx.cache.hit(key)
            return response, self._row(route, response, site, 0.0, cached=True)
        policy = self.breakers.policy(route.provider.name)
        check = before_call(state, now, policy)
        if not check.allow:
            raise BreakerOpen(f"{route.provider.name} is failing; its circuit breaker is open "
                              f"for {check.wait:.0f}s more", retry_after=check.wait)
        self._check_budgets(site, spent_unrecorded + estimate_usd(request, route.price),
                            "would go over")
        try:
            response = route.provider.complete(request)
        except StepFailure as exc:
            self._breaker(name, policy, state, ok=False, transient=exc.kind == "transient")
            raise
        self._breaker(name, policy, state, ok=True, transient=False)
        cost = cost_usd(response.usage, route.price) if route.price else 0.0
        if key:
            with self.store.transaction() as tx:
                tx.cache.put(key, response.model_dump(mode="json"), time.time())
        return response, self._row(route, response, site, cost, cached=False)

    def check_after(self, site: CallSite, spent_unrecorded: float) -> None:
        """After a call: the actual spend must also be within budget."""
        self._check_budgets(site, spent_unrecorded, "went over")

    def _row(self, route: Route, response: ChatResponse, site: CallSite, cost: float,
             cached: bool) -> LLMCallRow:
        return LLMCallRow(site.run_id, site.step_id, site.playbook, route.provider.name,
                          response.model or route.model, response.usage.input_tokens,
                          response.usage.output_tokens, response.latency_ms, cost, cached,
                          time.time())

    def _breaker(self, name: str, policy: BreakerPolicy, state: BreakerRow | None, *,
                 ok: bool, transient: bool) -> None:
        new = after_call(state, name, ok=ok, transient=transient, now=self.store.now(),
                         policy=policy)
        if new is not None:
            with self.store.transaction() as tx:
                tx.breakers.put(new)

    def _check_budgets(self, site: CallSite, extra: float, verb: str) -> None:
        budgets = site.budgets
        if extra <= 0 or not (budgets.run_usd or budgets.playbook_daily_usd
                              or budgets.workspace_daily_usd):
            return
        day = start_of_day(time.time())
        with self.store.read() as tx:
            checks = []
            if budgets.run_usd is not None and site.run_id is not None:
                checks.append(("this run's", budgets.run_usd,
                               tx.costs.spent(0.0, run_id=site.run_id)))
            if budgets.playbook_daily_usd is not None and site.playbook is not None:
                checks.append((f"playbook {site.playbook}'s daily", budgets.playbook_daily_usd,
                               tx.costs.spent(day, playbook=site.playbook)))
            if budgets.workspace_daily_usd is not None:
                checks.append(("the workspace's daily", budgets.workspace_daily_usd,
                               tx.costs.spent(day)))
        for what, limit, spent in checks:
            if spent + extra > limit:
                raise SemanticError(f"budget: this call {verb} {what} budget of "
                                    f"${limit:.4f} (spent ${spent:.4f}, this step "
                                    f"${extra:.4f})")
