"""Reading staff members' hours and busy time in two statements, on every backend alike."""

from __future__ import annotations

import datetime as dt

import pytest

from wagtail_bookings_vc import busy_time
from wagtail_bookings_vc.models import BookingStatus

from .factories import (
    AppointmentFactory,
    ClassSessionFactory,
    GroupClassFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
    TimeOffFactory,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC
START = dt.datetime(2027, 3, 8, tzinfo=UTC)
END = START + dt.timedelta(days=1)


def at(hour: int, minute: int = 0, *, day: int = 0) -> dt.datetime:
    return START + dt.timedelta(days=day, hours=hour, minutes=minute)


def rows(staff_ids, *, reach=None, **kwargs):
    found = busy_time.busy_rows(staff_ids, START, END, reach=reach or busy_time.reach(), **kwargs)
    return sorted(found, key=lambda row: (row[0], row[1], str(row[5]), row[2] or 0))


def test_each_kind_comes_back_as_the_orm_would_read_it():
    staff = StaffFactory(hours=[(0, dt.time(9), dt.time(17))])
    service = ServiceFactory(staff=[staff], buffer_before_minutes=10, buffer_after_minutes=20)
    AppointmentFactory(service=service, staff=staff, start=at(10))
    ClassSessionFactory(group_class=GroupClassFactory(staff=staff), start=at(12))
    ClassSessionFactory(
        group_class=GroupClassFactory(staff=staff), start=at(14), duration_minutes=45
    )
    TimeOffFactory(staff=staff, start=at(15), end=at(16))

    found = rows([staff.pk])

    assert found == [
        (busy_time.HOURS, staff.pk, 0, dt.time(9), dt.time(17), None, None, None, None),
        (busy_time.BOOKING, staff.pk, None, None, None, at(10), at(11), 10, 20),
        (busy_time.SESSION, staff.pk, None, None, None, at(12), None, None, 60),
        (busy_time.SESSION, staff.pk, None, None, None, at(14), None, 45, 60),
        (busy_time.TIME_OFF, staff.pk, None, None, None, at(15), at(16), None, None),
    ]
    # Aware, in UTC, whatever the backend stores.
    assert all(row[5].utcoffset() == dt.timedelta(0) for row in found if row[5])


def test_only_confirmed_appointments_of_these_staff_members_in_range_count():
    staff, other = StaffFactory(), StaffFactory()
    service = ServiceFactory(staff=[staff, other])
    kept = AppointmentFactory(service=service, staff=staff, start=at(9))
    AppointmentFactory(service=service, staff=staff, start=at(11), status=BookingStatus.CANCELLED)
    AppointmentFactory(service=service, staff=other, start=at(12))
    AppointmentFactory(service=service, staff=staff, start=at(9, day=3))
    AppointmentFactory(service=service, staff=staff, start=at(9, day=-3))
    # A seat in a class is not an appointment: its session counts instead.
    SeatFactory(session=ClassSessionFactory(group_class=GroupClassFactory(staff=staff)))

    bookings = [row for row in rows([staff.pk]) if row[0] == busy_time.BOOKING]

    assert [(row[5], row[6]) for row in bookings] == [(kept.start, kept.end)]


def test_a_booking_can_be_left_out():
    staff = StaffFactory()
    service = ServiceFactory(staff=[staff])
    moving = AppointmentFactory(service=service, staff=staff, start=at(9))
    AppointmentFactory(service=service, staff=staff, start=at(11))

    bookings = [
        row[5] for row in rows([staff.pk], exclude_booking=moving.pk) if row[0] == busy_time.BOOKING
    ]

    assert bookings == [at(11)]


def test_the_reach_widens_the_read_by_the_largest_buffers_and_the_longest_session():
    staff = StaffFactory()
    night = ServiceFactory(staff=[staff], buffer_after_minutes=6 * 60, duration_minutes=60)
    ServiceFactory(buffer_before_minutes=90)
    GroupClassFactory(staff=staff, duration_minutes=180)
    # Ends an hour before the range, but its buffer reaches five hours into it.
    AppointmentFactory(service=night, staff=staff, start=at(-2))
    # Starts two hours before the range and lasts three.
    long_class = GroupClassFactory(staff=staff, duration_minutes=180)
    ClassSessionFactory(group_class=long_class, start=at(-2))
    ClassSessionFactory(group_class=long_class, start=at(-4))  # over before the range

    reach = busy_time.reach()
    assert reach == busy_time.Reach(
        before=dt.timedelta(minutes=90),
        after=dt.timedelta(hours=6),
        session=dt.timedelta(hours=3),
    )
    kinds = [(row[0], row[5]) for row in rows([staff.pk], reach=reach)]
    assert (busy_time.BOOKING, at(-2)) in kinds
    assert (busy_time.SESSION, at(-2)) in kinds
    # Started longer before the range than any session lasts.
    assert (busy_time.SESSION, at(-4)) not in kinds


def test_cancelled_sessions_do_not_block():
    staff = StaffFactory()
    group_class = GroupClassFactory(staff=staff)
    ClassSessionFactory(group_class=group_class, start=at(10), cancelled=True)

    assert [row for row in rows([staff.pk]) if row[0] == busy_time.SESSION] == []


def test_an_empty_installation_reaches_nothing():
    assert busy_time.reach() == busy_time.Reach(dt.timedelta(0), dt.timedelta(0), dt.timedelta(0))


def test_many_staff_members_are_read_in_one_statement(django_assert_num_queries):
    team = [StaffFactory() for _ in range(5)]
    service = ServiceFactory(staff=team)
    for member in team:
        AppointmentFactory(service=service, staff=member, start=at(9))
    reach = busy_time.reach()

    with django_assert_num_queries(1):
        found = rows([member.pk for member in team], reach=reach)

    assert {row[1] for row in found if row[0] == busy_time.BOOKING} == {m.pk for m in team}
    assert sum(row[0] == busy_time.HOURS for row in found) == 5 * 5


def test_asked_about_a_service_each_staff_member_who_offers_it_has_a_row():
    offering, other = StaffFactory(), StaffFactory()
    service = ServiceFactory(staff=[offering])

    found = rows([offering.pk, other.pk], offering=service.pk)

    assert [row[1] for row in found if row[0] == busy_time.OFFERS] == [offering.pk]
    assert not [row for row in rows([offering.pk]) if row[0] == busy_time.OFFERS]


def test_the_members_of_a_service_come_with_the_reach():
    first, second, inactive, elsewhere = (
        StaffFactory(time_zone="Europe/Rome"),
        StaffFactory(time_zone="America/New_York"),
        StaffFactory(active=False),
        StaffFactory(),
    )
    service = ServiceFactory(staff=[second, first, inactive], buffer_after_minutes=15)
    ServiceFactory(staff=[elsewhere])

    members, reach = busy_time.members_and_reach(service.pk)

    assert [(member.pk, member.time_zone) for member in members] == [
        (first.pk, "Europe/Rome"),
        (second.pk, "America/New_York"),
    ]
    assert reach == busy_time.reach()
    assert reach.after == dt.timedelta(minutes=15)
    only, _reach = busy_time.members_and_reach(service.pk, second.pk)
    assert [member.pk for member in only] == [second.pk]
    assert busy_time.members_and_reach(service.pk, inactive.pk)[0] == []
    assert busy_time.members_and_reach(service.pk, elsewhere.pk)[0] == []


def test_no_staff_member_asks_nothing(django_assert_num_queries):
    nothing = busy_time.Reach(dt.timedelta(0), dt.timedelta(0), dt.timedelta(0))

    with django_assert_num_queries(0):
        assert busy_time.busy_rows([], START, END, reach=nothing) == []
