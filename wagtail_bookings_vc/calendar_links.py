"""Add-to-calendar links: a booking as a Google Calendar or Outlook "new event" URL.

The members area and the booking page offer these next to the ``.ics`` download.
Like the calendar file, an online booking's event carries the member's personal
join link (``/bookings/join/<token>/``, as an absolute URL) as its location and in
its description; the provider's URL never goes into a calendar. Without a link to
show (an in-person booking, or one whose link is not there yet) the location is the
booking's place, if it has one.

The functions here are pure: they read the booking and what the caller passes, and
make no query beyond the booking's own related objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from .notifications.context import location_text

if TYPE_CHECKING:
    from .links import MemberLink
    from .models import Booking

GOOGLE_URL = "https://calendar.google.com/calendar/render"
OUTLOOK_LIVE_URL = "https://outlook.live.com/calendar/0/deeplink/compose"
OUTLOOK_OFFICE_URL = "https://outlook.office.com/calendar/0/deeplink/compose"

GOOGLE = "google"
OUTLOOK = "outlook"
OFFICE = "office"
ICS = "ics"


@dataclass(frozen=True)
class CalendarEvent:
    """What an add-to-calendar link puts in the member's calendar.

    Attributes:
        title: the event's title (the service or class).
        start: the booked start (aware).
        end: the booked end (aware).
        location: the personal join link of an online booking, else the place.
        details: the event's description: the join link, how to join, the reference
            and where to manage the booking.
    """

    title: str
    start: datetime
    end: datetime
    location: str = ""
    details: str = ""


@dataclass(frozen=True)
class CalendarLink:
    """One add-to-calendar button: ``kind`` is ``google``, ``outlook``, ``office`` or ``ics``."""

    kind: str
    label: str
    url: str
    download: bool = False


def booking_event(
    booking: Booking,
    *,
    join_url: str = "",
    join_description: str = "",
    passcode: str = "",
    manage_url: str = "",
) -> CalendarEvent:
    """The calendar event of ``booking``, as the member sees it.

    Args:
        booking: the member's booking.
        join_url: the member's personal join link (absolute), when it may be shown.
        join_description: the "how to join" note that goes with the link.
        passcode: the passcode of a hand-entered link.
        manage_url: the absolute URL of the booking's page.
    """
    lines = []
    if join_url:
        lines.append(_("Join the video meeting: %(url)s") % {"url": join_url})
        if join_description:
            lines.append(_("How to join: %(note)s") % {"note": join_description})
        if passcode:
            lines.append(_("Passcode: %(passcode)s") % {"passcode": passcode})
    lines.append(_("Booking reference: %(reference)s") % {"reference": booking.reference})
    if manage_url:
        lines.append(_("See, reschedule or cancel your booking: %(url)s") % {"url": manage_url})
    return CalendarEvent(
        title=booking.title,
        start=booking.start,
        end=booking.end,
        location=join_url or location_text(booking),
        details="\n".join(str(line) for line in lines),
    )


def event_for_member(booking: Booking, link: MemberLink | None, *, base_url: str) -> CalendarEvent:
    """:func:`booking_event` with the member's link (from :mod:`~wagtail_bookings_vc.links`).

    ``base_url`` is the site's root URL (no trailing slash) the booking page's URL
    starts with.
    """
    shown = link is not None and link.shown
    return booking_event(
        booking,
        join_url=link.url if shown else "",
        join_description=link.description if shown else "",
        passcode=link.passcode if shown else "",
        manage_url=_manage_url(booking, base_url),
    )


def google_calendar_url(event: CalendarEvent) -> str:
    """A Google Calendar link that opens a new event filled in with ``event``."""
    query = {
        "action": "TEMPLATE",
        "text": event.title,
        "dates": f"{_compact_utc(event.start)}/{_compact_utc(event.end)}",
        "details": event.details,
        "location": event.location,
    }
    return f"{GOOGLE_URL}?{_encode(query)}"


def outlook_calendar_url(event: CalendarEvent, *, office: bool = False) -> str:
    """An Outlook on the web link that opens a new event filled in with ``event``.

    ``office=True`` gives the Microsoft 365 (work or school account) address,
    otherwise the one for personal Outlook.com accounts.
    """
    query = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": event.title,
        "startdt": _iso_utc(event.start),
        "enddt": _iso_utc(event.end),
        "body": event.details,
        "location": event.location,
    }
    base = OUTLOOK_OFFICE_URL if office else OUTLOOK_LIVE_URL
    return f"{base}?{_encode(query)}"


def calendar_links(
    booking: Booking, link: MemberLink | None, *, base_url: str, ics_url: str = ""
) -> list[CalendarLink]:
    """The add-to-calendar buttons of a booking: Google, Outlook.com, Microsoft 365, ``.ics``.

    Empty for a cancelled booking: there is nothing to add.

    Args:
        booking: the member's booking.
        link: what :func:`wagtail_bookings_vc.links.member_link` gives for it (or ``None``).
        base_url: the site's root URL, for the booking page's address in the description.
        ics_url: the ``.ics`` download's URL (default: the booking's ``calendar.ics``).
    """
    if booking.is_cancelled:
        return []
    event = event_for_member(booking, link, base_url=base_url)
    if not ics_url:
        try:
            ics_url = reverse("wagtail_bookings_vc:booking_ics", args=[booking.reference])
        except NoReverseMatch:
            ics_url = ""
    buttons = [
        CalendarLink(GOOGLE, _("Google Calendar"), google_calendar_url(event)),
        CalendarLink(OUTLOOK, _("Outlook.com"), outlook_calendar_url(event)),
        CalendarLink(OFFICE, _("Microsoft 365"), outlook_calendar_url(event, office=True)),
    ]
    if ics_url:
        buttons.append(
            CalendarLink(ICS, _("Apple Calendar or other (.ics)"), ics_url, download=True)
        )
    return buttons


def _manage_url(booking: Booking, base_url: str) -> str:
    try:
        path = reverse("wagtail_bookings_vc:booking_detail", args=[booking.reference])
    except NoReverseMatch:
        return ""
    return base_url.rstrip("/") + path


def _compact_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(query: dict[str, str]) -> str:
    # Empty values are left out; spaces as %20, since Outlook shows a "+" as it is.
    return urlencode({key: value for key, value in query.items() if value}, quote_via=quote)
