"""What changed in a calendar since the last look: RFC 6578 sync tokens, or ctag/ETags.

:func:`changes` returns a :class:`Changes`: the token to keep for next time, the hrefs
that were added or changed, and the hrefs that were deleted. A trigger stores the token
(and, for the fallback, the ETags) in its cursor and asks again with them.

- With a sync token (``sync-collection`` REPORT), the server says what changed. A token it
  no longer knows (``403`` with ``valid-sync-token``) restarts from scratch: every current
  resource is listed as changed and ``reset`` is true, so the caller reconciles what it
  holds rather than trusting the delta.
- Without (``use_sync_tokens=False``, for servers that lack or break it), the
  collection's ``getctag`` tells whether anything changed at all (the token is then
  ``ctag:<value>``), and the resources' ETags, compared with the ``etags`` the caller kept,
  tell what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from soloist.errors import DeterministicError, InvalidSyncToken
from soloist.integrations.calendar.client import (
    DAV,
    CalendarClient,
    multistatus,
)

_CS = "{http://calendarserver.org/ns/}"
_XML = "application/xml; charset=utf-8"
_SYNC = (
    '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
    "<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
    "<D:prop><D:getetag/></D:prop></D:sync-collection>"
)
_CTAG = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
    "<D:prop><CS:getctag/></D:prop></D:propfind>"
)
_ETAGS = (
    '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
    "<D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>"
)
CTAG_PREFIX = "ctag:"


@dataclass(frozen=True)
class Changes:
    """A delta: keep ``token`` (and ``etags``) for the next call."""

    token: str
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    #: href -> ETag of every resource, with the ctag fallback (empty with sync tokens)
    etags: Mapping[str, str] = field(default_factory=dict)
    #: the old token was unknown or absent: ``changed`` is everything there is
    reset: bool = False


def changes(client: CalendarClient, since: str | None = None, *,
            etags: Mapping[str, str] | None = None) -> Changes:
    """What changed in ``client``'s calendar since ``since`` (``None``: everything)."""
    if client.use_sync_tokens and not (since or "").startswith(CTAG_PREFIX):
        try:
            return _by_sync_token(client, since)
        except InvalidSyncToken:
            return _by_sync_token(client, None)
    return _by_ctag(client, since, etags or {})


def _by_sync_token(client: CalendarClient, since: str | None) -> Changes:
    body = _SYNC.format(token=escape(since or ""))
    reply = client.send("REPORT", client.calendar_url, body,
                        {"Content-Type": _XML, "Depth": "1"})
    client.expect(reply, "REPORT", client.calendar_url, 207)
    changed, deleted = [], []
    for href, props in multistatus(reply, client.where):
        if " 404 " in (props.get("status") or ""):
            deleted.append(href)
        elif href.rstrip("/") != client.path.rstrip("/"):
            changed.append(href)
    token = reply.tree.findtext(f"{DAV}sync-token") if reply.tree is not None else None
    if not token:
        raise DeterministicError(f"the sync-collection reply of {client.where} has no sync-token")
    return Changes(str(token), tuple(changed), tuple(deleted), reset=since is None)


def _by_ctag(client: CalendarClient, since: str | None, known: Mapping[str, str]) -> Changes:
    reply = client.send("PROPFIND", client.calendar_url, _CTAG,
                        {"Content-Type": _XML, "Depth": "0"})
    client.expect(reply, "PROPFIND", client.calendar_url, 207)
    ctag = next((p.get(f"{_CS}getctag") for _, p in multistatus(reply, client.where)), None) or ""
    token = CTAG_PREFIX + ctag
    if ctag and since == token:
        return Changes(token, etags=dict(known))
    reply = client.send("PROPFIND", client.calendar_url, _ETAGS,
                        {"Content-Type": _XML, "Depth": "1"})
    client.expect(reply, "PROPFIND", client.calendar_url, 207)
    current = {href: etag for href, props in multistatus(reply, client.where)
               if (etag := props.get(f"{DAV}getetag")) and not href.endswith("/")}
    changed = tuple(sorted(h for h, e in current.items() if known.get(h) != e))
    deleted = tuple(sorted(set(known) - set(current)))
    return Changes(token, changed, deleted, etags=current, reset=since is None)
