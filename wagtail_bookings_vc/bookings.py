"""Book, cancel, reschedule and mark paid: the only code that writes bookings.

Every writer runs in one transaction. It first locks the row that two competing
requests would fight over (the staff member for an appointment, the class session for
a seat) and only then checks availability or capacity, so the check sees every
booking committed meanwhile and two members never get the same time or the last seat.
Signals from :mod:`wagtail_bookings_vc.signals` are sent once the transaction has
committed, so listeners never see a booking that was rolled back.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import get_language, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from . import availability, meetings
from .conf import get_settings
from .models import (
    Booking,
    BookingStatus,
    ClassSession,
    GroupClass,
    PaymentStatus,
    Service,
    Staff,
)
from .signals import booking_cancelled, booking_confirmed, booking_paid, booking_rescheduled

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

__all__ = [
    "MESSAGES",
    "BookingError",
    "book_appointment",
    "book_session",
    "can_cancel",
    "can_reschedule",
    "cancel",
    "mark_paid",
    "reschedule",
]

MESSAGES: dict[str, Any] = {
    "in_past": _("This time has already passed. Please choose another."),
    "too_soon": ngettext_lazy(
        "This must be booked at least %(minutes)d minute ahead. Please choose a later time.",
        "This must be booked at least %(minutes)d minutes ahead. Please choose a later time.",
        "minutes",
    ),
    "too_far": ngettext_lazy(
        "This can be booked at most %(days)d day ahead. Please choose an earlier time.",
        "This can be booked at most %(days)d days ahead. Please choose an earlier time.",
        "days",
    ),
    "unavailable": _("This time is not available. Please choose another."),
    "taken": _("This time has just been taken by someone else. Please choose another."),
    "full": _("Sorry, this session is full."),
    "already_booked": _("You already have a place in this session."),
    "session_cancelled": _("This session has been cancelled."),
    "inactive": _("This can no longer be booked."),
    "too_late": ngettext_lazy(
        "Bookings can be changed or cancelled up to %(hours)d hour before the start.",
        "Bookings can be changed or cancelled up to %(hours)d hours before the start.",
        "hours",
    ),
    "already_cancelled": _("This booking has already been cancelled."),
    "not_allowed": _("This is not allowed."),
}
"""The text shown for each error code; some take named placeholders."""


class BookingError(Exception):
    """A booking rule was broken.

    Attributes:
        message: translated text, ready to show in a form.
        code: a stable identifier of the rule, one of the keys of :data:`MESSAGES`.
    """

    def __init__(self, message: Any, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return str(self.message)

    def __repr__(self) -> str:
        return f"BookingError(code={self.code!r})"


def _error(code: str, message: Any = None, **params: Any) -> BookingError:
    text = message if message is not None else MESSAGES[code]
    return BookingError(str(text % params) if params else str(text), code)


def _slot_error(code: str, service: Service) -> BookingError:
    if code == availability.TOO_SOON:
        return _error(code, minutes=service.min_notice_minutes)
    if code == availability.TOO_FAR:
        return _error(code, days=service.max_days_ahead)
    return _error(code)


def _as_utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC, so that adding a duration adds real time, not wall-clock time."""
    if timezone.is_naive(moment):
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(UTC)


def _now(now: datetime | None) -> datetime:
    return _as_utc(now if now is not None else timezone.now(), "now")


def _valid_time_zone(name: str) -> str:
    """The member's time zone, or the site's when ``name`` is not a known zone."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return settings.TIME_ZONE or "UTC"
    # The field is 64 characters long; no real zone name comes close.
    return name if len(name) <= 64 else settings.TIME_ZONE or "UTC"


def _snapshot(
    booking: Booking,
    member: AbstractBaseUser,
    bookable: Service | GroupClass,
    time_zone: str,
    notes: str,
) -> None:
    """Copy what must not change later when the member, service or class change."""
    booking.member = member
    # Custom user models need not have a full name; every one has a username.
    full_name = member.get_full_name() if hasattr(member, "get_full_name") else ""
    booking.member_name = (full_name.strip() or member.get_username())[:255]
    booking.member_email = getattr(member, "email", "") or ""
    price: Decimal | None = bookable.price
    booking.price = price
    booking.currency = (
        (bookable.currency or get_settings().DEFAULT_CURRENCY).upper() if price is not None else ""
    )
    booking.payment_status = (
        PaymentStatus.PENDING if bookable.is_priced else PaymentStatus.NOT_REQUIRED
    )
    booking.time_zone = _valid_time_zone(time_zone)
    booking.language = (get_language() or "")[:16]
    booking.notes = notes.strip()


def _check_member(member: AbstractBaseUser | None) -> None:
    if member is None or not getattr(member, "is_authenticated", False):
        raise _error("not_allowed")


def _send_on_commit(signal: Any, booking: Booking, **kwargs: Any) -> None:
    transaction.on_commit(partial(signal.send, sender=Booking, booking=booking, **kwargs))


def _copy_into(target: Booking, source: Booking) -> Booking:
    """Update the caller's instance too, so that it does not keep stale values."""
    if target is not source:
        for model_field in Booking._meta.concrete_fields:
            setattr(target, model_field.attname, getattr(source, model_field.attname))
    return source


