"""Fixtures of the acceptance tests that start ``soloist`` processes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from support.workers import started_processes


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes the test starts; those still running at its end are killed."""
    with started_processes() as started:
        yield started
