"""Public views: book, see, cancel and reschedule a booking; the members area.

Views read models and call :mod:`wagtail_bookings_vc.bookings` to change
anything; they never write a booking themselves. Every page works without
JavaScript. A booking's pages answer 404 to anyone but its member, exactly as
for a reference that does not exist, so a reference cannot be probed.

The blocks' template contexts are built here too (:func:`booking_widget_context`,
:func:`class_schedule_context`), so that the widget and the reschedule page
share one slot picker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from . import availability, bookings, conf, links
from . import calendar_links as add_to_calendar
from .forms import BookingForm, current_time_zone_name, valid_zone_name, zone_names
from .memo import read_scope
from .models import (
    Booking,
    BookingStatus,
    ClassSession,
    GroupClass,
    PaymentStatus,
    Service,
    Staff,
)
from .models.bookings import REFERENCE_ALPHABET
from .notifications import context as notification_context
from .notifications import ics
from .templatetags.wagtail_bookings_vc_tags import (
    format_day,
    format_price,
    format_short_day,
    format_time,
    format_when,
    zone_for,
)

# GET parameters of the booking widget. Prefixed so that they do not clash with a
# site's own parameters on the same page.
SERVICE_PARAM = "bvc_service"
WEEK_PARAM = "bvc_week"
STAFF_PARAM = "bvc_staff"
TZ_PARAM = "bvc_tz"

# GET parameters of the pages a picked time is sent to: the slot and the zone it was
# picked in (the confirmation shows the time in that zone and offers it as the member's).
SLOT_PARAM = "slot"
ZONE_PARAM = "tz"

# GET parameters of the members area.
SHOW_PARAM = "show"
PAGE_PARAM = "page"
MEMBERS_AREA_PAGE_SIZE = 10

# Errors after which the member should simply pick another time or session.
PICK_AGAIN_CODES = frozenset(
    {"taken", "full", "unavailable", "in_past", "too_soon", "too_far", "session_cancelled"}
)

BOOKING_RELATED = (
    "service",
    "staff",
    "session",
    "session__group_class",
    "session__group_class__staff",
)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def iso_utc(value: datetime) -> str:
    """An aware datetime as the ISO 8601 UTC text used in booking links."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_start(value: str | None) -> datetime | None:
    """Read a start time from a link; ``None`` when it is missing or malformed.

    A time without an offset is taken as UTC, the form the app's links use.
    """
    if not value:
        return None
    value = value.strip()
    if "T" in value:
        # A "+" that was not encoded in a query string arrives as a space.
        value = value.replace(" ", "+")
    try:
        parsed = datetime.fromisoformat(value)
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        # OverflowError: a time at the very edge of the calendar cannot move to UTC.
        return None


# The largest primary key any supported database stores (a signed 64-bit integer).
MAX_ID = 2**63 - 1


def parse_int(value: str | None) -> int | None:
    """A primary key from a GET or POST value, or ``None`` when it cannot be one."""
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number <= MAX_ID else None


def safe_next(request: HttpRequest, value: str | None = None) -> str:
    """The ``next`` URL of the request when it points to this site, else ``""``."""
    if value is None:
        value = request.POST.get("next") or request.GET.get("next") or ""
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return ""


def with_params(params: QueryDict, anchor: str = "", **changes: Any) -> str:
    """A relative URL (``?...#anchor``) of the current page with some parameters changed.

    A change to ``None`` removes the parameter.
    """
    query = params.copy()
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = str(value)
    encoded = query.urlencode()
    return ("?" + encoded if encoded else "?") + (f"#{anchor}" if anchor else "")


def duration_text(minutes: int) -> str:
    """``45 minutes``."""
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


def staff_zone_name(staff: Staff | None) -> str:
    """The staff member's time zone, or the site's when there is no staff member."""
    return staff.time_zone if staff is not None else current_time_zone_name()


def login_redirect(request: HttpRequest) -> HttpResponse:
    """Send an anonymous visitor to log in, and back to this very URL afterwards."""
    return redirect_to_login(request.get_full_path())


REFERENCE_RE = re.compile(f"[{REFERENCE_ALPHABET}]{{1,16}}")


