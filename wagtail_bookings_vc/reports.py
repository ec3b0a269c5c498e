"""The online-meetings report (R24): every video meeting, its state, and *Retry* for failed ones.

One row per :class:`~wagtail_bookings_vc.models.Meeting`: its booking (or class session),
member or attendee count, staff member, provider, start, state, attempts, next attempt and
last error. Filters by state, provider, staff member and start date; exports CSV and XLSX
through Wagtail's spreadsheet export. People who may manage bookings retry one failed
meeting, or every failed meeting the filters match, through :func:`meetings.retry`.

Join and host links, passcodes and account credentials belong to the people who booked:
the report and its exports never load them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect
from django.urls import include, path, reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.reports import ReportView
from wagtail.admin.widgets import HeaderButton
from wagtail.permission_policies import ModelPermissionPolicy

from . import host_links, meetings, permissions, plan_limits
from .models import Booking, BookingStatus, ConferencingAccount, Meeting, MeetingState, Staff
from .providers.registry import enabled_providers, get_provider
from .viewsets import can_manage_bookings

__all__ = [
    "BulkRetryView",
    "OnlineMeetingsFilterSet",
    "OnlineMeetingsReportView",
    "RetryMeetingView",
    "admin_urls",
    "bookings_menu_item",
    "can_view_meetings",
    "report_queryset",
    "reports_menu_item",
]

URL_NAMESPACE = "wagtail_bookings_vc_reports"
INDEX_URL_NAME = f"{URL_NAMESPACE}:online_meetings"
RESULTS_URL_NAME = f"{URL_NAMESPACE}:online_meetings_results"
RETRY_URL_NAME = f"{URL_NAMESPACE}:retry"
BULK_RETRY_URL_NAME = f"{URL_NAMESPACE}:bulk_retry"
BOOKING_INSPECT_URL_NAME = "wagtailsnippets_wagtail_bookings_vc_booking:inspect"

# Secrets for everyone but the people who booked (R18): never read by the report.
SECRET_FIELDS = ("join_url", "host_url", "passcode", "extra")

STATE_TAG_CLASSES = {
    MeetingState.READY: "w-status--primary",
    MeetingState.FAILED: "bvc-meeting-state--failed",
    MeetingState.CANCELLED: "bvc-meeting-state--cancelled",
}

# Query parameters that belong to one response, not to the filters a user has chosen.
_TRANSIENT_PARAMS = ("export", "_w_filter_fragment")

booking_permission_policy = ModelPermissionPolicy(Booking)


def can_view_meetings(user: Any) -> bool:
    """The report is for people who may see bookings (or change them, which includes seeing)."""
    return booking_permission_policy.user_has_any_permission(user, ["view", "change"])


# --------------------------------------------------------------------------------------
# What one row shows
# --------------------------------------------------------------------------------------


def report_queryset() -> QuerySet[Meeting]:
    """Every meeting, with what its row shows loaded in one query and its secrets left out.

    Annotates ``start_at`` (the booking's or session's start) and ``attendee_count`` (the
    confirmed seats of a session's meeting).
    """
    seats = (
        Booking.objects.filter(session=OuterRef("session"), status=BookingStatus.CONFIRMED)
        .order_by()
        .values("session")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        Meeting.objects.select_related(
            "booking__service",
            "booking__staff",
            "booking__session__group_class__staff",
            "session__group_class__staff",
        )
        .defer(*SECRET_FIELDS)
        .annotate(
            start_at=Coalesce("booking__start", "session__start"),
            attendee_count=Coalesce(
                Subquery(seats, output_field=IntegerField()), Value(0), output_field=IntegerField()
            ),
        )
    )


def meeting_staff(meeting: Meeting) -> Staff | None:
    """Who hosts the meeting: the appointment's staff member, or the class's."""
    if meeting.session_id:
        return meeting.session.group_class.staff
    booking = meeting.booking
    if booking.staff_id:
        return booking.staff
    if booking.session_id:
        return booking.session.group_class.staff
    return None


def meeting_title(meeting: Meeting) -> str:
    """The service or class the meeting is for."""
    if meeting.session_id:
        return str(meeting.session.group_class)
    return meeting.booking.title


def meeting_reference(meeting: Meeting) -> str:
    """The booking's reference, or "Class session" for the shared meeting of a session."""
    if meeting.booking_id:
        return meeting.booking.reference
    return gettext("Class session")


def booking_member(booking: Booking) -> str:
    return booking.member_name or booking.member_email


def meeting_members(meeting: Meeting) -> str:
    """The member who booked, or how many attendees a class session has."""
    if meeting.session_id:
        count = getattr(meeting, "attendee_count", 0)
        return ngettext("%(count)d attendee", "%(count)d attendees", count) % {"count": count}
    return booking_member(meeting.booking)


def meeting_label(meeting: Meeting) -> str:
    """How a message names one meeting: by its booking, or by its class and start."""
    if meeting.booking_id:
        return gettext("booking %(reference)s") % {"reference": meeting.booking.reference}
    return gettext("the %(class)s session on %(start)s") % {
        "class": meeting.session.group_class,
        "start": local_datetime(meeting.session.start),
    }


def provider_name(provider_id: str) -> str:
    """The provider's display name; its id if it is no longer enabled."""
    if not provider_id:
        return ""
    try:
        return str(get_provider(provider_id).name or provider_id)
    except ImproperlyConfigured:
        return provider_id


def local_datetime(value: dt.datetime | None) -> str:
    """A date and time in the admin user's time zone (never "2 days ago")."""
    if value is None:
        return ""
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def _naive_local(value: dt.datetime | None, zone: dt.tzinfo) -> dt.datetime | None:
    # Spreadsheets have no time zones: the heading names the one the times are in.
    return timezone.make_naive(value, zone) if value is not None else None


def _csv_datetime(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------


def provider_filter_choices() -> list[tuple[str, str]]:
    """Enabled providers that make meetings, and any provider that meetings still name."""
    ids = {provider.id for provider in enabled_providers() if not provider.shared_link}
    ids.update(
        Meeting.objects.exclude(provider="")
        .order_by()
        .values_list("provider", flat=True)
        .distinct()
    )
    return sorted(((pid, provider_name(pid)) for pid in ids), key=lambda c: c[1].lower())


class OnlineMeetingsFilterSet(WagtailFilterSet):
    """State, provider, staff member and start date; works on :func:`report_queryset`."""

    state = django_filters.ChoiceFilter(
        label=_("State"),
        choices=MeetingState.choices,
        empty_label=pgettext_lazy("filter", "All"),
        widget=forms.RadioSelect,
    )
    provider = django_filters.ChoiceFilter(
        label=_("Provider"),
        choices=provider_filter_choices,
        empty_label=pgettext_lazy("filter", "All"),
        widget=forms.RadioSelect,
    )
    staff = django_filters.ModelChoiceFilter(
        label=_("Staff"),
        queryset=Staff.objects.order_by("name"),
        empty_label=_("All staff"),
        method="filter_staff",
    )
    start = django_filters.DateFromToRangeFilter(
        label=_("Start"),
        field_name="start_at",
        widget=DateRangePickerWidget,
    )
    attention = django_filters.ChoiceFilter(
        label=_("Needs attention"),
        choices=[
            ("retry", _("Waiting for a retry")),
            ("outside", _("Changed outside the site")),
        ],
        empty_label=pgettext_lazy("filter", "All"),
        widget=forms.RadioSelect,
        method="filter_attention",
    )

    class Meta:
        model = Meeting
        fields: list[str] = []

    def filter_attention(self, queryset: QuerySet[Meeting], name: str, value: str) -> QuerySet:
        """Meetings the app gave up on, or that someone changed at the provider."""
        if value == "retry":
            return queryset.filter(meetings.GAVE_UP)
        if value == "outside":
            return queryset.filter(changed_outside_at__isnull=False)
        return queryset

    def filter_staff(self, queryset: QuerySet[Meeting], name: str, value: Staff) -> QuerySet:
        """Meetings the staff member hosts (the same rule as :func:`meeting_staff`)."""
        if not value:
            return queryset
        return queryset.filter(
            Q(session__group_class__staff=value)
            | Q(booking__staff=value)
            | Q(booking__staff__isnull=True, booking__session__group_class__staff=value)
        )


def filtered_meetings(request: HttpRequest) -> QuerySet[Meeting]:
    """The meetings the report shows for the filters in ``request.GET``.

    Invalid filters are ignored, as the report's listing ignores them.
    """
    queryset = report_queryset()
    filterset = OnlineMeetingsFilterSet(data=request.GET, queryset=queryset, request=request)
    if filterset.is_valid():
        queryset = filterset.filter_queryset(queryset)
    return queryset


def _filter_query(request: HttpRequest, *, drop: tuple[str, ...] = ()) -> str:
    params = request.GET.copy()
    for key in (*_TRANSIENT_PARAMS, *drop):
        params.pop(key, None)
    return params.urlencode()


def _with_query(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


# --------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------


class BookingColumn(TitleColumn):
    """The booking reference, linked to the booking, above the service or class name."""

    cell_template_name = "wagtail_bookings_vc/admin/reports/booking_cell.html"

    def get_value(self, instance: Meeting) -> str:
        return meeting_reference(instance)

    def get_link_url(self, instance: Meeting, parent_context: dict[str, Any]) -> str | None:
        if instance.booking_id:
            return reverse(BOOKING_INSPECT_URL_NAME, args=[instance.booking_id])
        return None

    def get_cell_context_data(
        self, instance: Meeting, parent_context: dict[str, Any]
    ) -> dict[str, Any]:
        context = super().get_cell_context_data(instance, parent_context)
        context["bookable_title"] = meeting_title(instance)
        return context


class StateColumn(Column):
    """The meeting's state as a status tag, with a *Retry* button on a failed meeting.

    The button (a POST form) is shown only when ``retry_next_url`` is given: to people
    who may manage bookings. It comes back to ``retry_next_url``.
    """

    cell_template_name = "wagtail_bookings_vc/admin/reports/state_cell.html"

    def __init__(self, name: str, *, retry_next_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.retry_next_url = retry_next_url

    def get_value(self, instance: Meeting) -> str:
        return instance.get_state_display()

    def get_cell_context_data(
        self, instance: Meeting, parent_context: dict[str, Any]
    ) -> dict[str, Any]:
        context = super().get_cell_context_data(instance, parent_context)
        context["tag_classname"] = STATE_TAG_CLASSES.get(instance.state, "")
        context["changed_outside"] = instance.changed_outside_at is not None
        context["too_long"] = _longer_than_plan(instance, parent_context)
        request = parent_context["request"]
        if instance.state == MeetingState.READY and self.retry_next_url is not None:
            # The host's way in (R23), for people who may manage bookings.
            if instance.session_id:
                context["open_url"] = host_links.open_session_meeting_url(instance.session)
            elif instance.booking_id and permissions.can_manage_booking(
                request.user, instance.booking
            ):
                context["open_url"] = host_links.open_meeting_url(instance.booking)
        context["can_retry"] = self.retry_next_url is not None and meetings.needs_retry(instance)
        if context["can_retry"]:
            context["retry_url"] = reverse(RETRY_URL_NAME, args=[instance.pk])
            context["next_url"] = self.retry_next_url
            # Cells are rendered without a RequestContext: pass the token for {% csrf_token %}.
            context["csrf_token"] = get_token(parent_context["request"])
            context["retry_label"] = gettext("Retry the meeting of %(meeting)s") % {
                "meeting": meeting_label(instance)
            }
        return context


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


class OnlineMeetingsReportView(ReportView):
    """Every meeting with its state, filters, CSV/XLSX export and *Retry* (R24)."""

    page_title = _("Online meetings")
    header_icon = "media"
    template_name = "wagtail_bookings_vc/admin/reports/online_meetings.html"
    results_template_name = "wagtail_bookings_vc/admin/reports/online_meetings_results.html"
    index_url_name = INDEX_URL_NAME
    index_results_url_name = RESULTS_URL_NAME
    filterset_class = OnlineMeetingsFilterSet
    model = Meeting
    permission_policy = booking_permission_policy
    any_permission_required = ["view", "change"]
    default_ordering = "-start_at"
    verbose_name_plural = _("online meetings")

    list_export = [
        "booking",
        "service_or_class",
        "member",
        "attendees",
        "staff",
        "provider",
        "start",
        "state",
        "attempts",
        "next_attempt",
        "last_error",
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.custom_field_preprocess = {
            **self.custom_field_preprocess,
            "start": {self.FORMAT_CSV: _csv_datetime},
            "next_attempt": {self.FORMAT_CSV: _csv_datetime},
        }

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Captured while the admin user's time zone is active: a CSV is written after the
        # view has returned.
        self.time_zone = timezone.get_current_timezone()
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def can_retry(self) -> bool:
        return can_manage_bookings(self.request.user)

    @cached_property
    def return_url(self) -> str:
        """This report with the user's filters, ordering and page: where *Retry* comes back to."""
        return _with_query(self.index_url, _filter_query(self.request))

    @cached_property
    def bulk_retry_url(self) -> str:
        query = _filter_query(self.request, drop=(self.page_kwarg, "ordering"))
        return _with_query(reverse(BULK_RETRY_URL_NAME), query)

    @cached_property
    def columns(self) -> list[Column]:  # type: ignore[override]
        return [
            BookingColumn("booking", label=_("Booking"), classname="bvc-nowrap"),
            Column("members", label=_("Member"), accessor=meeting_members),
            Column("staff", label=_("Staff"), accessor=_staff_name),
            Column("provider", label=_("Provider"), accessor=_provider_label),
            Column(
                "start_at",
                label=_("Start"),
                accessor=lambda meeting: local_datetime(meeting.start_at),
                sort_key="start_at",
            ),
            StateColumn(
                "state",
                label=_("State"),
                retry_next_url=self.return_url if self.can_retry else None,
            ),
            Column("attempts", label=_("Attempts"), sort_key="attempts"),
            Column(
                "next_attempt_at",
                label=_("Next attempt"),
                accessor=lambda meeting: local_datetime(meeting.next_attempt_at),
                sort_key="next_attempt_at",
            ),
            Column("last_error", label=_("Last error"), classname="bvc-last-error"),
        ]

    def get_base_queryset(self) -> QuerySet[Meeting]:
        return report_queryset()

    def order_queryset(self, queryset: QuerySet[Meeting]) -> QuerySet[Meeting]:
        ordering = self.ordering or self.default_ordering
        field = ordering.lstrip("-")
        # Empty times sort last both ways, and the id keeps pages stable between requests.
        if ordering.startswith("-"):
            return queryset.order_by(F(field).desc(nulls_last=True), "-pk")
        return queryset.order_by(F(field).asc(nulls_last=True), "pk")

    def get_header_buttons(self) -> list:
        buttons = super().get_header_buttons()
        if self.can_retry and self.object_list.filter(meetings.GAVE_UP).exists():
            buttons.insert(
                0,
                HeaderButton(
                    _("Retry failed meetings"), url=self.bulk_retry_url, icon_name="rotate"
                ),
            )
        return buttons

    # Export ----------------------------------------------------------------------------

    @property
    def export_headings(self) -> dict[str, str]:  # type: ignore[override]
        zone = {"time_zone": timezone.get_current_timezone_name()}
        return {
            "booking": gettext("Booking"),
            "service_or_class": gettext("Service or class"),
            "member": gettext("Member"),
            "attendees": gettext("Attendees"),
            "staff": gettext("Staff"),
            "provider": gettext("Provider"),
            "start": gettext("Start (%(time_zone)s)") % zone,
            "state": gettext("State"),
            "attempts": gettext("Attempts"),
            "next_attempt": gettext("Next attempt (%(time_zone)s)") % zone,
            "last_error": gettext("Last error"),
        }

    def get_filename(self) -> str:
        return f"online-meetings-{timezone.localdate(timezone=self.time_zone):%Y-%m-%d}"

    def to_row_dict(self, item: Meeting) -> dict[str, Any]:
        staff = meeting_staff(item)
        return {
            "booking": meeting_reference(item),
            "service_or_class": meeting_title(item),
            "member": "" if item.session_id else booking_member(item.booking),
            "attendees": item.attendee_count if item.session_id else None,
            "staff": staff.name if staff else "",
            "provider": provider_name(item.provider),
            "start": _naive_local(item.start_at, self.time_zone),
            "state": _state_text(item),
            "attempts": item.attempts,
            "next_attempt": _naive_local(item.next_attempt_at, self.time_zone),
            "last_error": item.last_error,
        }

    def stream_csv(self, queryset: QuerySet[Meeting]) -> Iterator[str]:
        # The rows are written as the response streams, after the view has left the
        # admin user's language and time zone: bring them back for each row.
        return _localized(super().stream_csv(queryset), translation.get_language(), self.time_zone)


def _longer_than_plan(meeting: Meeting, parent_context: dict[str, Any]) -> bool:
    """Whether the meeting lasts longer than its account's plan allows (R17)."""
    if meeting.account_id is None or meeting.state == MeetingState.CANCELLED:
        return False
    # One look per account per page, not per row.
    limits = parent_context.setdefault("bvc_plan_limits", {})
    if meeting.account_id not in limits:
        account = ConferencingAccount.objects.filter(pk=meeting.account_id).first()
        limits[meeting.account_id] = account and plan_limits.max_meeting_minutes(account)
    limit = limits[meeting.account_id]
    start, end = meeting.synced_start, meeting.synced_end
    if not limit or start is None or end is None:
        return False
    return (end - start).total_seconds() > limit * 60


def _state_text(meeting: Meeting) -> str:
    state = str(meeting.get_state_display())
    if meeting.changed_outside_at is not None:
        return gettext("%(state)s (changed outside the site)") % {"state": state}
    return state


def _staff_name(meeting: Meeting) -> str:
    staff = meeting_staff(meeting)
    return staff.name if staff else ""


def _provider_label(meeting: Meeting) -> str:
    return provider_name(meeting.provider)


def _localized(rows: Iterator[str], language: str | None, zone: dt.tzinfo) -> Iterator[str]:
    iterator = iter(rows)
    while True:
        with translation.override(language), timezone.override(zone):
            try:
                row = next(iterator)
            except StopIteration:
                return
        yield row


# --------------------------------------------------------------------------------------
# Retry
# --------------------------------------------------------------------------------------


def _require_retry_permission(request: HttpRequest) -> None:
    if not can_manage_bookings(request.user):
        raise PermissionDenied


class RetryMeetingView(View):
    """POST: try one failed meeting again, then go back to the report."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        _require_retry_permission(request)
        meeting = get_object_or_404(
            Meeting.objects.select_related("booking", "session__group_class").defer(*SECRET_FIELDS),
            pk=pk,
        )
        if not meetings.needs_retry(meeting):
            messages.warning(
                request,
                gettext("The meeting of %(meeting)s has not failed: there is nothing to retry.")
                % {"meeting": meeting_label(meeting)},
            )
        else:
            meetings.retry(meeting)
            messages.success(
                request,
                gettext("The meeting of %(meeting)s will be tried again.")
                % {"meeting": meeting_label(meeting)},
            )
        return redirect(get_valid_next_url_from_request(request) or reverse(INDEX_URL_NAME))


class BulkRetryView(WagtailAdminTemplateMixin, TemplateView):
    """GET: how many failed meetings the report's filters match; POST: try them all again."""

    template_name = "wagtail_bookings_vc/admin/reports/bulk_retry.html"
    page_title = _("Retry failed meetings")
    header_icon = "rotate"
    shown = 10

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _require_retry_permission(request)
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def failed_meetings(self) -> QuerySet[Meeting]:
        return (
            filtered_meetings(self.request)
            .filter(meetings.GAVE_UP)
            .order_by(F("start_at").asc(nulls_last=True), "pk")
        )

    @cached_property
    def report_url(self) -> str:
        return _with_query(reverse(INDEX_URL_NAME), _filter_query(self.request))

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": self.report_url, "label": gettext("Online meetings")},
            {"url": "", "label": self.get_page_title()},
        ]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        count = self.failed_meetings.count()
        shown = [
            {
                "reference": meeting_reference(meeting),
                "title": meeting_title(meeting),
                "start": local_datetime(meeting.start_at),
                "last_error": meeting.last_error,
            }
            for meeting in self.failed_meetings[: self.shown]
        ]
        return {
            **super().get_context_data(**kwargs),
            "count": count,
            "meetings": shown,
            "more": max(count - len(shown), 0),
            "report_url": self.report_url,
        }

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseRedirect:
        # The jobs are enqueued once every meeting has been marked pending.
        with transaction.atomic():
            failed = list(self.failed_meetings)
            for meeting in failed:
                meetings.retry(meeting)
        if failed:
            messages.success(
                request,
                ngettext(
                    "%(count)d meeting will be tried again.",
                    "%(count)d meetings will be tried again.",
                    len(failed),
                )
                % {"count": len(failed)},
            )
        else:
            messages.info(request, gettext("No failed meetings match the filters."))
        return redirect(self.report_url)


# --------------------------------------------------------------------------------------
# Registration (called from wagtail_hooks.py)
# --------------------------------------------------------------------------------------

urlpatterns = [
    path("", OnlineMeetingsReportView.as_view(), name="online_meetings"),
    path(
        "results/",
        OnlineMeetingsReportView.as_view(results_only=True),
        name="online_meetings_results",
    ),
    path("retry/", BulkRetryView.as_view(), name="bulk_retry"),
    path("retry/<int:pk>/", RetryMeetingView.as_view(), name="retry"),
]


def admin_urls() -> list:
    """The report's admin URLs, for the ``register_admin_urls`` hook."""
    return [path("bookings-vc/online-meetings/", include((urlpatterns, URL_NAMESPACE)))]


class OnlineMeetingsMenuItem(MenuItem):
    """Shown to people who may see bookings."""

    def is_shown(self, request: HttpRequest) -> bool:
        return can_view_meetings(request.user)


def _menu_item(order: int) -> Callable[[], MenuItem]:
    def make() -> MenuItem:
        return OnlineMeetingsMenuItem(
            _("Online meetings"),
            reverse(INDEX_URL_NAME),
            name="online-meetings",
            icon_name="media",
            order=order,
        )

    return make


#: For the ``register_reports_menu_item`` hook: after Wagtail's own reports.
reports_menu_item = _menu_item(1400)
#: For the Bookings menu group's submenu hook: after the group's own items.
bookings_menu_item = _menu_item(900)
