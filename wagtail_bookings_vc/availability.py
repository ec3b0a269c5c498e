"""When something can be booked: free appointment slots and seats left in class sessions.

The core is pure (no database): :func:`day_slots` turns one local day's working hours,
the busy intervals around it and the service's timing into free start times. The rest
of the module loads what that core needs, for a whole range of days at once, and
answers the questions views and :mod:`wagtail_bookings_vc.bookings` ask.

All instants are aware datetimes; slots are returned in UTC. Working hours are read
in the staff member's time zone: a span covers every instant at which the staff
member's wall clock shows a time from its opening to its closing, and candidates follow
the service's step in absolute time from the opening. So daylight-saving changes need
no special cases:

* a local time that does not exist (the spring-forward gap) is never offered; an
  opening or closing time that falls into the gap is the moment the clocks jump;
* in the autumn fold the repeated local hour is worked twice and gives two distinct
  slots (for example 02:00 summer time and 02:00 standard time), each offered once.

Inside, instants are whole microseconds since the Unix epoch (exact: a datetime has no
finer resolution). Busy time becomes a sorted list of the start times it rules out, and
the free starts of a span are whole runs of the slot grid between those, so a month of
a busy team costs little more than the slots it returns. Datetimes are made only for
the result; a service with many staff members shares them between slots that start
together.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import overload
from zoneinfo import ZoneInfo

from django.db.models import Count, IntegerField, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from . import busy_time
from .conf import get_settings
from .models import (
    Booking,
    BookingStatus,
    ClassSession,
    GroupClass,
    Service,
    Staff,
)

__all__ = [
    "FreeSlots",
    "Interval",
    "Slot",
    "check_slot",
    "day_slots",
    "free_slots",
    "is_slot_free",
    "local_to_utc",
    "overlaps",
    "seats_left",
    "upcoming_sessions",
]

Interval = tuple[datetime, datetime]
"""A half-open span of time ``[start, end)`` between two aware datetimes."""

# Codes returned by check_slot(); they are also BookingError codes.
IN_PAST = "in_past"
TOO_SOON = "too_soon"
TOO_FAR = "too_far"
UNAVAILABLE = "unavailable"
TAKEN = "taken"
INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class Slot:
    """A free start time of a service with one staff member.

    Attributes:
        start: aware datetime in UTC.
        end: aware datetime in UTC (``start`` plus the service's duration).
        staff_id: primary key of the staff member who is free.
    """

    start: datetime
    end: datetime
    staff_id: int


class FreeSlots(Sequence[Slot]):
    """Free slots in order, as :func:`free_slots` returns them: a read-only sequence.

    It keeps the start times, end times and staff ids in three flat lists and makes each
    :class:`Slot` as it is read. A month of a large team has thousands of slots, of which
    a caller usually keeps a few (one week, one per time); thousands of objects kept
    alive would make Python's garbage collector walk the whole process far more often.

    It reads like a list: ``len``, iteration, indexing and ``in``; a slice is a list of
    slots, and it equals a list (or another ``FreeSlots``) holding the same slots.

    Args:
        starts: the slots' start times, in order.
        ends: their end times.
        staff_ids: their staff members' primary keys.
    """

    __slots__ = ("_ends", "_staff_ids", "_starts")

    def __init__(
        self,
        starts: list[datetime] | None = None,
        ends: list[datetime] | None = None,
        staff_ids: list[int] | None = None,
    ) -> None:
        self._starts = starts or []
        self._ends = ends or []
        self._staff_ids = staff_ids or []
        if not len(self._starts) == len(self._ends) == len(self._staff_ids):
            raise ValueError("starts, ends and staff ids must be as many")

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[Slot]:
        return map(Slot, self._starts, self._ends, self._staff_ids)

    @overload
    def __getitem__(self, index: int) -> Slot: ...

    @overload
    def __getitem__(self, index: slice) -> list[Slot]: ...

    def __getitem__(self, index: int | slice) -> Slot | list[Slot]:
        if isinstance(index, slice):
            return list(map(Slot, self._starts[index], self._ends[index], self._staff_ids[index]))
        return Slot(self._starts[index], self._ends[index], self._staff_ids[index])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FreeSlots):
            return (self._starts, self._ends, self._staff_ids) == (
                other._starts,
                other._ends,
                other._staff_ids,
            )
        if isinstance(other, list):
            return len(self) == len(other) and all(map(operator.eq, self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


# --------------------------------------------------------------------------------------
# Pure core
# --------------------------------------------------------------------------------------


def local_to_utc(day: date, at: time, zone: ZoneInfo, *, closing: bool = False) -> datetime:
    """Return the UTC instant at which the wall clock in ``zone`` shows ``day`` ``at``.

    Args:
        day: the local date.
        at: the local wall-clock time.
        zone: the time zone the wall clock is in.
        closing: whether the time closes a span rather than opens it. In the autumn fold
            a local time happens twice: an opening time is its first occurrence and a
            closing time its second, so that a span covers all the working time.

    Returns:
        An aware datetime in UTC. A local time that does not exist (the spring-forward
        gap) gives the instant at which the clocks jump over it.
    """
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return first
    if first < second:
        return second if closing else first
    # In a gap, fold=0 reads the time with the offset before the jump and fold=1 with
    # the offset after it, so the jump itself lies between the two readings.
    return _transition_between(second, first, zone)


def _transition_between(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in ``(low, high]`` whose UTC offset in ``zone`` differs from low's.

    Zone transitions happen on whole seconds, so bisecting whole seconds is exact.
    """
    offset = low.astimezone(zone).utcoffset()
    low_second = math.floor(low.timestamp())
    high_second = math.ceil(high.timestamp())
    while high_second - low_second > 1:
        middle = (low_second + high_second) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            low_second = middle
        else:
            high_second = middle
    return datetime.fromtimestamp(high_second, UTC)


def overlaps(start: datetime, end: datetime, busy: Iterable[Interval]) -> bool:
    """Whether ``[start, end)`` shares any time with one of the ``busy`` intervals.

    Intervals that only touch (one ends when the other starts) do not overlap.
    """
    return any(busy_start < end and start < busy_end for busy_start, busy_end in busy)


def day_slots(
    day: date,
    spans: Iterable[tuple[time, time]],
    zone: ZoneInfo,
    busy: Sequence[Interval],
    *,
    duration: timedelta,
    step: timedelta,
    buffer_before: timedelta = timedelta(0),
    buffer_after: timedelta = timedelta(0),
    earliest: datetime | None = None,
    latest: datetime | None = None,
) -> list[datetime]:
    """Free start times on one local day of one staff member.

    Candidates start at each span's opening and follow every ``step`` in absolute time.
    A candidate ``[start, start + duration]`` is offered when it lies within one span,
    starts between ``earliest`` and ``latest``, and, widened by the buffers, overlaps
    none of the ``busy`` intervals. Buffers may reach outside the working hours.

    Args:
        day: the local date, in ``zone``.
        spans: the working hours of that weekday as local ``(opening, closing)`` times.
        zone: the staff member's time zone.
        busy: intervals in which nothing may be booked (already widened by the buffers
            of whatever makes them busy).
        duration: length of the appointment.
        step: distance between two candidate start times; must be positive.
        buffer_before: free time the service keeps before each appointment.
        buffer_after: free time the service keeps after each appointment.
        earliest: no start before this instant (``now`` plus the minimum notice).
        latest: no start after this instant (the end of the booking window).

    Returns:
        Sorted, distinct start times in UTC.
    """
    grid = _Grid.of(duration, step, buffer_before, buffer_after)
    blocked = _Blocked.of(((_micros(start), _micros(end)) for start, end in busy), grid)
    found = _day_starts(
        day,
        list(spans),
        zone,
        blocked,
        grid,
        earliest=None if earliest is None else _micros(earliest),
        latest=None if latest is None else _micros(latest),
        openings={},
    )
    return [_instant(start) for start in found]


# Integer time: microseconds since the Unix epoch.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MINUTE = 60_000_000

_Micros = tuple[int, int]
"""A half-open span ``[start, end)`` in microseconds since the epoch."""


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class _Grid:
    """A service's timing in microseconds."""

    duration: int
    step: int
    buffer_before: int
    buffer_after: int

    @classmethod
    def of(
        cls,
        duration: timedelta,
        step: timedelta,
        buffer_before: timedelta,
        buffer_after: timedelta,
    ) -> _Grid:
        if step <= timedelta(0):
            raise ValueError("step must be positive")
        return cls(
            duration // _MICROSECOND,
            step // _MICROSECOND,
            buffer_before // _MICROSECOND,
            buffer_after // _MICROSECOND,
        )


@dataclass(frozen=True, slots=True)
class _Blocked:
    """The start times busy intervals rule out: sorted, disjoint open ranges ``(low, high)``.

    A start ``s`` is ruled out by busy ``[b, e)`` when ``[s - buffer_before,
    s + duration + buffer_after)`` overlaps it, that is when
    ``b - duration - buffer_after < s < e + buffer_before``.
    """

    lows: list[int]
    highs: list[int]

    @classmethod
    def of(cls, busy: Iterable[_Micros], grid: _Grid) -> _Blocked:
        reach = grid.duration + grid.buffer_after
        lows: list[int] = []
        highs: list[int] = []
        for low, high in sorted((start - reach, end + grid.buffer_before) for start, end in busy):
            if low >= high:
                continue
            # Ranges that only touch stay apart: the start between them is free.
            if highs and low < highs[-1]:
                highs[-1] = max(highs[-1], high)
            else:
                lows.append(low)
                highs.append(high)
        return cls(lows, highs)

    def free_starts(self, first: int, last: int, step: int, into: list[int]) -> None:
        """Append to ``into`` the points ``first``, ``first + step``, … up to ``last``
        that no range holds, as whole runs of the grid between the ranges."""
        lows, highs = self.lows, self.highs
        count = len(lows)
        index = bisect_right(highs, first)  # the first range that ends after ``first``
        while first <= last:
            if index == count or lows[index] >= last:
                into.extend(range(first, last + 1, step))
                return
            low, high = lows[index], highs[index]
            if low >= first:
                into.extend(range(first, low + 1, step))
            if high > first:
                first -= (first - high) // step * step  # the first point at or after high
            index += 1


def _day_starts(
    day: date,
    spans: Sequence[tuple[time, time]],
    zone: ZoneInfo,
    blocked: _Blocked,
    grid: _Grid,
    *,
    earliest: int | None,
    latest: int | None,
    openings: dict[tuple[ZoneInfo, date, time, bool], int],
) -> list[int]:
    """:func:`day_slots` in microseconds; ``openings`` keeps the local times already read
    in UTC, for the other staff members who work the same hours in the same zone."""
    found: list[int] = []
    for opening_time, closing_time in spans:
        opening = _local_micros(openings, day, opening_time, zone, closing=False)
        closing = _local_micros(openings, day, closing_time, zone, closing=True)
        last = closing - grid.duration
        if latest is not None and latest < last:
            last = latest
        first = opening
        if earliest is not None and earliest > first:
            first -= (first - earliest) // grid.step * grid.step
        blocked.free_starts(first, last, grid.step, found)
    # Overlapping spans (or, in the autumn fold, a span read twice) offer a start once.
    return sorted(set(found)) if len(spans) > 1 else found


def _local_micros(
    openings: dict[tuple[ZoneInfo, date, time, bool], int],
    day: date,
    at: time,
    zone: ZoneInfo,
    *,
    closing: bool,
) -> int:
    key = (zone, day, at, closing)
    found = openings.get(key)
    if found is None:
        found = openings[key] = _micros(local_to_utc(day, at, zone, closing=closing))
    return found


# --------------------------------------------------------------------------------------
# Loading what the core needs
# --------------------------------------------------------------------------------------


@dataclass
class _Timing:
    duration: timedelta
    step: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    min_notice: timedelta
    window: timedelta

    @classmethod
    def of(cls, service: Service) -> _Timing:
        interval = service.slot_interval_minutes or int(
            get_settings().DEFAULT_SLOT_INTERVAL_MINUTES
        )
        return cls(
            duration=timedelta(minutes=service.duration_minutes),
            step=timedelta(minutes=interval),
            buffer_before=timedelta(minutes=service.buffer_before_minutes),
            buffer_after=timedelta(minutes=service.buffer_after_minutes),
            min_notice=timedelta(minutes=service.min_notice_minutes),
            window=timedelta(days=service.max_days_ahead),
        )

    @property
    def grid(self) -> _Grid:
        return _Grid.of(self.duration, self.step, self.buffer_before, self.buffer_after)


@dataclass
class _StaffSchedule:
    """One staff member's hours and busy time (in microseconds) over a range of days."""

    staff_id: int
    zone: ZoneInfo
    spans: dict[int, list[tuple[time, time]]] = field(default_factory=lambda: defaultdict(list))
    # Other confirmed appointments, widened by their own service's buffers.
    bookings: list[_Micros] = field(default_factory=list)
    # Class sessions the staff member teaches, and time off.
    blocks: list[_Micros] = field(default_factory=list)
    # Whether the staff member offers the service asked about (when one was).
    offers: bool = False


def _utc_range(zones: Iterable[ZoneInfo], first_day: date, days: int, timing: _Timing) -> Interval:
    """The UTC instants any candidate of these local days, with its buffers, can touch."""
    zones = list(zones)
    after_last = first_day + timedelta(days=days)
    start = min(local_to_utc(first_day, time.min, zone) for zone in zones)
    end = max(local_to_utc(after_last, time.min, zone, closing=True) for zone in zones)
    return start - timing.buffer_before, end + timing.buffer_after


def _load_schedules(
    staff_members: Sequence[Staff],
    first_day: date,
    days: int,
    timing: _Timing,
    exclude_booking: Booking | int | None,
    offering: Service | None = None,
    reach: busy_time.Reach | None = None,
) -> list[_StaffSchedule]:
    """Load hours, bookings, sessions and time off of several staff members at once.

    One statement given the ``reach``, else two, whatever the number of staff members
    and days (see :mod:`wagtail_bookings_vc.busy_time`). With ``offering``, each schedule also says
    whether its staff member offers that service.
    """
    if not staff_members:
        return []
    schedules = {member.pk: _StaffSchedule(member.pk, member.zone) for member in staff_members}
    range_start, range_end = _utc_range(
        (schedule.zone for schedule in schedules.values()), first_day, days, timing
    )
    exclude_pk = getattr(exclude_booking, "pk", exclude_booking)
    rows = busy_time.busy_rows(
        list(schedules),
        range_start,
        range_end,
        reach=reach or busy_time.reach(),
        exclude_booking=exclude_pk,
        offering=offering.pk if offering is not None else None,
    )
    for kind, staff_id, weekday, opening, closing, start, end, minutes, more in rows:
        schedule = schedules[staff_id]
        if kind == busy_time.HOURS:
            schedule.spans[weekday].append((opening, closing))
        elif kind == busy_time.BOOKING:
            # Widened by the buffers of the booking's own service.
            schedule.bookings.append(
                (_micros(start) - minutes * _MINUTE, _micros(end) + more * _MINUTE)
            )
        elif kind == busy_time.SESSION:
            began = _micros(start)
            schedule.blocks.append((began, began + (minutes or more) * _MINUTE))
        elif kind == busy_time.OFFERS:
            schedule.offers = True
        else:
            schedule.blocks.append((_micros(start), _micros(end)))

    return [schedules[member.pk] for member in staff_members]


def _as_utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC, so that adding a duration adds real time, not wall-clock time."""
    if timezone.is_naive(moment):
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(UTC)


def _now(now: datetime | None) -> datetime:
    return _as_utc(now if now is not None else timezone.now(), "now")


# --------------------------------------------------------------------------------------
# Appointments
# --------------------------------------------------------------------------------------


def free_slots(
    service: Service,
    *,
    start_date: date,
    days: int = 7,
    staff: Staff | None = None,
    now: datetime | None = None,
    exclude_booking: Booking | int | None = None,
) -> FreeSlots:
    """Free start times of a service, over a range of days, for each staff member.

    Args:
        service: the service to book. An inactive service has no free slots.
        start_date: the first local date (read in each staff member's time zone).
        days: how many consecutive local dates to cover.
        staff: only this staff member (who must be active and offer the service);
            ``None`` for every active staff member of the service.
        now: the current time (defaults to ``timezone.now()``); the minimum notice and
            the booking window are counted from it.
        exclude_booking: a booking (or its primary key) not to count as busy, so that
            it can be moved to another time.

    Returns:
        Free slots sorted by start time, then by staff member, as a read-only sequence
        (see :class:`FreeSlots`). Loading takes a fixed number of queries, whatever the
        number of staff members and days.
    """
    now = _now(now)
    if not service.active or days < 1:
        return FreeSlots()
    members, reach = busy_time.members_and_reach(
        service.pk, staff.pk if staff is not None else None
    )
    timing = _Timing.of(service)
    grid = timing.grid
    earliest = _micros(now + timing.min_notice)
    latest = _micros(now + timing.window)
    schedules = _load_schedules(members, start_date, days, timing, exclude_booking, reach=reach)
    count = len(schedules)
    dates = [start_date + timedelta(days=offset) for offset in range(days)]
    openings: dict[tuple[ZoneInfo, date, time, bool], int] = {}
    # One integer per slot, ``start * count + rank`` (members are in primary-key order),
    # sorts by start time, then by staff member.
    keys: list[int] = []
    for rank, schedule in enumerate(schedules):
        blocked = _Blocked.of(schedule.bookings + schedule.blocks, grid)
        for day in dates:
            spans = schedule.spans.get(day.weekday())
            if not spans:
                continue
            found = _day_starts(
                day,
                spans,
                schedule.zone,
                blocked,
                grid,
                earliest=earliest,
                latest=latest,
                openings=openings,
            )
            keys.extend([start * count + rank for start in found] if count > 1 else found)
    keys.sort()
    # Slots that start together share their datetimes.
    staff_ids = [schedule.staff_id for schedule in schedules]
    starts: list[datetime] = []
    ends: list[datetime] = []
    slot_staff: list[int] = []
    shown = None
    start = end = _EPOCH
    for key in keys:
        at, rank = divmod(key, count)
        if at != shown:
            shown, start = at, _instant(at)
            end = start + timing.duration
        starts.append(start)
        ends.append(end)
        slot_staff.append(staff_ids[rank])
    return FreeSlots(starts, ends, slot_staff)


def check_slot(
    service: Service,
    staff: Staff,
    start: datetime,
    *,
    now: datetime | None = None,
    exclude_booking: Booking | int | None = None,
) -> str | None:
    """Tell why ``start`` cannot be booked with ``staff``, or ``None`` when it can.

    Args:
        service: the service to book.
        staff: the staff member to book it with.
        start: the aware start time asked for.
        now: the current time (defaults to ``timezone.now()``).
        exclude_booking: a booking (or its primary key) not to count as busy.

    Returns:
        ``None`` when the slot is free, otherwise one of ``"inactive"`` (service or staff
        member not bookable), ``"in_past"``, ``"too_soon"`` (inside the minimum notice),
        ``"too_far"`` (beyond the booking window), ``"unavailable"`` (not one of the
        offered start times: outside working hours, off the slot grid, during time off
        or a class) and ``"taken"`` (another booking holds that time).
    """
    now = _now(now)
    start = _as_utc(start, "start")
    if not service.active or not staff.active:
        return INACTIVE
    timing = _Timing.of(service)
    if start < now:
        return IN_PAST
    if start < now + timing.min_notice:
        return TOO_SOON
    if start > now + timing.window:
        return TOO_FAR
    day = start.astimezone(staff.zone).date()
    (schedule,) = _load_schedules([staff], day, 1, timing, exclude_booking, offering=service)
    if not schedule.offers:
        return UNAVAILABLE
    grid = timing.grid
    spans = schedule.spans.get(day.weekday(), [])
    at = _micros(start)

    def offered(busy: list[_Micros]) -> bool:
        found = _day_starts(
            day,
            spans,
            schedule.zone,
            _Blocked.of(busy, grid),
            grid,
            earliest=None,
            latest=None,
            openings={},
        )
        return at in found

    if not offered(schedule.blocks):
        return UNAVAILABLE
    if not offered(schedule.blocks + schedule.bookings):
        return TAKEN
    return None


def is_slot_free(
    service: Service,
    staff: Staff,
    start: datetime,
    *,
    now: datetime | None = None,
    exclude_booking: Booking | int | None = None,
) -> bool:
    """Whether ``start`` is one of the free slots of ``service`` with ``staff``.

    Args:
        service: the service to book.
        staff: the staff member to book it with.
        start: the aware start time asked for.
        now: the current time (defaults to ``timezone.now()``).
        exclude_booking: a booking (or its primary key) not to count as busy.

    Returns:
        ``True`` when :func:`free_slots` would offer this start with this staff member.
    """
    return check_slot(service, staff, start, now=now, exclude_booking=exclude_booking) is None


# --------------------------------------------------------------------------------------
# Classes
# --------------------------------------------------------------------------------------


def seats_left(session: ClassSession) -> int:
    """Seats still free in a class session.

    Args:
        session: the session.

    Returns:
        The session's capacity (or its class's) minus its confirmed bookings, never
        below zero.
    """
    taken = Booking.objects.filter(session=session, status=BookingStatus.CONFIRMED).count()
    return max(session.effective_capacity - taken, 0)


def upcoming_sessions(
    group_class: GroupClass | None = None,
    *,
    now: datetime | None = None,
    limit: int | None = None,
) -> list[ClassSession]:
    """Sessions members can still sign up for, each with the seats left.

    Args:
        group_class: only this class's sessions; ``None`` for every active class.
        now: the current time (defaults to ``timezone.now()``).
        limit: at most this many sessions.

    Returns:
        Non-cancelled sessions of active classes that start at least the class's
        minimum notice after ``now``, ordered by start time. Each has an ``int``
        attribute ``seats_left`` (full sessions are included, with 0).
    """
    now = _now(now)
    classes = GroupClass.objects.filter(active=True)
    if group_class is not None:
        classes = classes.filter(pk=group_class.pk)
    # One condition per distinct minimum notice keeps the comparison in SQL (so that the
    # limit applies in the database) without date arithmetic that differs between backends.
    notices = sorted(set(classes.values_list("min_notice_minutes", flat=True)))
    if not notices:
        return []
    condition = Q()
    for minutes in notices:
        condition |= Q(
            group_class__min_notice_minutes=minutes,
            start__gte=now + timedelta(minutes=minutes),
        )
    sessions = (
        ClassSession.objects.filter(condition, group_class__in=classes, cancelled=False)
        .select_related("group_class", "group_class__staff")
        .annotate(
            seats_left=Greatest(
                Coalesce("capacity", "group_class__capacity")
                - Count("bookings", filter=Q(bookings__status=BookingStatus.CONFIRMED)),
                Value(0),
                output_field=IntegerField(),
            )
        )
        .order_by("start", "pk")
    )
    if limit is not None:
        sessions = sessions[: max(limit, 0)]
    return list(sessions)
