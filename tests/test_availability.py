"""Free appointment slots and class seats: hours, buffers, busy time, rules and clock changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from wagtail_bookings_vc.availability import (
    Slot,
    check_slot,
    day_slots,
    free_slots,
    is_slot_free,
    local_to_utc,
    overlaps,
    seats_left,
    upcoming_sessions,
)

from .factories import (
    AppointmentFactory,
    ClassSessionFactory,
    GroupClassFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
    TimeOffFactory,
)

ROME = ZoneInfo("Europe/Rome")
UTC = dt.UTC
MONDAY = dt.date(2027, 3, 8)  # Rome is on standard time (UTC+1) that week
# Well before MONDAY, so that neither the notice nor the window gets in the way.
BEFORE = dt.datetime(2027, 3, 1, 7, 0, tzinfo=UTC)
SPRING_FORWARD = dt.date(2027, 3, 28)  # Sunday: 02:00 CET becomes 03:00 CEST
FALL_BACK = dt.date(2027, 10, 31)  # Sunday: 03:00 CEST becomes 02:00 CET
HALF_HOUR = dt.timedelta(minutes=30)


def rome(day: dt.date, hour: int, minute: int = 0, fold: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), ROME).replace(fold=fold)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def starts(slots: list[Slot]) -> list[dt.datetime]:
    return [slot.start for slot in slots]


def local_hours(slots: list[Slot]) -> list[str]:
    return [f"{slot.start.astimezone(ROME):%H:%M}" for slot in slots]


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def service(staff):
    """One-hour appointments every hour with a staff member who works 9–17 on weekdays."""
    return ServiceFactory(staff=[staff], max_days_ahead=365)


def monday_slots(service, **kwargs) -> list[str]:
    return local_hours(free_slots(service, start_date=MONDAY, days=1, now=BEFORE, **kwargs))


# --------------------------------------------------------------------------------------
# The pure core
# --------------------------------------------------------------------------------------


def test_touching_intervals_do_not_overlap():
    ten, eleven, noon = utc(2027, 1, 1, 10), utc(2027, 1, 1, 11), utc(2027, 1, 1, 12)
    assert not overlaps(ten, eleven, [(eleven, noon)])
    assert overlaps(ten, eleven + dt.timedelta(seconds=1), [(eleven, noon)])


def test_day_slots_step_from_the_opening_and_end_within_the_span():
    result = day_slots(
        MONDAY,
        [(dt.time(9), dt.time(11, 50))],
        ROME,
        [],
        duration=dt.timedelta(minutes=45),
        step=dt.timedelta(minutes=40),
    )
    assert [f"{s.astimezone(ROME):%H:%M}" for s in result] == ["09:00", "09:40", "10:20", "11:00"]


def test_day_slots_need_the_whole_slot_inside_one_span():
    result = day_slots(
        MONDAY,
        [(dt.time(9), dt.time(10, 30)), (dt.time(10, 30), dt.time(12))],
        ROME,
        [],
        duration=dt.timedelta(hours=1),
        step=HALF_HOUR,
    )
    assert [f"{s.astimezone(ROME):%H:%M}" for s in result] == ["09:00", "09:30", "10:30", "11:00"]


def test_overlapping_spans_do_not_offer_a_start_twice():
    result = day_slots(
        MONDAY,
        [(dt.time(9), dt.time(12)), (dt.time(10), dt.time(13))],
        ROME,
        [],
        duration=dt.timedelta(hours=1),
        step=dt.timedelta(hours=1),
    )
    assert len(result) == len(set(result)) == 4


def test_day_slots_fit_between_overlapping_and_touching_busy_intervals():
    busy = [
        (rome(MONDAY, 10), rome(MONDAY, 11)),
        (rome(MONDAY, 10, 30), rome(MONDAY, 11, 30)),
        (rome(MONDAY, 12, 30), rome(MONDAY, 13)),
    ]
    result = day_slots(
        MONDAY,
        [(dt.time(9), dt.time(15))],
        ROME,
        busy,
        duration=dt.timedelta(hours=1),
        step=HALF_HOUR,
    )
    # 11:30–12:30 touches both busy times without overlapping either.
    assert [f"{s.astimezone(ROME):%H:%M}" for s in result] == [
        "09:00",
        "11:30",
        "13:00",
        "13:30",
        "14:00",
    ]


def test_a_local_time_in_the_spring_gap_is_the_moment_the_clocks_jump():
    jump = utc(2027, 3, 28, 1, 0)
    assert local_to_utc(SPRING_FORWARD, dt.time(2, 30), ROME) == jump
    assert local_to_utc(SPRING_FORWARD, dt.time(2, 30), ROME, closing=True) == jump
    assert local_to_utc(SPRING_FORWARD, dt.time(2, 0), ROME) == jump


def test_a_local_time_in_the_autumn_fold_opens_at_its_first_and_closes_at_its_second_occurrence():
    assert local_to_utc(FALL_BACK, dt.time(2, 30), ROME) == utc(2027, 10, 31, 0, 30)
    assert local_to_utc(FALL_BACK, dt.time(2, 30), ROME, closing=True) == utc(2027, 10, 31, 1, 30)


def test_a_day_skipped_by_its_time_zone_has_no_working_time():
    # Samoa moved across the date line and skipped 30 December 2011 entirely.
    apia = ZoneInfo("Pacific/Apia")
    skipped = dt.date(2011, 12, 30)
    result = day_slots(
        skipped,
        [(dt.time(9), dt.time(17))],
        apia,
        [],
        duration=dt.timedelta(hours=1),
        step=dt.timedelta(hours=1),
    )
    assert result == []


# --------------------------------------------------------------------------------------
# A normal day
# --------------------------------------------------------------------------------------


def test_a_normal_weekday_offers_every_hour_of_the_working_day(service, staff):
    slots = free_slots(service, start_date=MONDAY, days=1, now=BEFORE)
    # Rome is UTC+1 in early March: 09:00 local is 08:00 UTC.
    assert starts(slots) == [utc(2027, 3, 8, hour) for hour in range(8, 16)]
    assert all(slot.end - slot.start == dt.timedelta(hours=1) for slot in slots)
    assert {slot.staff_id for slot in slots} == {staff.pk}
    assert all(slot.start.utcoffset() == dt.timedelta(0) for slot in slots)


def test_slots_cover_each_local_date_and_skip_days_without_hours(service):
    slots = free_slots(service, start_date=MONDAY, days=7, now=BEFORE)
    dates = sorted({slot.start.astimezone(ROME).date() for slot in slots})
    assert dates == [MONDAY + dt.timedelta(days=n) for n in range(5)]
    assert len(slots) == 5 * 8


def test_without_its_own_interval_a_service_uses_the_default_step(settings, staff):
    settings.WAGTAIL_BOOKINGS_VC = {"DEFAULT_SLOT_INTERVAL_MINUTES": 20}
    service = ServiceFactory(staff=[staff], slot_interval_minutes=None, duration_minutes=60)
    hours = monday_slots(service)
    assert hours[:4] == ["09:00", "09:20", "09:40", "10:00"]
    assert hours[-1] == "16:00"


@pytest.mark.django_db
def test_slots_of_several_staff_are_sorted_by_start_then_staff():
    early = StaffFactory(hours=[(0, dt.time(8), dt.time(10))])
    late = StaffFactory(hours=[(0, dt.time(9), dt.time(11))])
    service = ServiceFactory(staff=[late, early], max_days_ahead=365)
    slots = free_slots(service, start_date=MONDAY, days=1, now=BEFORE)
    assert [(f"{s.start.astimezone(ROME):%H}", s.staff_id) for s in slots] == [
        ("08", early.pk),
        ("09", early.pk),
        ("09", late.pk),
        ("10", late.pk),
    ]
    only_late = free_slots(service, start_date=MONDAY, days=1, now=BEFORE, staff=late)
    assert {slot.staff_id for slot in only_late} == {late.pk}


@pytest.mark.django_db
def test_slots_of_a_team_are_each_members_slots_merged_in_order():
    team = [
        StaffFactory(time_zone="Europe/Rome"),
        StaffFactory(time_zone="Europe/London"),
        StaffFactory(time_zone="America/New_York", hours=[(6, dt.time(0), dt.time(23, 59))]),
    ]
    service = ServiceFactory(
        staff=team, duration_minutes=45, slot_interval_minutes=30, max_days_ahead=365
    )
    AppointmentFactory(service=service, staff=team[0], start=rome(SPRING_FORWARD, 10))
    TimeOffFactory(staff=team[1], start=rome(MONDAY, 11), end=rome(MONDAY, 13))
    first = SPRING_FORWARD - dt.timedelta(days=21)
    slots = free_slots(service, start_date=first, days=28, now=BEFORE)
    each = [
        slot
        for member in team
        for slot in free_slots(service, start_date=first, days=28, now=BEFORE, staff=member)
    ]
    assert slots == sorted(each, key=lambda slot: (slot.start, slot.staff_id))
    assert {slot.staff_id for slot in slots} == {member.pk for member in team}


def test_free_slots_read_like_a_list_of_slots(service, staff):
    slots = free_slots(service, start_date=MONDAY, days=1, now=BEFORE)
    as_list = list(slots)
    assert len(slots) == 8
    assert slots[0] == Slot(utc(2027, 3, 8, 8), utc(2027, 3, 8, 9), staff.pk)
    assert slots[-1] == as_list[-1] == Slot(utc(2027, 3, 8, 15), utc(2027, 3, 8, 16), staff.pk)
    assert slots[2:4] == as_list[2:4]
    assert isinstance(slots[2:4], list)
    assert slots == as_list
    assert as_list == slots
    assert slots != as_list[:-1]
    assert as_list[3] in slots
    assert not free_slots(service, start_date=MONDAY + dt.timedelta(days=5), days=2, now=BEFORE)


@pytest.mark.django_db
def test_each_staff_member_works_in_their_own_time_zone():
    london = StaffFactory(time_zone="Europe/London", hours=[(0, dt.time(9), dt.time(10))])
    service = ServiceFactory(staff=[london], max_days_ahead=365)
    assert starts(free_slots(service, start_date=MONDAY, days=1, now=BEFORE)) == [
        utc(2027, 3, 8, 9)
    ]


def test_free_slots_default_to_the_current_time(service):
    with time_machine.travel(dt.datetime(2027, 3, 8, 11, 30, tzinfo=ROME), tick=False):
        hours = local_hours(free_slots(service, start_date=MONDAY, days=1))
    # An hour's notice from 11:30: the first start is 13:00.
    assert hours == ["13:00", "14:00", "15:00", "16:00"]


@pytest.mark.django_db
def test_free_slots_load_the_whole_range_in_a_fixed_number_of_queries(
    django_assert_max_num_queries,
):
    team = [StaffFactory() for _ in range(3)]
    service = ServiceFactory(staff=team, max_days_ahead=365)
    for member in team:
        AppointmentFactory(service=service, staff=member, start=rome(MONDAY, 10))
        TimeOffFactory(staff=member, start=rome(MONDAY, 14), end=rome(MONDAY, 15))
        ClassSessionFactory(group_class=GroupClassFactory(staff=member), start=rome(MONDAY, 12))
    with django_assert_max_num_queries(2):
        slots = free_slots(service, start_date=MONDAY, days=14, now=BEFORE)
    assert len(slots) == 3 * (10 * 8 - 3)


# --------------------------------------------------------------------------------------
# Busy time: bookings, buffers, classes, time off
# --------------------------------------------------------------------------------------


def test_a_confirmed_booking_blocks_its_time(service, staff):
    AppointmentFactory(service=service, staff=staff, start=rome(MONDAY, 10))
    assert "10:00" not in monday_slots(service)
    assert len(monday_slots(service)) == 7


def test_a_booking_of_another_service_blocks_the_staff_member_too(service, staff):
    other = ServiceFactory(staff=[staff], duration_minutes=90)
    AppointmentFactory(service=other, staff=staff, start=rome(MONDAY, 10, 30))
    assert monday_slots(service) == ["09:00", "12:00", "13:00", "14:00", "15:00", "16:00"]


def test_a_cancelled_booking_does_not_block(service, staff):
    AppointmentFactory(service=service, staff=staff, start=rome(MONDAY, 10), status="cancelled")
    assert "10:00" in monday_slots(service)


def test_a_booking_with_another_staff_member_does_not_block(service, staff):
    colleague = StaffFactory()
    AppointmentFactory(service=service, staff=colleague, start=rome(MONDAY, 10))
    assert "10:00" in monday_slots(service)


def test_an_excluded_booking_does_not_block_so_it_can_be_moved(service, staff):
    booking = AppointmentFactory(service=service, staff=staff, start=rome(MONDAY, 10))
    assert "10:00" in monday_slots(service, exclude_booking=booking)
    assert "10:00" in monday_slots(service, exclude_booking=booking.pk)


def test_buffer_after_keeps_free_time_after_the_slot(staff):
    service = ServiceFactory(
        staff=[staff], slot_interval_minutes=30, buffer_after_minutes=30, max_days_ahead=365
    )
    AppointmentFactory(service=ServiceFactory(), staff=staff, start=rome(MONDAY, 11))
    hours = monday_slots(service)
    # 10:00–11:00 plus 30 minutes after reaches into the 11:00 booking; 09:30 just fits.
    assert "09:30" in hours
    assert "10:00" not in hours
    assert "12:00" in hours


def test_buffer_before_keeps_free_time_before_the_slot(staff):
    service = ServiceFactory(
        staff=[staff], slot_interval_minutes=30, buffer_before_minutes=30, max_days_ahead=365
    )
    AppointmentFactory(service=ServiceFactory(), staff=staff, start=rome(MONDAY, 11))
    hours = monday_slots(service)
    assert "10:00" in hours
    assert "12:00" not in hours
    assert "12:30" in hours


def test_buffers_may_reach_outside_the_working_hours(staff):
    service = ServiceFactory(
        staff=[staff], buffer_before_minutes=30, buffer_after_minutes=30, max_days_ahead=365
    )
    hours = monday_slots(service)
    assert hours[0] == "09:00"
    assert hours[-1] == "16:00"


def test_another_bookings_buffers_block_time_around_it(staff):
    service = ServiceFactory(staff=[staff], slot_interval_minutes=30, max_days_ahead=365)
    padded = ServiceFactory(buffer_before_minutes=30, buffer_after_minutes=30)
    AppointmentFactory(service=padded, staff=staff, start=rome(MONDAY, 11))
    hours = monday_slots(service)
    # Busy 10:30–12:30: the 10:00 and 12:00 slots would touch its buffers.
    assert "09:30" in hours
    assert "10:00" not in hours
    assert "12:00" not in hours
    assert "12:30" in hours


def test_a_long_buffer_of_a_booking_the_day_before_still_blocks(staff):
    service = ServiceFactory(staff=[staff], max_days_ahead=365)
    night = ServiceFactory(buffer_after_minutes=11 * 60)
    sunday = MONDAY - dt.timedelta(days=1)
    AppointmentFactory(service=night, staff=staff, start=rome(sunday, 22))
    # 23:00 on Sunday plus eleven hours: busy until 10:00 on Monday.
    assert monday_slots(service)[0] == "10:00"


def test_time_off_blocks_the_slots_it_touches(service, staff):
    TimeOffFactory(staff=staff, start=rome(MONDAY, 10, 30), end=rome(MONDAY, 12))
    assert monday_slots(service) == ["09:00", "12:00", "13:00", "14:00", "15:00", "16:00"]


def test_time_off_over_several_days_blocks_them_all(service, staff):
    TimeOffFactory(staff=staff, start=rome(MONDAY, 0), end=rome(MONDAY + dt.timedelta(days=2), 0))
    slots = free_slots(service, start_date=MONDAY, days=3, now=BEFORE)
    assert {slot.start.astimezone(ROME).date() for slot in slots} == {MONDAY + dt.timedelta(days=2)}


def test_a_class_session_taught_by_the_staff_member_blocks_their_time(service, staff):
    yoga = GroupClassFactory(staff=staff, duration_minutes=60)
    ClassSessionFactory(group_class=yoga, start=rome(MONDAY, 10))
    ClassSessionFactory(group_class=yoga, start=rome(MONDAY, 14), duration_minutes=120)
    assert monday_slots(service) == ["09:00", "11:00", "12:00", "13:00", "16:00"]


def test_a_cancelled_class_session_does_not_block(service, staff):
    ClassSessionFactory(
        group_class=GroupClassFactory(staff=staff), start=rome(MONDAY, 10), cancelled=True
    )
    assert "10:00" in monday_slots(service)


def test_a_class_session_of_another_instructor_does_not_block(service, staff):
    ClassSessionFactory(group_class=GroupClassFactory(), start=rome(MONDAY, 10))
    assert "10:00" in monday_slots(service)


def test_a_long_class_session_that_began_the_day_before_still_blocks(service, staff):
    retreat = GroupClassFactory(staff=staff, duration_minutes=36 * 60)
    ClassSessionFactory(group_class=retreat, start=rome(MONDAY - dt.timedelta(days=1), 0))
    assert monday_slots(service)[0] == "12:00"


# --------------------------------------------------------------------------------------
# Booking rules: notice, window, active
# --------------------------------------------------------------------------------------


def test_minimum_notice_hides_slots_that_start_too_soon(service):
    now = rome(MONDAY, 9, 10)
    hours = local_hours(free_slots(service, start_date=MONDAY, days=1, now=now))
    # One hour's notice from 09:10: 10:00 is too soon, 11:00 is fine.
    assert hours == ["11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]


def test_slots_in_the_past_are_never_offered(staff):
    service = ServiceFactory(staff=[staff], min_notice_minutes=0)
    hours = local_hours(free_slots(service, start_date=MONDAY, days=1, now=rome(MONDAY, 12)))
    assert hours == ["12:00", "13:00", "14:00", "15:00", "16:00"]


def test_max_days_ahead_is_counted_from_now(staff):
    service = ServiceFactory(staff=[staff], max_days_ahead=2)
    now = rome(MONDAY, 9, 10)
    slots = free_slots(service, start_date=MONDAY, days=7, now=now)
    assert slots[-1].start == rome(MONDAY + dt.timedelta(days=2), 9)
    assert {slot.start.astimezone(ROME).date() for slot in slots} == {
        MONDAY,
        MONDAY + dt.timedelta(days=1),
        MONDAY + dt.timedelta(days=2),
    }


def test_an_inactive_service_has_no_slots(service):
    service.active = False
    service.save()
    assert free_slots(service, start_date=MONDAY, days=7, now=BEFORE) == []


def test_an_inactive_staff_member_has_no_slots(service, staff):
    colleague = StaffFactory()
    service.staff.add(colleague)
    service.save()
    staff.active = False
    staff.save()
    slots = free_slots(service, start_date=MONDAY, days=1, now=BEFORE)
    assert {slot.staff_id for slot in slots} == {colleague.pk}
    assert free_slots(service, start_date=MONDAY, days=1, now=BEFORE, staff=staff) == []


def test_a_staff_member_who_does_not_offer_the_service_has_no_slots(service):
    stranger = StaffFactory()
    assert free_slots(service, start_date=MONDAY, days=1, now=BEFORE, staff=stranger) == []


# --------------------------------------------------------------------------------------
# Clock changes (Europe/Rome, 2027)
# --------------------------------------------------------------------------------------


def sunday_worker(opening: dt.time, closing: dt.time):
    return StaffFactory(hours=[(6, opening, closing)])


@pytest.mark.django_db
def test_a_working_day_on_the_spring_forward_sunday_is_on_summer_time():
    staff = sunday_worker(dt.time(9), dt.time(17))
    service = ServiceFactory(staff=[staff], max_days_ahead=365)
    slots = free_slots(service, start_date=SPRING_FORWARD, days=1, now=BEFORE)
    assert starts(slots) == [utc(2027, 3, 28, hour) for hour in range(7, 15)]


@pytest.mark.django_db
def test_a_working_day_on_the_fall_back_sunday_is_on_standard_time():
    staff = sunday_worker(dt.time(9), dt.time(17))
    service = ServiceFactory(staff=[staff], max_days_ahead=365)
    slots = free_slots(service, start_date=FALL_BACK, days=1, now=BEFORE)
    assert starts(slots) == [utc(2027, 10, 31, hour) for hour in range(8, 16)]


@pytest.mark.django_db
def test_spring_forward_offers_no_local_time_that_does_not_exist():
    staff = sunday_worker(dt.time(1), dt.time(4))
    service = ServiceFactory(
        staff=[staff], duration_minutes=30, slot_interval_minutes=30, max_days_ahead=365
    )
    slots = free_slots(service, start_date=SPRING_FORWARD, days=1, now=BEFORE)
    # 01:00–02:00 standard time, then the clocks jump to 03:00 summer time: two hours.
    assert starts(slots) == [
        utc(2027, 3, 28, 0, 0),
        utc(2027, 3, 28, 0, 30),
        utc(2027, 3, 28, 1, 0),
        utc(2027, 3, 28, 1, 30),
    ]
    assert local_hours(slots) == ["01:00", "01:30", "03:00", "03:30"]
    for slot in slots:
        local = slot.start.astimezone(ROME)
        # A time that exists survives the round trip through its wall-clock reading.
        assert local.replace(tzinfo=None).replace(tzinfo=ROME).astimezone(UTC) == slot.start


@pytest.mark.django_db
def test_spring_forward_opening_inside_the_gap_starts_when_the_clocks_jump():
    staff = sunday_worker(dt.time(2, 30), dt.time(5))
    service = ServiceFactory(
        staff=[staff], duration_minutes=30, slot_interval_minutes=30, max_days_ahead=365
    )
    slots = free_slots(service, start_date=SPRING_FORWARD, days=1, now=BEFORE)
    assert local_hours(slots) == ["03:00", "03:30", "04:00", "04:30"]
    assert slots[0].start == utc(2027, 3, 28, 1, 0)


@pytest.mark.django_db
def test_fall_back_offers_the_repeated_hour_twice_without_duplicates():
    staff = sunday_worker(dt.time(1), dt.time(4))
    service = ServiceFactory(
        staff=[staff], duration_minutes=30, slot_interval_minutes=30, max_days_ahead=365
    )
    slots = free_slots(service, start_date=FALL_BACK, days=1, now=BEFORE)
    # 01:00 summer time is 23:00 UTC the day before; 04:00 standard time is 03:00 UTC.
    expected = [utc(2027, 10, 30, 23, 0) + n * HALF_HOUR for n in range(8)]
    assert starts(slots) == expected
    assert len(set(starts(slots))) == 8
    assert local_hours(slots) == [
        "01:00",
        "01:30",
        "02:00",
        "02:30",
        "02:00",
        "02:30",
        "03:00",
        "03:30",
    ]
    assert [slot.start.astimezone(ROME).utcoffset().seconds // 3600 for slot in slots] == [
        2,
        2,
        2,
        2,
        1,
        1,
        1,
        1,
    ]


@pytest.mark.django_db
def test_fall_back_keeps_the_slot_length_in_real_time():
    staff = sunday_worker(dt.time(1), dt.time(4))
    service = ServiceFactory(
        staff=[staff], duration_minutes=60, slot_interval_minutes=60, max_days_ahead=365
    )
    slots = free_slots(service, start_date=FALL_BACK, days=1, now=BEFORE)
    assert len(slots) == 4
    assert all(slot.end - slot.start == dt.timedelta(hours=1) for slot in slots)


@pytest.mark.django_db
def test_a_booking_in_the_second_occurrence_of_the_repeated_hour_blocks_only_that_one():
    staff = sunday_worker(dt.time(1), dt.time(4))
    service = ServiceFactory(
        staff=[staff], duration_minutes=30, slot_interval_minutes=30, max_days_ahead=365
    )
    AppointmentFactory(service=service, staff=staff, start=rome(FALL_BACK, 2, 0, fold=1))
    slots = free_slots(service, start_date=FALL_BACK, days=1, now=BEFORE)
    # Compared in UTC: Python never finds a time in the repeated hour equal to another zone's.
    assert utc(2027, 10, 31, 0, 0) in starts(slots)  # 02:00 summer time
    assert utc(2027, 10, 31, 1, 0) not in starts(slots)  # 02:00 standard time
    assert len(slots) == 7


# --------------------------------------------------------------------------------------
# One slot: is_slot_free and the reason it is not
# --------------------------------------------------------------------------------------


def test_an_offered_slot_is_free(service, staff):
    assert is_slot_free(service, staff, rome(MONDAY, 10), now=BEFORE)
    assert check_slot(service, staff, rome(MONDAY, 10), now=BEFORE) is None


@pytest.mark.parametrize(
    ("start", "now", "code"),
    [
        (rome(MONDAY, 10), rome(MONDAY, 10, 1), "in_past"),
        (rome(MONDAY, 10), rome(MONDAY, 9, 30), "too_soon"),
        (rome(MONDAY, 10), rome(MONDAY, 10) - dt.timedelta(days=366), "too_far"),
        (rome(MONDAY, 10, 15), BEFORE, "unavailable"),
        (rome(MONDAY, 17), BEFORE, "unavailable"),
        (rome(MONDAY + dt.timedelta(days=5), 10), BEFORE, "unavailable"),
    ],
)
def test_a_slot_that_is_not_offered_says_why(service, staff, start, now, code):
    assert check_slot(service, staff, start, now=now) == code
    assert not is_slot_free(service, staff, start, now=now)


def test_a_slot_held_by_another_booking_is_taken(service, staff):
    booking = AppointmentFactory(service=service, staff=staff, start=rome(MONDAY, 10))
    assert check_slot(service, staff, rome(MONDAY, 10), now=BEFORE) == "taken"
    assert check_slot(service, staff, rome(MONDAY, 10), now=BEFORE, exclude_booking=booking) is None


def test_a_slot_during_time_off_or_a_class_is_unavailable_not_taken(service, staff):
    TimeOffFactory(staff=staff, start=rome(MONDAY, 10), end=rome(MONDAY, 11))
    ClassSessionFactory(group_class=GroupClassFactory(staff=staff), start=rome(MONDAY, 14))
    assert check_slot(service, staff, rome(MONDAY, 10), now=BEFORE) == "unavailable"
    assert check_slot(service, staff, rome(MONDAY, 14), now=BEFORE) == "unavailable"


def test_a_slot_with_an_inactive_service_or_staff_member_is_inactive(service, staff):
    staff.active = False
    assert check_slot(service, staff, rome(MONDAY, 10), now=BEFORE) == "inactive"
    staff.active = True
    service.active = False
    assert check_slot(service, staff, rome(MONDAY, 10), now=BEFORE) == "inactive"


def test_a_slot_with_a_staff_member_who_does_not_offer_the_service_is_unavailable(service):
    assert check_slot(service, StaffFactory(), rome(MONDAY, 10), now=BEFORE) == "unavailable"


def test_a_naive_start_is_refused(service, staff):
    with pytest.raises(ValueError, match="aware"):
        is_slot_free(service, staff, dt.datetime(2027, 3, 8, 10), now=BEFORE)


# --------------------------------------------------------------------------------------
# Class sessions
# --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seats_left_counts_only_confirmed_bookings():
    session = ClassSessionFactory(group_class=GroupClassFactory(capacity=5))
    SeatFactory.create_batch(2, session=session)
    SeatFactory(session=session, status="cancelled")
    assert seats_left(session) == 3


@pytest.mark.django_db
def test_seats_left_uses_the_session_capacity_when_it_overrides_the_class():
    session = ClassSessionFactory(group_class=GroupClassFactory(capacity=10), capacity=3)
    SeatFactory(session=session)
    assert seats_left(session) == 2


@pytest.mark.django_db
def test_seats_left_is_never_negative_when_the_capacity_is_lowered():
    session = ClassSessionFactory(group_class=GroupClassFactory(capacity=5))
    SeatFactory.create_batch(3, session=session)
    session.capacity = 1
    session.save()
    assert seats_left(session) == 0


@pytest.mark.django_db
def test_upcoming_sessions_are_ordered_and_carry_the_seats_left(django_assert_num_queries):
    now = rome(MONDAY, 8)
    yoga = GroupClassFactory(capacity=4)
    later = ClassSessionFactory(group_class=yoga, start=rome(MONDAY, 18))
    sooner = ClassSessionFactory(group_class=yoga, start=rome(MONDAY, 10), capacity=2)
    SeatFactory(session=sooner)
    SeatFactory.create_batch(2, session=later)
    SeatFactory(session=later, status="cancelled")
    with django_assert_num_queries(2):
        sessions = upcoming_sessions(now=now)
        assert [(s.pk, s.seats_left) for s in sessions] == [(sooner.pk, 1), (later.pk, 2)]
        assert sessions[0].group_class == yoga


@pytest.mark.django_db
def test_a_full_session_is_listed_with_no_seats_left():
    session = ClassSessionFactory(group_class=GroupClassFactory(capacity=1), start=rome(MONDAY, 10))
    SeatFactory.create_batch(1, session=session)
    (listed,) = upcoming_sessions(now=rome(MONDAY, 8))
    assert listed.seats_left == 0


@pytest.mark.django_db
def test_upcoming_sessions_hide_cancelled_and_past_sessions_and_inactive_classes():
    now = rome(MONDAY, 8)
    shown = ClassSessionFactory(start=rome(MONDAY, 10))
    ClassSessionFactory(start=rome(MONDAY, 11), cancelled=True)
    ClassSessionFactory(start=rome(MONDAY, 7))
    ClassSessionFactory(group_class=GroupClassFactory(active=False), start=rome(MONDAY, 12))
    assert upcoming_sessions(now=now) == [shown]


@pytest.mark.django_db
def test_upcoming_sessions_respect_each_class_minimum_notice():
    now = rome(MONDAY, 8)
    strict = GroupClassFactory(min_notice_minutes=180)
    relaxed = GroupClassFactory(min_notice_minutes=30)
    ClassSessionFactory(group_class=strict, start=rome(MONDAY, 10))
    strict_ok = ClassSessionFactory(group_class=strict, start=rome(MONDAY, 11))
    relaxed_ok = ClassSessionFactory(group_class=relaxed, start=rome(MONDAY, 8, 30))
    assert upcoming_sessions(now=now) == [relaxed_ok, strict_ok]


@pytest.mark.django_db
def test_upcoming_sessions_of_one_class_with_a_limit():
    now = rome(MONDAY, 8)
    yoga = GroupClassFactory()
    first, second, _third = (
        ClassSessionFactory(group_class=yoga, start=rome(MONDAY, 9 + n)) for n in range(3)
    )
    ClassSessionFactory(start=rome(MONDAY, 9, 30))
    assert upcoming_sessions(yoga, now=now, limit=2) == [first, second]
    assert upcoming_sessions(GroupClassFactory(active=False), now=now) == []


@pytest.mark.django_db
def test_upcoming_sessions_default_to_the_current_time():
    ClassSessionFactory(start=rome(MONDAY, 9))
    upcoming = ClassSessionFactory(start=rome(MONDAY, 11))
    with time_machine.travel(rome(MONDAY, 10), tick=False):
        assert upcoming_sessions() == [upcoming]