def _for_update(queryset: QuerySet) -> QuerySet:
    """Lock the rows ``queryset`` reads until the transaction ends.

    Where the database can, the lock is ``FOR NO KEY UPDATE``: it still serialises the
    writers that take it, but does not hold up a new booking that merely refers to the
    locked row (its foreign-key check only needs a key-share lock). Backends without row
    locks ignore this; SQLite's IMMEDIATE transactions serialise writers instead.
    """
    features = connections[queryset.db].features
    return queryset.select_for_update(
        no_key=features.has_select_for_no_key_update,
        of=("self",) if features.has_select_for_update_of else (),
    )


def _lock_staff(staff: Staff) -> Staff:
    try:
        return _for_update(Staff.objects.all()).get(pk=staff.pk)
    except Staff.DoesNotExist:
        raise _error("inactive") from None


def _lock_session(session: ClassSession) -> ClassSession:
    try:
        return _for_update(ClassSession.objects.select_related("group_class")).get(pk=session.pk)
    except ClassSession.DoesNotExist:
        raise _error("session_cancelled") from None


def _lock_booking(booking: Booking) -> Booking:
    return _for_update(Booking.objects.all()).get(pk=booking.pk)


def _check_seat(
    session: ClassSession, member: AbstractBaseUser, now: datetime, *, moving: Booking | None
) -> None:
    """Raise unless ``member`` may take a seat in the (locked) ``session``."""
    group_class = session.group_class
    if session.cancelled:
        raise _error("session_cancelled")
    if not group_class.active:
        raise _error("inactive")
    if session.start < now:
        raise _error("in_past")
    if session.start < now + timedelta(minutes=group_class.min_notice_minutes):
        raise _error("too_soon", minutes=group_class.min_notice_minutes)
    confirmed = Booking.objects.filter(session=session, status=BookingStatus.CONFIRMED)
    if moving is not None:
        confirmed = confirmed.exclude(pk=moving.pk)
    if confirmed.filter(member=member).exists():
        raise _error("already_booked")
    if confirmed.count() >= session.effective_capacity:
        raise _error("full")


def _save_seat(booking: Booking, **save_kwargs: Any) -> None:
    """Save a class booking; the database refuses a second seat for the same member."""
    try:
        # A savepoint, so that the surrounding transaction stays usable after the error.
        with transaction.atomic():
            booking.save(**save_kwargs)
    except IntegrityError:
        if Booking.objects.filter(
            session_id=booking.session_id, member=booking.member, status=BookingStatus.CONFIRMED
        ).exists():
            raise _error("already_booked") from None
        raise


# --------------------------------------------------------------------------------------
# Booking
# --------------------------------------------------------------------------------------


def book_appointment(
    *,
    member: AbstractBaseUser,
    service: Service,
    staff: Staff,
    start: datetime,
    time_zone: str = "UTC",
    notes: str = "",
    now: datetime | None = None,
) -> Booking:
    """Book an appointment of ``service`` with ``staff`` at ``start``.

    Args:
        member: the signed-in user who books.
        service: the service booked.
        staff: the staff member who delivers it.
        start: an aware start time, one of the slots offered by
            :func:`~wagtail_bookings_vc.availability.free_slots`.
        time_zone: the member's time zone, for emails and pages (an unknown name falls
            back to the site's time zone).
        notes: anything the member wants the staff member to know.
        now: the current time (defaults to ``timezone.now()``).

    Returns:
        The confirmed booking. ``booking_confirmed`` is sent once the transaction commits.

    Raises:
        BookingError: with code ``"inactive"``, ``"in_past"``, ``"too_soon"``,
            ``"too_far"``, ``"unavailable"``, ``"taken"`` or ``"not_allowed"``; nothing
            is written.
    """
    now = _now(now)
    start = _as_utc(start, "start")
    _check_member(member)
    with transaction.atomic():
        # Serialises every booking of this staff member's time: whoever comes second
        # waits here and then sees the first one's booking in the check below.
        locked_staff = _lock_staff(staff)
        problem = availability.check_slot(service, locked_staff, start, now=now)
        if problem is not None:
            raise _slot_error(problem, service)
        booking = Booking(
            service=service,
            staff=locked_staff,
            start=start,
            end=start + timedelta(minutes=service.duration_minutes),
            status=BookingStatus.CONFIRMED,
        )
        _snapshot(booking, member, service, time_zone, notes)
        booking.save()
        meetings.plan_booking(booking, new=True)
        _send_on_commit(booking_confirmed, booking)
    return booking


