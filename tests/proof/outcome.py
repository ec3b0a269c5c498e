"""Driving the meeting jobs until nothing is left, and counting what came out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db.models import Min

from tests.proof.flaky import FlakyMeetingsServer
from wagtail_bookings_vc import meetings
from wagtail_bookings_vc.models import Booking, BookingStatus, Meeting, MeetingState
from wagtail_bookings_vc.reports import report_queryset

Runner = Callable[..., Any]


def _progress() -> tuple:
    """What a sweep changes when it gets anything done."""
    return tuple(
        Meeting.objects.order_by("pk").values_list(
            "pk", "state", "attempts", "next_attempt_at", "claimed_at", "external_id"
        )
    )


def _next_event(now: dt.datetime) -> dt.datetime | None:
    """The next moment a meeting becomes due: a retry, or the end of a claim's lease."""
    retry = Meeting.objects.filter(next_attempt_at__gt=now).aggregate(first=Min("next_attempt_at"))[
        "first"
    ]
    claim = Meeting.objects.filter(claimed_at__gt=now - meetings.LEASE).aggregate(
        first=Min("claimed_at")
    )["first"]
    moments = [retry] if retry is not None else []
    if claim is not None:
        moments.append(claim + meetings.LEASE + dt.timedelta(seconds=1))
    return min(moments) if moments else None


def drive_until_quiet(
    run: Runner, start: dt.datetime, limit: int = 100_000
) -> tuple[int, dt.datetime]:
    """Run the sweep, moving the clock on to each next retry, until nothing is left to do.

    ``run(function, *args, **kwargs)`` calls a function and then runs the jobs it left for
    after the commit. Claims abandoned by a killed worker are taken over once their lease
    has passed.

    Returns:
        How many sweeps ran, and the clock at the end.
    """
    now, sweeps = start, 0
    while True:
        if meetings.due_meetings(now).exists():
            before = _progress()
            run(meetings.sweep_meetings, now=now)
            sweeps += 1
            assert sweeps < limit, "the sweep never settles"
            if _progress() != before:
                continue
        # Nothing due, or nothing the sweep may touch yet (a claim inside its lease).
        later = _next_event(now)
        if later is None:
            return sweeps, now
        now = later


def settle(run: Runner, start: dt.datetime, rounds: int = 3) -> tuple[int, int, dt.datetime]:
    """Drive until quiet; retry what the jobs gave up on, as the report's *Retry* does.

    At most ``rounds`` retries: what still fails then is left for the test to report.

    Returns:
        Sweeps run, meetings retried, and the clock at the end.
    """
    sweeps, clock = drive_until_quiet(run, start)
    retried = 0
    for _round in range(rounds):
        gave_up = list(Meeting.objects.filter(meetings.GAVE_UP))
        if not gave_up:
            break
        retried += len(gave_up)
        for meeting in gave_up:
            run(meetings.retry, meeting)
        more, clock = drive_until_quiet(run, clock)
        sweeps += more
    return sweeps, retried, clock


def tally(server: FlakyMeetingsServer) -> dict[str, Any]:
    """What the bookings, the meetings, the report and the provider hold now."""
    live = list(
        Booking.objects.filter(status=BookingStatus.CONFIRMED).select_related(
            "meeting", "session__meeting"
        )
    )
    held = dict(server.meetings)
    by_request = server.meetings_by_request()
    lost, wrong_time, owners = [], [], {}
    for booking in live:
        meeting = meetings.meeting_of(booking)
        ready = meeting is not None and meeting.state == MeetingState.READY
        if not ready or meeting.external_id not in held:
            lost.append(booking.reference)
            continue
        owners.setdefault(meeting.pk, []).append(booking)
        at_provider = held[meeting.external_id]
        booked = tuple(moment.isoformat() for moment in meetings.meeting_times(booking))
        if (at_provider["start"], at_provider["end"]) != booked:
            wrong_time.append(booking.reference)
    ready = Meeting.objects.filter(state=MeetingState.READY)
    ready_ids = set(ready.values_list("external_id", flat=True))
    stuck = report_queryset().exclude(
        state__in=[MeetingState.READY, MeetingState.CANCELLED]
    ) | report_queryset().filter(meetings.GAVE_UP)
    return {
        "live_bookings": len(live),
        "meetings_ready": ready.count(),
        "meetings_needed": len(owners),
        "meetings_at_provider": len(held),
        "duplicates": sum(len(ids) - 1 for ids in by_request.values() if len(ids) > 1),
        "lost": lost,
        "wrong_time": wrong_time,
        "orphans_at_provider": sorted(set(held) - ready_ids),
        "stuck_in_report": stuck.count(),
        "waiting_in_report": report_queryset().filter(next_attempt_at__isnull=False).count(),
        "claimed_in_report": report_queryset().filter(claimed_at__isnull=False).count(),
        "shared_meeting_split": [
            ref
            for group in owners.values()
            if len(group) > 1 and not all(b.session_id for b in group)
            for ref in (b.reference for b in group)
        ],
    }
