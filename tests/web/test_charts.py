"""The charts' geometry: bars on one time axis by start and duration, and bars scaled to
the largest value."""

from __future__ import annotations

from types import SimpleNamespace

from soloist.interfaces.web.charts import bars, timeline


def step(step_id: str, start: float | None, end: float | None, attempt: int = 1,
         state: str = "done") -> SimpleNamespace:
    return SimpleNamespace(step_id=step_id, started_at=start, finished_at=end,
                           attempt=attempt, state=state)


def test_steps_share_one_time_axis() -> None:
    chart = timeline([step("a", 100.0, 101.0), step("b", 101.0, 104.0, attempt=3),
                      step("c", None, None)], {"b": 3}, now=110.0, width=400)
    a, b = chart.bars
    assert [bar.label for bar in chart.bars] == ["a", "b (3 attempts)"]
    assert a.x < b.x and b.x + b.width <= 400
    assert b.width == 3 * a.width
    assert chart.scale == "4.000 s"


def test_a_step_still_running_ends_now() -> None:
    chart = timeline([step("a", 100.0, None, state="executing")], {}, now=102.0)
    assert chart.bars[0].title == "a: executing, 2.000 s"
    assert timeline([], {}).bars == []


def test_bars_scale_to_the_largest_value() -> None:
    chart = bars([("m", 1.0), ("t", 4.0), ("w", 0.0)], width=300, height=118)
    assert [b.height for b in chart.bars] == [25.0, 100.0, 0.0]
    assert chart.scale == "4"
    assert bars([]).bars == []
