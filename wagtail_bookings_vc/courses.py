"""Courses: a series of class sessions generated from one start time and a repeat rule."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from .models import ClassSession, GroupClass


def generate_sessions(
    group_class: GroupClass,
    *,
    first_start: datetime,
    count: int,
    every_days: int = 7,
    location: str = "",
) -> list[ClassSession]:
    """Add ``count`` sessions to a class, ``every_days`` apart in local wall-clock time.

    The interval is applied to the local date and time of ``first_start``, so a weekly
    class at 18:00 stays at 18:00 across a daylight-saving change. Sessions that already
    exist at the same start are kept, not duplicated, so running it twice is harmless.

    Args:
        group_class: the class that gets the sessions.
        first_start: an aware datetime in the time zone the series is planned in.
        count: how many sessions the series has.
        every_days: days between two sessions (7 for weekly).
        location: a location for these sessions, if it differs from the class's.

    Returns:
        The sessions created (existing ones are not returned).
    """
    if count < 1 or every_days < 1:
        raise ValueError("count and every_days must be positive")
    tz = first_start.tzinfo
    local = first_start.replace(tzinfo=None)
    starts = [(local + timedelta(days=every_days * n)).replace(tzinfo=tz) for n in range(count)]
    created = []
    with transaction.atomic():
        existing = set(
            ClassSession.objects.filter(group_class=group_class, start__in=starts).values_list(
                "start", flat=True
            )
        )
        next_order = ClassSession.objects.filter(group_class=group_class).count()
        for start in starts:
            if start in existing:
                continue
            created.append(
                ClassSession(
                    group_class=group_class,
                    start=start,
                    location=location,
                    sort_order=next_order + len(created),
                )
            )
        ClassSession.objects.bulk_create(created)
    return created
