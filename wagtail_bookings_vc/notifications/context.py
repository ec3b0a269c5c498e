"""What the booking emails and calendar files say: recipients, site details and variables.

Everything an email template can use is built here as plain strings, so an
editor's template in the admin can show a booking's details but never reach
into the database through a model's attributes.
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import dateformat, formats, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ..conf import get_settings
from ..memo import remembered

if TYPE_CHECKING:
    from wagtail.models import Site

    from ..models import Booking, BookingEmailSettings, Staff

logger = logging.getLogger(__name__)

MEMBER = "member"
STAFF = "staff"

# Patterns use the letters of Django's ``date`` filter; translators may reorder them.
DATE_FORMAT = pgettext_lazy("date in booking emails (Django date filter letters)", "l j F Y")
TIME_FORMAT = pgettext_lazy("time in booking emails (Django date filter letters)", "H:i")

#: The variables every email template gets, all strings; ``docs/emails.md`` describes them.
TEMPLATE_VARIABLES: tuple[str, ...] = (
    "member_name",
    "member_email",
    "title",
    "start",
    "end",
    "date",
    "time",
    "time_zone",
    "staff_name",
    "location",
    "reference",
    "manage_url",
    "price",
    "notes",
    "site_name",
    "join_link",
    "join_opens",
    "join_link_note",
    "meeting_description",
    "meeting_passcode",
    "host_link",
)

#: The variables about the video meeting; empty where the reader has no link to see.
MEETING_VARIABLES: tuple[str, ...] = (
    "join_link",
    "join_opens",
    "join_link_note",
    "meeting_description",
    "meeting_passcode",
    "host_link",
)


@dataclass(frozen=True)
class Recipient:
    """Who an email goes to, and how times and words are shown to them.

    Attributes:
        role: ``"member"`` or ``"staff"``.
        email: the address; empty when there is none to write to.
        name: the display name.
        time_zone: an IANA time zone name the times are shown in.
        language: the language code the email is written in.
    """

    role: str
    email: str
    name: str
    time_zone: str
    language: str

    @property
    def address(self) -> str:
        """The ``To`` header value: ``"Name <address>"``."""
        return formataddr((self.name, self.email)) if self.name else self.email


def default_site() -> Site | None:
    """The Wagtail site emails speak for: the default site, else the first one."""
    from wagtail.models import Site

    from ..accounts import default_site as marked_default

    return marked_default() or remembered("first_site", lambda: Site.objects.order_by("pk").first())


def email_settings(site: Site | None = None) -> BookingEmailSettings:
    """The booking email settings of ``site`` (default: the default site).

    Returns unsaved defaults when the installation has no site at all, so a
    job never fails for want of one.
    """
    from ..models import BookingEmailSettings

    site = site or default_site()
    if site is None:
        return BookingEmailSettings()
    return remembered(("email_settings", site.pk), lambda: BookingEmailSettings.for_site(site))


def staff_emails_wanted() -> bool:
    """The default site's *email staff about their bookings* setting.

    Asked after every booking, so it reads the one column it needs; the settings are
    loaded in full only when the default site has none saved yet.
    """
    from ..models import BookingEmailSettings

    found = BookingEmailSettings.objects.filter(site__is_default_site=True).values_list(
        "notify_staff", flat=True
    )[:1]
    for wanted in found:
        return wanted
    return bool(email_settings().notify_staff)


def base_url(site: Site | None = None) -> str:
    """The site's root URL without a trailing slash, for links in emails."""
    site = site or default_site()
    url = site.root_url if site is not None else ""
    return (url or getattr(settings, "WAGTAILADMIN_BASE_URL", "") or "").rstrip("/")


def site_host(site: Site | None = None) -> str:
    """The site's host name, used to make calendar UIDs unique to this site."""
    return urlsplit(base_url(site)).hostname or "localhost"


def site_name(site: Site | None = None) -> str:
    """The site's name as members know it."""
    site = site or default_site()
    return (
        (site.site_name if site is not None else "")
        or getattr(settings, "WAGTAIL_SITE_NAME", "")
        or site_host(site)
    )


def sender(site: Site | None = None, prefs: BookingEmailSettings | None = None) -> str:
    """The ``From`` address: the editor's sender address, else ``DEFAULT_FROM_EMAIL``."""
    prefs = prefs if prefs is not None else email_settings(site)
    if prefs.from_email:
        return formataddr((site_name(site), prefs.from_email))
    return settings.DEFAULT_FROM_EMAIL


def manage_url(booking: Booking, site: Site | None = None) -> str:
    """Absolute URL of the page where the member manages ``booking``; empty if not routed."""
    try:
        path = reverse("wagtail_bookings_vc:booking_detail", args=[booking.reference])
    except NoReverseMatch:
        # A site that does not include the app's URLs still gets its emails, without the link.
        logger.warning("wagtail_bookings_vc URLs are not included; emails carry no manage link.")
        return ""
    return base_url(site) + path


def booking_staff(booking: Booking) -> Staff | None:
    """The staff member of a booking: the appointment's, or the class's instructor."""
    if booking.staff_id:
        return booking.staff
    if booking.session_id:
        return booking.session.group_class.staff
    return None


def member_recipient(booking: Booking) -> Recipient:
    """The member of ``booking``, in the time zone and language they booked in."""
    member = booking.member
    email = booking.member_email or (member.email if member is not None else "")
    name = booking.member_name
    if not name and member is not None:
        name = member.get_full_name() or member.get_username()
    return Recipient(
        role=MEMBER,
        email=email or "",
        name=name or "",
        time_zone=booking.time_zone or "UTC",
        language=booking.language or settings.LANGUAGE_CODE,
    )


