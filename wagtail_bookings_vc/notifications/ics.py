"""Calendar files (iCalendar, RFC 5545) that put a booking in the member's calendar.

One booking is one calendar event for its whole life: the UID never changes
and SEQUENCE grows with every change, so calendar programs replace or remove
the copy they already have instead of adding a second one (RFC 5546).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parseaddr
from typing import TYPE_CHECKING

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from icalendar import Calendar, Event, vCalAddress, vText

from . import context as ctx

if TYPE_CHECKING:
    from wagtail.models import Site

    from ..models import Booking

PRODID = "-//wagtail-bookings-vc//Bookings//EN"

REQUEST = "REQUEST"
CANCEL = "CANCEL"
PUBLISH = "PUBLISH"
METHODS = (REQUEST, CANCEL, PUBLISH)


def booking_uid(booking: Booking, site: Site | None = None) -> str:
    """The event's UID: the same for a booking across every email about it."""
    return f"booking-{booking.reference}@{ctx.site_host(site)}"


def booking_ics(
    booking: Booking,
    *,
    method: str,
    meeting_url: str = "",
    meeting_description: str = "",
    meeting_passcode: str = "",
) -> bytes:
    """Build the calendar file for ``booking``.

    Texts (location, description) come out in the active language. For an online
    booking, the caller passes the reader's own personal link (the member's join
    link, or the staff member's host link): it becomes the event's location and URL
    and is repeated in its description, where calendar programs offer it to click.
    The provider's URL is never put in a calendar file.

    Args:
        booking: the booking the event stands for.
        method: ``"REQUEST"`` to add or update the event, ``"CANCEL"`` to
            remove it, or ``"PUBLISH"`` for a plain download.
        meeting_url: the reader's personal link to the video meeting, if they may see it.
        meeting_description: the "how to join" note that goes with the link.
        meeting_passcode: the passcode that goes with a hand-entered link.

    Returns:
        The ``.ics`` file's bytes (UTF-8, CRLF line endings).

    Raises:
        ValueError: ``method`` is not one of the three above.
    """
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"Unknown iCalendar method: {method!r}")
    site = ctx.default_site()
    prefs = ctx.email_settings(site)
    cancelled = method == CANCEL or booking.is_cancelled

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)

    event = Event()
    event.add("uid", booking_uid(booking, site))
    event.add("sequence", booking.sequence)
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("dtstart", _utc(booking.start))
    event.add("dtend", _utc(booking.end))
    event.add("summary", booking.title)
    if cancelled:
        meeting_url = meeting_description = meeting_passcode = ""
    location = meeting_url or ctx.location_text(booking)
    if location:
        event.add("location", location)
    event.add(
        "description",
        _description(booking, site, meeting_url, meeting_description, meeting_passcode),
    )
    url = meeting_url or ctx.manage_url(booking, site)
    if url:
        event.add("url", url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    # Without an organiser a calendar program treats REQUEST and CANCEL as plain events.
    organizer = _address(ctx.sender(site, prefs))
    if organizer is not None:
        event.add("organizer", organizer)
    member = ctx.member_recipient(booking)
    # RFC 5546: a published event has no attendees; invitations name the member.
    if member.email and method != PUBLISH:
        attendee = _address(member.address)
        if attendee is not None:
            attendee.params["role"] = vText("REQ-PARTICIPANT")
            # The booking is already made: no "accept / decline" buttons, and no replies
            # sent to the sender address, which nobody reads for that.
            attendee.params["rsvp"] = vText("FALSE")
            if not cancelled:
                attendee.params["partstat"] = vText("ACCEPTED")
            event.add("attendee", attendee, encode=False)
    calendar.add_component(event)
    return calendar.to_ical()


def content_type(method: str) -> str:
    """The MIME type an ``.ics`` attachment of this method is sent with."""
    return f"text/calendar; method={method.upper()}; charset=utf-8"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _address(header_value: str) -> vCalAddress | None:
    name, email = parseaddr(header_value)
    if not email:
        return None
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["cn"] = vText(name)
    return address


def _description(
    booking: Booking,
    site: Site | None,
    meeting_url: str,
    meeting_description: str,
    meeting_passcode: str,
) -> str:
    url = ctx.manage_url(booking, site)
    lines = []
    if meeting_url:
        lines.append(str(_("Join the video meeting: %(url)s") % {"url": meeting_url}))
        if meeting_description:
            lines.append(str(_("How to join: %(note)s") % {"note": meeting_description}))
        if meeting_passcode:
            lines.append(str(_("Passcode: %(passcode)s") % {"passcode": meeting_passcode}))
    lines.append(str(_("Booking reference: %(reference)s") % {"reference": booking.reference}))
    if url:
        lines.append(str(_("See, reschedule or cancel your booking: %(url)s") % {"url": url}))
    return "\n".join(lines)
