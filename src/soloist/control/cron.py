"""Cron schedules: validation, the next fire time, and the catch-up (misfire) policy.

Expressions are matched against the wall clock of the trigger's timezone, so ``0 9 * * *``
fires at nine local time on both sides of a daylight-saving change. Two rules make the
wall clock well defined:

* a wall time that happens twice (clocks go back) fires once, at its first occurrence;
* a wall time that never happens (clocks go forward) fires at the moment of the jump, so
  a daily job scheduled inside the skipped hour still runs that day.

All times are epoch seconds; the functions are pure.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# Bounds the skip loops below; hit only by an expression that fires every minute while
# scanning across a large clock change, which is far below this.
_MAX_CANDIDATES = 100_000


def check_expression(expr: str) -> None:
    """Raise ``ValueError`` unless ``expr`` is a five-field cron expression that fires."""
    text = expr.strip()
    if not text:
        raise ValueError("the cron expression is empty")
    if text.startswith("@"):
        if text.lower() not in _ALIASES:
            known = ", ".join(sorted(_ALIASES))
            raise ValueError(f"unknown cron shorthand {text!r}; use one of {known}")
    else:
        fields = text.split()
        # croniter also reads six and seven fields (seconds, years), but with seconds last,
        # which people used to Quartz read the other way round: refuse rather than guess.
        if len(fields) != 5:
            raise ValueError(
                f"cron expression {text!r} has {len(fields)} field(s); it needs 5: "
                "minute hour day-of-month month day-of-week"
            )
    try:
        croniter(text, datetime(2000, 1, 1), ret_type=datetime).get_next()
    except CroniterError as exc:
        # A bad-date error means the fields parse but never match (e.g. 30 February).
        if "find next date" in str(exc):
            raise ValueError(f"cron expression {text!r} never fires") from None
        detail = re.sub(r"^\[.*?\]\s*", "", str(exc))  # croniter repeats the expression
        raise ValueError(f"cron expression {text!r} is invalid ({detail})") from None
    except (ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"cron expression {text!r} is invalid ({exc})") from None


def check_timezone(timezone: str) -> ZoneInfo:
    """The zone named ``timezone``; ``ValueError`` when it is not an IANA zone name."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown timezone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def validate(expr: str, timezone: str) -> None:
    """Raise ``ValueError`` with a clear message when the schedule cannot be used."""
    check_expression(expr)
    check_timezone(timezone)


def next_fire(expr: str, timezone: str, after: float) -> float:
    """The first fire time strictly after ``after``."""
    zone = check_timezone(timezone)
    start = _wall(after, zone)
    it = croniter(expr.strip(), start, ret_type=datetime)
    # Wall times are mapped to instants in increasing order, so the first one past
    # ``after`` is the answer; earlier ones appear only when ``after`` is inside the
    # repeated hour, whose first pass lies behind it.
    for _ in range(_MAX_CANDIDATES):
        instant = _instant(it.get_next(), zone)
        if instant > after:
            return instant
    raise ValueError(f"cron expression {expr!r} does not fire after {after}")


def previous_fire(expr: str, timezone: str, at_or_before: float) -> float | None:
    """The latest fire time not after ``at_or_before``, or ``None`` when there is none."""
    zone = check_timezone(timezone)
    wall = _wall(at_or_before, zone)
    # Inside the repeated hour's second pass, fires of the first pass have later wall
    # times than now; start the backward scan past them.
    fold_size = _instant(wall, zone) - at_or_before
    start = wall + timedelta(seconds=max(0.0, -fold_size) + 1)
    it = croniter(expr.strip(), start, ret_type=datetime)
    for _ in range(_MAX_CANDIDATES):
        try:
            candidate = it.get_prev()
        except CroniterError:
            return None
        instant = _instant(candidate, zone)
        if instant <= at_or_before:
            return instant
    return None


def due(
    expr: str, timezone: str, last_fire: float | None, now: float, created_at: float
) -> float | None:
    """The fire time to run now, or ``None``.

    Misfire policy: however many fire times passed since the last fire (or since the
    trigger was created, when it never fired), run once, for the latest of them. A
    scheduler that was down for a day runs a minutely job once, not 1440 times.
    """
    since = created_at if last_fire is None else last_fire
    if now <= since:
        return None
    latest = previous_fire(expr, timezone, now)
    if latest is None or latest <= since:
        return None
    return latest


def _wall(epoch: float, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time in ``zone`` at ``epoch``."""
    return datetime.fromtimestamp(epoch, UTC).astimezone(zone).replace(tzinfo=None)


def _instant(wall: datetime, zone: ZoneInfo) -> float:
    """The epoch at which the wall clock in ``zone`` first shows ``wall``.

    Wall times in a forward gap map to the moment of the jump: the first existing minute
    after them. Transitions happen on whole minutes, and gaps are at most a day.
    """
    probe = wall
    for _ in range(24 * 60 + 1):
        aware = probe.replace(tzinfo=zone, fold=0)
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == probe:
            return aware.timestamp()
        probe = (probe + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return wall.replace(tzinfo=zone, fold=0).timestamp()
