"""What every table of ``soloist.toml`` is built on: :class:`Section`, and the rule for
names the user picks (MCP servers, connectors).

Its own module so that the tables of one domain (:mod:`soloist.config.connectors`) can
live beside :mod:`soloist.config.sections`, which gathers them into the whole file.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

#: a name the user gives a server or a connector: a bare TOML key, usable in a URL path
NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class Section(BaseModel):
    """A table: frozen, strict, and no key it does not know."""

    # allow_inf_nan: TOML writes inf and nan, and no setting means either (issue 9: no
    # non-finite number comes in)
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True,
                              allow_inf_nan=False)

    #: fields whose entries are written as sub-tables of this table itself (``[breakers.x]``
    #: for ``BreakersSection.providers``), so error messages and line lookups skip their name
    inlined: ClassVar[frozenset[str]] = frozenset()


def check_name(name: str, what: str) -> str:
    """``name`` when it holds only letters, digits, ``_`` and ``-``; else ``ValueError``."""
    if not NAME.match(name):
        raise ValueError(f"the {what} name {name!r} may hold only letters, digits, '_' "
                         "and '-'")
    return name
