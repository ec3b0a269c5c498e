"""No booking's meeting is lost or made twice while the provider fails a fifth of its calls.

Members book online appointments and seats in online classes through
``wagtail_bookings_vc.bookings``; some bookings are then moved or cancelled. The provider
(:mod:`tests.proof.flaky`) answers 20% of its HTTP calls with a random fault: a 5xx, a 429
with ``Retry-After``, a timeout after the work was done, or an expired access token that
the provider refreshes itself. The jobs run as a worker would run them, and the sweep runs
with the clock moved forward to each next retry, until nothing is left to do.

At the end every booking has exactly one ready meeting at the provider, with the booked
times; no meeting exists twice; cancelled appointments have none; and the online-meetings
report holds no meeting that is stuck, waiting or given up. The counts are printed.

``BVC_PROOF_SIZE`` sets the number of bookings (60 by default, 1000 for the full run);
``BVC_PROOF_SEED`` repeats a run's faults.

The variant on a real django-q2 cluster (two ``qcluster`` processes on Redis, a worker
killed, the queue flushed) is in ``test_cluster.py``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import time
from collections import Counter

import pytest
from django.utils import timezone

from tests.conftest import _with_providers, make_default_account
from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from tests.proof.conftest import SIZE
from tests.proof.flaky import FlakyMeetingsServer
from tests.proof.outcome import drive_until_quiet, settle, tally
from wagtail_bookings_vc import availability, bookings
from wagtail_bookings_vc.models import (
    AccountStatus,
    Meeting,
    MeetingState,
)

SEED = int(os.environ.get("BVC_PROOF_SEED", "20261123"))
FAULT_RATE = 0.2
# The provider's read timeout, and how long a "timeout" fault holds its answer.
READ_TIMEOUT = 0.3
HOLD = 0.45

pytestmark = pytest.mark.django_db


class Plan:
    """How many bookings of each kind a run of ``size`` makes."""

    def __init__(self, size: int) -> None:
        self.seats = max(size // 10, 3)
        self.appointments = size - self.seats
        self.moves = max(self.appointments // 10, 2)
        self.cancellations = max(self.appointments // 20, 2)


def test_every_booking_ends_with_exactly_one_ready_meeting_despite_faults(
    settings, run_jobs, figures
):
    random.seed(SEED)  # the retries' jitter, so that a seed repeats a whole run
    plan = Plan(SIZE)
    started = time.monotonic()
    with FlakyMeetingsServer(fault_rate=FAULT_RATE, seed=SEED, hold_seconds=HOLD) as server:
        _with_providers(
            settings,
            {
                "flaky": {
                    "CLASS": "tests.proof.flaky.FlakyProvider",
                    "API_BASE_URL": server.url,
                    "HTTP_TIMEOUT": (2.0, READ_TIMEOUT),
                }
            },
        )
        account = make_default_account("flaky", credentials=server.issue_credentials())

        # Five staff members, Monday to Friday 9–17, half-hour online appointments.
        staff = StaffFactory.create_batch(5)
        service = ServiceFactory(
            staff=staff,
            online=True,
            duration_minutes=30,
            slot_interval_minutes=30,
            max_days_ahead=120,
            cancellation_cutoff_hours=0,
        )
        members = UserFactory.create_batch(20)
        staff_by_id = {member.pk: member for member in staff}
        tomorrow = timezone.localdate() + dt.timedelta(days=1)
        wanted = plan.appointments + plan.moves
        days = math.ceil(wanted / (len(staff) * 16) * 7 / 5) + 7
        slots = availability.free_slots(service, start_date=tomorrow, days=days)
        assert len(slots) >= wanted
        slots = slots[:wanted]
        booked, spare = slots[: plan.appointments], slots[plan.appointments :]

        appointments = [
            run_jobs(
                bookings.book_appointment,
                member=members[index % len(members)],
                service=service,
                staff=staff_by_id[slot.staff_id],
                start=slot.start,
            )
            for index, slot in enumerate(booked)
        ]

        # Online classes of ten seats, taught by someone who offers no appointments.
        yoga = GroupClassFactory(online=True, capacity=10, staff=StaffFactory())
        sessions = [
            ClassSessionFactory(
                group_class=yoga,
                start=timezone.now() + dt.timedelta(days=2, hours=index),
            )
            for index in range(math.ceil(plan.seats / 10))
        ]
        for index in range(plan.seats):
            run_jobs(
                bookings.book_session,
                member=members[index % 10],
                session=sessions[index // 10],
            )

        # Members move and cancel some appointments while faults go on.
        moved = appointments[: plan.moves]
        for booking, slot in zip(moved, spare, strict=True):
            run_jobs(
                bookings.reschedule,
                booking,
                start=slot.start,
                staff=staff_by_id[slot.staff_id],
                by_staff=True,
            )
        cancelled = appointments[-plan.cancellations :]
        for booking in cancelled:
            run_jobs(bookings.cancel, booking, by_staff=True)

        sweeps, retried, clock = settle(run_jobs, timezone.now())
        server.raise_errors()
        elapsed = time.monotonic() - started
        found = tally(server)
        expected = plan.appointments - plan.cancellations + len(sessions)

        figures(
            f"reliability ({plan.appointments + plan.seats} bookings, in-process jobs)",
            bookings_made=plan.appointments + plan.seats,
            moved=plan.moves,
            cancelled=plan.cancellations,
            meetings_expected=expected,
            meetings_ready=found["meetings_ready"],
            meetings_at_provider=found["meetings_at_provider"],
            api_calls=len(server.requests),
            faults=dict(sorted(server.faults.items())),
            fault_share=f"{sum(server.faults.values()) / len(server.requests):.1%}",
            token_refreshes=server.refreshes,
            sweeps=sweeps,
            clock_moved=str(clock - timezone.now()).split(".")[0],
            gave_up_then_retried=retried,
            duplicates=found["duplicates"],
            lost=len(found["lost"]),
            wrong_time=len(found["wrong_time"]),
            stuck_in_report=found["stuck_in_report"],
            orphans_at_provider=len(found["orphans_at_provider"]),
            seconds=round(elapsed, 1),
            seed=SEED,
        )

        assert sum(server.faults.values()) > 0
        assert found["live_bookings"] == plan.appointments - plan.cancellations + plan.seats
        assert found["lost"] == []
        assert found["meetings_ready"] == found["meetings_needed"] == expected
        assert found["shared_meeting_split"] == []
        assert found["duplicates"] == 0
        assert found["orphans_at_provider"] == []
        assert found["wrong_time"] == []
        assert found["stuck_in_report"] == 0
        assert found["waiting_in_report"] == found["claimed_in_report"] == 0
        cancelled_states = Meeting.objects.filter(booking__in=cancelled).values_list(
            "state", flat=True
        )
        assert set(cancelled_states) == {MeetingState.CANCELLED}
        # The provider refreshed its expired tokens itself: nobody has to reconnect.
        account.refresh_from_db()
        assert account.status == AccountStatus.CONNECTED
        assert server.refreshes > 0 or server.faults["expired"] == 0
        # A fifth of the calls failed, yet almost every meeting was made by its own retries.
        assert retried <= max(1, expected // 100)
        assert Counter(m.state for m in Meeting.objects.all()) == {
            MeetingState.READY: expected,
            MeetingState.CANCELLED: plan.cancellations,
        }


def test_cancelled_before_a_lost_answer_leaves_no_meeting_behind(settings, run_jobs):
    """A create that timed out after the provider made the meeting, then a cancellation.

    The meeting exists at the provider, but the app never heard of its id. When the
    booking is cancelled before the retry, the meeting must still go.
    """
    with FlakyMeetingsServer(fault_rate=1.0, fault_kinds=("timeout",), hold_seconds=HOLD) as server:
        _with_providers(
            settings,
            {
                "flaky": {
                    "CLASS": "tests.proof.flaky.FlakyProvider",
                    "API_BASE_URL": server.url,
                    "HTTP_TIMEOUT": (2.0, READ_TIMEOUT),
                }
            },
        )
        make_default_account("flaky", credentials=server.issue_credentials())
        staff = StaffFactory()
        service = ServiceFactory(staff=[staff], online=True, cancellation_cutoff_hours=0)
        tomorrow = timezone.localdate() + dt.timedelta(days=1)
        slot = availability.free_slots(service, start_date=tomorrow, days=7)[0]
        booking = run_jobs(
            bookings.book_appointment,
            member=UserFactory(),
            service=service,
            staff=staff,
            start=slot.start,
        )
        assert len(server.meetings) == 1  # made, but its answer never arrived
        assert Meeting.objects.get(booking=booking).external_id == ""

        server.fault_rate = 0.0
        run_jobs(bookings.cancel, booking, by_staff=True)
        drive_until_quiet(run_jobs, timezone.now())

        assert Meeting.objects.get(booking=booking).state == MeetingState.CANCELLED
        assert server.meetings == {}
