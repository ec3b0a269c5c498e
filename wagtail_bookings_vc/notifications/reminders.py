"""Reminder emails, sent by the periodic sweep."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from . import context as ctx
from .emails import deliver

logger = logging.getLogger(__name__)

REMINDER_KIND = "member_reminder"


def send_due_reminders(now: datetime | None = None) -> int:
    """Send every reminder that is due and not yet sent.

    A reminder is due for a confirmed booking that starts within the site's
    *send reminders (hours before)* and has not started yet. Each booking is
    claimed before its email goes out, so two sweeps running at once never
    send the same reminder twice; when sending fails the claim is released
    and the next sweep tries again.

    Args:
        now: the current time (default: ``timezone.now()``).

    Returns:
        How many reminders were sent.
    """
    from ..models import Booking

    now = now or timezone.now()
    hours = ctx.email_settings().reminder_hours_before
    if not hours:
        return 0
    due = (
        Booking.objects.confirmed()
        .filter(
            start__gt=now,
            start__lte=now + timedelta(hours=hours),
            reminder_sent_at__isnull=True,
        )
        .exclude(session__cancelled=True)
        .order_by("start")
    )
    sent = 0
    for booking_id in due.values_list("pk", flat=True):
        claimed = Booking.objects.filter(pk=booking_id, reminder_sent_at__isnull=True).update(
            reminder_sent_at=now
        )
        if not claimed:
            continue  # another sweep got there first
        try:
            delivered = deliver(booking_id, REMINDER_KIND)
        except Exception:  # noqa: BLE001 - whatever the mail backend raised
            # One failing email must not stop the others; the next sweep tries it again.
            logger.exception("Reminder for booking %s not sent; will retry.", booking_id)
            Booking.objects.filter(pk=booking_id, reminder_sent_at=now).update(
                reminder_sent_at=None
            )
            continue
        sent += int(delivered)
    return sent
