"""The same measurements on django-appointment, the most used Django booking app.

:mod:`benchmarks.run` calls this module after ``load_data()``, in the same process and
database: :func:`load` copies the staff, their working hours, the service and every
existing booking into django-appointment's models, and :func:`measure` times, sample
by sample in turn, this app's free slots and booking request against theirs.

* Free slots of one staff member over 30 days: ours is one ``free_slots()`` call;
  theirs is ``get_available_slots_for_staff()`` for each of the 30 days, as their
  booking page asks for one day at a time.
* The booking request: ours is the POST to the booking page; theirs is the POST of the
  chosen time and the POST of the client details that creates the appointment (the
  page shown between them and the thank-you page after are timed apart).

django-appointment is installed in the benchmark environment only
(``benchmarks/settings.py`` adds it to ``INSTALLED_APPS`` when it is importable); it
ships no migrations, so :func:`load` creates its tables. It has no time zone per staff
member: its times are wall-clock times in ``TIME_ZONE``, the zone of the benchmark's
staff.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

PACKAGE = "django-appointment"
URL_PREFIX = "appointment/"
DAYS = 30
# What a member types on their client details page.
CLIENT_DETAILS = {
    "name": "Peer Booker",
    "phone_0": "IT",
    "phone_1": "0612345678",
    "address": "",
    "additional_info": "",
    "payment_type": "full",
}


def available() -> bool:
    """Whether django-appointment is installed (and, once Django is set up, in
    ``INSTALLED_APPS``, as ``benchmarks/settings.py`` puts it)."""
    if importlib.util.find_spec("appointment") is None:
        return False
    from django.apps import apps

    return not apps.ready or apps.is_installed("appointment")


def __getattr__(name: str) -> Any:
    """``urlpatterns``: the example site's URLs with django-appointment's under /appointment/.

    :func:`measure` makes this module the URLconf while it times the booking requests,
    so that both apps answer through the same one.
    """
    if name != "urlpatterns":
        raise AttributeError(name)
    from django.urls import include, path

    from example_site.urls import urlpatterns as site

    # Before the last pattern, Wagtail's catch-all page server.
    return [*site[:-1], path(URL_PREFIX, include("appointment.urls")), site[-1]]


@dataclass
class Peer:
    """django-appointment's copy of the benchmark data."""

    service: Any
    staff: list[Any]  # StaffMember, in the order of data["staff"]
    booker: Any  # the member who books through their pages
    by_staff: dict[int, Any]  # our Staff pk: their StaffMember
    appointments: int = 0  # copied from our bookings
    copied_up_to: int = 0  # the last of our bookings copied
    slot_check: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load(data: dict[str, Any]) -> Peer:
    """Copy the staff, hours, service and existing bookings of ``data`` into django-appointment.

    Returns what :func:`measure` needs, with the check that both apps find the same
    free slots (``slot_check``).
    """
    from appointment import models as theirs
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django_q.models import Schedule

    create_tables()
    # Their daily clean-up, scheduled when the run migrated, would otherwise run in the
    # benchmark's worker while our bookings are timed.
    Schedule.objects.filter(func__startswith="appointment.").delete()
    quiet_logs()
    _send_their_emails()

    ours = data["service"]
    staff = data["staff"]
    zone = settings.TIME_ZONE
    for member in staff:
        if member.time_zone != zone:
            raise ValueError(
                f"{member} works in {member.time_zone}; {PACKAGE} reads every time in {zone}"
            )
    if ours.buffer_before_minutes != ours.buffer_after_minutes:
        raise ValueError(f"{PACKAGE} keeps the same rest time before and after an appointment")
    step = ours.slot_interval_minutes or ours.duration_minutes

    with transaction.atomic():
        theirs.Config(
            slot_duration=step,
            appointment_buffer_time=ours.min_notice_minutes,
            slot_gap_time=ours.buffer_after_minutes,
            website_name=getattr(settings, "APPOINTMENT_WEBSITE_NAME", ""),
        ).save()
        service = theirs.Service.objects.create(
            name=ours.name,
            duration=dt.timedelta(minutes=ours.duration_minutes),
            price=ours.price or 0,
            currency=ours.currency or "EUR",
        )
        users = get_user_model()
        staff_users = users.objects.bulk_create(
            users(username=f"appointment-staff{n}", email=member.email, first_name=member.name)
            for n, member in enumerate(staff)
        )
        hours = {member.pk: list(member.working_hours.all()) for member in staff}
        members = theirs.StaffMember.objects.bulk_create(
            theirs.StaffMember(
                user=user,
                slot_duration=step,
                lead_time=min(span.start_time for span in hours[member.pk]),
                finish_time=max(span.end_time for span in hours[member.pk]),
                appointment_buffer_time=ours.min_notice_minutes,
                slot_gap_time=ours.buffer_after_minutes,
                work_on_saturday=any(span.weekday == 5 for span in hours[member.pk]),
                work_on_sunday=any(span.weekday == 6 for span in hours[member.pk]),
            )
            for member, user in zip(staff, staff_users, strict=True)
        )
        theirs.StaffMember.services_offered.through.objects.bulk_create(
            theirs.StaffMember.services_offered.through(staffmember=member, service=service)
            for member in members
        )
        # Theirs number the days from Sunday (0), ours from Monday (0); one span a day.
        theirs.WorkingHours.objects.bulk_create(
            theirs.WorkingHours(
                staff_member=copy,
                day_of_week=(span.weekday + 1) % 7,
                start_time=span.start_time,
                end_time=span.end_time,
            )
            for member, copy in zip(staff, members, strict=True)
            for span in hours[member.pk]
        )
        booker = users.objects.create_user(
            "appointment-booker", "appointment-booker@example.com", "password"
        )

    peer = Peer(
        service=service,
        staff=members,
        booker=booker,
        by_staff={member.pk: copy for member, copy in zip(staff, members, strict=True)},
    )
    copy_bookings(peer, data)
    peer.slot_check = check_slots(peer, data)
    return peer


