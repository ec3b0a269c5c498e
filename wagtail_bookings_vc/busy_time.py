"""Read staff members' working hours and busy time in two statements.

Free slots are asked for on every booking page and checked again inside every booking
request, so this read is the hottest path of the app. Built through the ORM it took
seven queries whose building cost more than the database did; here it is two
statements written once per shape (database, number of staff members, whether a
booking is left out) and cached:

1. the widest reach of any booking or class session beyond its own start and end
   (the largest buffers of services, the longest session), which bounds the second;
   for free slots, in the same statement as the staff members who offer the service;
2. working hours, confirmed appointments (with their service's buffers), class sessions
   and time off of the staff members, as one ``UNION ALL``.

Values come back through the same converters the ORM applies, so every backend Django
supports reads them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import connections, router
from django.db.models import Field, Model

from .models import (
    Booking,
    BookingStatus,
    ClassSession,
    GroupClass,
    Service,
    Staff,
    TimeOff,
    WorkingHours,
)

__all__ = [
    "BOOKING",
    "HOURS",
    "OFFERS",
    "SESSION",
    "TIME_OFF",
    "Reach",
    "busy_rows",
    "members_and_reach",
    "reach",
]

# The kind of each row busy_rows() returns.
HOURS, BOOKING, SESSION, TIME_OFF, OFFERS = range(5)


@dataclass(frozen=True, slots=True)
class Reach:
    """How far bookings and sessions reach beyond the columns a query can filter on."""

    before: timedelta
    after: timedelta
    session: timedelta


def _table(model: type[Model], connection: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: type[Model], name: str, connection: Any, alias: str | None = None) -> str:
    column = connection.ops.quote_name(model._meta.get_field(name).column)
    return f"{alias}.{column}" if alias else column


def _converter(model: type[Model], name: str, connection: Any) -> Callable[[Any], Any]:
    """What the ORM would do to a value of ``model.name`` read from ``connection``."""
    field: Field = model._meta.get_field(name)
    expression = field.cached_col
    steps = [
        *connection.ops.get_db_converters(expression),
        *field.get_db_converters(connection),
    ]

    def convert(value: Any) -> Any:
        for step in steps:
            value = step(value, expression, connection)
        return value

    return convert


@cache
def _reach_sql(alias: str) -> str:
    connection = connections[alias]
    service, session, group_class = (
        _table(Service, connection),
        _table(ClassSession, connection),
        _table(GroupClass, connection),
    )
    before = _column(Service, "buffer_before_minutes", connection)
    after = _column(Service, "buffer_after_minutes", connection)
    own = _column(ClassSession, "duration_minutes", connection)
    of_class = _column(GroupClass, "duration_minutes", connection)
    return (
        f"SELECT (SELECT MAX({before}) FROM {service}), (SELECT MAX({after}) FROM {service}), "  # noqa: S608
        f"(SELECT MAX({own}) FROM {session}), (SELECT MAX({of_class}) FROM {group_class})"
    )


def reach() -> Reach:
    """The largest buffers of any service and the longest class session."""
    alias = router.db_for_read(Booking)
    with connections[alias].cursor() as cursor:
        cursor.execute(_reach_sql(alias))
        return _as_reach(*cursor.fetchone())


@cache
def _members_sql(alias: str, one: bool) -> str:
    connection = connections[alias]
    offers = Service.staff.through
    staff_id = _column(offers, "staff", connection, "o")
    active = _column(Staff, "active", connection, "st")
    return (
        f"SELECT {staff_id}, {_column(Staff, 'time_zone', connection, 'st')}, "  # noqa: S608
        f"{_reach_sql(alias).removeprefix('SELECT ')} "
        f"FROM {_table(offers, connection)} o "
        f"INNER JOIN {_table(Staff, connection)} st "
        f"ON st.{_column(Staff, 'id', connection)} = {staff_id} "
        f"WHERE {_column(offers, 'service', connection, 'o')} = %s AND {active} = %s"
        + (f" AND {staff_id} = %s" if one else "")
        + f" ORDER BY {staff_id}"
    )


def members_and_reach(service_id: int, staff_id: int | None = None) -> tuple[list[Staff], Reach]:
    """The active staff members who offer a service, and :func:`reach`, in one statement.

    Args:
        service_id: the service.
        staff_id: only this staff member (when active and offering the service).

    Returns:
        Unsaved :class:`Staff` instances holding only ``pk`` and ``time_zone``, in
        primary-key order, and the reach (zero when there is no staff member).
    """
    alias = router.db_for_read(Booking)
    params: list[Any] = [service_id, True]
    if staff_id is not None:
        params.append(staff_id)
    with connections[alias].cursor() as cursor:
        cursor.execute(_members_sql(alias, staff_id is not None), params)
        rows = cursor.fetchall()
    members = [Staff(pk=pk, time_zone=zone) for pk, zone, *_reach in rows]
    return members, _as_reach(*rows[0][2:]) if rows else _as_reach(None, None, None, None)


def _as_reach(
    before: int | None, after: int | None, own: int | None, of_class: int | None
) -> Reach:
    return Reach(
        before=timedelta(minutes=before or 0),
        after=timedelta(minutes=after or 0),
        session=timedelta(minutes=max(own or 0, of_class or 0)),
    )


@cache
def _busy_sql(alias: str, staff_count: int, excluding: bool, offering: bool) -> str:
    connection = connections[alias]
    ids = ", ".join(["%s"] * staff_count)

    def col(model: type[Model], name: str, table: str | None = None) -> str:
        return _column(model, name, connection, table)

    # Identifiers come from the models and are quoted; every value is a parameter.
    # Rows: kind, staff id, weekday, opening, closing, start, end, minutes, more minutes.
    bookings = (
        f"SELECT {BOOKING}, {col(Booking, 'staff', 'b')}, NULL, NULL, NULL, "  # noqa: S608
        f"{col(Booking, 'start', 'b')}, {col(Booking, 'end', 'b')}, "
        f"{col(Service, 'buffer_before_minutes', 's')}, "
        f"{col(Service, 'buffer_after_minutes', 's')} "
        f"FROM {_table(Booking, connection)} b "
        f"INNER JOIN {_table(Service, connection)} s "
        f"ON s.{col(Service, 'id')} = {col(Booking, 'service', 'b')} "
        f"WHERE {col(Booking, 'staff', 'b')} IN ({ids}) "
        f"AND {col(Booking, 'status', 'b')} = %s "
        f"AND {col(Booking, 'start', 'b')} < %s AND {col(Booking, 'end', 'b')} > %s"
        + (f" AND {col(Booking, 'id', 'b')} <> %s" if excluding else "")
    )
    hours = (
        f"SELECT {HOURS}, {col(WorkingHours, 'staff')}, {col(WorkingHours, 'weekday')}, "  # noqa: S608
        f"{col(WorkingHours, 'start_time')}, {col(WorkingHours, 'end_time')}, "
        f"NULL, NULL, NULL, NULL "
        f"FROM {_table(WorkingHours, connection)} "
        f"WHERE {col(WorkingHours, 'staff')} IN ({ids})"
    )
    sessions = (
        f"SELECT {SESSION}, {col(GroupClass, 'staff', 'c')}, NULL, NULL, NULL, "  # noqa: S608
        f"{col(ClassSession, 'start', 'cs')}, NULL, "
        f"{col(ClassSession, 'duration_minutes', 'cs')}, "
        f"{col(GroupClass, 'duration_minutes', 'c')} "
        f"FROM {_table(ClassSession, connection)} cs "
        f"INNER JOIN {_table(GroupClass, connection)} c "
        f"ON c.{col(GroupClass, 'id')} = {col(ClassSession, 'group_class', 'cs')} "
        f"WHERE {col(GroupClass, 'staff', 'c')} IN ({ids}) "
        f"AND {col(ClassSession, 'cancelled', 'cs')} = %s "
        f"AND {col(ClassSession, 'start', 'cs')} < %s AND {col(ClassSession, 'start', 'cs')} > %s"
    )
    time_off = (
        f"SELECT {TIME_OFF}, {col(TimeOff, 'staff')}, NULL, NULL, NULL, "  # noqa: S608
        f"{col(TimeOff, 'start')}, {col(TimeOff, 'end')}, NULL, NULL "
        f"FROM {_table(TimeOff, connection)} "
        f"WHERE {col(TimeOff, 'staff')} IN ({ids}) "
        f"AND {col(TimeOff, 'start')} < %s AND {col(TimeOff, 'end')} > %s"
    )
    parts = [bookings, hours, sessions, time_off]
    if offering:
        offers = Service.staff.through
        parts.append(
            f"SELECT {OFFERS}, {col(offers, 'staff')}, NULL, NULL, NULL, NULL, NULL, NULL, NULL "  # noqa: S608
            f"FROM {_table(offers, connection)} "
            f"WHERE {col(offers, 'service')} = %s AND {col(offers, 'staff')} IN ({ids})"
        )
    # PostgreSQL types a union's columns pair by pair from the left: between them the
    # first two parts have a typed value in every column, so no NULL is left untyped.
    return " UNION ALL ".join(parts)


@cache
def _converters(alias: str) -> tuple[Callable[[Any], Any], ...]:
    connection = connections[alias]
    return (
        _converter(WorkingHours, "start_time", connection),
        _converter(Booking, "start", connection),
    )


def busy_rows(
    staff_ids: Sequence[int],
    start: datetime,
    end: datetime,
    *,
    reach: Reach,
    exclude_booking: int | None = None,
    offering: int | None = None,
) -> list[tuple[Any, ...]]:
    """Hours and busy time of ``staff_ids`` that can touch ``[start, end)``.

    Args:
        staff_ids: the staff members (none: no rows, and no query).
        start: the first instant that matters (aware).
        end: the instant after the last that matters (aware).
        reach: from :func:`reach`; bookings and sessions are read this much wider.
        exclude_booking: the primary key of a booking to leave out.
        offering: the primary key of a service: add a row for each of the staff members
            who offer it.

    Returns:
        Rows ``(kind, staff_id, weekday, opening, closing, start, end, minutes,
        more_minutes)``: for :data:`HOURS` the weekday and the opening and closing
        times; for :data:`BOOKING` start, end and the service's buffers before and
        after; for :data:`SESSION` start, the session's own duration (or ``None``) and
        the class's; for :data:`TIME_OFF` start and end; for :data:`OFFERS` nothing
        more.
    """
    ids = list(staff_ids)
    if not ids:
        return []
    alias = router.db_for_read(Booking)
    connection = connections[alias]
    moment = connection.ops.adapt_datetimefield_value
    params: list[Any] = [
        *ids,
        BookingStatus.CONFIRMED.value,
        moment(end + reach.before),
        moment(start - reach.after),
    ]
    if exclude_booking is not None:
        params.append(exclude_booking)
    params += ids
    params += [*ids, False, moment(end), moment(start - reach.session)]
    params += [*ids, moment(end), moment(start)]
    if offering is not None:
        params += [offering, *ids]
    to_time, to_moment = _converters(alias)
    with connection.cursor() as cursor:
        sql = _busy_sql(alias, len(ids), exclude_booking is not None, offering is not None)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    converted = []
    for kind, staff_id, weekday, opening, closing, began, ended, one, two in rows:
        if kind == HOURS:
            opening, closing = to_time(opening), to_time(closing)
        elif kind != OFFERS:
            began = to_moment(began)
            if ended is not None:
                ended = to_moment(ended)
        converted.append((kind, staff_id, weekday, opening, closing, began, ended, one, two))
    return converted
