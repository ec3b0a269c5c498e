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


def connect_default_account(provider: str = "jitsi"):
    """Make a connected account of ``provider`` the default site's default account (R3)."""
    from wagtail.models import Site

    from wagtail_bookings_vc.models import ConferencingAccount, ConferencingSettings

    account = ConferencingAccount.objects.create(provider=provider, label="Studio meetings")
    settings = ConferencingSettings.for_site(Site.objects.get(is_default_site=True))
    settings.default_account = account
    settings.save()
    return account


class HeldJobs:
    """Holds back the meeting jobs, so that a test decides when a meeting gets made.

    Every other job runs as usual. Use as ``monkeypatch.setattr(jobs, "enqueue", held)``.
    """

    def __init__(self, enqueue):
        self._enqueue = enqueue
        self.meeting_ids: list[int] = []

    def __call__(self, func: str, *args) -> None:
        from wagtail_bookings_vc.meetings import ENSURE_JOB

        if func == ENSURE_JOB:
            self.meeting_ids.append(args[0])
        else:
            self._enqueue(func, *args)
