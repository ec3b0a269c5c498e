"""*Open meeting* in the admin: the host's way into a booking's or session's meeting (R23).

The host link is never shown or stored in the admin: the button leads here, the
permission is checked against the staff member the booking belongs to, and only then is
the provider's host URL made (fetched fresh where it expires, such as Zoom's start URL).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from . import permissions
from .meetings import JoinDecision, decide_join
from .models import Booking, ClassSession, JoinPass, JoinPassRole


def open_meeting_url(booking: Booking) -> str:
    """The admin URL of the booking's *Open meeting* button."""
    return reverse("wagtail_bookings_vc_admin:open_meeting", args=[booking.pk])


def open_session_meeting_url(session: ClassSession) -> str:
    """The admin URL of a class session's *Open meeting* button."""
    return reverse("wagtail_bookings_vc_admin:open_session_meeting", args=[session.pk])


def _host_pass(booking: Booking) -> JoinPass | None:
    if booking.session_id:
        passes = JoinPass.objects.filter(session_id=booking.session_id)
    else:
        passes = JoinPass.objects.filter(booking=booking)
    return passes.filter(role=JoinPassRole.HOST, revoked_at=None).first()


def _answer(request: HttpRequest, decision: JoinDecision, title: str) -> HttpResponse:
    if decision.status == "go":
        response: HttpResponse = HttpResponseRedirect(decision.url)
    else:
        response = TemplateResponse(
            request,
            "wagtail_bookings_vc/admin/open_meeting.html",
            {
                "page_title": _("Open meeting"),
                "header_title": _("Open meeting"),
                "header_icon": "media",
                "decision": decision,
                "title": title,
            },
        )
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
def open_meeting(request: HttpRequest, booking_id: int) -> HttpResponse:
    """Send a host to the booking's meeting, or say why not now."""
    booking = get_object_or_404(
        Booking.objects.select_related("service", "staff", "session__group_class"), pk=booking_id
    )
    if not permissions.can_manage_booking(request.user, booking):
        raise PermissionDenied
    join_pass = _host_pass(booking)
    decision = decide_join(join_pass) if join_pass else JoinDecision("unavailable")
    return _answer(request, decision, booking.title)


@never_cache
def open_session_meeting(request: HttpRequest, session_id: int) -> HttpResponse:
    """Send a host to a class session's meeting, or say why not now."""
    session = get_object_or_404(
        ClassSession.objects.select_related("group_class__staff"), pk=session_id
    )
    if not permissions.can_manage_session(request.user, session):
        raise PermissionDenied
    join_pass = (
        JoinPass.objects.filter(session=session, role=JoinPassRole.HOST, revoked_at=None)
        .select_related("session__group_class__staff")
        .first()
    )
    decision = decide_join(join_pass) if join_pass else JoinDecision("unavailable")
    return _answer(request, decision, str(session.group_class))


urlpatterns = [
    path("bookings/<int:booking_id>/open-meeting/", open_meeting, name="open_meeting"),
    path(
        "sessions/<int:session_id>/open-meeting/",
        open_session_meeting,
        name="open_session_meeting",
    ),
]
