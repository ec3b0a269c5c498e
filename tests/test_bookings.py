"""Booking, cancelling, rescheduling and paying: every rule, and what each one leaves behind."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import translation

from wagtail_bookings_vc import bookings
from wagtail_bookings_vc.availability import free_slots
from wagtail_bookings_vc.bookings import (
    BookingError,
    book_appointment,
    book_session,
    can_cancel,
    can_reschedule,
    cancel,
    mark_paid,
    reschedule,
)
from wagtail_bookings_vc.models import Booking, BookingStatus, PaymentStatus
from wagtail_bookings_vc.signals import (
    booking_cancelled,
    booking_confirmed,
    booking_paid,
    booking_rescheduled,
)

from .factories import (
    AppointmentFactory,
    ClassSessionFactory,
    GroupClassFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
    TimeOffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ROME = ZoneInfo("Europe/Rome")
MONDAY = dt.date(2027, 3, 8)
NOW = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)


def rome(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), ROME)


TEN = rome(MONDAY, 10)


@pytest.fixture
def member():
    return UserFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com")


@pytest.fixture
def staff():
    return StaffFactory()


@pytest.fixture
def service(staff):
    return ServiceFactory(staff=[staff], max_days_ahead=365)


@pytest.fixture
def session():
    return ClassSessionFactory(group_class=GroupClassFactory(capacity=2), start=TEN)


@pytest.fixture
def received():
    """Every booking signal sent during the test, as (signal name, booking, extra kwargs)."""
    log: list[tuple[str, Booking, dict]] = []
    receivers = {}
    for name, signal in [
        ("confirmed", booking_confirmed),
        ("cancelled", booking_cancelled),
        ("rescheduled", booking_rescheduled),
        ("paid", booking_paid),
    ]:

        def receiver(sender, booking, signal=None, _name=name, **kwargs):
            assert sender is Booking
            log.append((_name, booking, kwargs))

        receivers[signal] = receiver
        signal.connect(receiver, weak=False)
    yield log
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def book(member, service, staff, start=TEN, **kwargs):
    kwargs.setdefault("now", NOW)
    return book_appointment(member=member, service=service, staff=staff, start=start, **kwargs)


def raises(code):
    """Expect a BookingError with ``code``, and check afterwards that nothing was written."""

    class _Raises:
        def __enter__(self):
            self.before = list(Booking.objects.order_by("pk").values())
            self.context = pytest.raises(BookingError)
            self.info = self.context.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.context.__exit__(*exc)
            assert self.info.value.code == code, self.info.value.code
            assert str(self.info.value) == self.info.value.message
            assert list(Booking.objects.order_by("pk").values()) == self.before
            return suppressed

    return _Raises()


# --------------------------------------------------------------------------------------
# Booking an appointment
# --------------------------------------------------------------------------------------


def test_booking_a_free_slot_confirms_it_and_snapshots_the_member(member, service, staff):
    booking = book(member, service, staff, time_zone="Europe/Berlin", notes="  Hello  ")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    assert (booking.service, booking.staff, booking.session) == (service, staff, None)
    assert booking.start == TEN
    assert booking.end == TEN + dt.timedelta(hours=1)
    assert booking.member == member
    assert (booking.member_name, booking.member_email) == ("Ada Lovelace", "ada@example.com")
    assert booking.time_zone == "Europe/Berlin"
    assert booking.language == "en"
    assert booking.notes == "Hello"
    assert booking.sequence == 0
    assert len(booking.reference) == 12


def test_a_booked_slot_is_no_longer_offered(member, service, staff):
    book(member, service, staff)
    slots = free_slots(service, start_date=MONDAY, days=1, now=NOW)
    assert TEN not in [slot.start for slot in slots]


def test_a_free_booking_needs_no_payment(member, service, staff):
    booking = book(member, service, staff)
    assert booking.payment_status == PaymentStatus.NOT_REQUIRED
    assert (booking.price, booking.currency) == (None, "")


def test_a_priced_booking_snapshots_price_and_default_currency_and_awaits_payment(
    member, service, staff, settings
):
    settings.WAGTAIL_BOOKINGS_VC = {"DEFAULT_CURRENCY": "CHF"}
    service.price = Decimal("45.00")
    service.save()
    booking = book(member, service, staff)
    service.price = Decimal("60.00")
    service.save()
    booking.refresh_from_db()
    assert (booking.price, booking.currency) == (Decimal("45.00"), "CHF")
    assert booking.payment_status == PaymentStatus.PENDING


def test_a_priced_booking_keeps_the_services_own_currency(member, service, staff):
    service.price = Decimal("20")
    service.currency = "gbp"
    service.save()
    assert book(member, service, staff).currency == "GBP"


def test_a_member_without_a_full_name_is_named_by_username(service, staff):
    member = UserFactory(username="jdoe", first_name="", last_name="")
    assert book(member, service, staff).member_name == "jdoe"


def test_an_unknown_time_zone_falls_back_to_the_sites(member, service, staff, settings):
    assert book(member, service, staff, time_zone="Mars/Olympus_Mons").time_zone == "Europe/Rome"


def test_the_booking_remembers_the_members_language(member, service, staff):
    with translation.override("it"):
        assert book(member, service, staff).language == "it"


def test_a_start_in_another_time_zone_is_stored_as_the_same_instant(member, service, staff):
    start = TEN.astimezone(ZoneInfo("America/New_York"))
    booking = book(member, service, staff, start=start)
    assert booking.start == TEN
    assert booking.start.tzinfo == dt.UTC


@pytest.mark.parametrize(
    ("start", "now", "code"),
    [
        (TEN, TEN + dt.timedelta(minutes=1), "in_past"),
        (TEN, TEN - dt.timedelta(minutes=30), "too_soon"),
        (TEN, TEN - dt.timedelta(days=400), "too_far"),
        (rome(MONDAY, 10, 20), NOW, "unavailable"),
        (rome(MONDAY, 18), NOW, "unavailable"),
        (rome(MONDAY + dt.timedelta(days=6), 10), NOW, "unavailable"),
    ],
)
def test_booking_a_slot_that_is_not_offered_fails_and_writes_nothing(
    member, service, staff, start, now, code
):
    with raises(code):
        book(member, service, staff, start=start, now=now)


def test_booking_a_slot_someone_else_holds_is_taken(member, service, staff):
    AppointmentFactory(service=service, staff=staff, start=TEN)
    with raises("taken") as info:
        book(member, service, staff)
    assert info.value.message == (
        "This time has just been taken by someone else. Please choose another."
    )


def test_booking_during_time_off_is_unavailable(member, service, staff):
    TimeOffFactory(staff=staff, start=TEN, end=TEN + dt.timedelta(hours=1))
    with raises("unavailable"):
        book(member, service, staff)


def test_booking_a_staff_member_who_does_not_offer_the_service_is_unavailable(member, service):
    with raises("unavailable"):
        book(member, service, StaffFactory())


def test_booking_an_inactive_service_or_staff_member_fails(member, service, staff):
    service.active = False
    service.save()
    with raises("inactive"):
        book(member, service, staff)
    service.active = True
    service.save()
    staff.active = False
    staff.save()
    with raises("inactive"):
        book(member, service, staff)


def test_booking_without_a_signed_in_member_is_not_allowed(service, staff):
    from django.contrib.auth.models import AnonymousUser

    with raises("not_allowed"):
        book(AnonymousUser(), service, staff)
    with raises("not_allowed"):
        book(None, service, staff)


def test_the_too_soon_message_names_the_notice(member, service, staff):
    with raises("too_soon") as info:
        book(member, service, staff, now=TEN - dt.timedelta(minutes=30))
    assert "60 minutes" in info.value.message


# --------------------------------------------------------------------------------------
# Booking a class session
# --------------------------------------------------------------------------------------


def test_booking_a_session_takes_a_seat(member, session):
    booking = book_session(member=member, session=session, now=NOW, time_zone="Europe/Rome")
    booking.refresh_from_db()
    assert (booking.session, booking.service) == (session, None)
    assert booking.staff == session.group_class.staff
    assert (booking.start, booking.end) == (session.start, session.end)
    assert booking.payment_status == PaymentStatus.NOT_REQUIRED
    assert booking.member_name == "Ada Lovelace"


def test_a_priced_class_snapshots_its_price(member, session):
    group_class = session.group_class
    group_class.price = Decimal("12.50")
    group_class.save()
    booking = book_session(member=member, session=session, now=NOW)
    assert (booking.price, booking.currency) == (Decimal("12.50"), "EUR")
    assert booking.payment_status == PaymentStatus.PENDING


def test_a_full_session_cannot_be_booked(member, session):
    SeatFactory.create_batch(2, session=session)
    with raises("full"):
        book_session(member=member, session=session, now=NOW)


def test_cancelled_seats_free_their_place(member, session):
    SeatFactory(session=session)
    SeatFactory(session=session, status=BookingStatus.CANCELLED)
    book_session(member=member, session=session, now=NOW)


def test_a_session_capacity_override_applies(member):
    session = ClassSessionFactory(group_class=GroupClassFactory(capacity=10), capacity=1, start=TEN)
    SeatFactory(session=session)
    with raises("full"):
        book_session(member=member, session=session, now=NOW)


def test_a_member_cannot_hold_two_seats_in_one_session(member, session):
    book_session(member=member, session=session, now=NOW)
    with raises("already_booked"):
        book_session(member=member, session=session, now=NOW)


def test_a_member_who_cancelled_may_book_the_session_again(member, session):
    cancel(book_session(member=member, session=session, now=NOW), now=NOW)
    book_session(member=member, session=session, now=NOW)
    assert Booking.objects.filter(session=session, member=member).count() == 2


def test_the_database_constraint_on_a_second_seat_is_reported_as_already_booked(
    member, session, monkeypatch
):
    book_session(member=member, session=session, now=NOW)
    # As if a second request passed the check before the first one's seat existed.
    monkeypatch.setattr(bookings, "_check_seat", lambda *args, **kwargs: None)
    with raises("already_booked"):
        book_session(member=member, session=session, now=NOW)


@pytest.mark.parametrize(
    ("change", "now", "code"),
    [
        ({"cancelled": True}, NOW, "session_cancelled"),
        ({}, TEN + dt.timedelta(minutes=5), "in_past"),
    ],
)
def test_a_session_that_cannot_be_booked_says_why(member, session, change, now, code):
    for name, value in change.items():
        setattr(session, name, value)
    session.save()
    with raises(code):
        book_session(member=member, session=session, now=now)


def test_a_session_of_an_inactive_class_cannot_be_booked(member, session):
    session.group_class.active = False
    session.group_class.save()
    with raises("inactive"):
        book_session(member=member, session=session, now=NOW)


def test_a_class_minimum_notice_applies(member, session):
    session.group_class.min_notice_minutes = 120
    session.group_class.save()
    with raises("too_soon"):
        book_session(member=member, session=session, now=TEN - dt.timedelta(minutes=90))
    book_session(member=member, session=session, now=TEN - dt.timedelta(minutes=120))


# --------------------------------------------------------------------------------------
# Cancelling
# --------------------------------------------------------------------------------------


def test_a_member_may_cancel_before_the_cut_off(member, service, staff):
    booking = book(member, service, staff)
    now = TEN - dt.timedelta(hours=24)
    assert can_cancel(booking, now=now)
    cancelled = cancel(booking, now=now)
    cancelled.refresh_from_db()
    assert cancelled.status == BookingStatus.CANCELLED
    assert cancelled.cancelled_at == now
    assert cancelled.sequence == 1
    assert booking.status == BookingStatus.CANCELLED  # the caller's instance follows


def test_a_member_cannot_cancel_after_the_cut_off(member, service, staff):
    booking = book(member, service, staff)
    now = TEN - dt.timedelta(hours=23, minutes=59)
    assert not can_cancel(booking, now=now)
    with raises("too_late") as info:
        cancel(booking, now=now)
    assert "24 hours" in info.value.message


def test_staff_may_cancel_after_the_cut_off(member, service, staff):
    booking = book(member, service, staff)
    cancelled = cancel(booking, by_staff=True, now=TEN - dt.timedelta(hours=1))
    assert cancelled.status == BookingStatus.CANCELLED


def test_a_started_booking_cannot_be_cancelled_by_the_member(member, service, staff):
    service.cancellation_cutoff_hours = 0
    service.save()
    booking = book(member, service, staff)
    assert can_cancel(booking, now=TEN - dt.timedelta(minutes=1))
    assert not can_cancel(booking, now=TEN)
    with raises("too_late"):
        cancel(booking, now=TEN)


def test_cancelling_twice_fails(member, service, staff):
    booking = book(member, service, staff)
    cancel(booking, now=NOW)
    assert not can_cancel(booking, now=NOW)
    with raises("already_cancelled"):
        cancel(booking, now=NOW)
    stale = Booking.objects.get(pk=booking.pk)
    stale.status = BookingStatus.CONFIRMED  # an out-of-date copy is checked against the row
    with raises("already_cancelled"):
        cancel(stale, by_staff=True, now=NOW)


def test_a_cancelled_appointment_frees_its_slot(member, service, staff):
    cancel(book(member, service, staff), now=NOW)
    slots = free_slots(service, start_date=MONDAY, days=1, now=NOW)
    assert TEN in [slot.start for slot in slots]
    book(UserFactory(), service, staff)


def test_a_cancelled_seat_frees_its_place(member, session):
    SeatFactory(session=session)
    booking = book_session(member=member, session=session, now=NOW)
    cancel(booking, now=NOW)
    book_session(member=UserFactory(), session=session, now=NOW)


def test_a_class_booking_uses_the_class_cut_off(member, session):
    session.group_class.cancellation_cutoff_hours = 2
    session.group_class.save()
    booking = book_session(member=member, session=session, now=NOW)
    assert can_cancel(booking, now=TEN - dt.timedelta(hours=2))
    assert not can_cancel(booking, now=TEN - dt.timedelta(hours=1))


# --------------------------------------------------------------------------------------
# Rescheduling
# --------------------------------------------------------------------------------------


def test_rescheduling_moves_the_appointment_and_bumps_the_sequence(member, service, staff):
    booking = book(member, service, staff)
    Booking.objects.filter(pk=booking.pk).update(reminder_sent_at=NOW)
    moved = reschedule(booking, start=rome(MONDAY, 14), now=NOW)
    moved.refresh_from_db()
    assert (moved.start, moved.end) == (rome(MONDAY, 14), rome(MONDAY, 15))
    assert moved.sequence == 1
    assert moved.reminder_sent_at is None
    assert booking.start == rome(MONDAY, 14)
    assert moved.price == booking.price


def test_rescheduling_may_overlap_the_bookings_own_old_time(member, staff):
    service = ServiceFactory(staff=[staff], slot_interval_minutes=30, max_days_ahead=365)
    booking = book(member, service, staff)
    moved = reschedule(booking, start=rome(MONDAY, 10, 30), now=NOW)
    assert moved.start == rome(MONDAY, 10, 30)


def test_rescheduling_to_another_staff_member_of_the_service(member, service, staff):
    colleague = StaffFactory()
    service.staff.add(colleague)
    service.save()
    booking = book(member, service, staff)
    moved = reschedule(booking, staff=colleague, now=NOW)
    assert (moved.staff, moved.start) == (colleague, TEN)


def test_rescheduling_to_a_staff_member_who_does_not_offer_the_service_fails(
    member, service, staff
):
    booking = book(member, service, staff)
    with raises("unavailable"):
        reschedule(booking, staff=StaffFactory(), now=NOW)


def test_rescheduling_to_a_taken_slot_fails_and_keeps_the_booking(member, service, staff):
    booking = book(member, service, staff)
    AppointmentFactory(service=service, staff=staff, start=rome(MONDAY, 14))
    with raises("taken"):
        reschedule(booking, start=rome(MONDAY, 14), now=NOW)
    booking.refresh_from_db()
    assert (booking.start, booking.sequence) == (TEN, 0)


def test_rescheduling_follows_the_booking_rules(member, service, staff):
    booking = book(member, service, staff)
    with raises("too_far"):
        reschedule(booking, start=rome(MONDAY + dt.timedelta(days=400), 10), now=NOW)
    with raises("unavailable"):
        reschedule(booking, start=rome(MONDAY, 10, 15), now=NOW)


def test_a_member_cannot_reschedule_after_the_cut_off_but_staff_can(member, service, staff):
    booking = book(member, service, staff)
    late = TEN - dt.timedelta(hours=3)
    assert not can_reschedule(booking, now=late)
    with raises("too_late"):
        reschedule(booking, start=rome(MONDAY, 14), now=late)
    moved = reschedule(booking, start=rome(MONDAY, 14), by_staff=True, now=late)
    assert moved.start == rome(MONDAY, 14)


def test_a_cancelled_booking_cannot_be_rescheduled(member, service, staff):
    booking = book(member, service, staff)
    cancel(booking, now=NOW)
    assert not can_reschedule(booking, now=NOW)
    with raises("already_cancelled"):
        reschedule(booking, start=rome(MONDAY, 14), now=NOW)


def test_a_booking_of_an_inactive_service_cannot_be_rescheduled_by_the_member(
    member, service, staff
):
    booking = book(member, service, staff)
    service.active = False
    service.save()
    booking.refresh_from_db()
    assert can_cancel(booking, now=NOW)
    assert not can_reschedule(booking, now=NOW)


def test_rescheduling_to_the_same_time_changes_nothing(
    member, service, staff, received, django_capture_on_commit_callbacks
):
    booking = book(member, service, staff)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        moved = reschedule(booking, start=TEN, now=NOW)
    assert callbacks == []
    assert moved.sequence == 0


def test_rescheduling_a_class_booking_moves_it_to_another_session(member, session):
    later = ClassSessionFactory(group_class=session.group_class, start=rome(MONDAY, 18))
    booking = book_session(member=member, session=session, now=NOW)
    moved = reschedule(booking, session=later, now=NOW)
    moved.refresh_from_db()
    assert (moved.session, moved.start, moved.end) == (later, later.start, later.end)
    assert moved.sequence == 1


def test_a_class_booking_cannot_move_to_another_class(member, session):
    other = ClassSessionFactory(start=rome(MONDAY, 18))
    booking = book_session(member=member, session=session, now=NOW)
    with raises("unavailable"):
        reschedule(booking, session=other, now=NOW)


def test_a_class_booking_cannot_move_to_a_full_or_cancelled_session(member, session):
    full = ClassSessionFactory(group_class=session.group_class, start=rome(MONDAY, 18), capacity=1)
    SeatFactory(session=full)
    called_off = ClassSessionFactory(
        group_class=session.group_class, start=rome(MONDAY, 19), cancelled=True
    )
    booking = book_session(member=member, session=session, now=NOW)
    with raises("full"):
        reschedule(booking, session=full, now=NOW)
    with raises("session_cancelled"):
        reschedule(booking, session=called_off, now=NOW)


def test_a_class_booking_cannot_move_to_a_session_the_member_already_holds(member, session):
    later = ClassSessionFactory(group_class=session.group_class, start=rome(MONDAY, 18))
    SeatFactory(session=later, member=member)
    booking = book_session(member=member, session=session, now=NOW)
    with raises("already_booked"):
        reschedule(booking, session=later, now=NOW)


def test_reschedule_arguments_must_fit_the_kind_of_booking(member, service, staff, session):
    appointment = book(member, service, staff)
    seat = book_session(member=member, session=session, now=NOW)
    with pytest.raises(ValueError):
        reschedule(appointment, session=session, now=NOW)
    with pytest.raises(ValueError):
        reschedule(appointment, now=NOW)
    with pytest.raises(ValueError):
        reschedule(seat, start=TEN, now=NOW)


# --------------------------------------------------------------------------------------
# Payment
# --------------------------------------------------------------------------------------


def test_mark_paid_records_a_pending_payment_once(
    member, service, staff, received, django_capture_on_commit_callbacks
):
    service.price = Decimal("30")
    service.save()
    booking = book(member, service, staff)
    with django_capture_on_commit_callbacks(execute=True):
        paid = mark_paid(booking)
        again = mark_paid(booking)
    assert paid.payment_status == again.payment_status == PaymentStatus.PAID
    assert Booking.objects.get(pk=booking.pk).payment_status == PaymentStatus.PAID
    assert [name for name, _, _ in received] == ["paid"]


@pytest.mark.parametrize("status", [PaymentStatus.NOT_REQUIRED, PaymentStatus.REFUNDED])
def test_mark_paid_refuses_a_booking_with_nothing_to_pay(member, service, staff, status):
    booking = book(member, service, staff)
    Booking.objects.filter(pk=booking.pk).update(payment_status=status)
    with raises("not_allowed"):
        mark_paid(booking)


# --------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------


def test_confirmation_is_signalled_only_after_the_commit(
    member, service, staff, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        booking = book(member, service, staff)
        assert received == []
    assert received == [("confirmed", booking, {})]


def test_a_session_booking_is_signalled_after_the_commit(
    member, session, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        booking = book_session(member=member, session=session, now=NOW)
        assert received == []
    assert received == [("confirmed", booking, {})]


def test_cancel_and_reschedule_are_signalled_after_the_commit(
    member, service, staff, received, django_capture_on_commit_callbacks
):
    booking = book(member, service, staff)
    with django_capture_on_commit_callbacks(execute=True):
        reschedule(booking, start=rome(MONDAY, 14), now=NOW)
        assert received == []
    assert received == [("rescheduled", booking, {"previous_start": TEN})]
    received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        cancel(booking, now=NOW)
        assert received == []
    assert received == [("cancelled", booking, {})]


def test_a_failed_booking_signals_nothing(
    member, service, staff, received, django_capture_on_commit_callbacks
):
    AppointmentFactory(service=service, staff=staff, start=TEN)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(BookingError),
    ):
        book(member, service, staff)
    assert callbacks == []
    assert received == []


def test_a_booking_rolled_back_by_the_caller_signals_nothing(
    member, service, staff, received, django_capture_on_commit_callbacks
):
    class Abort(Exception):
        pass

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Abort),
        transaction.atomic(),
    ):
        book(member, service, staff)
        raise Abort
    assert callbacks == []
    assert received == []
    assert not Booking.objects.exists()
