"""Secrets: encrypted at rest in the store, the key in a 0600 file outside the database.

A value is referenced in configuration as ``secret:NAME`` and resolved only where it is
used. Every text the store writes passes through a :class:`Redactor` holding the current
values, so a secret that a tool echoes or an error quotes is stored as ``[secret:NAME]``,
in whatever encoding it arrives (as is, JSON-escaped, ``repr``-quoted, or those escaped
once more).

The store asks :class:`SecretService` for its redactor at the start of every write
transaction, giving the secrets' stamp (a random token that every change of the secrets
replaces, in the same transaction): a process whose redactor is for another stamp reloads
it first, so no process ever writes with a stale list.

The key is read only when a value is needed (to set, resolve or redact one): a workspace
whose key file is lost still opens, lists its runs and its secrets, and says what to do.
"""

from __future__ import annotations

import base64
import builtins
import json
import logging
import os
import re
import secrets as random_source
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from soloist.config.references import REFERENCE as REFERENCE
from soloist.config.references import SECRET_NAME
from soloist.errors import ConfigError, InputError, NotFound
from soloist.store.base import NewEvent, SecretRow, Store
from soloist.store.permissions import PRIVATE_DIR

_log = logging.getLogger(__name__)

NAME = SECRET_NAME
#: A new value shorter than this is refused: it would match ordinary text, so it could
#: neither be redacted safely nor left in clear.
MIN_SECRET_LENGTH = 8
#: Values shorter than this are not redacted (secrets set before the minimum above).
MIN_REDACTED_LENGTH = 6


class SecretBox:
    """AES-GCM with the secret's name as associated data (no swapping ciphertexts)."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._key: bytes | None = None

    def exists(self) -> bool:
        return self._key is not None or self.key_file.exists()

    def key(self, create: bool) -> bytes:
        if self._key is not None:
            return self._key
        path = self.key_file
        if not path.exists():
            if not create:
                raise ConfigError(f"the secret key file {path} is missing")
            path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
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


def _python_escapes(quoted: str) -> set[str]:
    """A ``repr``/``ascii`` body, as it reads inside either kind of quotes."""
    body = quoted[1:-1]
    if quoted[0] == '"':  # the value has a ' and no ": in '...' quotes the ' is escaped
        return {body, body.replace("'", "\\'")}
    return {body}


def encodings(value: str) -> set[str]:
    """Every form ``value`` takes in text a program writes: as is, percent-encoded (in a
    URL), JSON-escaped (with and without ``ensure_ascii``), ``repr``/``ascii``-quoted, and
    each of those escaped once more (JSON text inside a JSON string, a repr in an error
    that is then stored as JSON)."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    for _ in range(2):
        for form in list(forms):
            forms.add(json.dumps(form, ensure_ascii=False)[1:-1])
            forms.add(json.dumps(form)[1:-1])
            forms |= _python_escapes(repr(form))
            forms |= _python_escapes(ascii(form))
    return forms


class Redactor:
    """Replaces each known secret value, in every encoding, by ``[secret:NAME]``.

    One pass of one pattern, longest form first: a secret that is a prefix of another
    is replaced only where the longer one is not, and a marker is never rewritten.
    """

    def __init__(self, values: dict[str, str]) -> None:
        self.markers: dict[str, str] = {}
        for name, value in sorted(values.items(), key=lambda item: len(item[1])):
            if len(value) >= MIN_REDACTED_LENGTH:
                for form in encodings(value):
                    self.markers[form] = f"[secret:{name}]"  # the longer value wins a tie
        forms = sorted(self.markers, key=len, reverse=True)
        self.pattern = re.compile("|".join(map(re.escape, forms))) if forms else None

    def __call__(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda match: self.markers[match.group(0)], text)

    def __bool__(self) -> bool:
        return self.pattern is not None


