"""The admin calendar: day, week and month views of bookings and class sessions (R23).

A server-rendered grid in the Wagtail admin, with the admin's own filter drawer
(service, class, staff member, online or in person, status) and a dialog that opens a
booking's or session's details: member, payment, the meeting's state in words,
**Open meeting** for those who may host it, the member's personal join link to copy,
and *Cancel* / *Reschedule* (see :mod:`wagtail_bookings_vc.admin_bookings`).

Times are shown in the admin user's time zone (Account → Preferences), which Wagtail
activates for every admin view. Everyone sees what :mod:`wagtail_bookings_vc.permissions`
lets them see: a staff member only their own calendar, whatever the URL asks for.

A period costs a fixed number of queries, however many bookings it holds: appointments
come with their service, staff member and meeting in one query, sessions with their
class, instructor, meeting and seat count in another.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, re_path, reverse
from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext, pgettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.menu import MenuItem
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic.base import BaseListingView, WagtailAdminTemplateMixin

from . import accounts, meetings, permissions
from .host_links import open_meeting_url, open_session_meeting_url
from .models import (
    Booking,
    BookingStatus,
    ClassSession,
    GroupClass,
    Meeting,
    MeetingState,
    PaymentStatus,
    Service,
    SessionFormat,
    Staff,
)
from .templatetags.wagtail_bookings_vc_tags import format_price, format_when

__all__ = [
    "CalendarFilterSet",
    "CalendarView",
    "MeetingSummary",
    "Period",
    "admin_booking_url",
    "calendar_main_menu_item",
    "calendar_menu_item",
    "calendar_url",
    "meeting_summary",
    "render_week_for_bench",
    "urlpatterns",
]

NAMESPACE = "wagtail_bookings_vc_admin"
CALENDAR_URL_NAME = f"{NAMESPACE}:calendar"
PERIOD_URL_NAME = f"{NAMESPACE}:calendar_period"
RESULTS_URL_NAME = f"{NAMESPACE}:calendar_results"
BOOKING_URL_NAME = f"{NAMESPACE}:calendar_booking"
SESSION_URL_NAME = f"{NAMESPACE}:calendar_session"
BOOKING_INSPECT_URL_NAME = "wagtailsnippets_wagtail_bookings_vc_booking:inspect"

DAY, WEEK, MONTH = "day", "week", "month"
VIEWS = (DAY, WEEK, MONTH)
VIEW_LABELS = {DAY: _("Day"), WEEK: _("Week"), MONTH: _("Month")}

# Secrets of the people who booked: the calendar never loads them.
MEETING_SECRETS = ("join_url", "host_url", "passcode", "extra")

# The hours a time grid shows at least; earlier or later bookings widen it.
FIRST_HOUR, LAST_HOUR = 8, 18
# How many items a day of the month view lists before "+ n more".
MONTH_CELL_ITEMS = 4
# Sessions that started this long before a period may still run into it.
LONGEST_SESSION = dt.timedelta(hours=24)

# Patterns use the letters of Django's ``date`` filter; translators may reorder them.
DAY_TITLE_FORMAT = pgettext_lazy("admin calendar day title (Django date filter letters)", "l j F Y")
WEEK_START_FORMAT = pgettext_lazy("admin calendar week start (Django date filter letters)", "j F")
WEEK_END_FORMAT = pgettext_lazy("admin calendar week end (Django date filter letters)", "j F Y")
MONTH_TITLE_FORMAT = pgettext_lazy("admin calendar month title (Django date filter letters)", "F Y")
COLUMN_DAY_FORMAT = pgettext_lazy(
    "admin calendar column heading (Django date filter letters)", "D j"
)
WEEKDAY_FORMAT = pgettext_lazy("admin calendar weekday heading (Django date filter letters)", "D")
TIME_FORMAT = pgettext_lazy("admin calendar time (Django date filter letters)", "H:i")


# --------------------------------------------------------------------------------------
# Periods
# --------------------------------------------------------------------------------------


def first_day_of_week() -> int:
    """The locale's first day of the week, as Django numbers it (0 Sunday, 1 Monday)."""
    return int(get_format("FIRST_DAY_OF_WEEK"))


def week_start(day: dt.date) -> dt.date:
    """The first day of the week ``day`` is in, by the locale's first day of the week."""
    back = (day.isoweekday() % 7 - first_day_of_week()) % 7
    return day - dt.timedelta(days=back)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _fmt(value: dt.date | dt.datetime, pattern: Any) -> str:
    return dateformat.format(value, str(pattern))