def staff_recipient(booking: Booking) -> Recipient | None:
    """The staff member of ``booking`` in their own time zone, or ``None`` if there is none."""
    staff = booking_staff(booking)
    if staff is None:
        return None
    return staff_member_recipient(staff)


def staff_member_recipient(staff: Staff) -> Recipient:
    """A staff member as an email recipient, in their own time zone and admin language."""
    return Recipient(
        role=STAFF,
        email=staff.email or "",
        name=staff.name,
        time_zone=staff.time_zone or settings.TIME_ZONE or "UTC",
        language=_staff_language(staff),
    )


def _staff_language(staff: Staff) -> str:
    # Staff who sign in to the admin chose a language there; that is the best guess we have.
    profile = getattr(staff.user, "wagtail_userprofile", None) if staff.user_id else None
    language = getattr(profile, "preferred_language", "") or ""
    if language and translation.check_for_language(language):
        return language
    return settings.LANGUAGE_CODE


def zone_for(name: str) -> zoneinfo.ZoneInfo:
    """The time zone called ``name``; the site's (or UTC) when the name is unknown."""
    for candidate in (name, settings.TIME_ZONE, "UTC"):
        try:
            return zoneinfo.ZoneInfo(candidate or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return zoneinfo.ZoneInfo("UTC")  # pragma: no cover - UTC always exists


def format_date(value: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """``value`` as a day in ``zone``, in the active language: 'Tuesday 12 January 2027'."""
    return dateformat.format(value.astimezone(zone), str(DATE_FORMAT))


def format_time(value: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """``value`` as a time of day in ``zone``: '10:00'."""
    return dateformat.format(value.astimezone(zone), str(TIME_FORMAT))


def format_moment(value: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """Day, time and zone: 'Tuesday 12 January 2027, 10:00 (Europe/Rome)'."""
    return _("%(date)s, %(time)s (%(time_zone)s)") % {
        "date": format_date(value, zone),
        "time": format_time(value, zone),
        "time_zone": zone.key,
    }


def location_text(booking: Booking) -> str:
    """Where the booking takes place, as shown to people."""
    if booking.online:
        return str(_("Online"))
    if booking.session_id:
        return booking.session.effective_location
    return ""


def price_text(booking: Booking) -> str:
    """The price with its currency, in the active language's number format; empty when free."""
    if booking.price is None or booking.price <= 0:
        return ""
    return _("%(amount)s %(currency)s") % {
        "amount": formats.number_format(booking.price, 2, use_l10n=True),
        "currency": booking.currency or get_settings().DEFAULT_CURRENCY,
    }


def build_context(
    booking: Booking, recipient: Recipient, *, site: Site | None = None
) -> dict[str, str]:
    """Every template variable for an email about ``booking`` to ``recipient``.

    Call it with the recipient's language active: dates and words come out in it.

    Args:
        booking: the booking the email is about.
        recipient: who reads it; times are shown in their time zone.
        site: the site the email speaks for (default: the default site).

    Returns:
        A flat mapping of variable names to strings (see ``TEMPLATE_VARIABLES``).
    """
    site = site or default_site()
    zone = zone_for(recipient.time_zone)
    staff = booking_staff(booking)
    member = member_recipient(booking)
    context = {
        "member_name": member.name,
        "member_email": member.email,
        "title": booking.title,
        "start": format_moment(booking.start, zone),
        "end": format_moment(booking.end, zone),
        "date": format_date(booking.start, zone),
        "time": _("%(start)s–%(end)s")
        % {"start": format_time(booking.start, zone), "end": format_time(booking.end, zone)},
        "time_zone": zone.key,
        "staff_name": staff.name if staff is not None else "",
        "location": location_text(booking),
        "reference": booking.reference,
        "manage_url": manage_url(booking, site),
        "price": price_text(booking),
        "notes": booking.notes,
        "site_name": site_name(site),
    }
    context.update(meeting_variables(booking, recipient))
    return context


def meeting_variables(booking: Booking, recipient: Recipient) -> dict[str, str]:
    """Template variables about the booking's video meeting.

    A member reads their personal ``join_link`` (never the provider's URL), when it
    opens (``join_opens``, in their time zone) and the "how to join" note; or, while
    the link cannot be given yet, ``join_link_note`` says why. A staff member reads
    their ``host_link``. Every variable is empty where there is nothing to show: an
    in-person booking, a link left out of emails (R21), a cancelled booking, or
    automatic links while the site's default account is disconnected (R3).

    Args:
        booking: the booking the email is about.
        recipient: who reads it; only staff ever see a host link, and only the
            member their join link.

    Returns:
        Extra variables, all strings, merged into ``build_context``'s result.
    """
    from .. import links

    values = dict.fromkeys(MEETING_VARIABLES, "")
    if recipient.role == STAFF:
        values["host_link"] = links.host_link(booking)
        return values
    link = links.member_link(booking, where=links.EMAIL)
    if link is None:
        return values
    if link.shown:
        values["join_link"] = link.url
        if link.opens_at is not None:
            values["join_opens"] = format_time(link.opens_at, zone_for(recipient.time_zone))
        values["meeting_description"] = link.description
        values["meeting_passcode"] = link.passcode
    elif link.status == links.AWAITING_PAYMENT:
        values["join_link_note"] = "{} {}".format(link.reason, _("We will email it to you then."))
    else:
        values["join_link_note"] = "{} {}".format(
            link.reason, _("We will email it to you as soon as it is ready.")
        )
    return values
