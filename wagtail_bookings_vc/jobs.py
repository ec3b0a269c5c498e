"""The seam over django-q2: everything the app runs in the background goes through here.

Jobs take primary keys, are enqueued only once the surrounding transaction has
committed (django-q2 does not wait for it), and are safe to run twice.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from .conf import get_settings

logger = logging.getLogger(__name__)

SWEEP_SCHEDULE_NAME = "wagtail_bookings_vc.sweep"


def enqueue(func: str, *args: Any) -> None:
    """Run ``func(*args)`` in a worker once the current transaction commits.

    Args:
        func: dotted path of a module-level function that takes primary keys.
        args: plain, JSON-friendly arguments (primary keys, short strings).
    """

    def _send() -> None:
        from django_q.tasks import async_task

        async_task(func, *args, group=get_settings().QUEUE_GROUP)

    transaction.on_commit(_send)


def sweep() -> None:
    """Periodic job: do whatever is due and was not done by an enqueued job."""
    from .meetings import sweep_meetings
    from .notifications.reminders import send_due_reminders

    sweep_meetings()
    send_due_reminders()


def ensure_schedules(**kwargs: Any) -> None:
    """Create or update the periodic sweep schedule. Safe to call repeatedly."""
    from django_q.models import Schedule

    minutes = int(get_settings().SWEEP_INTERVAL_MINUTES)
    Schedule.objects.update_or_create(
        name=SWEEP_SCHEDULE_NAME,
        defaults={
            "func": "wagtail_bookings_vc.jobs.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
        },
    )