@dataclass(frozen=True)
class Period:
    """The days one calendar page shows: a day, a week, or the weeks around a month."""

    view: str
    anchor: dt.date

    @cached_property
    def first(self) -> dt.date:
        if self.view == DAY:
            return self.anchor
        if self.view == WEEK:
            return week_start(self.anchor)
        return week_start(self.anchor.replace(day=1))

    @cached_property
    def days(self) -> list[dt.date]:
        if self.view == DAY:
            count = 1
        elif self.view == WEEK:
            count = 7
        else:
            after_month = _add_months(self.anchor, 1)
            last_week = week_start(after_month - dt.timedelta(days=1))
            count = (last_week - self.first).days + 7
        return [self.first + dt.timedelta(days=offset) for offset in range(count)]

    @property
    def last(self) -> dt.date:
        return self.days[-1]

    @property
    def previous(self) -> dt.date:
        if self.view == DAY:
            return self.anchor - dt.timedelta(days=1)
        if self.view == WEEK:
            return self.first - dt.timedelta(days=7)
        return _add_months(self.anchor, -1)

    @property
    def next(self) -> dt.date:
        if self.view == DAY:
            return self.anchor + dt.timedelta(days=1)
        if self.view == WEEK:
            return self.first + dt.timedelta(days=7)
        return _add_months(self.anchor, 1)

    @property
    def title(self) -> str:
        if self.view == DAY:
            return _fmt(self.anchor, DAY_TITLE_FORMAT)
        if self.view == MONTH:
            return _fmt(self.anchor, MONTH_TITLE_FORMAT)
        start_format = WEEK_START_FORMAT if self.first.year == self.last.year else WEEK_END_FORMAT
        return gettext("%(start)s – %(end)s") % {
            "start": _fmt(self.first, start_format),
            "end": _fmt(self.last, WEEK_END_FORMAT),
        }

    def contains(self, day: dt.date) -> bool:
        """Whether ``day`` is in the period proper (a month's own days, not its neighbours)."""
        if self.view == MONTH:
            return (day.year, day.month) == (self.anchor.year, self.anchor.month)
        return self.first <= day <= self.last

    def bounds(self, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
        """The instants the shown days start and end at, in ``zone``."""
        return local_midnight(self.first, zone), local_midnight(self.last + dt.timedelta(1), zone)


def local_midnight(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), zone)


def parse_period(view: str, day: str | None) -> Period:
    """The period of a URL; a view or date that does not exist is a 404."""
    if view not in VIEWS:
        raise Http404
    if day is None:
        return Period(view, timezone.localdate())
    try:
        return Period(view, dt.date.fromisoformat(day))
    except ValueError:
        raise Http404 from None


def calendar_url(view: str = WEEK, day: dt.date | None = None, query: str = "") -> str:
    """The calendar's URL for a view and a date (default: this week), with a query."""
    if day is None:
        url = reverse(CALENDAR_URL_NAME)
    else:
        url = reverse(PERIOD_URL_NAME, args=[view, day.isoformat()])
    return f"{url}?{query}" if query else url


def admin_booking_url(booking: Booking) -> str:
    """The booking's details page in the calendar (the dialog's content as a page)."""
    return reverse(BOOKING_URL_NAME, args=[booking.pk])


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------

ONLINE, IN_PERSON = "online", "in_person"
CANCELLED, ALL = "cancelled", "all"


def _no_filtering(queryset: QuerySet, name: str, value: Any) -> QuerySet:
    # The calendar applies its filters to appointments and sessions itself.
    return queryset


class CalendarFilterSet(WagtailFilterSet):
    """What the calendar shows. A staff member who sees only their own bookings gets no
    staff filter: their calendar is theirs."""

    staff = django_filters.ModelChoiceFilter(
        label=_("Staff"),
        queryset=Staff.objects.order_by("name"),
        empty_label=_("All staff"),
        method=_no_filtering,
    )
    service = django_filters.ModelChoiceFilter(
        label=_("Service"),
        queryset=Service.objects.order_by("name"),
        empty_label=_("All services"),
        method=_no_filtering,
    )
    group_class = django_filters.ModelChoiceFilter(
        label=_("Class"),
        queryset=GroupClass.objects.order_by("name"),
        empty_label=_("All classes"),
        method=_no_filtering,
    )
    where = django_filters.ChoiceFilter(
        label=_("Where"),
        choices=[(ONLINE, _("Online")), (IN_PERSON, _("In person"))],
        empty_label=_("Online and in person"),
        widget=forms.RadioSelect,
        method=_no_filtering,
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"),
        choices=[
            (CANCELLED, pgettext_lazy("booking status", "Cancelled")),
            (ALL, pgettext_lazy("filter", "All")),
        ],
        empty_label=pgettext_lazy("booking status", "Confirmed"),
        widget=forms.RadioSelect,
        method=_no_filtering,
    )

    class Meta:
        model = Booking
        fields: list[str] = []

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        super().__init__(*args, request=request, **kwargs)
        if request is not None and not permissions.sees_all_bookings(request.user):
            del self.filters["staff"]