def member_booking_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Give ``view`` the booking named in the URL, if it is the signed-in member's.

    Anonymous visitors are sent to log in whether or not the booking exists, and
    everybody else gets 404, so that a reference reveals nothing.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, reference: str, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return login_redirect(request)
        if not REFERENCE_RE.fullmatch(reference):
            # Not a reference at all (PostgreSQL would refuse a NUL in the lookup).
            raise Http404
        booking = get_object_or_404(
            Booking.objects.select_related(*BOOKING_RELATED),
            reference=reference,
            member=request.user,
        )
        return view(request, booking, *args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------------------
# What a booking (or a booking about to be made) looks like on a page
# --------------------------------------------------------------------------------------


@dataclass
class Summary:
    """The facts shown about a booking or a slot, already formatted."""

    title: str
    when: str
    staff_name: str = ""
    location: str = ""
    online: bool = False
    price: str = ""
    seats_left: int | None = None


def appointment_summary(
    service: Service, staff: Staff, start: datetime, zone_name: str = ""
) -> Summary:
    """A slot of ``service`` with ``staff``, in ``zone_name`` (default: the staff member's)."""
    end = start + timedelta(minutes=service.duration_minutes)
    return Summary(
        title=service.name,
        when=format_when(start, end, zone_name or staff.time_zone),
        staff_name=staff.name,
        online=service.online,
        price=format_price(service.price, service.currency),
    )


def session_summary(session: ClassSession, seats: int | None = None) -> Summary:
    """A class session, in its instructor's zone (the site's when it has none)."""
    group_class = session.group_class
    staff = group_class.staff
    return Summary(
        title=group_class.name,
        when=format_when(session.start, session.end, staff_zone_name(staff)),
        staff_name=staff.name if staff else "",
        location=session.effective_location,
        online=group_class.online,
        price=format_price(group_class.price, group_class.currency),
        seats_left=seats,
    )


def booking_summary(booking: Booking) -> Summary:
    """A booking as its member sees it, in the zone they booked in."""
    staff = booking.staff or (booking.session.group_class.staff if booking.session_id else None)
    return Summary(
        title=booking.title,
        when=format_when(booking.start, booking.end, booking.time_zone),
        staff_name=staff.name if staff else "",
        location=booking.session.effective_location if booking.session_id else "",
        online=booking.online,
        price=format_price(booking.price, booking.currency),
    )


# --------------------------------------------------------------------------------------
# The slot picker: free times of a service, a week at a time, grouped by day
# --------------------------------------------------------------------------------------


@dataclass
class SlotChoice:
    """One free time as offered on the page: a radio button of the picker's form."""

    slot: availability.Slot
    time: str
    label: str
    staff_note: str
    value: str
    input_id: str
    url: str
    staff: Staff | None


@dataclass
class DayColumn:
    """The free times of one local day."""

    day: date
    title: str
    choices: list[SlotChoice] = field(default_factory=list)


@dataclass
class SlotPicker:
    """Everything the slot picker template shows.

    The free times are radio buttons of a GET form that goes to ``action`` with
    ``form_fields`` and the chosen ``slot``; the filter form above them (time zone,
    staff member) reloads the picker with ``filter_params`` kept.
    """

    service: Service
    anchor: str
    days: list[DayColumn]
    week_start: date
    week_end: date
    week_label: str
    zone_name: str
    previous_url: str
    next_url: str
    staff_options: list[Staff]
    selected_staff: Staff | None
    filter_params: list[tuple[str, str]]
    action: str = ""
    form_fields: list[tuple[str, str]] = field(default_factory=list)
    zone_chosen: bool = False
    submit_label: str = ""

    @property
    def slot_count(self) -> int:
        return sum(len(day.choices) for day in self.days)

    @property
    def has_staff_filter(self) -> bool:
        return len(self.staff_options) > 1

    @property
    def zone_options(self) -> tuple[str, ...]:
        return zone_names()


def display_zone_name(staff_options: list[Staff], selected: Staff | None) -> str:
    """The zone the picker shows times in: the chosen staff member's, else theirs in common.

    When a service's staff work in different zones and nobody is chosen, the
    site's zone is used; the zone is always named on the page.
    """
    if selected is not None:
        return selected.time_zone
    zones = {member.time_zone for member in staff_options}
    if len(zones) == 1:
        return zones.pop()
    return current_time_zone_name()


def parse_week(value: str | None, today: date, last_day: date) -> date:
    """The first day of the week asked for, between today and the last bookable day."""
    try:
        asked = date.fromisoformat(value or "")
    except ValueError:
        return today
    return min(max(asked, today), last_day)


def slot_value(slot: availability.Slot) -> str:
    """What a slot's radio button sends: ``<staff id>@<start in ISO UTC>``."""
    return f"{slot.staff_id}@{iso_utc(slot.start)}"


# Local dates of two zones differ by up to two days (UTC-12 against UTC+14): the free
# times are read that much wider than the week, then sorted into the visitor's days.
ZONE_MARGIN_DAYS = 2


def build_slot_picker(
    request: HttpRequest | None,
    service: Service,
    *,
    action: str,
    anchor: str,
    form_fields: Iterable[tuple[str, str]] = (),
    exclude_booking: Booking | None = None,
    default_staff: Staff | None = None,
    default_zone: str = "",
    submit_label: str = "",
) -> SlotPicker:
    """Free times of ``service`` for the week asked for in the request's GET parameters.

    Args:
        request: the current request (its ``bvc_week``, ``bvc_staff`` and ``bvc_tz``
            are read).
        service: the service whose times are offered.
        action: the URL the chosen time is sent to (GET, as ``slot``; see
            :func:`read_appointment_choice`). The picker's zone goes along as ``tz``.
        anchor: the id of the element the week links jump back to.
        form_fields: more fields sent with the choice, such as ``next``.
        exclude_booking: a booking being moved: its time counts as free for it, but its
            current slot itself is not offered (moving there would change nothing).
        default_staff: the staff member chosen when the request names nobody.
        default_zone: the zone times are shown in when the request names none (default:
            the staff's zone, see :func:`display_zone_name`).
        submit_label: the text of the button that sends the choice.

    Returns:
        The picker, with one column per day of the week, even days without times.
        Days are local days of the zone the times are shown in, and that zone is named.
    """
    params = request.GET if request is not None else QueryDict()
    days = max(int(conf.get_settings().WIDGET_DAYS), 1)
    staff_options = list(service.staff.filter(active=True).order_by("name", "pk"))
    staff_by_id = {member.pk: member for member in staff_options}

    selected: Staff | None = None
    if len(staff_options) > 1:
        if STAFF_PARAM in params:
            selected = staff_by_id.get(parse_int(params.get(STAFF_PARAM)) or 0)
        elif default_staff is not None:
            selected = staff_by_id.get(default_staff.pk)

    chosen_zone = valid_zone_name(params.get(TZ_PARAM))
    zone_name = (
        chosen_zone or valid_zone_name(default_zone) or display_zone_name(staff_options, selected)
    )
    zone = zone_for(zone_name)
    today = timezone.localdate(timezone.now(), zone)
    last_day = today + timedelta(days=service.max_days_ahead)
    week_start = parse_week(params.get(WEEK_PARAM), today, last_day)
    week_end = week_start + timedelta(days=days - 1)

    slots = availability.free_slots(
        service,
        start_date=week_start - timedelta(days=ZONE_MARGIN_DAYS),
        days=days + 2 * ZONE_MARGIN_DAYS,
        staff=selected,
        exclude_booking=exclude_booking,
    )

    columns = {
        week_start + timedelta(days=offset): DayColumn(
            week_start + timedelta(days=offset),
            format_day(week_start + timedelta(days=offset)),
        )
        for offset in range(days)
    }
    fields = [*form_fields, (ZONE_PARAM, zone.key)]
    link_base = f"{action}?{urlencode(fields)}&" if fields else f"{action}?"
    # With several staff and nobody chosen, one choice per time is enough: the
    # confirmation page names who it is with, and the filter picks someone else.
    seen: set[datetime] = set()
    for slot in slots:
        if exclude_booking is not None and (slot.staff_id, slot.start) == (
            exclude_booking.staff_id,
            exclude_booking.start,
        ):
            continue
        local_day = slot.start.astimezone(zone).date()
        column = columns.get(local_day)
        if column is None or (selected is None and slot.start in seen):
            continue
        seen.add(slot.start)
        time_text = format_time(slot.start, zone.key)
        member = staff_by_id.get(slot.staff_id)
        staff_note = (
            _("with %(staff)s") % {"staff": member.name}
            if member is not None and len(staff_options) > 1
            else ""
        )
        label = _("%(day)s at %(time)s") % {"day": column.title, "time": time_text}
        value = slot_value(slot)
        column.choices.append(
            SlotChoice(
                slot=slot,
                time=time_text,
                label=f"{label} {staff_note}" if staff_note else label,
                staff_note=staff_note,
                value=value,
                input_id=f"{anchor}-slot-{len(seen)}",
                url=link_base + urlencode({SLOT_PARAM: value}),
                staff=member,
            )
        )

    previous_url = ""
    if week_start > today:
        previous_url = with_params(
            params, anchor, **{WEEK_PARAM: max(today, week_start - timedelta(days=days))}
        )
    next_url = ""
    if week_end < last_day:
        next_url = with_params(params, anchor, **{WEEK_PARAM: week_start + timedelta(days=days)})

    return SlotPicker(
        service=service,
        anchor=anchor,
        days=[columns[day] for day in sorted(columns)],
        week_start=week_start,
        week_end=week_end,
        week_label=_("%(first)s – %(last)s")
        % {"first": format_short_day(week_start), "last": format_short_day(week_end)},
        zone_name=zone.key,
        previous_url=previous_url,
        next_url=next_url,
        staff_options=staff_options,
        selected_staff=selected,
        # The filter form sends the staff member and zone; the rest of the page's
        # parameters (the week, a site's own) go along unchanged.
        filter_params=[
            (name, value)
            for name, values in params.lists()
            if name not in (STAFF_PARAM, TZ_PARAM)
            for value in values
        ],
        action=action,
        form_fields=fields,
        # A zone from the request or the caller (the member's own) is not replaced
        # by the browser's.
        zone_chosen=bool(chosen_zone or valid_zone_name(default_zone)),
        submit_label=submit_label or _("Continue"),
    )


# --------------------------------------------------------------------------------------
# Block contexts
# --------------------------------------------------------------------------------------


@dataclass
class ServiceChoice:
    """A service offered in the widget's all-services mode."""

    service: Service
    url: str
    duration: str
    price: str


def booking_widget_context(
    request: HttpRequest | None, value: Any, *, block_id: str | None = None
) -> dict[str, Any]:
    """Template variables of the booking widget block.

    Args:
        request: the page's request (``None`` when rendered outside one).
        value: the block's value (``heading``, ``service``).
        block_id: the StreamField child's id, to make element ids unique.

    Returns:
        ``{"bvc": {...}}``: the service (chosen by the editor or the visitor), the
        services to choose from, and the slot picker.
    """
    params = request.GET if request is not None else QueryDict()
    anchor = f"bvc-widget-{block_id}" if block_id else "bvc-widget"
    service: Service | None = value.get("service") if value else None
    context: dict[str, Any] = {
        "anchor": anchor,
        "service": None,
        "services": [],
        "picker": None,
        "unavailable": False,
        "change_service_url": "",
    }
    if service is not None:
        if not service.active:
            context["unavailable"] = True
            return {"bvc": context}
    else:
        services = list(Service.objects.filter(active=True).order_by("name", "pk"))
        service = next((s for s in services if s.slug == params.get(SERVICE_PARAM)), None)
        if service is None:
            context["services"] = [
                ServiceChoice(
                    choice,
                    with_params(QueryDict(), anchor, **{SERVICE_PARAM: choice.slug}),
                    duration_text(choice.duration_minutes),
                    format_price(choice.price, choice.currency),
                )
                for choice in services
            ]
            return {"bvc": context}
        context["change_service_url"] = with_params(
            params, anchor, **{SERVICE_PARAM: None, WEEK_PARAM: None, STAFF_PARAM: None}
        )

    next_url = request.get_full_path() if request is not None else ""
    context["service"] = service
    context["duration"] = duration_text(service.duration_minutes)
    context["price"] = format_price(service.price, service.currency)
    context["picker"] = build_slot_picker(
        request,
        service,
        action=reverse("wagtail_bookings_vc:book_appointment", args=[service.slug]),
        form_fields=[("next", next_url)] if next_url else [],
        anchor=anchor,
    )
    return {"bvc": context}


@dataclass
class SessionRow:
    """A class session as listed in the schedule."""

    session: ClassSession
    title: str
    when: str
    staff_name: str
    location: str
    online: bool
    seats_left: int
    price: str
    book_url: str
    booked_url: str = ""


def session_rows(
    request: HttpRequest | None,
    sessions: Iterable[ClassSession],
    *,
    book_url: Callable[[ClassSession], str],
) -> list[SessionRow]:
    """Format sessions (from :func:`availability.upcoming_sessions`) for a list.

    Marks the sessions the signed-in member already has a seat in (one query).
    """
    sessions = list(sessions)
    booked: dict[int, str] = {}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and sessions:
        booked = dict(
            Booking.objects.filter(
                member=user,
                session__in=[session.pk for session in sessions],
                status=BookingStatus.CONFIRMED,
            ).values_list("session_id", "reference")
        )
    rows = []
    for session in sessions:
        group_class = session.group_class
        staff = group_class.staff
        reference = booked.get(session.pk)
        rows.append(
            SessionRow(
                session=session,
                title=group_class.name,
                when=format_when(session.start, session.end, staff_zone_name(staff)),
                staff_name=staff.name if staff else "",
                location=session.effective_location,
                online=group_class.online,
                seats_left=session.seats_left,
                price=format_price(group_class.price, group_class.currency),
                book_url=book_url(session),
                booked_url=(
                    reverse("wagtail_bookings_vc:booking_detail", args=[reference])
                    if reference
                    else ""
                ),
            )
        )
    return rows


def class_schedule_context(request: HttpRequest | None, value: Any) -> dict[str, Any]:
    """Template variables of the class schedule block: ``{"bvc": {"rows": [...]}}``."""
    group_class: GroupClass | None = value.get("group_class") if value else None
    limit = (value.get("limit") if value else None) or 10
    next_url = request.get_full_path() if request is not None else ""

    def book_url(session: ClassSession) -> str:
        url = reverse("wagtail_bookings_vc:book_session", args=[session.pk])
        return f"{url}?{urlencode({'next': next_url})}" if next_url else url

    sessions = availability.upcoming_sessions(group_class, limit=limit)
    return {
        "bvc": {
            "group_class": group_class,
            "show_class": group_class is None,
            "rows": session_rows(request, sessions, book_url=book_url),
        }
    }


# --------------------------------------------------------------------------------------
# Booking: the confirmation pages
# --------------------------------------------------------------------------------------


def _booking_error_response(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    error: bookings.BookingError,
) -> HttpResponse:
    context.update(error=error.message, error_code=error.code)
    context["pick_again"] = error.code in PICK_AGAIN_CODES
    return TemplateResponse(request, template, context, status=409)


class BadChoice(Exception):
    """A booking link names no usable staff member, time or session."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def has_appointment_choice(params: QueryDict) -> bool:
    """Whether the request names a time (``slot``, or ``staff`` and ``start``)."""
    return SLOT_PARAM in params or "start" in params


def read_appointment_choice(service: Service, params: QueryDict) -> tuple[Staff, datetime]:
    """The staff member and start time picked: ``?slot=<id>@<ISO>`` (the slot picker's
    form) or ``?staff=<id>&start=<ISO>`` (a link).

    Raises:
        BadChoice: nothing was picked, the staff member is unknown or does not offer
            ``service``, or the time is missing or malformed.
    """
    if SLOT_PARAM in params:
        staff_text, _at, start_text = (params.get(SLOT_PARAM) or "").partition("@")
    elif "staff" in params or "start" in params:
        staff_text, start_text = params.get("staff") or "", params.get("start") or ""
    else:
        raise BadChoice(_("Please pick a time first."))
    staff_id = parse_int(staff_text)
    staff = Staff.objects.filter(pk=staff_id, services=service).first() if staff_id else None
    if staff is None:
        raise BadChoice(
            _(
                "This link does not name a staff member who offers this service. "
                "Please pick a time again."
            )
        )
    start = parse_start(start_text)
    if start is None:
        raise BadChoice(_("This link does not name a valid time. Please pick a time again."))
    return staff, start


def member_form(zone_name: str) -> BookingForm:
    """The confirmation form, with the zone the time was picked in (if any) preselected."""
    if zone_name:
        return BookingForm(initial={"time_zone": zone_name}, zone_given=True)
    return BookingForm()


@never_cache
@require_http_methods(["GET", "POST"])
def book_appointment(request: HttpRequest, slug: str) -> HttpResponse:
    """Confirm an appointment picked in the booking widget.

    ``?slot=<staff id>@<ISO UTC>&tz=<zone>&next=<page>`` (or ``?staff=<id>&start=<ISO
    UTC>``); GET shows what is about to be booked, in the zone it was picked in, and a
    form, POST books it and goes to the booking's page.
    """
    if not request.user.is_authenticated:
        return login_redirect(request)
    service = get_object_or_404(Service, slug=slug)
    template = "wagtail_bookings_vc/book_appointment.html"
    back_url = safe_next(request)
    context: dict[str, Any] = {"service": service, "back_url": back_url, "form": None}

    try:
        staff, start = read_appointment_choice(service, request.GET)
    except BadChoice as problem:
        context.update(error=problem.message, pick_again=True)
        return TemplateResponse(request, template, context, status=400)
    zone_name = valid_zone_name(request.GET.get(ZONE_PARAM))
    context["summary"] = appointment_summary(service, staff, start, zone_name)
    context["staff"] = staff

    if request.method == "GET":
        if not availability.is_slot_free(service, staff, start):
            context.update(
                error=_("Sorry, this time is no longer available. Please pick another time."),
                pick_again=True,
            )
            return TemplateResponse(request, template, context)
        context["form"] = member_form(zone_name)
        return TemplateResponse(request, template, context)

    form = BookingForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return TemplateResponse(request, template, context, status=400)
    try:
        booking = bookings.book_appointment(
            member=request.user,
            service=service,
            staff=staff,
            start=start,
            time_zone=form.cleaned_data["time_zone"],
            notes=form.cleaned_data["notes"],
        )
    except bookings.BookingError as error:
        return _booking_error_response(request, template, context, error)
    messages.success(request, _("Your booking is confirmed."))
    return redirect("wagtail_bookings_vc:booking_detail", reference=booking.reference)


def _session_notice(request: HttpRequest, session: ClassSession, seats: int) -> tuple[str, str]:
    """Why a session cannot be booked right now, and a link to the member's seat if any.

    The same words as :mod:`~wagtail_bookings_vc.bookings` uses when it refuses.
    """
    existing = (
        Booking.objects.filter(member=request.user, session=session, status=BookingStatus.CONFIRMED)
        .values_list("reference", flat=True)
        .first()
    )
    if existing:
        url = reverse("wagtail_bookings_vc:booking_detail", args=[existing])
        return str(bookings.MESSAGES["already_booked"]), url
    group_class = session.group_class
    now = timezone.now()
    if session.cancelled:
        return str(bookings.MESSAGES["session_cancelled"]), ""
    if not group_class.active:
        return str(bookings.MESSAGES["inactive"]), ""
    if session.start <= now:
        return str(bookings.MESSAGES["in_past"]), ""
    if session.start < now + timedelta(minutes=group_class.min_notice_minutes):
        minutes = group_class.min_notice_minutes
        return str(bookings.MESSAGES["too_soon"] % {"minutes": minutes}), ""
    if seats <= 0:
        return str(bookings.MESSAGES["full"]), ""
    return "", ""


@never_cache
@require_http_methods(["GET", "POST"])
def book_session(request: HttpRequest, session_id: int) -> HttpResponse:
    """Confirm a seat in a class session; GET shows it and a form, POST books it."""
    if not request.user.is_authenticated:
        return login_redirect(request)
    session = get_object_or_404(
        ClassSession.objects.select_related("group_class", "group_class__staff"), pk=session_id
    )
    template = "wagtail_bookings_vc/book_session.html"
    seats = availability.seats_left(session)
    context: dict[str, Any] = {
        "session": session,
        "summary": session_summary(session, seats),
        "back_url": safe_next(request),
        "form": None,
    }

    if request.method == "GET":
        notice, existing_url = _session_notice(request, session, seats)
        if notice:
            context.update(error=notice, existing_url=existing_url, pick_again=not existing_url)
            return TemplateResponse(request, template, context)
        context["form"] = BookingForm()
        return TemplateResponse(request, template, context)

    form = BookingForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return TemplateResponse(request, template, context, status=400)
    try:
        booking = bookings.book_session(
            member=request.user,
            session=session,
            time_zone=form.cleaned_data["time_zone"],
            notes=form.cleaned_data["notes"],
        )
    except bookings.BookingError as error:
        if error.code == "already_booked":
            context["existing_url"] = _session_notice(request, session, seats)[1]
        return _booking_error_response(request, template, context, error)
    messages.success(request, _("Your seat is booked."))
    return redirect("wagtail_bookings_vc:booking_detail", reference=booking.reference)


# --------------------------------------------------------------------------------------
# A member's booking: see, download, cancel, reschedule
# --------------------------------------------------------------------------------------


def cannot_change_reason(booking: Booking) -> str:
    """Why a booking can no longer be cancelled or moved online (the same rules for both)."""
    if booking.is_cancelled:
        return str(bookings.MESSAGES["already_cancelled"])
    if booking.start <= timezone.now():
        return _("This booking has already started or taken place.")
    bookable = booking.bookable
    if bookable is None or not bookable.active:
        return str(bookings.MESSAGES["inactive"])
    hours = getattr(bookable, "cancellation_cutoff_hours", 0) or 0
    return str(bookings.MESSAGES["too_late"] % {"hours": hours})


@never_cache
@require_GET
@member_booking_view
def booking_detail(request: HttpRequest, booking: Booking) -> HttpResponse:
    """A member's booking: what, when, with whom, where, its state, and what they can do.

    An upcoming booking offers to add it to the member's calendar.
    """
    can_cancel = bookings.can_cancel(booking)
    upcoming = booking.end > timezone.now()
    link = links.member_link(booking, where=links.MEMBERS_AREA)
    state = booking_state(booking, link)
    return TemplateResponse(
        request,
        "wagtail_bookings_vc/booking_detail.html",
        {
            "booking": booking,
            "summary": booking_summary(booking),
            "link": link,
            "state": state,
            "calendar_links": (
                add_to_calendar.calendar_links(
                    booking, link, base_url=notification_context.base_url()
                )
                if upcoming
                else []
            ),
            "can_cancel": can_cancel,
            "can_reschedule": bookings.can_reschedule(booking),
            # Say why the buttons are missing while the booking still lies ahead.
            "change_note": (
                cannot_change_reason(booking)
                if upcoming and not can_cancel and not booking.is_cancelled
                else ""
            ),
        },
    )


@never_cache
@require_GET
@member_booking_view
def booking_ics(request: HttpRequest, booking: Booking) -> HttpResponse:
    """The booking as a calendar file (``.ics``) to add to the member's calendar.

    An online booking's event carries the member's personal join link, where the
    booking page shows it.
    """
    method = ics.CANCEL if booking.is_cancelled else ics.PUBLISH
    link = links.member_link(booking, where=links.MEMBERS_AREA)
    data = (
        ics.booking_ics(
            booking,
            method=method,
            meeting_url=link.url,
            meeting_description=link.description,
            meeting_passcode=link.passcode,
        )
        if link is not None and link.shown
        else ics.booking_ics(booking, method=method)
    )
    response = HttpResponse(data, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="booking-{booking.reference}.ics"'
    return response


def _after_change(request: HttpRequest, booking: Booking) -> HttpResponse:
    return redirect(
        safe_next(request)
        or reverse("wagtail_bookings_vc:booking_detail", args=[booking.reference])
    )


@never_cache
@require_http_methods(["GET", "POST"])
@member_booking_view
def cancel_booking(request: HttpRequest, booking: Booking) -> HttpResponse:
    """GET asks the member to confirm; POST cancels the booking."""
    template = "wagtail_bookings_vc/cancel_booking.html"
    context: dict[str, Any] = {
        "booking": booking,
        "summary": booking_summary(booking),
        "next": safe_next(request),
        "allowed": bookings.can_cancel(booking),
    }
    if request.method == "GET":
        if not context["allowed"]:
            context["error"] = cannot_change_reason(booking)
        return TemplateResponse(request, template, context)
    try:
        bookings.cancel(booking)
    except bookings.BookingError as error:
        context.update(error=error.message, error_code=error.code, allowed=False)
        return TemplateResponse(request, template, context, status=409)
    messages.success(request, _("Your booking has been cancelled."))
    return _after_change(request, booking)


def _reschedule_appointment_context(
    request: HttpRequest, booking: Booking
) -> tuple[dict[str, Any], Staff | None, datetime | None]:
    """The picker, or the chosen new time, for moving an appointment."""
    service = booking.service
    back = safe_next(request)

    if not has_appointment_choice(request.GET):
        picker = build_slot_picker(
            request,
            service,
            action=reverse("wagtail_bookings_vc:reschedule_booking", args=[booking.reference]),
            form_fields=[("next", back)] if back else [],
            anchor="bvc-reschedule",
            exclude_booking=booking,
            default_staff=booking.staff,
            default_zone=booking.time_zone,
        )
        return {"picker": picker}, None, None
    try:
        staff, start = read_appointment_choice(service, request.GET)
    except BadChoice as problem:
        return {"error": problem.message, "pick_again": True, "bad_input": True}, None, None
    # The member's own zone: the move does not change it.
    summary = appointment_summary(service, staff, start, booking.time_zone)
    return {"new_summary": summary}, staff, start


def _reschedule_session_context(
    request: HttpRequest, booking: Booking
) -> tuple[dict[str, Any], ClassSession | None]:
    """The other sessions of the class, or the chosen one, for moving a class booking."""
    base = reverse("wagtail_bookings_vc:reschedule_booking", args=[booking.reference])
    back = safe_next(request)
    group_class = booking.session.group_class

    def book_url(session: ClassSession) -> str:
        query: dict[str, Any] = {"session": session.pk}
        if back:
            query["next"] = back
        return f"{base}?{urlencode(query)}"

    if "session" not in request.GET:
        sessions = [
            session
            for session in availability.upcoming_sessions(group_class)
            if session.pk != booking.session_id
        ]
        return {"rows": session_rows(None, sessions, book_url=book_url)}, None
    session_id = parse_int(request.GET.get("session"))
    session = (
        ClassSession.objects.select_related("group_class", "group_class__staff")
        .filter(pk=session_id, group_class=group_class)
        .first()
        if session_id
        else None
    )
    if session is None:
        return {
            "error": _("This link does not name a session of this class. Please pick again."),
            "pick_again": True,
            "bad_input": True,
        }, None
    return {"new_summary": session_summary(session, availability.seats_left(session))}, session


@never_cache
@require_http_methods(["GET", "POST"])
@member_booking_view
def reschedule_booking(request: HttpRequest, booking: Booking) -> HttpResponse:
    """Move a booking: pick a new time (or session), confirm it, and POST to move.

    Without a choice in the URL the page offers the free times of the same
    service (or the other sessions of the same class); with ``?slot=`` (or
    ``?staff=&start=``, or ``?session=``) it asks to confirm the move.
    """
    template = "wagtail_bookings_vc/reschedule_booking.html"
    back = safe_next(request)
    context: dict[str, Any] = {
        "booking": booking,
        "summary": booking_summary(booking),
        "next": back,
        "allowed": bookings.can_reschedule(booking),
        "start_over_url": reverse(
            "wagtail_bookings_vc:reschedule_booking", args=[booking.reference]
        )
        + (f"?{urlencode({'next': back})}" if back else ""),
    }
    if not context["allowed"]:
        context["error"] = cannot_change_reason(booking)
        return TemplateResponse(
            request, template, context, status=409 if request.method == "POST" else 200
        )

    new_staff: Staff | None = None
    new_start: datetime | None = None
    new_session: ClassSession | None = None
    if booking.is_class:
        extra, new_session = _reschedule_session_context(request, booking)
    else:
        extra, new_staff, new_start = _reschedule_appointment_context(request, booking)
    context.update(extra)
    if new_session is None and new_start is None:
        # The picker, or a link that names nothing usable.
        if request.method == "POST" and not context.get("bad_input"):
            context["error"] = _("Please pick where to move your booking first.")
        status = 400 if request.method == "POST" or context.get("bad_input") else 200
        return TemplateResponse(request, template, context, status=status)

    if request.method == "GET":
        # Say up front when the choice is already gone, rather than after the POST.
        if new_session is not None:
            notice = _session_notice(request, new_session, context["new_summary"].seats_left)[0]
        elif new_staff is not None and not availability.is_slot_free(
            booking.service, new_staff, new_start, exclude_booking=booking
        ):
            notice = _("Sorry, this time is no longer available. Please pick another time.")
        else:
            notice = ""
        if notice:
            context.update(error=notice, pick_again=True)
        return TemplateResponse(request, template, context)

    try:
        if new_session is not None:
            bookings.reschedule(booking, session=new_session)
        else:
            bookings.reschedule(booking, start=new_start, staff=new_staff)
    except bookings.BookingError as error:
        context.update(error=error.message, error_code=error.code)
        context["pick_again"] = error.code in PICK_AGAIN_CODES
        return TemplateResponse(request, template, context, status=409)
    messages.success(request, _("Your booking has been moved."))
    return _after_change(request, booking)


# --------------------------------------------------------------------------------------
# The members area
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingState:
    """A booking's state in words: ``code`` for styling, ``label`` to read."""

    code: str
    label: str


def booking_state(booking: Booking, link: links.MemberLink | None = None) -> BookingState:
    """What the member should know first about a booking, in words.

    *Cancelled*, *awaiting payment* (a priced booking not paid yet), *link being
    prepared* (an online booking whose meeting is still being made; ``link`` is what
    :func:`links.member_link` says) or else *confirmed*.
    """
    if booking.is_cancelled:
        return BookingState("cancelled", pgettext("booking status", "Cancelled"))
    if booking.payment_status == PaymentStatus.PENDING:
        return BookingState("awaiting-payment", _("Awaiting payment"))
    if link is not None and link.status == links.PREPARING:
        return BookingState("preparing", _("Link being prepared"))
    return BookingState("confirmed", pgettext("booking status", "Confirmed"))


@dataclass
class BookingRow:
    """One of the member's bookings in the members area."""

    booking: Booking
    when: str
    staff_name: str
    location: str
    detail_url: str
    state: BookingState
    cancel_url: str = ""
    reschedule_url: str = ""
    link: links.MemberLink | None = None
    calendar_links: list[add_to_calendar.CalendarLink] = field(default_factory=list)


def booking_rows(
    found: Iterable[Booking],
    *,
    now: datetime,
    back_url: str,
    with_links: bool = True,
    base_url: str = "",
) -> list[BookingRow]:
    """Format the member's bookings, with their meeting links and the actions each allows.

    Args:
        found: the bookings, after :func:`links.load_link_data` when ``with_links``.
        now: the current time.
        back_url: where cancelling or moving a booking comes back to.
        with_links: add the meeting links and the add-to-calendar buttons (for bookings
            still ahead); ``False`` for bookings that are over.
        base_url: the site's root URL, for the calendar events' links.
    """
    suffix = f"?{urlencode({'next': back_url})}" if back_url else ""
    found = list(found)
    meeting_links = (
        links.member_links(found, where=links.MEMBERS_AREA, now=now) if with_links else {}
    )
    rows = []
    for booking in found:
        summary = booking_summary(booking)
        link = meeting_links.get(booking.pk)
        row = BookingRow(
            booking=booking,
            when=summary.when,
            staff_name=summary.staff_name,
            location=_("Online") if summary.online else summary.location,
            detail_url=reverse("wagtail_bookings_vc:booking_detail", args=[booking.reference]),
            state=booking_state(booking, link),
            link=link,
        )
        if with_links:
            row.calendar_links = add_to_calendar.calendar_links(booking, link, base_url=base_url)
        if bookings.can_cancel(booking, now=now):
            row.cancel_url = (
                reverse("wagtail_bookings_vc:cancel_booking", args=[booking.reference]) + suffix
            )
        if bookings.can_reschedule(booking, now=now):
            row.reschedule_url = (
                reverse("wagtail_bookings_vc:reschedule_booking", args=[booking.reference]) + suffix
            )
        rows.append(row)
    return rows


@dataclass
class MembersTab:
    """One of the members area's two tabs: upcoming or past bookings."""

    key: str
    label: str
    url: str
    current: bool


def serve_members_area(page: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Serve a members-area page: the signed-in member's upcoming or past bookings.

    Called by :meth:`MembersAreaPageMixin.serve`. ``?show=past`` shows the past
    bookings (the upcoming ones otherwise), ten to a page (``?page=``). The page
    costs the same number of queries however many bookings the member has.
    Anonymous visitors are sent to log in and come back here.
    """
    if not request.user.is_authenticated:
        return login_redirect(request)
    # The page only reads: the site and its settings are looked up once for all rows.
    with read_scope():
        return _members_area(page, request, *args, **kwargs)


def _members_area(page: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    now = timezone.now()
    page_url = page.get_url(request) or ""
    show_past = request.GET.get(SHOW_PARAM) == "past"

    mine = Booking.objects.filter(member=request.user).select_related(*BOOKING_RELATED)
    if show_past:
        found = mine.past(now).order_by("-start", "-pk")
    else:
        found = mine.upcoming(now).order_by("start", "pk")
    paginator = Paginator(found, MEMBERS_AREA_PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get(PAGE_PARAM))
    listed = list(page_obj.object_list)
    if not show_past:
        links.load_link_data(listed)
    rows = booking_rows(
        listed,
        now=now,
        # Back to the same tab and page after cancelling or moving a booking.
        back_url=page_url + with_params(request.GET) if request.GET else page_url,
        with_links=not show_past,
        base_url="" if show_past else notification_context.base_url(),
    )

    context = page.get_context(request, *args, **kwargs)
    context.update(
        show_past=show_past,
        bookings_page=page_obj,
        booking_rows=rows,
        tabs=[
            MembersTab("upcoming", _("Upcoming"), page_url, not show_past),
            MembersTab(
                "past", _("Past"), page_url + with_params(QueryDict(), show="past"), show_past
            ),
        ],
        previous_page_url=(
            with_params(request.GET, **{PAGE_PARAM: page_obj.previous_page_number()})
            if page_obj.has_previous()
            else ""
        ),
        next_page_url=(
            with_params(request.GET, **{PAGE_PARAM: page_obj.next_page_number()})
            if page_obj.has_next()
            else ""
        ),
    )
    response = TemplateResponse(request, page.get_template(request, *args, **kwargs), context)
    # Personal data: never kept by a shared cache or shown again from the browser's history.
    add_never_cache_headers(response)
    return response