class SecretService:
    """Set, list, resolve and delete secrets; the store's source of redaction."""

    def __init__(self, store: Store, key_file: Path) -> None:
        self.store = store
        self.box = SecretBox(key_file)
        self._lock = threading.Lock()
        self._stamp: str | None = None
        self._redactor: Redactor | None = None
        #: The list was loaded while the key file was missing: once it is back, this
        #: process can resolve those values, so it must redact them too.
        self._without_key = False

    # -- the operator's commands -------------------------------------------------------
    def set(self, name: str, value: str, actor: str) -> None:
        if not NAME.match(name):
            raise InputError(f"{name!r} is not a valid secret name; use letters, digits, "
                             "'_', '-' and '.', starting with a letter")
        if not value:
            raise InputError(f"the value for secret {name!r} is empty")
        if len(value) < MIN_SECRET_LENGTH:
            raise InputError(f"the value for secret {name!r} is shorter than "
                             f"{MIN_SECRET_LENGTH} characters, too short to be redacted "
                             "from logs and outputs safely; use a longer value")
        others = [row for row in self.list() if row.name != name]
        if others and not self.box.exists():
            # A new key would leave the stored secrets unreadable for good, and mix keys.
            raise ConfigError(self._missing_key(row.name for row in others))
        if others:
            self.box.open(others[0].name, others[0].ciphertext)  # not another workspace's key
        token = self.box.seal(name, value)
        with self.store.transaction() as tx:
            tx.secrets.put(name, token, time.time(), actor)
            tx.events.append(NewEvent("secret.set", {"name": name}, actor=actor))

    def delete(self, name: str, actor: str) -> None:
        """Forget a secret (its value need not be readable: this is how a lost key is
        recovered from)."""
        with self.store.transaction() as tx:
            if not tx.secrets.delete(name):
                raise NotFound(f"no secret named {name!r}; `soloist secret list` shows them")
            tx.events.append(NewEvent("secret.deleted", {"name": name}, actor=actor))

    def list(self) -> list[SecretRow]:
        with self.store.read() as tx:
            return tx.secrets.all()

    def get(self, name: str) -> str:
        with self.store.read() as tx:
            row = tx.secrets.get(name)
            names = [r.name for r in tx.secrets.all()] if row and not self.box.exists() else []
        if row is None:
            raise NotFound(f"no secret named {name!r}; set it with `soloist secret set "
                           f"{name}`")
        if names:
            raise ConfigError(self._missing_key(names))
        return self.box.open(name, row.ciphertext)

    def resolve(self, value: str) -> str:
        """``secret:NAME`` becomes the secret's value; anything else is returned as is."""
        if value.startswith(REFERENCE):
            return self.get(value.removeprefix(REFERENCE))
        return value

    def _missing_key(self, names: Iterable[str]) -> str:
        names = sorted(names)
        listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return (f"the secret key file {self.box.key_file} is missing, so the {len(names)} "
                f"stored secret(s) ({listed}) cannot be read; restore that file, or delete "
                "them with `soloist secret delete NAME` and set them again")

    # -- redaction -----------------------------------------------------------------------
    def install_redactor(self) -> None:
        """Make the store ask this service what to redact, in every write transaction."""
        self.store.redaction = self

    def redactor(self, stamp: str,
                 rows: Callable[[], builtins.list[SecretRow]]) -> Callable[[str], str] | None:
        """The redactor for the secrets as of ``stamp``; ``rows`` reads them (in the
        caller's transaction) when this process's list is for another stamp."""
        with self._lock:
            if stamp != self._stamp or (self._without_key and self.box.exists()):
                self._without_key = not self.box.exists()
                self._redactor = Redactor(self._readable(rows()))
                self._stamp = stamp
            return self._redactor or None

    def last(self) -> Callable[[str], str] | None:
        """The redactor loaded last, without asking the store (for reads)."""
        return self._redactor or None

    def _readable(self, rows: builtins.list[SecretRow]) -> dict[str, str]:
        """The values this process can decrypt: one whose key is lost cannot be resolved
        here either, so it cannot reach the store from here in clear."""
        if not rows:
            return {}
        values: dict[str, str] = {}
        for row in rows:
            try:
                values[row.name] = self.box.open(row.name, row.ciphertext)
            except ConfigError as exc:
                _log.info("secret %s is not redacted by this process: %s", row.name,
                          exc.message)
        return values