@dataclass(frozen=True)
class Choices:
    """The filters in effect, read from a valid :class:`CalendarFilterSet`."""

    staff: Staff | None = None
    service: Service | None = None
    group_class: GroupClass | None = None
    where: str = ""
    status: str = ""

    @classmethod
    def of(cls, filterset: CalendarFilterSet | None) -> Choices:
        if filterset is None or not filterset.is_valid():
            return cls()
        data = filterset.form.cleaned_data
        return cls(
            staff=data.get("staff"),
            service=data.get("service"),
            group_class=data.get("group_class"),
            where=data.get("where") or "",
            status=data.get("status") or "",
        )


def _online_sessions() -> Q:
    return Q(format_override=SessionFormat.ONLINE) | Q(format_override="", group_class__online=True)


def calendar_bookings(
    user: Any, start: dt.datetime, end: dt.datetime, choices: Choices = Choices()
) -> QuerySet[Booking]:
    """The appointments ``user`` sees between ``start`` and ``end``, filtered.

    A class seat is not an item of its own: its session is (see :func:`calendar_sessions`).
    """
    bookings = Booking.objects.filter(service__isnull=False, start__lt=end, end__gt=start)
    bookings = permissions.visible_bookings(user, bookings)
    if choices.group_class is not None and choices.service is None:
        return bookings.none()
    if choices.service is not None:
        bookings = bookings.filter(service=choices.service)
    if choices.staff is not None:
        bookings = bookings.filter(staff=choices.staff)
    if choices.where == ONLINE:
        bookings = bookings.filter(service__online=True)
    elif choices.where == IN_PERSON:
        bookings = bookings.filter(service__online=False)
    if choices.status == CANCELLED:
        bookings = bookings.filter(status=BookingStatus.CANCELLED)
    elif choices.status != ALL:
        bookings = bookings.filter(status=BookingStatus.CONFIRMED)
    return (
        bookings.select_related("service", "staff", "meeting")
        .defer(*(f"meeting__{name}" for name in MEETING_SECRETS))
        .order_by("start", "pk")
    )


def calendar_sessions(
    user: Any, start: dt.datetime, end: dt.datetime, choices: Choices = Choices()
) -> QuerySet[ClassSession]:
    """The class sessions ``user`` sees that start before ``end`` (and may run past
    ``start``), filtered, each with ``seats_taken``: its confirmed bookings."""
    sessions = ClassSession.objects.filter(start__lt=end, start__gte=start - LONGEST_SESSION)
    sessions = permissions.visible_sessions(user, sessions)
    if choices.service is not None and choices.group_class is None:
        return sessions.none()
    if choices.group_class is not None:
        sessions = sessions.filter(group_class=choices.group_class)
    if choices.staff is not None:
        sessions = sessions.filter(group_class__staff=choices.staff)
    if choices.where == ONLINE:
        sessions = sessions.filter(_online_sessions())
    elif choices.where == IN_PERSON:
        sessions = sessions.exclude(_online_sessions())
    if choices.status == CANCELLED:
        sessions = sessions.filter(cancelled=True)
    elif choices.status != ALL:
        sessions = sessions.filter(cancelled=False)
    seats = (
        Booking.objects.filter(session=OuterRef("pk"), status=BookingStatus.CONFIRMED)
        .order_by()
        .values("session")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        sessions.select_related("group_class__staff", "meeting")
        .defer(*(f"meeting__{name}" for name in MEETING_SECRETS))
        .annotate(
            seats_taken=Coalesce(
                Subquery(seats, output_field=IntegerField()), Value(0), output_field=IntegerField()
            )
        )
        .order_by("start", "pk")
    )


# --------------------------------------------------------------------------------------
# Items on the grid
# --------------------------------------------------------------------------------------


def _meeting(owner: Booking | ClassSession) -> Meeting | None:
    try:
        return owner.meeting
    except Meeting.DoesNotExist:
        return None


@dataclass
class Item:
    """One booking or class session on the calendar, in the admin user's time zone."""

    kind: str
    pk: int
    title: str
    start: dt.datetime
    end: dt.datetime
    staff_id: int | None
    staff_name: str
    detail: str
    online: bool
    cancelled: bool
    unpaid: bool = False
    meeting_failed: bool = False
    url: str = ""
    # Where the item sits in its column of a time grid (percentages).
    style: str = ""

    @cached_property
    def time_label(self) -> str:
        return gettext("%(start)s–%(end)s") % {
            "start": _fmt(self.start, TIME_FORMAT),
            "end": _fmt(self.end, TIME_FORMAT),
        }

    @cached_property
    def start_label(self) -> str:
        return _fmt(self.start, TIME_FORMAT)

    @cached_property
    def css_classes(self) -> str:
        classes = [f"bvc-cal-item--{self.kind}"]
        if self.online:
            classes.append("bvc-cal-item--online")
        if self.cancelled:
            classes.append("bvc-cal-item--cancelled")
        if self.meeting_failed:
            classes.append("bvc-cal-item--problem")
        return " ".join(classes)

    @cached_property
    def notes(self) -> list[str]:
        """What the item's look says, in words."""
        notes = [str(_("Online")) if self.online else str(_("In person"))]
        if self.cancelled:
            context = "class session" if self.kind == "session" else "booking status"
            notes.append(pgettext(context, "Cancelled"))
        if self.unpaid:
            notes.append(str(_("Awaiting payment")))
        if self.meeting_failed:
            notes.append(str(_("Meeting failed")))
        return notes

    @cached_property
    def description(self) -> str:
        """The whole item in words: its link's name for screen readers, and its tooltip.

        The grid shows as much of it as the item's size allows.
        """
        parts = [self.time_label, self.title, self.detail, self.staff_name, *self.notes]
        return ", ".join(part for part in parts if part)


