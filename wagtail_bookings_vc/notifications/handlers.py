"""Connects booking signals to the emails they cause.

The signals arrive once the booking's transaction has committed; each email is
then its own background job, so a slow mail server never holds up a booking
and one failed email does not stop the other.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from .. import jobs, meetings
from ..models import Booking, Meeting
from ..signals import (
    booking_cancelled,
    booking_confirmed,
    booking_paid,
    booking_rescheduled,
    meeting_ready,
)
from . import context as ctx
from .link_ready import LINK_READY_JOB, LINK_READY_KIND

SEND_EMAIL_JOB = "wagtail_bookings_vc.notifications.emails.send_booking_email"


@receiver(booking_confirmed, sender=Booking, dispatch_uid="bvc_email_on_confirmed")
def on_booking_confirmed(sender: type[Booking], booking: Booking, **kwargs: Any) -> None:
    """Tell the member (and the staff member) that the booking is made."""
    enqueue_emails(booking, "confirmation")


@receiver(booking_cancelled, sender=Booking, dispatch_uid="bvc_email_on_cancelled")
def on_booking_cancelled(sender: type[Booking], booking: Booking, **kwargs: Any) -> None:
    """Tell the member (and the staff member) that the booking is cancelled."""
    enqueue_emails(booking, "cancellation")


@receiver(booking_rescheduled, sender=Booking, dispatch_uid="bvc_email_on_rescheduled")
def on_booking_rescheduled(sender: type[Booking], booking: Booking, **kwargs: Any) -> None:
    """Tell the member (and the staff member) the booking's new time."""
    enqueue_emails(booking, "reschedule")


@receiver(booking_paid, sender=Booking, dispatch_uid="bvc_email_on_paid")
def on_booking_paid(sender: type[Booking], booking: Booking, **kwargs: Any) -> None:
    """Send the member of a paid online booking the link their confirmation held back (R19)."""
    if meetings.link_kind(booking) != meetings.NO_LINK:
        # The email job itself checks that the link may be shown now (and is ready).
        jobs.enqueue(SEND_EMAIL_JOB, booking.pk, LINK_READY_KIND)


@receiver(meeting_ready, sender=Meeting, dispatch_uid="bvc_email_on_meeting_ready")
def on_meeting_ready(sender: type[Meeting], meeting: Meeting, **kwargs: Any) -> None:
    """A meeting was made: its attendees may be waiting for their link (R15)."""
    # A job of its own, queued behind the confirmation emails already waiting: those
    # that go out now carry the link, and then no "link ready" email is needed.
    jobs.enqueue(LINK_READY_JOB, meeting.pk)


def enqueue_emails(booking: Booking, event: str) -> None:
    """Enqueue the member's email about ``event`` and, where wanted, the staff member's.

    Args:
        booking: the booking that changed.
        event: ``"confirmation"``, ``"cancellation"`` or ``"reschedule"``.
    """
    jobs.enqueue(SEND_EMAIL_JOB, booking.pk, f"member_{event}")
    if staff_wants_email(booking):
        jobs.enqueue(SEND_EMAIL_JOB, booking.pk, f"staff_{event}")


def staff_wants_email(booking: Booking) -> bool:
    """Whether the staff member of ``booking`` gets emails about it.

    Only when the site's *email staff about their bookings* setting is on and
    the booking has a staff member (for a class: its instructor) with an address.
    """
    staff = ctx.booking_staff(booking)
    if staff is None or not staff.email:
        return False
    return ctx.staff_emails_wanted()
