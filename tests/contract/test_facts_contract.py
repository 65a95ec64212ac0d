"""Facts, through the store's transactions, the same on every backend: versions numbered per
fact, history and provenance kept whole, the newest version per fact, and full-text search
as of a point in time."""

from __future__ import annotations

from typing import Any

import pytest

from soloist.store.base import FactRow, Store

NOW = 1_000_000.0


def fact(key: str, value: Any, *, namespace: str = "crm", subject: str = "ada",
         op: str = "put", at: float = NOW, run_id: str | None = None,
         step_id: str | None = None, reverts: int | None = None,
         valid_to: float | None = None, expires_at: float | None = None,
         reason: str = "told on the phone") -> FactRow:
    return FactRow(
        namespace=namespace, subject=subject, key=key, version=0, op=op, value=value,
        actor="person:tester", reason=reason, run_id=run_id, step_id=step_id, reverts=reverts,
        valid_from=at, valid_to=valid_to, expires_at=expires_at, recorded_at=at,
    )


def append(store: Store, *rows: FactRow) -> list[int]:
    with store.transaction() as tx:
        return [tx.facts.append(row) for row in rows]


def test_versions_are_numbered_per_fact_and_the_given_number_is_ignored(store: Store) -> None:
    first = fact("plan", "starter")
    first.version = 41
    assert append(store, first, fact("plan", "pro"), fact("email", "ada@example.com"),
                  fact("plan", "pro", subject="bob")) == [1, 2, 1, 1]
    assert append(store, fact("plan", "enterprise")) == [3]


def test_history_keeps_every_version_and_its_provenance(store: Store) -> None:
    value = {"tier": "pro", "seats": 3, "note": "naïve 100%", "tags": ["a", None]}
    append(store,
           fact("plan", value, run_id="r1", step_id="s1", expires_at=NOW + 60),
           fact("plan", None, op="forget", at=NOW + 1, reason="asked to forget"),
           fact("plan", value, op="revert", at=NOW + 2, reverts=1, valid_to=NOW + 9))
    with store.read() as tx:
        history = tx.facts.history("crm", "ada", "plan")
        assert tx.facts.history("crm", "ada", "email") == []
    assert [(r.version, r.op, r.value) for r in history] == [
        (1, "put", value), (2, "forget", None), (3, "revert", value)]
    first, forgotten, reverted = history
    assert (first.namespace, first.subject, first.key, first.actor) == (
        "crm", "ada", "plan", "person:tester")
    assert (first.run_id, first.step_id, first.reason) == ("r1", "s1", "told on the phone")
    assert (first.valid_from, first.valid_to, first.expires_at, first.recorded_at) == (
        NOW, None, NOW + 60, NOW)
    assert (forgotten.reason, forgotten.run_id, forgotten.reverts) == (
        "asked to forget", None, None)
    assert (reverted.reverts, reverted.valid_to) == (1, NOW + 9)


def test_by_run_lists_what_one_run_wrote_in_the_order_written(store: Store) -> None:
    append(store, fact("plan", "pro", run_id="r1"), fact("email", "a@b.c", run_id="r2"),
           fact("seats", 3, subject="bob", run_id="r1"), fact("plan", "max", run_id="r1"))
    with store.read() as tx:
        rows = tx.facts.by_run("r1")
        assert tx.facts.by_run("nobody") == []
    assert [(r.subject, r.key, r.version) for r in rows] == [
        ("ada", "plan", 1), ("bob", "seats", 1), ("ada", "plan", 2)]


def test_latest_is_the_newest_version_of_each_matching_fact_by_name(store: Store) -> None:
    append(store,
           fact("plan", "starter"), fact("plan", "pro"), fact("email", "a@b.c"),
           fact("plan", "pro", subject="bob"), fact("seats", None, subject="bob", op="forget"),
           fact("plan", "x", namespace="crm/eu"), fact("plan", "y", namespace="crmx"),
           fact("plan", "z", namespace="team_a"), fact("plan", "w", namespace="teamXa"))
    with store.read() as tx:
        every = tx.facts.latest("crm", None, 100)
        ada = tx.facts.latest("crm", "ada", 100)
        below = tx.facts.latest("crm/%", None, 100)
        first_two = tx.facts.latest("%", None, 2)
        escaped = tx.facts.latest("team\\_a", None, 100)
    # A forget is a version like any other: the caller decides what it means.
    assert [(r.subject, r.key, r.version, r.op, r.value) for r in every] == [
        ("ada", "email", 1, "put", "a@b.c"), ("ada", "plan", 2, "put", "pro"),
        ("bob", "plan", 1, "put", "pro"), ("bob", "seats", 1, "forget", None)]
    assert [(r.key, r.value) for r in ada] == [("email", "a@b.c"), ("plan", "pro")]
    assert [(r.namespace, r.value) for r in below] == [("crm/eu", "x")]
    assert [(r.namespace, r.key) for r in first_two] == [("crm", "email"), ("crm", "plan")]
    assert [r.namespace for r in escaped] == ["team_a"]  # LIKE's _ escaped with a backslash