def _seats_label(taken: int, capacity: int) -> str:
    return ngettext(
        "%(taken)d of %(capacity)d seat taken",
        "%(taken)d of %(capacity)d seats taken",
        capacity,
    ) % {"taken": taken, "capacity": capacity}


def booking_item(booking: Booking, zone: dt.tzinfo) -> Item:
    meeting = _meeting(booking)
    return Item(
        kind="booking",
        pk=booking.pk,
        title=booking.title,
        start=booking.start.astimezone(zone),
        end=booking.end.astimezone(zone),
        staff_id=booking.staff_id,
        staff_name=booking.staff.name if booking.staff_id else "",
        detail=booking.member_name or booking.member_email,
        online=booking.online,
        cancelled=booking.status == BookingStatus.CANCELLED,
        unpaid=booking.payment_status == PaymentStatus.PENDING,
        meeting_failed=meeting is not None and meeting.state == MeetingState.FAILED,
        url=reverse(BOOKING_URL_NAME, args=[booking.pk]),
    )


def session_item(session: ClassSession, zone: dt.tzinfo) -> Item:
    meeting = _meeting(session)
    staff = session.group_class.staff
    return Item(
        kind="session",
        pk=session.pk,
        title=str(session.group_class),
        start=session.start.astimezone(zone),
        end=session.end.astimezone(zone),
        staff_id=staff.pk if staff else None,
        staff_name=staff.name if staff else "",
        detail=_seats_label(getattr(session, "seats_taken", 0), session.effective_capacity),
        online=session.online,
        cancelled=session.cancelled,
        meeting_failed=meeting is not None and meeting.state == MeetingState.FAILED,
        url=reverse(SESSION_URL_NAME, args=[session.pk]),
    )


def calendar_items(
    user: Any, period: Period, zone: dt.tzinfo, choices: Choices = Choices()
) -> list[Item]:
    """Every booking and session of the period that ``user`` sees, by start time."""
    start, end = period.bounds(zone)
    items = [booking_item(b, zone) for b in calendar_bookings(user, start, end, choices)]
    items += [
        session_item(s, zone) for s in calendar_sessions(user, start, end, choices) if s.end > start
    ]
    items.sort(key=lambda item: (item.start, item.end, item.title, item.pk))
    return items


# --------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------


@dataclass
class Column:
    """One column of a time grid: a day (week view) or a staff member (day view)."""

    key: Any
    label: str
    url: str = ""
    is_today: bool = False
    # Whether the line that marks the current time crosses this column.
    show_now: bool = False
    items: list[Item] = field(default_factory=list)


@dataclass
class Hours:
    """The hours a time grid shows, and where an instant of a day falls in them."""

    first: int
    last: int

    @property
    def labels(self) -> list[str]:
        return [f"{hour:02d}:00" for hour in range(self.first, self.last)]

    @property
    def count(self) -> int:
        return self.last - self.first

    def fraction(self, moment: dt.datetime, day: dt.date) -> float:
        """Where ``moment`` falls on ``day``'s column, from 0 (top) to 1 (bottom)."""
        minutes = (moment.date() - day).days * 24 * 60 + moment.hour * 60 + moment.minute
        span = self.count * 60
        return min(max((minutes - self.first * 60) / span, 0.0), 1.0)


def hours_for(items: Iterable[Item], period_first: dt.date) -> Hours:
    """Working hours at least; wider when a booking starts earlier or ends later."""
    first, last = FIRST_HOUR, LAST_HOUR
    for item in items:
        first = min(first, item.start.hour)
        if item.start.date() < period_first:
            first = 0
        if item.end.date() > item.start.date():
            last = 24
        else:
            last = max(last, item.end.hour + (1 if item.end.minute else 0))
    return Hours(first, max(last, first + 1))


