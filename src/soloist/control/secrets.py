"""Secrets: encrypted at rest in the store, the key in a 0600 file outside the database.

A value is referenced in configuration as ``secret:NAME`` and resolved only where it is
used. Every text the store writes passes through a :class:`Redactor` holding the current
values, so a secret that a tool echoes or an error quotes is stored as ``[secret:NAME]``.
"""

from __future__ import annotations

import base64
import os
import re
import secrets as random_source
import stat
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from soloist.errors import ConfigError, InputError, NotFound
from soloist.store.base import NewEvent, SecretRow, Store

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
REFERENCE = "secret:"
#: Values shorter than this are not redacted: they would match ordinary text.
MIN_REDACTED_LENGTH = 6


class SecretBox:
    """AES-GCM with the secret's name as associated data (no swapping ciphertexts)."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._key: bytes | None = None

    def key(self, create: bool) -> bytes:
        if self._key is not None:
            return self._key
        path = self.key_file
        if not path.exists():
            if not create:
                raise ConfigError(f"no secret key at {path}; set a secret first with "
                                  "`soloist secret set NAME`")
            path.parent.mkdir(parents=True, exist_ok=True)
            key = AESGCM.generate_key(bit_length=256)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64encode(key))
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"the secret key {path} is readable by others "
                              f"(mode {mode:o}); run: chmod 600 {path}")
        try:
            self._key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except ValueError as exc:
            raise ConfigError(f"the secret key {path} is damaged: {exc}") from None
        return self._key

    def seal(self, name: str, value: str) -> str:
        nonce = random_source.token_bytes(12)
        sealed = AESGCM(self.key(create=True)).encrypt(nonce, value.encode(), name.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, name: str, token: str) -> str:
        raw = base64.b64decode(token)
        try:
            plain = AESGCM(self.key(create=False)).decrypt(raw[:12], raw[12:], name.encode())
        except InvalidTag:
            raise ConfigError(f"secret {name!r} cannot be decrypted with {self.key_file} "
                              "(another workspace's key?)") from None
        return plain.decode()


class Redactor:
    """Replaces each known secret value by ``[secret:NAME]``."""

    def __init__(self, values: dict[str, str]) -> None:
        self.pairs = sorted(((v, f"[secret:{n}]") for n, v in values.items()
                             if len(v) >= MIN_REDACTED_LENGTH),
                            key=lambda pair: -len(pair[0]))

    def __call__(self, text: str) -> str:
        for value, marker in self.pairs:
            if value in text:
                text = text.replace(value, marker)
        return text

    def __bool__(self) -> bool:
        return bool(self.pairs)


class SecretService:
    def __init__(self, store: Store, key_file: Path) -> None:
        self.store = store
        self.box = SecretBox(key_file)

    def set(self, name: str, value: str, actor: str) -> None:
        if not NAME.match(name):
            raise InputError(f"{name!r} is not a valid secret name; use letters, digits, "
                             "'_', '-' and '.', starting with a letter")
        if not value:
            raise InputError(f"the value for secret {name!r} is empty")
        token = self.box.seal(name, value)
        with self.store.transaction() as tx:
            tx.secrets.put(name, token, time.time(), actor)
            tx.events.append(NewEvent("secret.set", {"name": name}, actor=actor))
        self.install_redactor()

    def list(self) -> list[SecretRow]:
        with self.store.read() as tx:
            return tx.secrets.all()

    def get(self, name: str) -> str:
        with self.store.read() as tx:
            row = tx.secrets.get(name)
        if row is None:
            raise NotFound(f"no secret named {name!r}; set it with `soloist secret set "
                           f"{name}`")
        return self.box.open(name, row.ciphertext)

    def resolve(self, value: str) -> str:
        """``secret:NAME`` becomes the secret's value; anything else is returned as is."""
        if value.startswith(REFERENCE):
            return self.get(value.removeprefix(REFERENCE))
        return value

    def values(self) -> dict[str, str]:
        rows = self.list()
        if not rows:
            return {}
        return {row.name: self.box.open(row.name, row.ciphertext) for row in rows}

    def install_redactor(self) -> None:
        """Make the store redact the current secret values from everything it writes."""
        redactor = Redactor(self.values())
        self.store.redact = redactor if redactor else None