def test_search_finds_words_of_subject_key_and_value_best_first(store: Store) -> None:
    append(store,
           fact("pricing", "discount for renewals", subject="globex"),
           fact("pricing", "list price, a discount on a discount", subject="initech"),
           fact("email", "ada@example.com", subject="ada"),
           fact("pricing", "discount", subject="globex", namespace="other"))
    with store.read() as tx:
        found = tx.facts.search(["discount"], "crm", None, NOW + 1, 10)
        by_key = tx.facts.search(["email"], "crm", None, NOW + 1, 10)
        by_subject = tx.facts.search(["globex"], "%", None, NOW + 1, 10)
        narrowed = tx.facts.search(["discount"], "crm", "globex", NOW + 1, 10)
        one = tx.facts.search(["discount"], "crm", None, NOW + 1, 1)
        either = tx.facts.search(["renewals", "email"], "crm", None, NOW + 1, 10)
        assert tx.facts.search([], "crm", None, NOW + 1, 10) == []
        assert tx.facts.search(["nothing"], "crm", None, NOW + 1, 10) == []
    assert {row.subject for row, _ in found} == {"globex", "initech"}
    scores = [score for _, score in found]
    assert all(score > 0 for score in scores) and scores == sorted(scores, reverse=True)
    assert [row.key for row, _ in by_key] == ["email"]
    assert {row.namespace for row, _ in by_subject} == {"crm", "other"}
    assert [row.subject for row, _ in narrowed] == ["globex"]
    assert len(one) == 1
    assert {row.subject for row, _ in either} == {"globex", "ada"}  # any token matches


def test_search_sees_each_fact_as_it_was_at_the_given_time(store: Store) -> None:
    append(store, fact("plan", "starter tier", at=NOW))
    append(store, fact("plan", "enterprise tier", at=NOW + 10))
    append(store, fact("email", "a@b.c", at=NOW), fact("email", None, op="forget", at=NOW + 10))
    with store.read() as tx:
        before = tx.facts.search(["tier", "email"], "crm", None, NOW + 5, 10)
        after = tx.facts.search(["tier", "email"], "crm", None, NOW + 20, 10)
        not_yet = tx.facts.search(["tier"], "crm", None, NOW - 1, 10)
    assert sorted((r.key, r.version) for r, _ in before) == [("email", 1), ("plan", 1)]
    assert [(r.key, r.version, r.value) for r, _ in after] == [
        ("plan", 2, "enterprise tier")]  # a forgotten fact is not found
    assert not_yet == []


def test_a_rolled_back_append_leaves_no_version(store: Store) -> None:
    append(store, fact("plan", "starter"))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        assert tx.facts.append(fact("plan", "pro")) == 2
        raise RuntimeError("abandon")
    with store.read() as tx:
        assert [r.version for r in tx.facts.history("crm", "ada", "plan")] == [1]
    assert append(store, fact("plan", "max")) == [2]


def test_a_facts_sources_are_kept_with_its_version(store: Store) -> None:
    email = {"kind": "email", "message_id": "<a@b.example>", "event": 12}
    with_sources = fact("budget", 12000, namespace="projects/acme", subject="acme")
    with_sources.sources = [email]
    append(store, with_sources, fact("budget", 13000, namespace="projects/acme",
                                     subject="acme"))
    with store.read() as tx:
        first, second = tx.facts.history("projects/acme", "acme", "budget")
        [latest] = tx.facts.latest("projects/%", "acme", 10)
    assert (first.sources, second.sources, latest.sources) == ([email], None, None)
