"""Small pieces shared by the server harnesses: free ports, readiness, subprocess servers.

Every harness binds ``127.0.0.1`` only. Ports come from the kernel (bind to port 0, read
it back, close): there is a tiny window where another process could take the port, which
is acceptable for tests and far better than fixed ports when helpers run in parallel.
"""

from __future__ import annotations

import datetime
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

HOST = "127.0.0.1"

__all__ = [
    "HOST",
    "Harness",
    "ProcessServer",
    "ServerStartError",
    "free_port",
    "self_signed_cert",
    "stop_process",
    "wait_for_port",
]


class ServerStartError(RuntimeError):
    """A test server did not start listening in time (its output is in the message)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
) -> None:
    """Return once something accepts TCP connections on ``127.0.0.1:port``.

    Fails early (with the server's log) when ``process`` exits before listening.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise ServerStartError(f"server exited with {process.returncode}: {_tail(log)}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerStartError(f"nothing listens on {HOST}:{port}: {_tail(log)}") from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the server does not exit within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def self_signed_cert(folder: Path, host: str = HOST) -> tuple[Path, Path]:
    """Write a fresh self-signed certificate and key for ``host``; return their paths.

    Generated at run time so no key material is ever committed or downloaded.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _tail(log: Path | None, limit: int = 2000) -> str:
    if log is None or not log.exists():
        return "(no log)"
    return log.read_text(errors="replace")[-limit:] or "(empty log)"


class Harness:
    """Something a test starts and stops, also as ``with Server() as server:``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessServer(Harness):
    """A server run as a subprocess in a temporary folder, listening on a free port.

    :meth:`start` makes the folder, picks :attr:`port`, runs :meth:`command` (with
    :meth:`environment`) with its output in ``folder / log_name``, waits for the port and
    calls :meth:`ready`; on any failure it stops what it started. :meth:`stop` ends the
    process and removes the folder.
    """

    prefix = "soloist-server-"
    log_name = "server.log"

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def folder(self) -> Path:
        assert self._tmp is not None, "start the server first"
        return Path(self._tmp.name)

    def command(self) -> list[str]:
        """The server's command line (the folder exists and the port is chosen)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    def ready(self) -> None:
        """What to do once the server listens (create a calendar, a folder...)."""

    def start(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix=self.prefix)
        self.port = free_port()
        log = self.folder / self.log_name
        try:
            command = self.command()
            with log.open("wb") as out:
                self._process = subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self.environment())
            wait_for_port(self.port, process=self._process, log=log)
            self.ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
