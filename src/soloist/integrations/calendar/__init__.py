"""Calendars over CalDAV: the client the calendar connector is built on.

:class:`~.client.CalendarClient` talks to one calendar collection: create an event once
per idempotency key (``If-None-Match: *`` at a key-derived resource and UID), read, update
with ``If-Match``, delete (the compensation), list a time range with recurring events
expanded, free/busy, and (:func:`~.sync.changes`) what changed since a sync token.
:mod:`.ical` turns :class:`~.ical.EventDraft` into iCalendar and iCalendar into
:class:`~soloist.integrations.entities.CalendarEvent`.
"""

from soloist.integrations.calendar.client import (
    CalendarClient,
    Saved,
    href_for,
    uid_for,
)
from soloist.integrations.calendar.ical import EventDraft
from soloist.integrations.calendar.sync import Changes, changes

__all__ = ["CalendarClient", "Changes", "EventDraft", "Saved",
           "changes", "href_for", "uid_for"]
