"""A page of runs, the same on every backend: newest first, every filter optional, pages
that meet without a gap or an overlap, and text found literally in inputs or errors."""

from __future__ import annotations

from dataclasses import replace

from soloist.store.base import RunFilter, RunRow, Store

NOW = 1_000_000.0


def run(i: int, **kw: object) -> RunRow:
    base = RunRow(id=f"r{i:03d}", playbook="a" if i % 2 else "b", playbook_version=1 + i % 3,
                  state="done" if i % 4 else "failed", inputs={"n": i, "who": f"client {i}"},
                  queue="default", priority=0, created_at=NOW + i // 2, deadline_at=None,
                  finished_at=None, trigger={}, error=None if i % 4 else f"boom_{i}% off",
                  steps_remaining=0, created_by="tester")
    return replace(base, **kw)  # type: ignore[arg-type]


def seed(store: Store, count: int = 30) -> None:
    with store.transaction() as tx:
        for i in range(count):
            row = run(i)
            tx.runs.insert(row)
            if row.error is not None:  # an error is written when a run ends
                tx.runs.set_state(row.id, row.state, expect=[row.state], error=row.error)


def test_pages_are_newest_first_and_meet_without_gap_or_overlap(store: Store) -> None:
    seed(store)
    seen: list[str] = []
    before = None
    with store.read() as tx:
        while True:
            page = tx.runs.page(RunFilter(), before=before, limit=7)
            if not page:
                break
            seen += [r.id for r in page]
            before = (page[-1].created_at, page[-1].id)
        assert tx.runs.count(RunFilter()) == 30
    # two runs share each created_at: ties are broken by id, descending
    assert seen == sorted(seen, key=lambda i: (run(int(i[1:])).created_at, i), reverse=True)
    assert len(set(seen)) == 30


def test_every_filter_narrows_and_combines(store: Store) -> None:
    seed(store)
    with store.read() as tx:
        def ids(match: RunFilter) -> set[str]:
            got = {r.id for r in tx.runs.page(match, limit=100)}
            assert tx.runs.count(match) == len(got)
            return got

        def expect(predicate: object) -> set[str]:
            return {run(i).id for i in range(30) if predicate(run(i))}  # type: ignore[operator]

        assert ids(RunFilter(state="failed")) == expect(lambda r: r.state == "failed")
        assert ids(RunFilter(playbook="a", version=2)) == expect(
            lambda r: r.playbook == "a" and r.playbook_version == 2)
        assert ids(RunFilter(since=NOW + 5, until=NOW + 8)) == expect(
            lambda r: NOW + 5 <= r.created_at < NOW + 8)
        assert ids(RunFilter(text="client 17")) == {"r017"}
        assert ids(RunFilter(text="_8% off")) == {"r008"}  # % and _ are literal
        assert ids(RunFilter(text="_8%_off")) == set()
        assert ids(RunFilter(text="nobody")) == set()
