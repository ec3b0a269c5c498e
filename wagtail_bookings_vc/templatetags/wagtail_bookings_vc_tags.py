"""Template tags for the booking pages and blocks: times with their zone, prices, assets.

Times are formatted here, in Python, because Django's ``date`` and ``time``
filters convert aware datetimes to the *active* time zone first; a booking is
shown in its staff member's or member's zone instead, and that zone is named.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django import template
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils import dateformat
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from .. import conf

register = template.Library()

CSS_PATH = "wagtail_bookings_vc/bookings.css"
JS_PATH = "wagtail_bookings_vc/bookings.js"

# Patterns use the letters of Django's ``date`` filter; translators may reorder them.
# They match the booking emails, so a member reads a time the same way everywhere.
DATE_FORMAT = pgettext_lazy("date on booking pages (Django date filter letters)", "l j F Y")
DAY_FORMAT = pgettext_lazy("day heading on booking pages (Django date filter letters)", "l j F")
SHORT_DAY_FORMAT = pgettext_lazy("day in a range of days (Django date filter letters)", "j F")
TIME_FORMAT = pgettext_lazy("time on booking pages (Django date filter letters)", "H:i")


def zone_for(name: str | None) -> zoneinfo.ZoneInfo:
    """The zone called ``name``, or UTC when the name is empty or unknown."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def zone_label(name: str | None) -> str:
    """A zone's name as shown next to a time: its IANA key, such as ``Europe/Rome``."""
    return zone_for(name).key


def format_time(value: datetime, zone_name: str | None) -> str:
    """The clock time of ``value`` in the zone: ``10:00``."""
    return dateformat.format(value.astimezone(zone_for(zone_name)), str(TIME_FORMAT))


def format_date(value: date | datetime, zone_name: str | None = None) -> str:
    """A date such as ``Monday 23 November 2026`` (a datetime is read in the zone)."""
    if isinstance(value, datetime):
        value = value.astimezone(zone_for(zone_name))
    return dateformat.format(value, str(DATE_FORMAT))


def format_day(value: date) -> str:
    """A day heading without the year: ``Monday 23 November``."""
    return dateformat.format(value, str(DAY_FORMAT))


def format_short_day(value: date) -> str:
    """A short day for ranges: ``23 November``."""
    return dateformat.format(value, str(SHORT_DAY_FORMAT))


def format_when(start: datetime, end: datetime | None, zone_name: str | None) -> str:
    """Date, start and end time in the named zone, with the zone named.

    For example ``Monday 23 November 2026, 10:00–11:00 (Europe/Rome)``, the way
    the booking emails write it.
    """
    zone = zone_for(zone_name)
    local_start = start.astimezone(zone)
    times = format_time(local_start, zone.key)
    if end is not None:
        local_end = end.astimezone(zone)
        end_text = format_time(local_end, zone.key)
        if local_end.date() != local_start.date():
            end_text = f"{format_date(local_end.date())}, {end_text}"
        times = _("%(start)s–%(end)s") % {"start": times, "end": end_text}
    return _("%(date)s, %(time)s (%(time_zone)s)") % {
        "date": format_date(local_start.date()),
        "time": times,
        "time_zone": zone.key,
    }


def format_price(amount: Decimal | None, currency: str = "") -> str:
    """``40.00 EUR``; an empty string when there is nothing to pay."""
    if amount is None or amount <= 0:
        return ""
    return _("%(amount)s %(currency)s") % {
        "amount": number_format(amount, 2, use_l10n=True),
        "currency": (currency or conf.get_settings().DEFAULT_CURRENCY or "").upper(),
    }


@register.simple_tag
def bvc_when(start: datetime | None, end: datetime | None = None, zone: str = "UTC") -> str:
    """``{% bvc_when booking.start booking.end booking.time_zone %}``."""
    if start is None:
        return ""
    return format_when(start, end, zone)


@register.simple_tag
def bvc_time(value: datetime | None, zone: str = "UTC") -> str:
    """``{% bvc_time slot.start staff.time_zone %}``: the clock time only."""
    return "" if value is None else format_time(value, zone)


@register.filter
def bvc_zone(name: str | None) -> str:
    """``{{ booking.time_zone|bvc_zone }}``: the zone's name, UTC when unknown."""
    return zone_label(name)


@register.filter
def bvc_day(value: date | None) -> str:
    """``{{ day|bvc_day }}``: ``Monday 23 November``."""
    return "" if value is None else format_day(value)


@register.filter
def bvc_short_day(value: date | None) -> str:
    """``{{ day|bvc_short_day }}``: ``23 November``."""
    return "" if value is None else format_short_day(value)


@register.simple_tag
def bvc_price(amount: Decimal | None, currency: str = "") -> str:
    """``{% bvc_price service.price service.currency %}``."""
    return format_price(amount, currency)


@register.simple_tag
def bvc_css() -> SafeString:
    """The app's stylesheet as a ``<link>`` tag (put it in the page's head)."""
    return format_html('<link rel="stylesheet" href="{}">', static(CSS_PATH))


@register.simple_tag
def bvc_js() -> SafeString:
    """The app's optional script as a deferred ``<script>`` tag."""
    return format_html('<script src="{}" defer></script>', static(JS_PATH))


@register.simple_tag(takes_context=True)
def bvc_members_area_url(context: template.Context) -> str:
    """The URL of the site's live members-area page, or an empty string.

    Finds any page type that uses ``MembersAreaPageMixin``, so a site's own
    members page works as well as the ready-made one.
    """
    request = context.get("request")
    return members_area_url(request if isinstance(request, HttpRequest) else None)


def members_area_url(request: HttpRequest | None) -> str:
    """See :func:`bvc_members_area_url`."""
    from wagtail.models import Site, get_page_models

    from ..pages import MembersAreaPageMixin

    site = Site.find_for_request(request) if request is not None else None
    for model in get_page_models():
        if not issubclass(model, MembersAreaPageMixin):
            continue
        pages = model.objects.live().public()
        if site is not None:
            pages = pages.descendant_of(site.root_page, inclusive=True)
        page = pages.order_by("path").first()
        if page is not None:
            return page.get_url(request) or ""
    return ""


@register.inclusion_tag("wagtail_bookings_vc/includes/status_badges.html")
def bvc_status_badges(booking: Any) -> dict[str, Any]:
    """Badges for a booking's status and, when something is to be paid, its payment."""
    return {
        "status": booking.status,
        "status_label": booking.get_status_display(),
        "payment": booking.payment_status,
        "payment_label": booking.get_payment_status_display(),
        "show_payment": booking.payment_status != "not_required" and not booking.is_cancelled,
    }