def book_session(
    *,
    member: AbstractBaseUser,
    session: ClassSession,
    time_zone: str = "UTC",
    notes: str = "",
    now: datetime | None = None,
) -> Booking:
    """Book a seat in a class session.

    Args:
        member: the signed-in user who books.
        session: the class session.
        time_zone: the member's time zone, for emails and pages (an unknown name falls
            back to the site's time zone).
        notes: anything the member wants the instructor to know.
        now: the current time (defaults to ``timezone.now()``).

    Returns:
        The confirmed booking, whose ``staff`` is the class's instructor at booking time.
        ``booking_confirmed`` is sent once the transaction commits.

    Raises:
        BookingError: with code ``"session_cancelled"``, ``"inactive"``, ``"in_past"``,
            ``"too_soon"``, ``"already_booked"``, ``"full"`` or ``"not_allowed"``;
            nothing is written.
    """
    now = _now(now)
    _check_member(member)
    with transaction.atomic():
        # Serialises every sign-up for this session, so the seat count below is exact.
        locked = _lock_session(session)
        _check_seat(locked, member, now, moving=None)
        group_class = locked.group_class
        booking = Booking(
            session=locked,
            staff_id=group_class.staff_id,
            start=locked.start,
            end=locked.end,
            status=BookingStatus.CONFIRMED,
        )
        _snapshot(booking, member, group_class, time_zone, notes)
        _save_seat(booking)
        meetings.plan_booking(booking)
        _send_on_commit(booking_confirmed, booking)
    return booking


# --------------------------------------------------------------------------------------
# Changing a booking
# --------------------------------------------------------------------------------------


def _cutoff(booking: Booking) -> timedelta:
    bookable = booking.bookable
    hours = bookable.cancellation_cutoff_hours if bookable is not None else 0
    return timedelta(hours=hours)


def _before_cutoff(booking: Booking, now: datetime) -> bool:
    return now < booking.start and now <= booking.start - _cutoff(booking)