def lay_out(items: Sequence[Item], day: dt.date, hours: Hours) -> None:
    """Place the items of one column: overlapping items share the width side by side."""
    lanes_end: list[dt.datetime] = []
    group: list[tuple[Item, int]] = []
    group_end: dt.datetime | None = None

    def close_group() -> None:
        count = max((lane for _item, lane in group), default=0) + 1
        for item, lane in group:
            top = hours.fraction(item.start, day) * 100
            bottom = hours.fraction(item.end, day) * 100
            item.style = (
                f"--bvc-top:{top:.3f}%;--bvc-height:{max(bottom - top, 0):.3f}%;"
                f"--bvc-lane:{lane};--bvc-lanes:{count}"
            )

    for item in sorted(items, key=lambda i: (i.start, i.end)):
        if group_end is not None and item.start >= group_end:
            close_group()
            group, lanes_end, group_end = [], [], None
        for lane, lane_end in enumerate(lanes_end):
            if lane_end <= item.start:
                lanes_end[lane] = item.end
                break
        else:
            lane = len(lanes_end)
            lanes_end.append(item.end)
        group.append((item, lane))
        group_end = item.end if group_end is None else max(group_end, item.end)
    if group:
        close_group()


def _by_day(items: list[Item], period: Period) -> dict[dt.date, list[Item]]:
    """Items by the day they start on; what began before the period, on its first day."""
    by_day: dict[dt.date, list[Item]] = defaultdict(list)
    for item in items:
        by_day[max(item.start.date(), period.first)].append(item)
    return by_day


def week_columns(items: list[Item], period: Period, query: str, today: dt.date) -> list[Column]:
    by_day = _by_day(items, period)
    return [
        Column(
            key=day,
            label=_fmt(day, COLUMN_DAY_FORMAT),
            url=calendar_url(DAY, day, query),
            is_today=day == today,
            show_now=day == today,
            items=by_day.get(day, []),
        )
        for day in period.days
    ]


def staff_columns(items: list[Item], staff: Iterable[Staff]) -> list[Column]:
    """One column per staff member shown, then one for what has no staff member."""
    columns = {member.pk: Column(key=member.pk, label=member.name) for member in staff}
    loose = Column(key=None, label=str(_("No staff member")))
    for item in items:
        if item.staff_id is None:
            loose.items.append(item)
            continue
        if item.staff_id not in columns:
            columns[item.staff_id] = Column(key=item.staff_id, label=item.staff_name)
        columns[item.staff_id].items.append(item)
    ordered = sorted(columns.values(), key=lambda column: column.label.lower())
    if loose.items:
        ordered.append(loose)
    return ordered


@dataclass
class MonthDay:
    """One day of the month view: its first items and how many more it has."""

    day: dt.date
    url: str
    label: str
    in_month: bool = True
    is_today: bool = False
    items: list[Item] = field(default_factory=list)
    more: int = 0


def month_weeks(
    items: list[Item], period: Period, query: str, today: dt.date
) -> list[list[MonthDay]]:
    by_day = _by_day(items, period)
    cells = []
    for day in period.days:
        listed = by_day.get(day, [])
        cells.append(
            MonthDay(
                day=day,
                url=calendar_url(DAY, day, query),
                in_month=period.contains(day),
                is_today=day == today,
                items=listed[:MONTH_CELL_ITEMS],
                more=max(len(listed) - MONTH_CELL_ITEMS, 0),
                label=_fmt(day, DAY_TITLE_FORMAT),
            )
        )
    return [cells[index : index + 7] for index in range(0, len(cells), 7)]


# --------------------------------------------------------------------------------------
# The calendar page
# --------------------------------------------------------------------------------------


def can_use_calendar(user: Any) -> bool:
    """Whether ``user`` has a calendar: they see some bookings in the admin."""
    return permissions.can_see_bookings(user)


