"""Fixtures for integration tests: the real local servers of tests/support.

Each fixture starts its server on ``127.0.0.1`` and a free port for one test and stops it
afterwards; tests that need other settings (a reply delay, STARTTLS, a folder) use the
class from ``support.<name>_server`` as a context manager instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.caldav_server import CalDAVTestServer
from support.git_server import GitTestServer
from support.imap_server import IMAPTestServer
from support.smtp_server import SMTPTestServer
from support.stripe_server import StripeTestServer


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as server:
        yield server


@pytest.fixture
def imap_server() -> Iterator[IMAPTestServer]:
    with IMAPTestServer() as server:
        yield server


@pytest.fixture
def caldav_server() -> Iterator[CalDAVTestServer]:
    with CalDAVTestServer() as server:
        yield server


@pytest.fixture
def stripe_server() -> Iterator[StripeTestServer]:
    with StripeTestServer() as server:
        yield server


@pytest.fixture
def git_server() -> Iterator[GitTestServer]:
    with GitTestServer() as server:
        yield server