def copy_bookings(peer: Peer, data: dict[str, Any]) -> int:
    """Give django-appointment an appointment for each of our confirmed bookings it lacks.

    Each becomes an AppointmentRequest (date and wall-clock times) and its Appointment,
    made by the same member. Returns how many were copied.
    """
    from appointment.models import Appointment, AppointmentRequest
    from django.db import transaction

    from wagtail_bookings_vc.models import Booking, BookingStatus

    rows = list(
        # Any service's appointment keeps its staff member busy, in ours as in theirs.
        Booking.objects.filter(
            service__isnull=False,
            staff__in=data["staff"],
            status=BookingStatus.CONFIRMED,
            pk__gt=peer.copied_up_to,
        )
        .order_by("pk")
        .values_list("pk", "staff_id", "member_id", "start", "end")
    )
    with transaction.atomic():
        for chunk in _chunks(rows, 1000):
            requests = AppointmentRequest.objects.bulk_create(
                AppointmentRequest(
                    date=_local(start).date(),
                    start_time=_local(start).time(),
                    end_time=_local(end).time(),
                    service=peer.service,
                    staff_member=peer.by_staff[staff_id],
                    id_request=f"bench{pk}",
                )
                for pk, staff_id, _member, start, end in chunk
            )
            Appointment.objects.bulk_create(
                Appointment(
                    client_id=member_id,
                    appointment_request=request,
                    amount_to_pay=0,
                    id_request=f"bench{pk}",
                )
                for (pk, _staff, member_id, _start, _end), request in zip(
                    chunk, requests, strict=True
                )
            )
    if rows:
        peer.copied_up_to = rows[-1][0]
    peer.appointments += len(rows)
    return len(rows)


def create_tables() -> None:
    """Create django-appointment's tables, as ``migrate --run-syncdb`` would: it ships no
    migrations."""
    from django.apps import apps
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in apps.get_app_config("appointment").get_models():
            editor.create_model(model)