class CalendarView(BaseListingView):
    """Day, week and month views, with Wagtail's filter drawer swapping the grid in place."""

    template_name = "wagtail_bookings_vc/admin/calendar/index.html"
    results_template_name = "wagtail_bookings_vc/admin/calendar/results.html"
    filterset_class = CalendarFilterSet
    page_title = _("Calendar")
    header_icon = "calendar"
    verbose_name_plural = _("bookings")
    columns: list = []

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_use_calendar(request.user):
            raise PermissionDenied
        self.period = parse_period(kwargs.get("view", WEEK), kwargs.get("day"))
        self.zone = timezone.get_current_timezone()
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self) -> list[Item]:  # type: ignore[override]
        return calendar_items(self.request.user, self.period, self.zone, self.choices)

    @cached_property
    def choices(self) -> Choices:
        return Choices.of(self.filters)

    @cached_property
    def query(self) -> str:
        """The filters of this page, for links to other periods and views."""
        params = self.request.GET.copy()
        for key in list(params):
            if key.startswith("_w_") or not params.get(key):
                params.pop(key)
        return params.urlencode()

    def get_index_url(self) -> str:
        return reverse(PERIOD_URL_NAME, args=[self.period.view, self.period.anchor.isoformat()])

    def get_index_results_url(self) -> str:
        return reverse(RESULTS_URL_NAME, args=[self.period.view, self.period.anchor.isoformat()])

    @cached_property
    def own_staff(self) -> Staff | None:
        if permissions.sees_all_bookings(self.request.user):
            return None
        return permissions.own_staff(self.request.user)

    def shown_staff(self) -> list[Staff]:
        """The day view's columns: the chosen (or own) staff member, else every active one."""
        chosen = self.choices.staff or self.own_staff
        if chosen is not None:
            return [chosen]
        return list(Staff.objects.filter(active=True).order_by("name"))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        items: list[Item] = context["object_list"]
        period, query = self.period, self.query
        today = timezone.localdate()
        context.update(
            period=period,
            query=query,
            zone_name=timezone.get_current_timezone_name(),
            items_count=len(items),
            navigation={
                "previous": calendar_url(period.view, period.previous, query),
                "next": calendar_url(period.view, period.next, query),
                "today": calendar_url(period.view, today, query),
                "previous_label": {
                    DAY: _("Previous day"),
                    WEEK: _("Previous week"),
                    MONTH: _("Previous month"),
                }[period.view],
                "next_label": {DAY: _("Next day"), WEEK: _("Next week"), MONTH: _("Next month")}[
                    period.view
                ],
            },
            views=[
                {
                    "name": name,
                    "label": VIEW_LABELS[name],
                    "url": calendar_url(name, period.anchor, query),
                    "current": name == period.view,
                }
                for name in VIEWS
            ],
            own_staff=self.own_staff,
            # Items name their staff member unless the page is about one (or is a day,
            # whose columns are the staff).
            show_staff=period.view != DAY and not (self.own_staff or self.choices.staff),
        )
        if period.view == MONTH:
            context["weeks"] = month_weeks(items, period, query, today)
            context["weekdays"] = [_fmt(day, WEEKDAY_FORMAT) for day in period.days[:7]]
        else:
            hours = hours_for(items, period.first)
            if period.view == WEEK:
                columns = week_columns(items, period, query, today)
            else:
                columns = staff_columns(items, self.shown_staff())
            for column in columns:
                day = column.key if period.view == WEEK else period.anchor
                lay_out(column.items, day, hours)
                if period.view == DAY:
                    column.show_now = day == today
            context["columns"] = columns
            context["hours"] = hours
            context["now_line"] = self._now_line(hours, today)
        return context

    def _now_line(self, hours: Hours, today: dt.date) -> str:
        if not (self.period.first <= today <= self.period.last):
            return ""
        now = timezone.localtime(timezone.now(), self.zone)
        fraction = hours.fraction(now, today)
        if fraction in (0.0, 1.0):
            return ""
        return f"--bvc-top:{fraction * 100:.3f}%"


# --------------------------------------------------------------------------------------
# What the dialog shows about a booking or session
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingSummary:
    """A booking's or session's video meeting in words, for the admin."""

    text: str
    error: str = ""
    tag: str = ""
    tag_class: str = ""


def _provider_name(provider_id: str) -> str:
    from .reports import provider_name

    return provider_name(provider_id)


def _link_kind(owner: Booking | ClassSession) -> str:
    if isinstance(owner, ClassSession):
        return meetings.session_link_kind(owner)
    return meetings.link_kind(owner)


def meeting_summary(owner: Booking | ClassSession) -> MeetingSummary:
    """The state of the meeting a booking joins (or a session holds), in plain words."""
    if isinstance(owner, Booking) and owner.status == BookingStatus.CANCELLED:
        return MeetingSummary(gettext("The booking is cancelled: its join link no longer works."))
    kind = _link_kind(owner)
    if kind == meetings.NO_LINK:
        online = owner.online
        if isinstance(owner, ClassSession) and owner.cancelled:
            return MeetingSummary(gettext("The session is cancelled: there is no meeting."))
        if online:
            return MeetingSummary(gettext("Online, but this session has no meeting link."))
        return MeetingSummary(gettext("In person: there is no video meeting."))
    if kind == meetings.MANUAL:
        return MeetingSummary(
            gettext("A meeting link entered by hand, the same for every booking."),
            tag=pgettext("meeting state", "Ready"),
            tag_class="w-status--primary",
        )
    if not accounts.links_enabled():
        return MeetingSummary(
            gettext(
                "The site's default conferencing account is missing or disconnected: no "
                "meeting link is shown until it is connected again."
            ),
            tag=gettext("No link"),
            tag_class="bvc-status--critical",
        )
    meeting = meetings.meeting_of(owner) if isinstance(owner, Booking) else _meeting(owner)
    if meeting is None or meeting.state == MeetingState.PENDING:
        return MeetingSummary(
            gettext("Waiting to be made at the provider."), tag=pgettext("meeting state", "Pending")
        )
    provider = _provider_name(meeting.provider)
    if meeting.account_id and not meetings.account_usable(meeting):
        return MeetingSummary(
            gettext("Its conferencing account needs reconnecting: the link is hidden until then."),
            tag=gettext("Account disconnected"),
            tag_class="bvc-status--critical",
        )
    if meeting.state == MeetingState.CREATING:
        return MeetingSummary(
            gettext("Being made at %(provider)s.") % {"provider": provider},
            tag=str(meeting.get_state_display()),
        )
    if meeting.state == MeetingState.FAILED:
        return MeetingSummary(
            gettext("%(provider)s did not make the meeting.") % {"provider": provider},
            error=meeting.last_error,
            tag=str(meeting.get_state_display()),
            tag_class="bvc-status--critical",
        )
    if meeting.state == MeetingState.CANCELLED:
        return MeetingSummary(
            gettext("Deleted at %(provider)s.") % {"provider": provider},
            tag=str(meeting.get_state_display()),
        )
    text = gettext("Ready at %(provider)s.") % {"provider": provider}
    if meeting.changed_outside_at:
        text += " " + gettext("It was changed at the provider, outside the site, and put back.")
    return MeetingSummary(
        text,
        error=meeting.last_error,
        tag=str(meeting.get_state_display()),
        tag_class="w-status--primary",
    )