def _too_late(booking: Booking) -> BookingError:
    return _error("too_late", hours=int(_cutoff(booking).total_seconds() // 3600))


def can_cancel(booking: Booking, now: datetime | None = None) -> bool:
    """Whether the member may still cancel this booking.

    Args:
        booking: the booking.
        now: the current time (defaults to ``timezone.now()``).

    Returns:
        ``True`` when the booking is confirmed, has not started and the service's or
        class's cancellation cut-off has not passed.
    """
    return booking.status == BookingStatus.CONFIRMED and _before_cutoff(booking, _now(now))


def can_reschedule(booking: Booking, now: datetime | None = None) -> bool:
    """Whether the member may still move this booking to another time.

    Args:
        booking: the booking.
        now: the current time (defaults to ``timezone.now()``).

    Returns:
        ``True`` when :func:`can_cancel` is true and the service or class is still
        bookable.
    """
    bookable = booking.bookable
    return bool(bookable is not None and bookable.active and can_cancel(booking, now))


def cancel(booking: Booking, *, by_staff: bool = False, now: datetime | None = None) -> Booking:
    """Cancel a booking.

    Args:
        booking: the booking to cancel; the instance is updated too.
        by_staff: cancelled by a staff member or administrator, who may do so at any
            time; a member must respect the cancellation cut-off.
        now: the current time (defaults to ``timezone.now()``).

    Returns:
        The cancelled booking. ``booking_cancelled`` is sent once the transaction commits.

    Raises:
        BookingError: with code ``"already_cancelled"`` or ``"too_late"``; nothing is
            written.
    """
    now = _now(now)
    with transaction.atomic():
        locked = _lock_booking(booking)
        if locked.status == BookingStatus.CANCELLED:
            _copy_into(booking, locked)
            raise _error("already_cancelled")
        if not by_staff and not _before_cutoff(locked, now):
            raise _too_late(locked)
        locked.status = BookingStatus.CANCELLED
        locked.cancelled_at = now
        locked.sequence += 1
        locked.save(update_fields=["status", "cancelled_at", "sequence", "updated_at"])
        meetings.booking_cancelled(locked)
        _send_on_commit(booking_cancelled, locked)
    return _copy_into(booking, locked)


def reschedule(
    booking: Booking,
    *,
    start: datetime | None = None,
    staff: Staff | None = None,
    session: ClassSession | None = None,
    by_staff: bool = False,
    now: datetime | None = None,
) -> Booking:
    """Move a booking to another time.

    An appointment moves to a new ``start`` and optionally to another ``staff`` member
    of the same service; a class booking moves to another ``session`` of the same class.
    The new time must pass the same checks as a new booking.

    Args:
        booking: the booking to move; the instance is updated too.
        start: the new aware start time of an appointment.
        staff: another staff member for an appointment (default: the same one).
        session: the new session of a class booking.
        by_staff: moved by a staff member or administrator, who is not bound by the
            members' cut-off.
        now: the current time (defaults to ``timezone.now()``).

    Returns:
        The moved booking, with its ``sequence`` increased and its reminder due again.
        ``booking_rescheduled`` is sent with ``previous_start`` once the transaction
        commits. Moving a booking to where it already is changes nothing.

    Raises:
        BookingError: with code ``"already_cancelled"``, ``"too_late"``, or any code
            of :func:`book_appointment` or :func:`book_session`; nothing is written.
        ValueError: when the arguments do not fit the kind of booking.
    """
    now = _now(now)
    if start is not None:
        start = _as_utc(start, "start")
    if booking.is_class:
        if session is None or start is not None or staff is not None:
            raise ValueError("a class booking moves to another session, and only that")
    elif session is not None or (start is None and staff is None):
        raise ValueError("an appointment moves to a new start time and/or staff member")

    with transaction.atomic():
        locked = _lock_booking(booking)
        if locked.status == BookingStatus.CANCELLED:
            raise _error("already_cancelled")
        if not by_staff and not _before_cutoff(locked, now):
            raise _too_late(locked)
        previous_start = locked.start
        # The arguments were matched to the kind of booking above.
        if session is not None:
            moved = _move_seat(locked, session, now)
        else:
            moved = _move_appointment(locked, start or locked.start, staff, now)
        if not moved:
            return _copy_into(booking, locked)
        locked.sequence += 1
        locked.reminder_sent_at = None
        fields = ["session", "staff", "start", "end", "sequence", "reminder_sent_at", "updated_at"]
        if locked.is_class:
            _save_seat(locked, update_fields=fields)
        else:
            locked.save(update_fields=fields)
        meetings.booking_moved(locked)
        _send_on_commit(booking_rescheduled, locked, previous_start=previous_start)
    return _copy_into(booking, locked)


def _move_appointment(
    booking: Booking, start: datetime, staff: Staff | None, now: datetime
) -> bool:
    """Check and set the new time of a locked appointment; ``False`` when it stays put."""
    target = staff if staff is not None else booking.staff
    if target is None:
        raise _error("unavailable")
    if target.pk == booking.staff_id and start == booking.start:
        return False
    service = booking.service
    locked_staff = _lock_staff(target)
    problem = availability.check_slot(
        service, locked_staff, start, now=now, exclude_booking=booking
    )
    if problem is not None:
        raise _slot_error(problem, service)
    booking.staff = locked_staff
    booking.start = start
    booking.end = start + timedelta(minutes=service.duration_minutes)
    return True


def _move_seat(booking: Booking, session: ClassSession, now: datetime) -> bool:
    """Check and set the new session of a locked class booking; ``False`` when it stays put."""
    if session.pk == booking.session_id:
        return False
    current_class_id = (
        ClassSession.objects.filter(pk=booking.session_id)
        .values_list("group_class_id", flat=True)
        .get()
    )
    locked = _lock_session(session)
    if locked.group_class_id != current_class_id:
        raise _error("unavailable")
    _check_seat(locked, booking.member, now, moving=booking)
    booking.session = locked
    booking.staff_id = locked.group_class.staff_id
    booking.start = locked.start
    booking.end = locked.end
    return True


# --------------------------------------------------------------------------------------
# Payment
# --------------------------------------------------------------------------------------


def mark_paid(booking: Booking) -> Booking:
    """Record that a booking's price has been paid.

    Payment integrations call this when a payment succeeds; calling it again for a paid
    booking changes nothing, so a repeated payment notification is harmless.

    Args:
        booking: the booking paid for; the instance is updated too.

    Returns:
        The booking, now paid. ``booking_paid`` is sent once the transaction commits
        (only when the status changed).

    Raises:
        BookingError: with code ``"not_allowed"`` when no payment is due (a free booking)
            or the payment was refunded; nothing is written. A payment that arrives
            after the booking was cancelled is still recorded, so that it can be refunded.
    """
    with transaction.atomic():
        locked = _lock_booking(booking)
        if locked.payment_status == PaymentStatus.PAID:
            return _copy_into(booking, locked)
        if locked.payment_status != PaymentStatus.PENDING:
            raise _error("not_allowed", _("No payment is due for this booking."))
        locked.payment_status = PaymentStatus.PAID
        locked.save(update_fields=["payment_status", "updated_at"])
        _send_on_commit(booking_paid, locked)
    return _copy_into(booking, locked)
