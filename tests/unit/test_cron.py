from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from soloist.control import cron

PARIS = ZoneInfo("Europe/Paris")


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    tz: ZoneInfo | None = None,
) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz or UTC).timestamp()


def test_next_fire_in_utc_is_strictly_after() -> None:
    assert cron.next_fire("0 9 * * *", "UTC", at(2024, 5, 1, 8, 59)) == at(2024, 5, 1, 9, 0)
    assert cron.next_fire("0 9 * * *", "UTC", at(2024, 5, 1, 9, 0)) == at(2024, 5, 2, 9, 0)
    assert cron.next_fire("*/15 * * * *", "UTC", at(2024, 5, 1, 9, 0, 30)) == at(2024, 5, 1, 9, 15)


def test_next_fire_keeps_local_time_across_dst_in_paris() -> None:
    # Clocks go forward on 2024-03-31: nine o'clock is 08:00Z before and 07:00Z after.
    first = cron.next_fire("0 9 * * *", "Europe/Paris", at(2024, 3, 30, 12))
    second = cron.next_fire("0 9 * * *", "Europe/Paris", first)
    assert first == at(2024, 3, 31, 9, 0, tz=PARIS) == at(2024, 3, 31, 7, 0)
    assert second - first == 24 * 3600
    assert at(2024, 3, 30, 9, 0, tz=PARIS) == at(2024, 3, 30, 8, 0)


def test_wall_time_skipped_by_dst_fires_at_the_jump() -> None:
    # 02:30 does not exist in Paris on 2024-03-31; the daily job still runs that day.
    fire = cron.next_fire("30 2 * * *", "Europe/Paris", at(2024, 3, 30, 12))
    assert fire == at(2024, 3, 31, 1, 0)  # 03:00 CEST, the moment clocks jump
    assert cron.next_fire("30 2 * * *", "Europe/Paris", fire) == at(2024, 4, 1, 0, 30)


def test_repeated_wall_time_fires_once_when_clocks_go_back() -> None:
    fires = []
    moment = at(2024, 10, 27, 0, 15)  # 02:15 CEST, before the clocks go back at 03:00
    for _ in range(3):
        moment = cron.next_fire("30 * * * *", "Europe/Paris", moment)
        fires.append(moment)
    # 02:30 CEST, then 03:30 CET: the second 02:30 (CET) is not a second fire.
    assert fires == [at(2024, 10, 27, 0, 30), at(2024, 10, 27, 2, 30), at(2024, 10, 27, 3, 30)]


def test_misfire_runs_once_for_the_latest_missed_fire() -> None:
    last = at(2024, 1, 1, 12, 0)
    now = at(2024, 1, 1, 12, 10, 30)  # ten minutely fires were missed
    assert cron.due("* * * * *", "UTC", last, now, created_at=at(2024, 1, 1)) == at(
        2024, 1, 1, 12, 10
    )


def test_nothing_due() -> None:
    last = at(2024, 1, 1, 12, 0)
    assert cron.due("0 * * * *", "UTC", last, at(2024, 1, 1, 12, 59), at(2024, 1, 1)) is None
    assert cron.due("0 * * * *", "UTC", last, last, at(2024, 1, 1)) is None


def test_first_fire_counts_from_creation() -> None:
    created = at(2024, 1, 1, 8, 30)
    assert cron.due("0 9 * * *", "UTC", None, at(2024, 1, 1, 8, 59), created) is None
    assert cron.due("0 9 * * *", "UTC", None, at(2024, 1, 1, 9, 0), created) == at(2024, 1, 1, 9)
    # A trigger created after today's fire does not fire for it.
    late = at(2024, 1, 1, 9, 30)
    assert cron.due("0 9 * * *", "UTC", None, at(2024, 1, 1, 10), late) is None


def test_misfire_during_repeated_hour() -> None:
    # Now is 02:10 CET, the second pass of the hour; the latest fire was 02:30 CEST.
    now = at(2024, 10, 27, 1, 10)
    assert cron.previous_fire("0,30 * * * *", "Europe/Paris", now) == at(2024, 10, 27, 0, 30)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty"),
        ("0 25 * * *", "invalid"),
        ("* * * * * *", r"6 field\(s\)"),
        ("0 0 30 2 *", "never fires"),
        ("@often", "unknown cron shorthand"),
        ("not a cron", r"3 field\(s\)"),
        ("0 9 * * mon-xyz", "invalid"),
    ],
)
def test_validate_rejects_bad_expressions(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cron.validate(expr, "UTC")


def test_validate_rejects_unknown_timezone() -> None:
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Base'"):
        cron.validate("0 9 * * *", "Mars/Base")
    cron.validate("@daily", "Europe/Paris")
