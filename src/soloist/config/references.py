"""Settings that name a secret: ``secret:NAME``, never the value itself.

The value lives encrypted in the store (``soloist secret set NAME``) and is resolved only
where it is used (:mod:`soloist.control.secrets`), so soloist.toml can be committed and
shown. A :data:`SecretReference` setting refuses a literal, and its message never repeats
what was written (it may be the credential).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

#: a secret's name: what ``soloist secret set`` accepts
SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
REFERENCE = "secret:"


def secret_name(value: str) -> str | None:
    """NAME of ``secret:NAME``, or None when ``value`` is no reference."""
    return value.removeprefix(REFERENCE) if value.startswith(REFERENCE) else None


def _reference(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str):
        return value  # the string type says what it must be
    name = secret_name(value)
    if name is None:
        key = info.field_name or "the key"
        raise ValueError("a credential is not written in soloist.toml; store it with "
                         f"`soloist secret set NAME` and write {key} = \"secret:NAME\"")
    if not SECRET_NAME.match(name):
        raise ValueError(f"{value!r} names no valid secret: a name holds letters, digits, "
                         "'_', '-' and '.', starting with a letter")
    return value


class SecretMarker:
    """Marks a field as a :data:`SecretReference` (for :func:`secret_fields`)."""


SECRET = SecretMarker()

#: ``secret:NAME`` as written; :func:`secret_name` gives the NAME
SecretReference = Annotated[str, BeforeValidator(_reference), SECRET]