def payment_text(booking: Booking) -> str:
    """The payment in words: status and price."""
    price = format_price(booking.price, booking.currency)
    if booking.payment_status == PaymentStatus.NOT_REQUIRED or not price:
        return gettext("Free")
    labels = {
        PaymentStatus.PENDING: gettext("Awaiting payment of %(price)s"),
        PaymentStatus.PAID: gettext("%(price)s paid"),
        PaymentStatus.REFUNDED: gettext("%(price)s refunded"),
    }
    return labels.get(booking.payment_status, "%(price)s") % {"price": price}


def member_join_url(booking: Booking) -> str:
    """The member's personal join link as an absolute URL (the one their emails carry)."""
    if booking.status != BookingStatus.CONFIRMED:
        return ""
    if meetings.link_kind(booking) == meetings.NO_LINK:
        return ""
    path = meetings.join_path(booking)
    if not path:
        return ""
    from .notifications.context import base_url

    return base_url() + path


def _next_url(request: HttpRequest, fallback: str) -> str:
    return get_valid_next_url_from_request(request) or fallback


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}"


class PanelView(WagtailAdminTemplateMixin, TemplateView):
    """A booking's or session's details: the dialog's content, or a page of its own.

    The calendar's script asks with ``X-Requested-With: XMLHttpRequest`` and gets the
    fragment; without script, the item's link opens the same details as an admin page.
    """

    fragment_template_name = ""
    page_template_name = "wagtail_bookings_vc/admin/calendar/detail.html"
    header_icon = "calendar"

    @property
    def is_fragment(self) -> bool:
        return self.request.headers.get("x-requested-with") == "XMLHttpRequest"

    def get_template_names(self) -> list[str]:
        return [self.fragment_template_name if self.is_fragment else self.page_template_name]

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": self.calendar_back_url, "label": gettext("Calendar")},
            {"url": "", "label": self.get_page_title()},
        ]

    @cached_property
    def calendar_back_url(self) -> str:
        return _next_url(self.request, calendar_url(DAY, timezone.localdate(self.start_time)))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "fragment_template": self.fragment_template_name,
            "zone_name": timezone.get_current_timezone_name(),
            "next_url": self.calendar_back_url,
        }


class BookingPanelView(PanelView):
    fragment_template_name = "wagtail_bookings_vc/admin/calendar/booking_panel.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.booking = get_object_or_404(
            Booking.objects.select_related(
                "service", "staff", "session__group_class__staff", "member"
            ),
            pk=kwargs["pk"],
        )
        if not permissions.visible_bookings(request.user).filter(pk=self.booking.pk).exists():
            raise PermissionDenied
        self.start_time = self.booking.start
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return self.booking.title

    def get_page_subtitle(self) -> str:
        return self.booking.reference

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        booking, user = self.booking, self.request.user
        zone_name = context["zone_name"]
        can_manage = permissions.can_manage_booking(user, booking)
        confirmed = booking.status == BookingStatus.CONFIRMED
        has_link = meetings.link_kind(booking) != meetings.NO_LINK
        next_url = self.calendar_back_url
        from . import admin_bookings

        context.update(
            booking=booking,
            title=booking.title,
            when=format_when(booking.start, booking.end, zone_name),
            member_when=(
                format_when(booking.start, booking.end, booking.time_zone)
                if booking.time_zone != zone_name
                else ""
            ),
            staff=permissions.booking_staff(booking),
            status_tag_class="w-status--primary" if confirmed else "bvc-status--muted",
            payment=payment_text(booking),
            payment_pending=booking.payment_status == PaymentStatus.PENDING,
            meeting=meeting_summary(booking),
            can_manage=can_manage,
            open_meeting_url=(
                open_meeting_url(booking) if can_manage and confirmed and has_link else ""
            ),
            join_url=member_join_url(booking) if can_manage else "",
            cancel_url=(
                _with_next(admin_bookings.cancel_url(booking), next_url)
                if can_manage and confirmed
                else ""
            ),
            reschedule_url=(
                _with_next(admin_bookings.reschedule_url(booking), next_url)
                if can_manage and confirmed
                else ""
            ),
            inspect_url=reverse(BOOKING_INSPECT_URL_NAME, args=[booking.pk]),
            session_url=(
                _with_next(reverse(SESSION_URL_NAME, args=[booking.session_id]), next_url)
                if booking.session_id
                else ""
            ),
        )
        return context


