"""The LLM call ledger, through the store's transactions, the same on every backend: calls
recorded as given, per run in order, money spent since a time, and the rollup per playbook."""

from __future__ import annotations

import pytest

from soloist.store.base import LLMCallRow, Store

NOW = 1_000_000.0


def call(run_id: str | None, playbook: str | None, cost: float, *, at: float = NOW,
         cached: bool = False, tokens: tuple[int, int] = (100, 20),
         model: str = "gpt-test") -> LLMCallRow:
    return LLMCallRow(run_id=run_id, step_id=None if run_id is None else "triage",
                      playbook=playbook, provider="openai", model=model,
                      input_tokens=tokens[0], output_tokens=tokens[1], latency_ms=12.5,
                      cost_usd=cost, cached=cached, created_at=at)


CALLS = [
    call("r1", "invoice", 0.25),
    call("r1", "invoice", 0.5, cached=True, tokens=(10, 0), model="gpt-other"),
    call("r2", "invoice", 1.0, at=NOW + 10),
    call("r3", "triage", 0.125, at=NOW + 20),
    call(None, None, 2.0, at=NOW - 100),  # a call outside any run (an embedder, a test)
]


@pytest.fixture
def recorded(store: Store) -> Store:
    with store.transaction() as tx:
        tx.costs.record(CALLS)
        tx.costs.record([])  # nothing to record is not an error
    return store


def test_calls_of_a_run_come_back_as_recorded_in_order(recorded: Store) -> None:
    with recorded.read() as tx:
        assert tx.costs.for_run("r1") == CALLS[:2]
        assert tx.costs.for_run("r3") == [CALLS[3]]
        assert tx.costs.for_run("nobody") == []


def test_spent_since_a_time_by_playbook_and_by_run(recorded: Store) -> None:
    with recorded.read() as tx:
        assert tx.costs.spent(NOW - 1000) == pytest.approx(3.875)
        assert tx.costs.spent(NOW) == pytest.approx(1.875)
        assert tx.costs.spent(NOW + 5) == pytest.approx(1.125)
        assert tx.costs.spent(NOW, playbook="invoice") == pytest.approx(1.75)
        assert tx.costs.spent(NOW, run_id="r1") == pytest.approx(0.75)
        assert tx.costs.spent(NOW, playbook="triage", run_id="r1") == 0.0
        assert tx.costs.spent(NOW + 1000) == 0.0


def test_the_rollup_sums_each_playbook_since_a_time(recorded: Store) -> None:
    with recorded.read() as tx:
        rollup = tx.costs.rollup(NOW)
        later = tx.costs.rollup(NOW + 5)
        everything = tx.costs.rollup(NOW - 1000)
    assert rollup == [
        {"playbook": "invoice", "calls": 3, "input_tokens": 210, "output_tokens": 40,
         "cost_usd": pytest.approx(1.75), "cached": 1},
        {"playbook": "triage", "calls": 1, "input_tokens": 100, "output_tokens": 20,
         "cost_usd": pytest.approx(0.125), "cached": 0},
    ]
    assert [(r["playbook"], r["calls"]) for r in later] == [("invoice", 1), ("triage", 1)]
    assert {r["playbook"] for r in everything} == {"invoice", "triage", None}
    for row in everything:  # the same types from every backend
        assert all(type(row[k]) is int for k in ("calls", "input_tokens", "output_tokens",
                                                  "cached"))
        assert type(row["cost_usd"]) is float
