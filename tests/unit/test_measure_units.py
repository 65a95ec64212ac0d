"""The measures' arithmetic over hand-made rows, and the Prometheus text's escaping."""

from __future__ import annotations

import math

import pytest

from soloist.orchestration import measures
from soloist.orchestration.measures import Live
from soloist.orchestration.prometheus import escape_help, escape_label, number, prometheus_text
from soloist.store.base import BreakerRow
from soloist.store.measures import DURATION_BUCKETS


def test_ratios_have_no_value_without_a_whole() -> None:
    assert measures.ratio(1, 4) == 0.25 and measures.ratio(1, 4, 100.0) == 25.0
    assert measures.ratio(3, 0) is None and measures.mean([]) is None
    assert measures.completion_rate({"running": 3}) is None
    assert measures.completion_rate({"done": 3, "failed": 1, "running": 5}) == 0.75


def test_lead_times_and_the_latest_one() -> None:
    changes = measures.lead_times([
        {"kind": "playbook", "name": "a", "version": 1, "deployed_at": 100.0,
         "first_done_at": 160.0},
        {"kind": "playbook", "name": "a", "version": 2, "deployed_at": 200.0,
         "first_done_at": 230.0},
        {"kind": "agent", "name": "x", "version": 3, "deployed_at": 300.0,
         "first_done_at": None},
    ])
    assert [c["lead_time_s"] for c in changes] == [60.0, 30.0, None]
    assert measures.latest_lead_time(changes) == 30.0  # the newest with a completed run
    assert measures.latest_lead_time(changes[2:]) is None


def combined() -> dict[str, object]:
    return measures.combine(
        runs=[{"playbook": "a", "state": "done", "n": 3}, {"playbook": "a", "state": "failed",
                                                            "n": 1},
              {"playbook": "b", "state": "cancelled", "n": 1},
              {"playbook": "b", "state": "running", "n": 3}],
        costs=[{"playbook": "a", "calls": 2, "input_tokens": 10, "output_tokens": 4,
                "cached": 1, "cost_usd": 0.3},
               {"playbook": "b", "calls": 1, "input_tokens": 5, "output_tokens": 2,
                "cached": 0, "cost_usd": 0.1}],
        interventions=[{"playbook": "a", "what": "approved", "n": 2},
                       {"playbook": "b", "what": "cancelled", "n": 1}],
        recoveries=[{"run_id": "r1", "playbook": "a", "failed_at": 10.0, "recovered_at": 14.0},
                    {"run_id": "r2", "playbook": "a", "failed_at": 20.0, "recovered_at": 22.0},
                    {"run_id": "r3", "playbook": "b", "failed_at": 5.0, "recovered_at": None}],
        changes=[{"kind": "playbook", "name": "a", "version": 2, "deployed_at": 1.0,
                  "deployed_by": "person:x", "first_done_at": 11.0},
                 {"kind": "policies", "name": "policies", "version": 1, "deployed_at": 2.0,
                  "deployed_by": "person:x", "first_done_at": 32.0}])


def test_the_five_measures_overall_and_per_playbook() -> None:
    figures = combined()
    assert figures["runs"] == {"cancelled": 1, "done": 3, "failed": 1, "running": 3}
    assert figures["completion_rate"] == 3 / 5
    assert figures["human_interventions_per_100_runs"] == 100 * 3 / 8
    assert figures["cost_usd"] == pytest.approx(0.4)
    assert figures["cost_per_successful_outcome_usd"] == pytest.approx(0.4 / 3)
    assert figures["mean_time_to_recovery_s"] == 3.0
    assert (figures["recoveries"], figures["unrecovered"]) == (2, 1)
    assert figures["change_lead_time_s"] == 20.0 and figures["latest_change_lead_time_s"] == 30.0
    a, b = figures["by_playbook"]  # type: ignore[misc]
    assert a["playbook"] == "a" and a["completion_rate"] == 0.75
    assert a["cost_per_successful_outcome_usd"] == pytest.approx(0.1)
    assert a["change_lead_time_s"] == 10.0 and a["calls"] == 2 and a["cached"] == 1
    assert b["completion_rate"] == 0.0 and b["cost_per_successful_outcome_usd"] is None
    assert b["mean_time_to_recovery_s"] is None and b["unrecovered"] == 1
    assert b["interventions"] == {"cancelled": 1} and b["change_lead_time_s"] is None


