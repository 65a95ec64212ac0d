"""The embedded PostgreSQL test infrastructure: server, template and per-test databases."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
from support.postgres import HOST, EmbeddedPostgres

psycopg = pytest.importorskip("psycopg")

MARKER_TABLE = "isolation_marker"


def _table_exists(url: str, table: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    assert row is not None
    return bool(row[0])


def test_psycopg_connects(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT current_database(), current_user, version()").fetchone()
    assert row is not None
    database, user, version = row
    assert database == urlsplit(pg_url).path.lstrip("/")
    assert database.startswith("soloist_test_")
    assert user == "postgres"
    assert version.startswith("PostgreSQL ")


def test_url_shape(pg_server: EmbeddedPostgres) -> None:
    parts = urlsplit(pg_server.url)
    assert parts.scheme == "postgresql"
    assert parts.username == "postgres"
    assert parts.hostname == "127.0.0.1"
    assert parts.port == pg_server.port
    assert parts.path == "/postgres"


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_gets_a_fresh_database(pg_url: str, turn: int) -> None:
    # Whichever of the two runs second would see the other's table if databases leaked.
    assert not _table_exists(pg_url, MARKER_TABLE)
    with psycopg.connect(pg_url) as conn:
        conn.execute(f"CREATE TABLE {MARKER_TABLE} (turn int)")
        conn.execute(f"INSERT INTO {MARKER_TABLE} VALUES (%s)", (turn,))
    assert _table_exists(pg_url, MARKER_TABLE)


def test_two_databases_in_one_test_are_isolated(
    pg_server: EmbeddedPostgres, pg_template: str, pg_url: str
) -> None:
    other = "soloist_test_second_db"
    other_url = pg_server.create_database(other, template=pg_template)
    try:
        with psycopg.connect(pg_url) as conn:
            conn.execute("CREATE TABLE only_in_first (x int)")
            conn.execute("INSERT INTO only_in_first VALUES (1)")
        with psycopg.connect(other_url) as conn:
            conn.execute("CREATE TABLE only_in_second (x int)")
        assert _table_exists(pg_url, "only_in_first")
        assert not _table_exists(pg_url, "only_in_second")
        assert _table_exists(other_url, "only_in_second")
        assert not _table_exists(other_url, "only_in_first")
    finally:
        pg_server.drop_database(other)
    with psycopg.connect(pg_server.url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (other,))
        assert row.fetchone() == (0,)


def test_template_is_left_untouched(
    pg_server: EmbeddedPostgres, pg_template: str, pg_url: str
) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE written_by_test (x int)")
    assert not _table_exists(pg_server.database_url(pg_template), "written_by_test")


def test_drop_database_closes_open_connections(pg_server: EmbeddedPostgres) -> None:
    url = pg_server.create_database("soloist_test_dropped")
    conn = psycopg.connect(url)
    try:
        pg_server.drop_database("soloist_test_dropped")
    finally:
        conn.close()
    pg_server.drop_database("soloist_test_dropped")  # dropping twice is fine


def test_listens_on_loopback_only(pg_server: EmbeddedPostgres) -> None:
    with psycopg.connect(pg_server.url) as conn:
        row = conn.execute(
            "SELECT current_setting('listen_addresses'), inet_server_addr()::text"
        ).fetchone()
    assert row == ("127.0.0.1", "127.0.0.1/32")
    assert HOST == "127.0.0.1"

    # Nothing answers on that port at any other local address.
    psutil = pytest.importorskip("psutil")
    listening = {
        conn.laddr.ip
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == pg_server.port
    }
    assert listening == {"127.0.0.1"}


def test_not_reachable_from_other_addresses(pg_server: EmbeddedPostgres) -> None:
    psutil = pytest.importorskip("psutil")
    addresses = {
        address.address
        for interface in psutil.net_if_addrs().values()
        for address in interface
        if address.family == socket.AF_INET and not address.address.startswith("127.")
    }
    if not addresses:
        pytest.skip("this host has no non-loopback IPv4 address to probe")
    for address in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            assert sock.connect_ex((address, pg_server.port)) != 0, address


def test_fast_settings(pg_server: EmbeddedPostgres) -> None:
    assert pg_server.fast
    with psycopg.connect(pg_server.url) as conn:
        row = conn.execute(
            "SELECT current_setting('fsync'), current_setting('synchronous_commit')"
        ).fetchone()
    assert row == ("off", "off")


@pytest.mark.usefixtures("pg_server")  # skips (or fails) like every PostgreSQL test
def test_durable_server_stops_and_cleans_up() -> None:
    server = EmbeddedPostgres(fast=False)
    with server:
        directory = server.directory
        assert directory.is_dir()
        with psycopg.connect(server.url) as conn:
            row = conn.execute("SELECT current_setting('fsync')").fetchone()
        assert row == ("on",)
        port = server.port
    assert not server.running
    assert not directory.exists()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        assert sock.connect_ex((HOST, port)) != 0
    server.stop()  # stopping twice is fine
