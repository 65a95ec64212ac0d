"""The operator measures' reads over the named queries of either backend
(``soloist.store.measures``)."""

from __future__ import annotations

from typing import Any

from soloist.store.measures import DURATION_BUCKETS, Rows
from soloist.store.seam import Connection


class SqlMeasures:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def _window(self, sql: str, since: float, playbook: str | None) -> Rows:
        return [dict(r) for r in self.conn.fetch(sql, {"since": since, "playbook": playbook})]

    def runs(self, since: float, playbook: str | None = None) -> Rows:
        return self._window(self.q.measure_runs, since, playbook)

    def costs(self, since: float, playbook: str | None = None) -> Rows:
        return self._window(self.q.measure_costs, since, playbook)

    def interventions(self, since: float, playbook: str | None = None) -> Rows:
        return self._window(self.q.measure_interventions, since, playbook)

    def recoveries(self, since: float, playbook: str | None = None) -> Rows:
        return self._window(self.q.measure_recoveries, since, playbook)

    def changes(self, since: float, playbook: str | None = None) -> Rows:
        return self._window(self.q.measure_changes, since, playbook)

    def daily(self, since: float, playbook: str | None = None) -> Rows:
        days: dict[int, dict[str, Any]] = {}

        def day(n: Any) -> dict[str, Any]:
            return days.setdefault(int(n), {"day": int(n), "runs": 0, "done": 0, "failed": 0,
                                            "cancelled": 0, "cost_usd": 0.0,
                                            "interventions": 0})

        for r in self._window(self.q.measure_daily_runs, since, playbook):
            row = day(r["day"])
            row["runs"] += int(r["n"])
            if r["state"] in ("done", "failed", "cancelled"):
                row[r["state"]] += int(r["n"])
        for r in self._window(self.q.measure_daily_costs, since, playbook):
            day(r["day"])["cost_usd"] += float(r["cost_usd"] or 0.0)
        for r in self._window(self.q.measure_daily_interventions, since, playbook):
            day(r["day"])["interventions"] += int(r["n"])
        return [days[d] for d in sorted(days)]

    def steps_by_state(self) -> Rows:
        return [dict(r) for r in self.conn.fetch(self.q.measure_steps_by_state)]

    def step_durations(self) -> dict[str, Any]:
        params = {f"b{i}": bound for i, bound in enumerate(DURATION_BUCKETS)}
        per = [0] * (len(DURATION_BUCKETS) + 1)
        total = 0.0
        for r in self.conn.fetch(self.q.measure_step_durations, params):
            per[int(r["bucket"])] += int(r["n"])
            total += float(r["total"] or 0.0)
        out: dict[str, Any] = {"count": sum(per), "sum": total}
        for i in range(len(DURATION_BUCKETS)):
            out[f"le_{i}"] = sum(per[:i + 1])
        return out
