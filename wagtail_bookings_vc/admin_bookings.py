"""Cancel or reschedule one booking from the admin, through :mod:`wagtail_bookings_vc.bookings`.

Both need management rights over the booking (:func:`permissions.can_manage_booking`):
booking managers for every booking, a staff member for their own. They go through the
same writers as the members' own pages, so the member is emailed, the booking's video
meeting follows (deleted, or moved to the new time) and the calendar files update; as
staff, they are not bound by the members' cancellation cut-off. What the writers refuse
(the time was just taken, the session is full, the booking was already cancelled) is
said in a Wagtail message, and the page offers what is still free.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from . import availability, bookings, meetings, permissions
from .admin_calendar import DAY, admin_booking_url, calendar_url
from .models import Booking, BookingStatus, ClassSession, MeetingState, PaymentStatus
from .templatetags.wagtail_bookings_vc_tags import format_date, format_time, format_when

__all__ = [
    "CancelBookingView",
    "RescheduleBookingView",
    "cancel_url",
    "reschedule_url",
    "urlpatterns",
]

NAMESPACE = "wagtail_bookings_vc_admin"


def cancel_url(booking: Booking) -> str:
    """The admin page that cancels ``booking`` after a confirmation."""
    return reverse(f"{NAMESPACE}:booking_cancel", args=[booking.pk])


def reschedule_url(booking: Booking) -> str:
    """The admin page that moves ``booking`` to a free time (or another session)."""
    return reverse(f"{NAMESPACE}:booking_reschedule", args=[booking.pk])


def _member(booking: Booking) -> str:
    return booking.member_name or booking.member_email or gettext("The member")


def _zone_name() -> str:
    return timezone.get_current_timezone_name()


class BookingActionView(WagtailAdminTemplateMixin, TemplateView):
    """An admin page that changes one booking the user may manage."""

    header_icon = "calendar"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.booking = get_object_or_404(
            Booking.objects.select_related(
                "service", "staff", "session__group_class__staff", "member"
            ),
            pk=kwargs["pk"],
        )
        if not permissions.can_manage_booking(request.user, self.booking):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def next_url(self) -> str:
        """Where the user came from (the calendar, with its filters), else the booking's day."""
        return get_valid_next_url_from_request(self.request) or calendar_url(
            DAY, timezone.localdate(self.booking.start)
        )

    def get_page_subtitle(self) -> str:
        return f"{self.booking.title} – {self.booking.reference}"

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            {"url": self.next_url, "label": gettext("Calendar")},
            {
                "url": f"{admin_booking_url(self.booking)}?{urlencode({'next': self.next_url})}",
                "label": self.booking.reference,
            },
            {"url": "", "label": self.get_page_title()},
        ]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        booking = self.booking
        return {
            **super().get_context_data(**kwargs),
            "booking": booking,
            "member": _member(booking),
            "when": format_when(booking.start, booking.end, _zone_name()),
            "staff": permissions.booking_staff(booking),
            "next_url": self.next_url,
            "is_cancelled": booking.status == BookingStatus.CANCELLED,
        }


# --------------------------------------------------------------------------------------
# Cancel
# --------------------------------------------------------------------------------------


def cancel_consequences(booking: Booking) -> list[str]:
    """What cancelling ``booking`` does, in the words the confirmation page uses."""
    member = _member(booking)
    said = []
    if booking.member_email:
        said.append(
            gettext("%(member)s is emailed that the booking is cancelled.") % {"member": member}
        )
    kind = meetings.link_kind(booking)
    if kind == meetings.AUTOMATIC and not booking.session_id:
        meeting = meetings.meeting_of(booking)
        if meeting is not None and meeting.state == MeetingState.READY:
            said.append(gettext("Its video meeting is deleted at the provider."))
        else:
            said.append(gettext("Its video meeting is deleted, or no longer made."))
    if kind != meetings.NO_LINK:
        said.append(gettext("The member's personal join link stops working."))
    if booking.session_id:
        said.append(
            gettext("The seat is freed; the session and its meeting stay for the other attendees.")
        )
    else:
        said.append(gettext("The time becomes free for other bookings."))
    if booking.payment_status == PaymentStatus.PAID:
        said.append(
            gettext(
                "The payment is not refunded by the site: refund it through your payment provider."
            )
        )
    return said


class CancelBookingView(BookingActionView):
    """GET: what cancelling does; POST: cancel (staff are not bound by the cut-off)."""

    template_name = "wagtail_bookings_vc/admin/bookings/cancel.html"
    page_title = _("Cancel booking")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "consequences": cancel_consequences(self.booking),
        }

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        booking = self.booking
        try:
            bookings.cancel(booking, by_staff=True)
        except bookings.BookingError as error:
            messages.error(request, error.message)
            return self.render_to_response(self.get_context_data())
        messages.success(
            request,
            gettext("Booking %(reference)s of %(member)s is cancelled.")
            % {"reference": booking.reference, "member": _member(booking)},
        )
        return redirect(self.next_url)


# --------------------------------------------------------------------------------------
# Reschedule
# --------------------------------------------------------------------------------------