def _chunks(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for begin in range(0, len(rows), size):
        yield rows[begin : begin + size]


def _local(instant: dt.datetime) -> dt.datetime:
    """The naive wall-clock time django-appointment stores for an aware instant."""
    from django.utils import timezone

    return timezone.localtime(instant).replace(tzinfo=None)


def quiet_logs() -> None:
    """Keep django-appointment's INFO lines off the benchmark's output.

    Each of its modules logs from DEBUG up to a stdout handler of its own; the run prints
    a table on stdout. What it logs is still formatted (f-strings), so still timed. Call
    it once Django is set up, before ``migrate`` (which it otherwise reports on).
    """
    import appointment.services
    import appointment.views  # noqa: F401 - their loggers are made on import

    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("appointment") and isinstance(logger, logging.Logger):
            logger.setLevel(logging.WARNING)


def _send_their_emails() -> None:
    """Let django-appointment send its emails when the settings use Django 6.1's MAILERS.

    It sends none unless the ``EMAIL_HOST``… settings exist (its documented setup), and
    Django 6.1 hides those once ``MAILERS`` is set, as the run's settings do. With its
    check passed, its emails go through Django's mail API to the run's in-memory mailer,
    as they would with those settings.
    """
    from django.conf import settings

    if not hasattr(settings, "MAILERS"):
        return
    from appointment import views
    from appointment.email_sender import email_sender

    def configured() -> bool:
        return True

    email_sender.has_required_email_settings = configured
    views.has_required_email_settings = configured


# --------------------------------------------------------------------------------------
# Free slots
# --------------------------------------------------------------------------------------


def their_day(member: Any, day: dt.date, service: Any) -> list[dt.datetime]:
    """django-appointment's free start times of one day (naive, wall clock)."""
    from appointment.services import get_available_slots_for_staff
    from appointment.utils.db_helpers import get_weekday_num_from_date

    return get_available_slots_for_staff(
        day, member, get_weekday_num_from_date(day), service=service
    )


def their_slots(member: Any, first: dt.date, service: Any, days: int = DAYS) -> list[dt.datetime]:
    """Theirs over ``days`` days: one call a day, as their booking page asks."""
    found: list[dt.datetime] = []
    for offset in range(days):
        found += their_day(member, first + dt.timedelta(days=offset), service)
    return found


def our_slots(data: dict[str, Any], staff: Any, first: dt.date, days: int = DAYS) -> Sequence[Any]:
    from wagtail_bookings_vc import availability

    return availability.free_slots(data["service"], start_date=first, days=days, staff=staff)


def check_slots(peer: Peer, data: dict[str, Any]) -> dict[str, Any]:
    """Compare both apps' free slots: the first staff member over 30 days from tomorrow,
    and every staff member on the day after.

    Raises:
        RuntimeError: the two apps do not offer the same times.
    """
    from django.utils import timezone

    first = timezone.localdate() + dt.timedelta(days=1)
    pairs = [(data["staff"][0], peer.staff[0], DAYS)] + [
        (member, copy, 1) for member, copy in zip(data["staff"], peer.staff, strict=True)
    ]
    compared = 0
    for member, copy, days in pairs:
        ours = sorted(_local(slot.start) for slot in our_slots(data, member, first, days))
        theirs = sorted(their_slots(copy, first, peer.service, days))
        if ours != theirs:
            missing = sorted(set(ours) - set(theirs))[:5]
            extra = sorted(set(theirs) - set(ours))[:5]
            raise RuntimeError(
                f"free slots of {member} differ from {first} for {days} days: "
                f"only ours {missing}, only theirs {extra}"
            )
        compared += len(ours)
    return {
        "equal": True,
        "staff_days_compared": DAYS + len(pairs) - 1,
        "slots_compared": compared,
        "first_day": first.isoformat(),
    }


def measure_free_slots(peer: Peer, data: dict[str, Any], count: int) -> dict[str, Any]:
    """One staff member over 30 days from tomorrow, ours and theirs in turn."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from benchmarks.run import percentiles, timed

    first = timezone.localdate() + dt.timedelta(days=1)
    member, copy = data["staff"][0], peer.staff[0]

    def ours() -> int:
        return len(our_slots(data, member, first))

    def theirs() -> int:
        return len(their_slots(copy, first, peer.service))

    with CaptureQueriesContext(connection) as our_queries:
        ours()
    with CaptureQueriesContext(connection) as their_queries:
        theirs()
    our_samples, their_samples = [], []
    for _ in range(count):
        elapsed, our_found = timed(ours)
        our_samples.append(elapsed)
        elapsed, their_found = timed(theirs)
        their_samples.append(elapsed)
    return {
        "ours": {
            **percentiles(our_samples),
            "slots_found": our_found,
            "queries": len(our_queries),
        },
        "theirs": {
            **percentiles(their_samples),
            "slots_found": their_found,
            "queries": len(their_queries),
        },
    }


# --------------------------------------------------------------------------------------
# Booking requests
# --------------------------------------------------------------------------------------


class TheirBooking(NamedTuple):
    """One booking through django-appointment's pages."""

    posts_ms: float  # the 2 POSTs that make the appointment
    pages_ms: float  # the client-details page between them and the thank-you page after
    emails: int  # sent by the POSTs


class TheirBooker:
    """Books their free slots one after the other, through their pages, as a member.

    The times come from their own free slots (from a week ahead, earliest first, then by
    staff member), as our :class:`benchmarks.run.Booker` takes ours: their booking POSTs
    do not check that the time is still free.
    """

    def __init__(self, peer: Peer) -> None:
        from django.test import Client
        from django.utils import timezone

        self.peer = peer
        self.client = Client()
        self.client.force_login(peer.booker)
        self.slots = self._free_slots(timezone.localdate() + dt.timedelta(days=7))

    def _free_slots(self, first: dt.date) -> Iterator[tuple[Any, dt.datetime]]:
        for offset in range(60):
            day = first + dt.timedelta(days=offset)
            found = [
                (start, n, member)
                for n, member in enumerate(self.peer.staff)
                for start in their_day(member, day, self.peer.service)
            ]
            for start, _n, member in sorted(found, key=lambda row: row[:2]):
                yield member, start

    def book(self) -> TheirBooking:
        """Book the next free slot.

        Raises:
            RuntimeError: a step did not answer as a successful booking does, or no
                appointment was made.
        """
        from appointment.models import Appointment
        from django.core import mail

        from benchmarks.run import timed

        sent = len(getattr(mail, "outbox", []))  # the in-memory mailer makes it
        member, start = next(self.slots)
        end = start + self.peer.service.duration
        posted, shown = 0.0, 0.0
        elapsed, response = timed(
            lambda: self.client.post(
                f"/{URL_PREFIX}request-submit/",
                {
                    "staff_member": member.pk,
                    "date": start.date().isoformat(),
                    "start_time": start.time().isoformat(),
                    "end_time": end.time().isoformat(),
                    "service": self.peer.service.pk,
                    "reason_for_rescheduling": "",
                },
            )
        )
        posted += elapsed
        details_url = _redirected(response, "/client-info/")
        elapsed, response = timed(lambda: self.client.get(details_url))
        shown += elapsed
        if response.status_code != 200:
            raise RuntimeError(f"their client details page answered {response.status_code}")
        elapsed, response = timed(lambda: self.client.post(details_url, CLIENT_DETAILS))
        posted += elapsed
        thanks_url = _redirected(response, "/thank-you/")
        emails = len(getattr(mail, "outbox", [])) - sent
        if not Appointment.objects.filter(
            appointment_request__staff_member=member,
            appointment_request__date=start.date(),
            appointment_request__start_time=start.time(),
            client=self.peer.booker,
        ).exists():
            raise RuntimeError(f"no appointment was made for {member} at {start}")
        # The page the member lands on sends the thank-you email.
        elapsed, response = timed(lambda: self.client.get(thanks_url))
        shown += elapsed
        if response.status_code != 200:
            raise RuntimeError(f"their thank-you page answered {response.status_code}")
        return TheirBooking(posted, shown, emails)


def _redirected(response: Any, expected: str) -> str:
    location = response.get("Location", "") if response.status_code == 302 else ""
    if expected not in location:
        raise RuntimeError(
            f"their booking step answered {response.status_code} {location!r}, "
            f"not a redirect to {expected}"
        )
    return location


def measure_booking(
    peer: Peer, data: dict[str, Any], count: int, book_ours: Callable[[], float] | None
) -> dict[str, Any]:
    """Our booking POST and their booking POSTs, in turn, through the same URLconf."""
    from django.test import override_settings

    from benchmarks.run import Booker, flush_queue, percentiles

    with override_settings(ROOT_URLCONF=__name__):
        if book_ours is None:
            booker = Booker(data)

            def book_ours() -> float:
                return booker.book()[0]

        theirs = TheirBooker(peer)
        book_ours(), theirs.book()  # warm-up
        our_samples, their_bookings = [], []
        for _ in range(count):
            our_samples.append(book_ours())
            their_bookings.append(theirs.book())
    # Our bookings queued their meetings; no later measurement should inherit them.
    flush_queue()
    return {
        "ours": {**percentiles(our_samples), "requests": 1},
        "theirs": {
            **percentiles([booking.posts_ms for booking in their_bookings]),
            "requests": 2,
            "emails_sent_in_the_requests": max(booking.emails for booking in their_bookings),
        },
        "their_pages_between": {
            **percentiles([booking.pages_ms for booking in their_bookings]),
            "requests": 2,
        },
    }


# --------------------------------------------------------------------------------------
# Measuring and printing
# --------------------------------------------------------------------------------------


def measure(
    peer: Peer,
    data: dict[str, Any],
    size: dict[str, int],
    book_ours: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Time both apps in turn, sample by sample; a JSON-able result for the report.

    Args:
        peer: what :func:`load` returned.
        data: what ``load_data()`` returned.
        size: sample counts: ``size["peer_slots"]`` (else ``size["slots_one"]``) free-slot
            samples, ``size["peer_requests"]`` (else ``size["requests"]``) bookings.
        book_ours: makes one of our bookings and returns its milliseconds (for example
            ``lambda: booker.book()[0]``); by default a new ``Booker(data)``.
    """
    from importlib.metadata import version

    quiet_logs()
    # Our bookings made since load(), so that both apps see the same taken times.
    copied = copy_bookings(peer, data)
    existing = peer.appointments
    slots = measure_free_slots(peer, data, size.get("peer_slots", size["slots_one"]))
    booking = measure_booking(peer, data, size.get("peer_requests", size["requests"]), book_ours)
    for found in (slots, booking):
        found["ratio"] = round(found["theirs"]["p50_ms"] / found["ours"]["p50_ms"], 1)
    return {
        "peer": PACKAGE,
        "peer_version": version(PACKAGE),
        "existing_appointments": existing,
        "copied_before_measuring": copied,
        "free_slots_one_staff_30_days": slots,
        "booking_request": booking,
        "slot_check": peer.slot_check,
        "notes": [
            f"free slots: theirs is get_available_slots_for_staff() for each of the {DAYS} "
            "days, as their booking page asks for one day at a time; ours is one "
            "free_slots() call",
            "booking: ours is 1 POST; theirs is 2 POSTs (the chosen time, then the client "
            "details, which makes the appointment); their client-details page between "
            "the POSTs and the thank-you page after them (which sends their thank-you "
            "email) are timed apart",
            "their booking POSTs do not check that the time is still free (only their "
            "slot list does); ours checks it in the request",
            "their emails are sent in the request (their default), to the run's in-memory "
            "mailer; ours are queued for the worker. Under Django 6.1's MAILERS their "
            "check for the EMAIL_* settings fails and they send none, so the run passes "
            "that check",
        ],
    }


def table(result: dict[str, Any]) -> str:
    """The comparison as plain-text lines."""
    slots = result["free_slots_one_staff_30_days"]
    booking = result["booking_request"]
    pages = booking["their_pages_between"]
    check = result["slot_check"]
    lines = [
        f"beside {result['peer']} {result['peer_version']}: the same staff, hours and "
        f"{result['existing_appointments']:,} existing bookings",
        "",
        f"{'measurement':<44} {'ours p50':>9} {'p95':>7} {'theirs p50':>11} {'p95':>7} "
        f"{'theirs/ours':>12}",
        "-" * 95,
    ]
    for label, found in (
        ("free slots, 1 staff member, 30 days", slots),
        ("booking request (ours 1 POST, theirs 2)", booking),
    ):
        lines.append(
            f"{label:<44} {found['ours']['p50_ms']:>9.1f} {found['ours']['p95_ms']:>7.1f} "
            f"{found['theirs']['p50_ms']:>11.1f} {found['theirs']['p95_ms']:>7.1f} "
            f"{format(found['ratio'], 'g') + '×':>12}"
        )
    lines += [
        f"{'  their 2 pages (details, thank-you), apart':<44} {'':>9} {'':>7} "
        f"{pages['p50_ms']:>11.1f} {pages['p95_ms']:>7.1f}",
        "",
        f"free slots: {slots['ours']['slots_found']} found by ours in "
        f"{slots['ours']['queries']} queries, {slots['theirs']['slots_found']} by theirs in "
        f"{slots['theirs']['queries']}; the same times before timing: "
        f"{'yes' if check.get('equal') else 'NO'} ({check.get('slots_compared', 0)} slots, "
        f"{check.get('staff_days_compared', 0)} staff-days)",
    ]
    lines += [f"* {note}" for note in result["notes"]]
    return "\n".join(lines)