class SessionPanelView(PanelView):
    fragment_template_name = "wagtail_bookings_vc/admin/calendar/session_panel.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.session = get_object_or_404(
            ClassSession.objects.select_related("group_class__staff"), pk=kwargs["pk"]
        )
        if not permissions.visible_sessions(request.user).filter(pk=self.session.pk).exists():
            raise PermissionDenied
        self.start_time = self.session.start
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return str(self.session.group_class)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        session, user = self.session, self.request.user
        can_manage = permissions.can_manage_session(user, session)
        attendees = list(
            session.bookings.filter(status=BookingStatus.CONFIRMED)
            .select_related("member")
            .order_by("member_name", "pk")
        )
        next_url = self.calendar_back_url
        for attendee in attendees:
            attendee.session = session
            attendee.panel_url = _with_next(reverse(BOOKING_URL_NAME, args=[attendee.pk]), next_url)
            attendee.payment_text = payment_text(attendee)
        context.update(
            session=session,
            title=str(session.group_class),
            when=format_when(session.start, session.end, context["zone_name"]),
            staff=session.group_class.staff,
            seats=_seats_label(len(attendees), session.effective_capacity),
            attendees=attendees,
            meeting=meeting_summary(session),
            can_manage=can_manage,
            open_meeting_url=(
                open_session_meeting_url(session)
                if can_manage
                and attendees
                and meetings.session_link_kind(session) != meetings.NO_LINK
                else ""
            ),
        )
        return context


# --------------------------------------------------------------------------------------
# For the benchmark
# --------------------------------------------------------------------------------------


def render_week_for_bench(user: Any, start: dt.date, **filters: str) -> str:
    """Render the week view containing ``start`` for ``user``, as the admin would.

    The whole admin page is rendered (menus, filters, grid), without the middleware
    around it: a benchmark calls this to time the page and count its queries.

    Args:
        user: the admin user the page is for.
        start: a date in the week to show.
        filters: the filters' query parameters (``staff``, ``service``, ...).

    Returns:
        The page's HTML.
    """
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.base import SessionBase
    from django.test import RequestFactory

    url = reverse(PERIOD_URL_NAME, args=[WEEK, start.isoformat()])
    request = RequestFactory().get(url, filters)
    request.user = user
    request.session = SessionBase()
    request._messages = FallbackStorage(request)
    response = CalendarView.as_view()(request, view=WEEK, day=start.isoformat())
    response.render()
    return response.content.decode()


# --------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------

# The view and date are in the path, so that the filter drawer (which swaps the grid in
# place and reflects only its own fields into the address) keeps them.
_PERIOD = r"calendar/(?P<view>day|week|month)/(?P<day>\d{4}-\d{2}-\d{2})/"

urlpatterns = [
    path("calendar/", CalendarView.as_view(), name="calendar"),
    path("calendar/bookings/<int:pk>/", BookingPanelView.as_view(), name="calendar_booking"),
    path("calendar/sessions/<int:pk>/", SessionPanelView.as_view(), name="calendar_session"),
    re_path(rf"^{_PERIOD}$", CalendarView.as_view(), name="calendar_period"),
    re_path(
        rf"^{_PERIOD}results/$",
        CalendarView.as_view(results_only=True),
        name="calendar_results",
    ),
]


class CalendarMenuItem(MenuItem):
    """Shown to everyone who sees bookings in the admin."""

    def is_shown(self, request: HttpRequest) -> bool:
        return can_use_calendar(request.user)


def calendar_menu_item() -> MenuItem:
    """For the Bookings menu group: the calendar, first in the group."""
    return CalendarMenuItem(
        _("Calendar"),
        reverse(CALENDAR_URL_NAME),
        name="bookings-calendar",
        icon_name="calendar",
        order=0,
    )


def calendar_main_menu_item() -> MenuItem:
    """For the main menu, right after the Bookings group (when groups take no items)."""
    return CalendarMenuItem(
        _("Calendar"),
        reverse(CALENDAR_URL_NAME),
        name="bookings-calendar",
        icon_name="calendar",
        order=251,
    )
