"""Small pieces shared by the server harnesses: free ports, readiness, subprocess servers.

Every harness binds ``127.0.0.1`` only. The machinery is the demo's own
(:mod:`soloist.demo.processes`): a port the kernel picked, waiting for it (failing early
with the server's log when it exits), stopping a subprocess, a :class:`ProcessServer` with
its data in a temporary folder when it is given none. What only tests need (a
self-signed certificate for STARTTLS) is here.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from soloist.demo.processes import HOST, ProcessServer, free_port, stop_process, wait_for_port
from soloist.demo.processes import Server as Harness
from soloist.errors import ServerFailed as ServerStartError

__all__ = [
    "HOST",
    "Harness",
    "ProcessServer",
    "ServerStartError",
    "child_processes",
    "free_port",
    "self_signed_cert",
    "stop_process",
    "wait_for_port",
]


def child_processes() -> set[int]:
    """The live (not zombie) child processes of this process, read from /proc."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z":
            found.add(int(entry.name))
    return found


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