class DayForm(forms.Form):
    date = forms.DateField(
        label=_("Date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


@dataclass(frozen=True)
class Choice:
    """A time (or session) the booking may move to."""

    value: str
    label: str
    current: bool = False
    note: str = ""
    disabled: bool = False


def free_times(booking: Booking, day: dt.date, zone: dt.tzinfo) -> list[Choice]:
    """The free start times of the booking's service with its staff member on ``day``
    (a day in ``zone``, the admin user's time zone); the booking's own time is marked."""
    if booking.staff is None or booking.service is None:
        return []
    # A day in the admin's zone may straddle two days of the staff member's zone.
    slots = availability.free_slots(
        booking.service,
        start_date=day - dt.timedelta(days=1),
        days=3,
        staff=booking.staff,
        exclude_booking=booking,
    )
    zone_name = str(zone)
    choices = []
    for slot in slots:
        if slot.start.astimezone(zone).date() != day:
            continue
        current = slot.start == booking.start
        choices.append(
            Choice(
                value=slot.start.isoformat(),
                label=gettext("%(start)s–%(end)s")
                % {
                    "start": format_time(slot.start, zone_name),
                    "end": format_time(slot.end, zone_name),
                },
                current=current,
                note=gettext("current time") if current else "",
                disabled=current,
            )
        )
    return choices


def other_sessions(booking: Booking) -> list[Choice]:
    """The class's upcoming sessions a seat may move to, with the seats they have left."""
    group_class = booking.session.group_class
    zone_name = _zone_name()
    choices = []
    for session in availability.upcoming_sessions(group_class):
        current = session.pk == booking.session_id
        full = session.seats_left <= 0
        if current:
            note = gettext("current session")
        elif full:
            note = gettext("full")
        else:
            note = ngettext("%(count)d seat left", "%(count)d seats left", session.seats_left) % {
                "count": session.seats_left
            }
        choices.append(
            Choice(
                value=str(session.pk),
                label=format_when(session.start, session.end, zone_name),
                current=current,
                note=note,
                disabled=current or full,
            )
        )
    return choices


class RescheduleBookingView(BookingActionView):
    """Pick a new free time of the same service and staff member on a date (an
    appointment), or another session of the same class (a seat), then move the booking."""

    template_name = "wagtail_bookings_vc/admin/bookings/reschedule.html"
    page_title = _("Reschedule booking")

    def chosen_day(self) -> dt.date:
        form = DayForm(self.request.POST or self.request.GET)
        if form.is_valid():
            return form.cleaned_data["date"]
        today = timezone.localdate()
        return max(timezone.localdate(self.booking.start), today)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        booking = self.booking
        if booking.session_id:
            context["sessions"] = other_sessions(booking)
            return context
        day = self.chosen_day()
        zone = timezone.get_current_timezone()

        def day_url(other: dt.date) -> str:
            query = {"date": other.isoformat(), "next": self.next_url}
            return f"{reschedule_url(booking)}?{urlencode(query)}"

        context.update(
            day=day,
            day_label=format_date(day),
            day_form=DayForm(initial={"date": day}),
            times=free_times(booking, day, zone),
            previous_day_url=day_url(day - dt.timedelta(days=1)),
            next_day_url=day_url(day + dt.timedelta(days=1)),
            zone_name=_zone_name(),
        )
        return context

    def _refuse(self, message: str) -> HttpResponse:
        messages.error(self.request, message)
        # Show the booking as it is now (someone may have cancelled it meanwhile).
        self.booking.refresh_from_db()
        return self.render_to_response(self.get_context_data())

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        booking = self.booking
        try:
            if booking.session_id:
                session_pk = request.POST.get("session", "")
                session = (
                    ClassSession.objects.filter(
                        pk=int(session_pk), group_class_id=booking.session.group_class_id
                    ).first()
                    if session_pk.isdigit()
                    else None
                )
                if session is None:
                    return self._refuse(gettext("Choose the session to move the booking to."))
                bookings.reschedule(booking, session=session, by_staff=True)
            else:
                start = _parse_start(request.POST.get("start", ""))
                if start is None:
                    return self._refuse(gettext("Choose the new time."))
                bookings.reschedule(booking, start=start, by_staff=True)
        except bookings.BookingError as error:
            return self._refuse(error.message)
        when = format_when(booking.start, booking.end, _zone_name())
        messages.success(
            request,
            gettext(
                "Booking %(reference)s is moved to %(when)s. %(member)s is emailed the new time."
            )
            % {"reference": booking.reference, "when": when, "member": _member(booking)},
            buttons=[
                messages.button(
                    calendar_url(DAY, timezone.localdate(booking.start)),
                    gettext("Show in calendar"),
                )
            ],
        )
        return redirect(self.next_url)


def _parse_start(value: str) -> dt.datetime | None:
    try:
        start = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return start if timezone.is_aware(start) else None


urlpatterns = [
    path("bookings/<int:pk>/cancel/", CancelBookingView.as_view(), name="booking_cancel"),
    path(
        "bookings/<int:pk>/reschedule/",
        RescheduleBookingView.as_view(),
        name="booking_reschedule",
    ),
]
