"""The operator measures as a read tool, for playbooks that report on the company itself
(a weekly review): the same figures as ``soloist metrics`` and the dashboard."""

from __future__ import annotations

from typing import Any, Protocol

from soloist.execution.tools.base import Tool, spec_of, tool

READ_TAG = "metrics:read"


class MetricsService(Protocol):
    """What the tool needs from the workspace (which the execution plane cannot import)."""

    def metrics(self, days: float = 30.0, playbook: str | None = None) -> dict[str, Any]: ...


def metrics_tools(service: MetricsService) -> list[Tool]:
    @tool("metrics.report", effect="read", tags=(READ_TAG,))
    def report(days: float = 7.0, playbook: str | None = None) -> dict[str, Any]:
        """The five operator measures over the last ``days`` (completion rate, mean time
        to recovery, interventions per 100 runs, cost per successful outcome, change lead
        time), overall and per playbook."""
        return service.metrics(days, playbook)

    return [spec_of(report)]