def test_a_deployed_memory_document_is_a_change_of_the_playbooks_that_name_it() -> None:
    figures = measures.combine(
        runs=[{"playbook": "qualify", "state": "done", "n": 1},
              {"playbook": "other", "state": "done", "n": 1}],
        costs=[], interventions=[], recoveries=[],
        changes=[{"kind": "memory", "name": "playbooks/discovery-script", "version": 2,
                  "deployed_at": 100.0, "deployed_by": "person:x", "first_done_at": 160.0,
                  "pinned_by": "qualify,intake"},
                 {"kind": "playbook", "name": "other", "version": 1, "deployed_at": 50.0,
                  "deployed_by": "person:x", "first_done_at": 70.0, "pinned_by": None}])
    assert figures["change_lead_time_s"] == 40.0
    assert figures["latest_change_lead_time_s"] == 60.0  # the document's, deployed last
    by = {p["playbook"]: p for p in figures["by_playbook"]}  # type: ignore[attr-defined]
    assert by["qualify"]["change_lead_time_s"] == 60.0
    assert by["other"]["change_lead_time_s"] == 20.0
    assert not measures.is_change_of(figures["changes"][0], "intake-2")  # type: ignore[index]
    assert measures.is_change_of(figures["changes"][0], "intake")  # type: ignore[index]


def test_the_series_has_every_day_of_the_window() -> None:
    day = 86400.0
    rows = [{"day": 20001, "runs": 4, "done": 1, "failed": 1, "cancelled": 1,
             "cost_usd": 0.5, "interventions": 2}]
    out = measures.series(rows, since=20000 * day + 5, now=20002 * day + 5)
    assert [d["day"] for d in out] == ["2024-10-04", "2024-10-05", "2024-10-06"]
    assert out[1] == {"day": "2024-10-05", "runs": 4, "done": 1, "failed": 1,
                      "completion_rate": pytest.approx(1 / 3), "cost_usd": 0.5,
                      "interventions": 2}
    assert out[0]["runs"] == 0 and out[0]["completion_rate"] is None


def test_label_values_and_help_are_escaped_and_numbers_are_prometheus_numbers() -> None:
    assert escape_label('a "b"\\c\nd') == 'a \\"b\\"\\\\c\\nd'
    assert escape_help("one\\two\nthree") == "one\\\\two\\nthree"
    assert [number(v) for v in (3, 0.5, math.inf, -math.inf, math.nan, True)] == [
        "3", "0.5", "+Inf", "-Inf", "NaN", "1"]


def test_the_text_declares_every_family_before_its_samples() -> None:
    durations = {"count": 4, "sum": 7.5, **{f"le_{i}": min(4, i) for i in
                                            range(len(DURATION_BUCKETS))}}
    text = prometheus_text(combined(), Live({"ready": 2, "executing": 1, "persisting": 1},
                                            [BreakerRow("x", "half_open", 0, None, 0.0)],
                                            durations), 86400.0)
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
        elif not line.startswith("# HELP "):
            name = line.split("{")[0].split(" ")[0]
            assert name in declared or name.rsplit("_", 1)[0] in declared, line
    assert "soloist_queue_depth 2\n" in text
    assert 'soloist_steps_in_flight{state="claimed"} 0\n' in text
    assert 'soloist_steps_in_flight{state="persisting"} 1\n' in text
    assert 'soloist_breaker_state{breaker="x"} 1\n' in text
    assert 'soloist_step_duration_seconds_bucket{le="+Inf"} 4\n' in text
    assert 'soloist_step_duration_seconds_bucket{le="0.1"} 0\n' in text
    assert "soloist_step_duration_seconds_sum 7.5\n" in text
    # no value, no sample: playbook b has no success
    assert 'soloist_playbook_cost_per_successful_outcome_usd{playbook="b"}' not in text
