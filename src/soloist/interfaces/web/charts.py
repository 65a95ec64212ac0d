"""The geometry of the dashboard's charts: plain numbers that the templates draw as SVG
(so every label is escaped like any other text). A step timeline by start and duration,
and bars per day: any series of (label, value) is drawn by :func:`bars`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 640
ROW = 22


@dataclass(frozen=True)
class Bar:
    label: str
    x: float
    y: float
    width: float
    height: float
    css: str  # the step's state, or the measure: its colour
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    scale: str  # what the whole width (or height) stands for


def timeline(steps: Sequence[Any], attempts: dict[str, int], now: float | None = None,
             width: int = WIDTH) -> Chart:
    """One bar per step that started, from its start to its end (or now), on one time
    axis; a step that ran more than once says how many attempts in its label."""
    now = time.time() if now is None else now
    started = [s for s in steps if s.started_at is not None]
    if not started:
        return Chart(width, ROW, [], "")
    origin = min(s.started_at for s in started)
    end = max((s.finished_at or now) for s in started)
    total = max(end - origin, 1e-3)
    label_w = 160
    usable = width - label_w - 8
    bars = []
    for row, step in enumerate(started):
        finish = step.finished_at or now
        x = label_w + usable * (step.started_at - origin) / total
        w = max(2.0, usable * (finish - step.started_at) / total)
        tries = attempts.get(step.step_id, step.attempt)
        label = step.step_id if tries <= 1 else f"{step.step_id} ({tries} attempts)"
        bars.append(Bar(label, x, row * ROW + 4, w, ROW - 8, step.state,
                        f"{step.step_id}: {step.state}, {finish - step.started_at:.3f} s"))
    return Chart(width, len(started) * ROW + 4, bars, f"{total:.3f} s")


def bars(points: Sequence[tuple[str, float]], width: int = WIDTH, height: int = 120,
         css: str = "measure") -> Chart:
    """Vertical bars, one per (label, value), scaled to the largest value."""
    if not points:
        return Chart(width, height, [], "")
    top = max((v for _, v in points), default=0.0) or 1.0
    slot = width / len(points)
    out = []
    for i, (label, value) in enumerate(points):
        h = (height - 18) * value / top
        out.append(Bar(label, i * slot + 2, height - 16 - h, max(1.0, slot - 4), h, css,
                       f"{label}: {value:g}"))
    return Chart(width, height, out, f"{max(v for _, v in points):g}")
