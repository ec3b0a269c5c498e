"""Many members asking for the same time or the last seats at once, in real threads.

On PostgreSQL the booking writers lock the staff member's or the session's row and
check again once they hold the lock, so exactly as many requests succeed as there is
room for. SQLite has no row locks: with ``transaction_mode = "IMMEDIATE"`` every
transaction takes the database's write lock when it begins, which serialises the
writers just as well. That variant needs a database file shared by the threads, so it
runs only when ``BVC_SQLITE_TEST_NAME`` names one, for example::

    BVC_SQLITE_TEST_NAME=/tmp/bvc-test.sqlite3 pytest tests/test_concurrency.py

and the PostgreSQL variant runs with ``BVC_DATABASE=postgres``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections

from wagtail_bookings_vc.bookings import BookingError, book_appointment, book_session
from wagtail_bookings_vc.models import Booking, BookingStatus

from .factories import (
    ClassSessionFactory,
    GroupClassFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)

ROME = ZoneInfo("Europe/Rome")
MONDAY = dt.date(2027, 3, 8)
NOW = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)


def _sqlite_file() -> bool:
    test_name = connection.settings_dict.get("TEST", {}).get("NAME")
    return connection.vendor == "sqlite" and bool(test_name) and ":memory:" not in str(test_name)


on_postgres = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (BVC_DATABASE=postgres)"
    ),
]
on_sqlite_file = pytest.mark.skipif(
    not _sqlite_file(),
    reason="needs a SQLite database file shared by the threads (BVC_SQLITE_TEST_NAME)",
)
both_databases = pytest.mark.parametrize(
    "database",
    [pytest.param("postgresql", marks=on_postgres), pytest.param("sqlite", marks=on_sqlite_file)],
)

pytestmark = pytest.mark.django_db(transaction=True)


def rome(hour: int) -> dt.datetime:
    return dt.datetime.combine(MONDAY, dt.time(hour), ROME)


def race(attempts: list[Callable[[], Any]]) -> list[Any]:
    """Run every attempt in its own thread, all released at the same moment.

    Returns:
        Each attempt's result, or the exception it raised, in the order given.
    """
    barrier = threading.Barrier(len(attempts))
    results: list[Any] = [None] * len(attempts)

    def run(index: int, attempt: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = attempt()
        # Kept and checked in the main thread: an exception must not vanish with its thread.
        except Exception as error:  # noqa: BLE001
            results[index] = error
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(index, attempt), daemon=True)
        for index, attempt in enumerate(attempts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a booking never finished"
    return results


def outcomes(results: list[Any]) -> Counter[str]:
    """How many attempts succeeded, and how many failed with each error code."""
    unexpected = [r for r in results if not isinstance(r, Booking | BookingError)]
    assert not unexpected, unexpected
    return Counter("ok" if isinstance(r, Booking) else r.code for r in results)


@both_databases
def test_twenty_members_racing_for_the_last_three_seats_get_exactly_three(database):
    session = ClassSessionFactory(
        group_class=GroupClassFactory(capacity=23), start=rome(18), duration_minutes=60
    )
    SeatFactory.create_batch(20, session=session)
    members = UserFactory.create_batch(20)

    results = race(
        [
            lambda member=member: book_session(member=member, session=session, now=NOW)
            for member in members
        ]
    )

    assert outcomes(results) == {"ok": 3, "full": 17}
    confirmed = Booking.objects.filter(session=session, status=BookingStatus.CONFIRMED)
    assert confirmed.count() == 23
    winners = {r.member_id for r in results if isinstance(r, Booking)}
    assert set(confirmed.filter(member__in=members).values_list("member_id", flat=True)) == winners


@both_databases
def test_ten_members_racing_for_one_staff_slot_get_exactly_one(database):
    staff = StaffFactory()
    service = ServiceFactory(staff=[staff], max_days_ahead=365)
    members = UserFactory.create_batch(10)

    results = race(
        [
            lambda member=member: book_appointment(
                member=member, service=service, staff=staff, start=rome(10), now=NOW
            )
            for member in members
        ]
    )

    assert outcomes(results) == {"ok": 1, "taken": 9}
    (taken,) = {str(r) for r in results if isinstance(r, BookingError)}
    assert taken == "This time has just been taken by someone else. Please choose another."
    assert Booking.objects.filter(staff=staff, status=BookingStatus.CONFIRMED).count() == 1


@both_databases
def test_members_racing_for_different_slots_of_one_staff_member_all_succeed(database):
    staff = StaffFactory()
    service = ServiceFactory(staff=[staff], max_days_ahead=365)
    members = UserFactory.create_batch(8)

    results = race(
        [
            lambda member=member, hour=hour: book_appointment(
                member=member, service=service, staff=staff, start=rome(hour), now=NOW
            )
            for member, hour in zip(members, range(9, 17), strict=True)
        ]
    )

    assert outcomes(results) == {"ok": 8}
    assert Booking.objects.filter(staff=staff, status=BookingStatus.CONFIRMED).count() == 8


@both_databases
def test_one_member_booking_the_same_session_twice_at_once_gets_one_seat(database):
    session = ClassSessionFactory(group_class=GroupClassFactory(capacity=10), start=rome(18))
    member = UserFactory()

    results = race(
        [lambda: book_session(member=member, session=session, now=NOW) for _ in range(5)]
    )

    assert outcomes(results) == {"ok": 1, "already_booked": 4}
    assert Booking.objects.filter(session=session, member=member).count() == 1
