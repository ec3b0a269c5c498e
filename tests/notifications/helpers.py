"""Constants and helpers shared by the notification tests."""

from __future__ import annotations

import datetime as dt

# Tuesday 12 January 2027: 10:00 in Rome, 04:00 in New York, 09:00 UTC.
START = dt.datetime(2027, 1, 12, 9, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(hours=1)
SITE_HOST = "studio.example.com"
SITE_URL = f"https://{SITE_HOST}"


def attachment_part(message):
    """The MIME part of ``message`` that holds ``invite.ics``."""
    for part in message.message().walk():
        if part.get_filename() == "invite.ics":
            return part
    raise AssertionError("no invite.ics attached")


def ics_of(message) -> bytes:
    """The bytes of the ``invite.ics`` attached to ``message``."""
    return attachment_part(message).get_payload(decode=True)


def html_of(message) -> str:
    for content, mimetype in message.alternatives:
        if mimetype == "text/html":
            return content
    raise AssertionError("no HTML alternative")
