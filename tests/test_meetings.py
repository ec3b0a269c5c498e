"""The meeting of a booking, through the path a member takes.

A member books through ``bookings.py``; the jobs it leaves for after the commit run
inline (django-q2 in sync mode); the member then clicks their personal join link. The
provider is a recording fake (``tests/recording_provider.py``) that remembers every
create, update and delete, and fails when told to.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import threading
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connection, connections
from wagtail.models import Site

from example_site.home.models import ContentPage
from tests import recording_provider as rec
from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from wagtail_bookings_vc import bookings, jobs, meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    Booking,
    ClassSession,
    ConferencingAccount,
    ConferencingSettings,
    JoinPass,
    JoinPassRole,
    Meeting,
    MeetingLinkMode,
    MeetingState,
    MembersAreaPage,
    SessionFormat,
    SessionLink,
)
from wagtail_bookings_vc.providers import (
    AuthorizationExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)

ROME = ZoneInfo("Europe/Rome")
# A Monday morning in Rome; the staff work Monday to Friday, 9:00 to 17:00 Rome time.
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)
TUESDAY_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
TUESDAY_11 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=ROME)
WEDNESDAY_15 = dt.datetime(2026, 11, 25, 15, 0, tzinfo=ROME)
MANUAL_URL = "https://whereby.com/riverside-studio"

pytestmark = pytest.mark.django_db


def admins(email: str) -> list:
    """ADMINS in the form the running Django expects (plain addresses from Django 6)."""
    import django

    return [email] if django.VERSION >= (6, 0) else [("Admin", email)]


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def staff():
    return StaffFactory(name="Anna Rossi", email="anna@example.com")


@pytest.fixture
def service(staff):
    return ServiceFactory(name="Online physiotherapy", staff=[staff], online=True)


@pytest.fixture
def member():
    return UserFactory(first_name="Giulia", last_name="Bianchi", email="giulia@example.com")


@pytest.fixture
def book(run_jobs, service, staff, member):
    """Book an appointment the way the booking views do, then run the jobs."""

    def make(start=TUESDAY_10, **kwargs):
        values = {"member": member, "service": service, "staff": staff, "start": start}
        values.update(kwargs)
        return run_jobs(bookings.book_appointment, **values)

    return make


@pytest.fixture
def online_session(staff):
    group_class = GroupClassFactory(name="Online yoga", staff=staff, online=True, capacity=10)
    return ClassSessionFactory(group_class=group_class, start=WEDNESDAY_15)


def meeting_for(booking) -> Meeting:
    return Meeting.objects.get(pk=meetings.meeting_of(booking).pk)


def join(client, booking, role=JoinPassRole.ATTENDEE):
    path = meetings.join_path(booking, role)
    assert path, "the booking has no join link"
    return client.get(path)


def inside_window(clock, start):
    clock.move_to(start - dt.timedelta(minutes=5), tick=False)


def to_admins():
    return [message for message in mail.outbox if "admin@example.com" in message.to]


def sweep_at(moment):
    with time_machine.travel(moment, tick=False):
        return meetings.sweep_meetings(now=moment)


# --------------------------------------------------------------------------------------
# Appointments (R9, R13, R15)
# --------------------------------------------------------------------------------------


def test_online_appointment_gets_its_own_meeting_and_a_working_join_link(
    recorder, book, client, clock, staff
):
    booking = book()

    (create,) = rec.succeeded("create")
    assert create.account_id == recorder.pk
    assert create.spec.start == TUESDAY_10 and create.spec.end == TUESDAY_11
    assert create.spec.topic == "Online physiotherapy"
    assert create.spec.host_email == "anna@example.com"
    assert create.spec.time_zone == "Europe/Rome"
    assert create.spec.attendee_emails == ("giulia@example.com",)
    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.external_id == create.external_id
    assert meeting.provider == "recorder" and meeting.account == recorder
    assert (meeting.synced_start, meeting.synced_end) == (TUESDAY_10, TUESDAY_11)

    inside_window(clock, TUESDAY_10)
    response = join(client, booking)

    assert response.status_code == 302
    assert response["Location"] == meeting.join_url
    assert meeting.join_url.startswith("https://")


def test_two_appointments_get_two_meetings(recorder, book, member):
    first = book(TUESDAY_10)
    second = book(TUESDAY_11, member=UserFactory())

    assert len(rec.succeeded("create")) == 2
    one, other = meeting_for(first), meeting_for(second)
    assert one.pk != other.pk
    assert one.external_id != other.external_id
    assert one.join_url != other.join_url


def test_booking_is_confirmed_at_once_and_the_meeting_made_after_the_commit(
    recorder, service, staff, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        booking = bookings.book_appointment(
            member=member, service=service, staff=staff, start=TUESDAY_10
        )
        # Nothing is asked of the provider inside the booking's transaction (R15).
        assert rec.calls == []

    assert booking.status == "confirmed"
    assert meeting_for(booking).state == MeetingState.PENDING
    for callback in callbacks:
        callback()
    assert len(rec.succeeded("create")) == 1
    assert meeting_for(booking).state == MeetingState.READY


def test_rescheduling_an_appointment_updates_its_meeting_at_the_provider(
    recorder, book, run_jobs, client, clock
):
    booking = book()
    created = meeting_for(booking)

    run_jobs(bookings.reschedule, booking, start=WEDNESDAY_15)

    (update,) = rec.succeeded("update")
    assert update.external_id == created.external_id
    assert update.spec.start == WEDNESDAY_15
    assert update.spec.end == WEDNESDAY_15 + dt.timedelta(hours=1)
    assert len(rec.succeeded("create")) == 1
    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.synced_start == WEDNESDAY_15

    # The link follows the booking: closed at the old time, open at the new one.
    inside_window(clock, TUESDAY_10)
    assert join(client, booking).status_code == 200
    inside_window(clock, WEDNESDAY_15)
    assert join(client, booking)["Location"] == meeting.join_url


def test_moving_an_appointment_to_where_it_is_changes_nothing_at_the_provider(
    recorder, book, run_jobs
):
    booking = book()

    run_jobs(bookings.reschedule, booking, start=TUESDAY_10)

    assert [call.action for call in rec.calls] == ["create"]


def test_cancelling_an_appointment_deletes_its_meeting_and_closes_its_link(
    recorder, book, run_jobs, client, clock
):
    booking = book()
    created = meeting_for(booking)
    path = meetings.join_path(booking)

    run_jobs(bookings.cancel, booking)

    (delete,) = rec.succeeded("delete")
    assert delete.external_id == created.external_id
    assert meeting_for(booking).state == MeetingState.CANCELLED
    assert meetings.join_path(booking) == ""
    inside_window(clock, TUESDAY_10)
    assert client.get(path).status_code == 404


def test_appointment_cancelled_before_its_meeting_was_made_calls_no_provider(
    recorder, service, staff, member, run_jobs, monkeypatch
):
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    booking = bookings.book_appointment(
        member=member, service=service, staff=staff, start=TUESDAY_10
    )
    bookings.cancel(booking)
    monkeypatch.undo()

    meetings.sweep_meetings()

    assert rec.calls == []
    assert meeting_for(booking).state == MeetingState.CANCELLED


def test_appointment_cancelled_while_its_meeting_is_being_made_is_deleted_after(
    recorder, service, staff, member, monkeypatch
):
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    booking = bookings.book_appointment(
        member=member, service=service, staff=staff, start=TUESDAY_10
    )
    create = rec.RecordingProvider.create_meeting

    def create_while_the_member_cancels(self, account, spec):
        bookings.cancel(booking)
        return create(self, account, spec)

    monkeypatch.setattr(rec.RecordingProvider, "create_meeting", create_while_the_member_cancels)

    assert meetings.ensure_meeting(meeting_for(booking).pk) == "created"
    assert meetings.ensure_meeting(meeting_for(booking).pk) == "deleted"

    assert [call.action for call in rec.calls] == ["create", "delete"]
    assert meeting_for(booking).state == MeetingState.CANCELLED


# --------------------------------------------------------------------------------------
# Class sessions (R10, R12, R13)
# --------------------------------------------------------------------------------------


def book_seats(run_jobs, session, count):
    return [
        run_jobs(bookings.book_session, member=UserFactory(), session=session) for _ in range(count)
    ]


def test_class_session_with_three_attendees_has_one_meeting_and_three_personal_links(
    recorder, online_session, run_jobs, client, clock
):
    seats = book_seats(run_jobs, online_session, 3)

    (create,) = rec.succeeded("create")
    assert create.spec.reference == f"S{online_session.pk}"
    assert (create.spec.start, create.spec.end) == (WEDNESDAY_15, online_session.end)
    assert Meeting.objects.count() == 1
    meeting = Meeting.objects.get(session=online_session)
    assert meeting.state == MeetingState.READY
    paths = [meetings.join_path(seat) for seat in seats]
    assert len(set(paths)) == 3 and all(paths)

    inside_window(clock, WEDNESDAY_15)
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == meeting.join_url


def test_one_attendee_leaving_a_class_keeps_the_meeting_for_the_others(
    recorder, online_session, run_jobs, client, clock
):
    leaving, staying, other = book_seats(run_jobs, online_session, 3)
    leaving_path = meetings.join_path(leaving)

    run_jobs(bookings.cancel, leaving)

    assert rec.attempted("delete") == []
    assert Meeting.objects.get(session=online_session).state == MeetingState.READY
    inside_window(clock, WEDNESDAY_15)
    assert client.get(leaving_path).status_code == 404
    assert join(client, staying).status_code == 302
    assert join(client, other).status_code == 302


def test_last_attendee_leaving_keeps_the_meeting_and_the_next_one_joins_it(
    recorder, online_session, run_jobs
):
    (only,) = book_seats(run_jobs, online_session, 1)
    run_jobs(bookings.cancel, only)
    (newcomer,) = book_seats(run_jobs, online_session, 1)

    assert [call.action for call in rec.calls] == ["create"]
    assert meetings.meeting_of(newcomer).state == MeetingState.READY


def test_moving_a_seat_to_another_session_leads_the_same_link_to_that_sessions_meeting(
    recorder, online_session, run_jobs, client, clock
):
    mover, stayer = book_seats(run_jobs, online_session, 2)
    later = ClassSessionFactory(
        group_class=online_session.group_class, start=WEDNESDAY_15 + dt.timedelta(days=1)
    )
    path = meetings.join_path(mover)

    run_jobs(bookings.reschedule, mover, session=later)

    assert len(rec.succeeded("create")) == 2
    assert rec.attempted("delete") == []
    assert meetings.join_path(mover) == path
    inside_window(clock, later.start)
    assert client.get(path)["Location"] == Meeting.objects.get(session=later).join_url
    inside_window(clock, WEDNESDAY_15)
    assert client.get(path).status_code == 200  # not yet: its session is tomorrow
    assert join(client, stayer)["Location"] == Meeting.objects.get(session=online_session).join_url


def test_cancelling_a_session_deletes_its_meeting_and_closes_every_link(
    recorder, online_session, run_jobs, client, clock
):
    seats = book_seats(run_jobs, online_session, 3)
    host_path = meetings.join_path(seats[0], JoinPassRole.HOST)
    meeting = Meeting.objects.get(session=online_session)

    online_session.cancelled = True
    run_jobs(online_session.save)

    (delete,) = rec.succeeded("delete")
    assert delete.external_id == meeting.external_id
    assert Meeting.objects.get(pk=meeting.pk).state == MeetingState.CANCELLED
    inside_window(clock, WEDNESDAY_15)
    for seat in seats:
        assert join(client, seat).status_code == 404
    assert client.get(host_path).status_code == 404


def test_moving_a_session_updates_its_meeting(recorder, online_session, run_jobs):
    book_seats(run_jobs, online_session, 2)
    new_start = WEDNESDAY_15 + dt.timedelta(hours=2)

    online_session.start = new_start
    run_jobs(online_session.save)

    (update,) = rec.succeeded("update")
    assert update.spec.start == new_start
    assert Meeting.objects.get(session=online_session).synced_start == new_start


def test_session_switched_to_in_person_and_back_online_gets_a_new_meeting(
    recorder, online_session, run_jobs, client, clock
):
    seats = book_seats(run_jobs, online_session, 2)
    paths = [meetings.join_path(seat) for seat in seats]
    first = Meeting.objects.get(session=online_session)

    online_session.format_override = SessionFormat.IN_PERSON
    run_jobs(online_session.save)

    assert [call.action for call in rec.calls] == ["create", "delete"]
    inside_window(clock, WEDNESDAY_15)
    assert [client.get(path).status_code for path in paths] == [404, 404]

    # Back online at the last minute (R12): a new meeting, the same personal links.
    online_session.format_override = ""
    run_jobs(online_session.save)

    assert [call.action for call in rec.calls] == ["create", "delete", "create"]
    meeting = Meeting.objects.get(session=online_session)
    assert meeting.state == MeetingState.READY
    assert meeting.external_id != first.external_id
    for path in paths:
        assert client.get(path)["Location"] == meeting.join_url


def test_session_of_an_in_person_class_switched_online_gives_its_attendees_links(
    recorder, staff, run_jobs, client, clock
):
    session = ClassSessionFactory(
        group_class=GroupClassFactory(staff=staff, online=False), start=WEDNESDAY_15
    )
    (seat,) = book_seats(run_jobs, session, 1)
    assert meetings.join_path(seat) == "" and rec.calls == []

    session.format_override = SessionFormat.ONLINE
    run_jobs(session.save)

    assert len(rec.succeeded("create")) == 1
    inside_window(clock, WEDNESDAY_15)
    assert join(client, seat)["Location"] == Meeting.objects.get(session=session).join_url
    assert join(client, seat, JoinPassRole.HOST).status_code == 302


def test_session_given_its_own_link_drops_the_automatic_meeting_and_can_go_back(
    recorder, online_session, run_jobs, client, clock
):
    (seat,) = book_seats(run_jobs, online_session, 1)

    online_session.meeting_link_override = SessionLink.MANUAL
    online_session.meeting_url = MANUAL_URL
    run_jobs(online_session.save)

    assert [call.action for call in rec.calls] == ["create", "delete"]
    inside_window(clock, WEDNESDAY_15)
    assert join(client, seat)["Location"] == MANUAL_URL

    # Restoring the class's link (R12) makes the automatic meeting again.
    online_session.meeting_link_override = ""
    run_jobs(online_session.save)

    assert [call.action for call in rec.calls] == ["create", "delete", "create"]
    assert join(client, seat)["Location"] == Meeting.objects.get(session=online_session).join_url


def test_session_whose_link_is_removed_shows_no_link(
    recorder, online_session, run_jobs, client, clock
):
    (seat,) = book_seats(run_jobs, online_session, 1)

    online_session.meeting_link_override = SessionLink.NONE
    run_jobs(online_session.save)

    assert rec.succeeded("delete")
    inside_window(clock, WEDNESDAY_15)
    assert join(client, seat).status_code == 404


# --------------------------------------------------------------------------------------
# Services and classes without an automatic meeting
# --------------------------------------------------------------------------------------


def test_in_person_appointment_gets_no_meeting_and_no_link(recorder, book, service):
    service.online = False
    service.save()

    booking = book()

    assert rec.calls == []
    assert Meeting.objects.count() == 0
    assert JoinPass.objects.count() == 0
    assert meetings.join_path(booking) == ""
    assert meetings.link_kind(booking) == meetings.NO_LINK


def test_service_with_a_manual_link_calls_no_provider_and_joins_that_link(
    recorder, book, service, client, clock
):
    service.meeting_link_mode = MeetingLinkMode.MANUAL
    service.meeting_url = MANUAL_URL
    service.save()

    booking = book()

    assert rec.calls == []
    assert Meeting.objects.count() == 0
    inside_window(clock, TUESDAY_10)
    assert join(client, booking)["Location"] == MANUAL_URL
    assert join(client, booking, JoinPassRole.HOST)["Location"] == MANUAL_URL


def test_class_with_a_manual_link_joins_it_and_a_session_may_have_its_own(
    recorder, staff, run_jobs, client, clock
):
    group_class = GroupClassFactory(
        staff=staff, online=True, meeting_link_mode=MeetingLinkMode.MANUAL, meeting_url=MANUAL_URL
    )
    usual = ClassSessionFactory(group_class=group_class, start=WEDNESDAY_15)
    special = ClassSessionFactory(
        group_class=group_class,
        start=WEDNESDAY_15 + dt.timedelta(days=1),
        meeting_link_override=SessionLink.MANUAL,
        meeting_url="https://meet.example.org/special",
    )
    (in_usual,) = book_seats(run_jobs, usual, 1)
    (in_special,) = book_seats(run_jobs, special, 1)

    assert rec.calls == []
    inside_window(clock, usual.start)
    assert join(client, in_usual)["Location"] == MANUAL_URL
    inside_window(clock, special.start)
    assert join(client, in_special)["Location"] == "https://meet.example.org/special"


def test_manual_link_saved_without_a_url_answers_not_found_instead_of_failing(
    recorder, book, service, client, clock
):
    service.meeting_link_mode = MeetingLinkMode.MANUAL
    service.save()  # clean() would refuse this in the admin
    booking = book()

    inside_window(clock, TUESDAY_10)

    assert join(client, booking).status_code == 404


def test_jitsi_as_the_default_account_gives_a_real_meet_jit_si_link(
    jitsi_default, book, client, clock
):
    booking = book()

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.provider == "jitsi"
    assert meeting.join_url.startswith("https://meet.jit.si/")
    room = meeting.join_url.rsplit("/", 1)[1]
    assert len(room) >= 32
    inside_window(clock, TUESDAY_10)
    location = join(client, booking)["Location"]
    assert location.startswith(meeting.join_url)
    assert "Giulia" in location  # the display name, pre-filled


def test_service_turned_online_after_it_was_booked_gives_the_booking_a_meeting(
    recorder, book, service, run_jobs, client, clock
):
    service.online = False
    service.save()
    booking = book()

    service.online = True
    run_jobs(service.save)

    assert len(rec.succeeded("create")) == 1
    inside_window(clock, TUESDAY_10)
    assert join(client, booking)["Location"] == meeting_for(booking).join_url

    # And off again: the meeting goes, the link closes.
    service.online = False
    run_jobs(service.save)

    assert len(rec.succeeded("delete")) == 1
    assert join(client, booking).status_code == 404


# --------------------------------------------------------------------------------------
# Host links
# --------------------------------------------------------------------------------------


def test_staff_host_link_of_an_appointment_opens_the_host_url(
    recorder, book, client, clock, service
):
    service.price = Decimal("40.00")
    service.save()
    booking = book()  # unpaid: the member's link waits, the host's does not

    inside_window(clock, TUESDAY_10)

    assert join(client, booking, JoinPassRole.HOST)["Location"] == meeting_for(booking).host_url
    assert join(client, booking).status_code == 404


def test_instructor_host_link_of_a_class_session_opens_the_host_url(
    recorder, online_session, run_jobs, client, clock
):
    seats = book_seats(run_jobs, online_session, 2)
    paths = {meetings.join_path(seat, JoinPassRole.HOST) for seat in seats}
    meeting = Meeting.objects.get(session=online_session)

    inside_window(clock, WEDNESDAY_15)

    (path,) = paths  # one host link per session
    assert client.get(path)["Location"] == meeting.host_url
    # With nobody booked any more, there is nothing to host.
    for seat in seats:
        bookings.cancel(seat, by_staff=True)
    assert client.get(path).status_code == 404


# --------------------------------------------------------------------------------------
# Faults (R15)
# --------------------------------------------------------------------------------------


def test_provider_failing_three_times_then_working_makes_exactly_one_meeting(recorder, book):
    rec.fail_next(3, TemporaryFailure())

    booking = book()

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.PENDING
    assert meeting.attempts == 1 and meeting.next_attempt_at > NOW
    moment = NOW
    for _ in range(10):
        moment = max(moment, meeting_for(booking).next_attempt_at) + dt.timedelta(seconds=1)
        sweep_at(moment)
        if meeting_for(booking).state == MeetingState.READY:
            break

    assert len(rec.attempted("create")) == 4
    assert len(rec.succeeded("create")) == 1
    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.attempts == 0 and meeting.last_error == "" and meeting.next_attempt_at is None


def test_retries_back_off_and_are_not_made_before_they_are_due(recorder, book):
    rec.fail_next(2, TemporaryFailure())
    booking = book()
    first_due = meeting_for(booking).next_attempt_at

    sweep_at(first_due - dt.timedelta(seconds=1))
    assert len(rec.attempted("create")) == 1

    sweep_at(first_due)
    assert len(rec.attempted("create")) == 2
    second_due = meeting_for(booking).next_attempt_at
    # Exponential: the second pause is longer than the first (jitter stays within 0.5–1.5).
    assert second_due - first_due > (first_due - NOW) / 3


def test_rate_limited_creation_waits_as_long_as_the_provider_asks(recorder, book):
    rec.fail_next(1, RateLimited(retry_after=120))
    booking = book()
    assert meeting_for(booking).next_attempt_at == NOW + dt.timedelta(seconds=120)

    sweep_at(NOW + dt.timedelta(seconds=119))
    assert len(rec.attempted("create")) == 1
    assert meetings.ensure_meeting(
        meeting_for(booking).pk, now=NOW + dt.timedelta(seconds=119)
    ) == ("waiting")

    sweep_at(NOW + dt.timedelta(seconds=121))
    assert len(rec.succeeded("create")) == 1
    assert meeting_for(booking).state == MeetingState.READY


def test_expired_authorisation_fails_the_meeting_and_tells_the_administrators(
    recorder, book, settings
):
    settings.ADMINS = admins("admin@example.com")
    rec.fail_next(2, AuthorizationExpired())

    booking = book()

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.FAILED
    assert "Reconnect the account" in meeting.last_error
    recorder.refresh_from_db()
    assert recorder.status == AccountStatus.NEEDS_RECONNECTING
    (message,) = to_admins()
    assert message.to == ["admin@example.com"]
    assert "needs reconnecting" in message.subject
    assert "Studio recorder" in message.body

    # While the account waits for a reconnect nothing more is made, and nobody is
    # emailed twice.
    second = book(TUESDAY_11, member=UserFactory())
    assert meeting_for(second).state == MeetingState.FAILED
    assert len(rec.attempted("create")) == 1
    assert len(to_admins()) == 1


def test_permanent_failure_is_shown_in_plain_words_and_retry_starts_over(recorder, book, run_jobs):
    rec.fail_next(1, PermanentFailure())

    booking = book()

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.FAILED
    assert meeting.last_error == "The provider refused the request."
    assert meeting.next_attempt_at is None
    assert meetings.sweep_meetings() == 0  # a failed meeting waits for a person

    run_jobs(meetings.retry, meeting)

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.last_error == ""
    assert len(rec.succeeded("create")) == 1


def test_update_that_keeps_failing_keeps_the_meeting_joinable_and_can_be_retried(
    recorder, book, run_jobs
):
    booking = book()
    rec.fail_next(1, PermanentFailure())

    run_jobs(bookings.reschedule, booking, start=WEDNESDAY_15)

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.last_error == "The provider refused the request."
    assert meeting.synced_start == TUESDAY_10

    run_jobs(meetings.retry, meeting)

    assert rec.succeeded("update")[-1].spec.start == WEDNESDAY_15
    meeting = meeting_for(booking)
    assert meeting.synced_start == WEDNESDAY_15 and meeting.last_error == ""


def test_provider_bug_is_retried_like_a_temporary_failure(recorder, book, monkeypatch):
    def broken(self, account, spec):
        raise KeyError("id")

    monkeypatch.setattr(rec.RecordingProvider, "create_meeting", broken)

    booking = book()

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.PENDING
    assert meeting.next_attempt_at is not None
    assert "id" in meeting.last_error


def test_job_run_twice_makes_one_meeting(recorder, book):
    booking = book()
    meeting = meeting_for(booking)

    assert meetings.ensure_meeting(meeting.pk) == "nothing"
    assert meetings.ensure_meeting(meeting.pk) == "nothing"
    meetings.sweep_meetings()

    assert len(rec.attempted("create")) == 1


def test_job_finding_another_worker_at_work_leaves_the_meeting_alone(
    recorder, service, staff, member, monkeypatch
):
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    booking = bookings.book_appointment(
        member=member, service=service, staff=staff, start=TUESDAY_10
    )
    Meeting.objects.filter(booking=booking).update(
        state=MeetingState.CREATING, claimed_at=NOW - dt.timedelta(seconds=10)
    )

    assert meetings.ensure_meeting(meeting_for(booking).pk) == "busy"
    assert rec.calls == []


def test_queue_losing_the_job_only_delays_the_meeting_until_the_sweep(
    recorder, service, staff, member, monkeypatch, client, clock
):
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    booking = bookings.book_appointment(
        member=member, service=service, staff=staff, start=TUESDAY_10
    )
    monkeypatch.undo()
    assert rec.calls == []
    assert meeting_for(booking).state == MeetingState.PENDING

    assert meetings.sweep_meetings() == 1

    assert len(rec.succeeded("create")) == 1
    assert meeting_for(booking).state == MeetingState.READY
    assert meetings.sweep_meetings() == 0


def test_lost_jobs_for_a_reschedule_and_a_cancellation_are_done_by_the_sweep(
    recorder, book, monkeypatch
):
    moved, cancelled = book(TUESDAY_10), book(TUESDAY_11, member=UserFactory())
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    bookings.reschedule(moved, start=WEDNESDAY_15)
    bookings.cancel(cancelled)
    monkeypatch.undo()

    assert meetings.sweep_meetings() == 2

    assert rec.succeeded("update")[0].spec.start == WEDNESDAY_15
    assert rec.succeeded("delete")[0].external_id == meeting_for(cancelled).external_id


def test_sweep_runs_from_the_periodic_job(recorder, service, staff, member, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    bookings.book_appointment(member=member, service=service, staff=staff, start=TUESDAY_10)
    monkeypatch.undo()

    jobs.sweep()

    assert len(rec.succeeded("create")) == 1


def test_meeting_of_a_worker_killed_mid_call_is_made_after_the_lease(
    recorder, service, staff, member, monkeypatch
):
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    booking = bookings.book_appointment(
        member=member, service=service, staff=staff, start=TUESDAY_10
    )
    monkeypatch.undo()
    # A worker claimed the meeting, then died before the provider answered.
    Meeting.objects.filter(booking=booking).update(
        state=MeetingState.CREATING, claimed_at=NOW, attempts=1
    )

    sweep_at(NOW + meetings.LEASE - dt.timedelta(seconds=1))
    assert rec.calls == []

    sweep_at(NOW + meetings.LEASE + dt.timedelta(seconds=1))
    assert len(rec.succeeded("create")) == 1
    assert meeting_for(booking).state == MeetingState.READY


def test_rotated_credentials_are_stored_as_soon_as_the_provider_hands_them_back(
    recorder, book, monkeypatch
):
    recorder.credentials = {"refresh_token": "old"}
    recorder.save()
    create = rec.RecordingProvider.create_meeting

    def create_and_rotate(self, account, spec):
        account.credentials = {"refresh_token": "new"}
        return create(self, account, spec)

    monkeypatch.setattr(rec.RecordingProvider, "create_meeting", create_and_rotate)

    book()

    assert ConferencingAccount.objects.get(pk=recorder.pk).credentials == {"refresh_token": "new"}


# --------------------------------------------------------------------------------------
# Which account applies (R3, R4)
# --------------------------------------------------------------------------------------


def test_staff_members_own_account_makes_their_meetings(recorder, book, staff):
    own = ConferencingAccount.objects.create(provider="recorder", staff=staff, label="Anna's")

    book()

    (create,) = rec.succeeded("create")
    assert create.account_id == own.pk


def test_staff_account_that_needs_reconnecting_gives_way_to_the_default(recorder, book, staff):
    ConferencingAccount.objects.create(
        provider="recorder", staff=staff, status=AccountStatus.NEEDS_RECONNECTING
    )

    book()

    assert rec.succeeded("create")[0].account_id == recorder.pk


def test_disconnected_default_account_hides_every_link_even_with_a_staff_account(
    recorder, book, staff, client, clock
):
    ConferencingAccount.objects.create(provider="recorder", staff=staff, label="Anna's")
    ready = book(TUESDAY_10)
    recorder.status = AccountStatus.DISCONNECTED
    recorder.save()

    later = book(TUESDAY_11, member=UserFactory())

    # No meeting is made while the default account is disconnected (R3) ...
    assert len(rec.succeeded("create")) == 1
    failed = meeting_for(later)
    assert failed.state == MeetingState.FAILED
    assert "default account" in failed.last_error
    # ... and the one made through the staff member's account is not shown either.
    assert meeting_for(ready).account.staff == staff
    inside_window(clock, TUESDAY_10)
    assert join(client, ready).status_code == 404
    assert join(client, ready, JoinPassRole.HOST).status_code == 404
    inside_window(clock, TUESDAY_11)
    assert join(client, later).status_code == 404

    # Reconnected and retried: links show again.
    recorder.status = AccountStatus.CONNECTED
    recorder.save()
    meetings.retry(failed)
    meetings.sweep_meetings()
    assert join(client, later)["Location"] == meeting_for(later).join_url


def test_site_without_a_default_account_makes_no_meeting_and_shows_no_link(
    recorder, book, client, clock
):
    conferencing = ConferencingSettings.objects.get()
    conferencing.default_account = None
    conferencing.save()

    booking = book()

    assert rec.calls == []
    assert meeting_for(booking).state == MeetingState.FAILED
    inside_window(clock, TUESDAY_10)
    assert join(client, booking).status_code == 404


def test_manual_links_do_not_depend_on_the_default_account(recorder, book, service, client, clock):
    recorder.status = AccountStatus.DISCONNECTED
    recorder.save()
    service.meeting_link_mode = MeetingLinkMode.MANUAL
    service.meeting_url = MANUAL_URL
    service.save()

    booking = book()

    inside_window(clock, TUESDAY_10)
    assert join(client, booking)["Location"] == MANUAL_URL


# --------------------------------------------------------------------------------------
# Over HTTP, through the loopback fake
# --------------------------------------------------------------------------------------


def test_lifecycle_reaches_a_provider_over_http(loopback, book, run_jobs, client, clock):
    account, server = loopback
    booking = book()

    (created,) = server.requests_to("POST", "/meetings")
    assert created.json()["start"] == TUESDAY_10.astimezone(dt.UTC).isoformat()
    assert f"[booking-ref:{booking.reference}]" in created.json()["agenda"]
    meeting = meeting_for(booking)
    assert meeting.external_id in server.meetings

    run_jobs(bookings.reschedule, booking, start=WEDNESDAY_15)
    (patched,) = server.requests_to("PATCH", "/meetings/{id}")
    assert patched.json()["start"] == WEDNESDAY_15.astimezone(dt.UTC).isoformat()

    inside_window(clock, WEDNESDAY_15)
    assert join(client, booking)["Location"] == meeting.join_url

    clock.move_to(NOW, tick=False)
    run_jobs(bookings.cancel, booking)
    assert server.requests_to("DELETE", "/meetings/{id}")
    assert server.meetings == {}
    server.raise_errors()


def test_http_faults_map_to_retries_and_failures(loopback, book, settings):
    account, server = loopback
    settings.ADMINS = admins("admin@example.com")

    server.fail_next(3, status=503)
    booking = book()
    moment = NOW
    while meeting_for(booking).state != MeetingState.READY:
        moment = meeting_for(booking).next_attempt_at + dt.timedelta(seconds=1)
        sweep_at(moment)
    assert len(server.requests_to("POST", "/meetings")) == 4
    assert len(server.meetings) == 1

    server.rate_limit_next(1, retry_after=120)
    limited = book(TUESDAY_11, member=UserFactory())
    assert meeting_for(limited).next_attempt_at == NOW + dt.timedelta(seconds=120)

    server.expire_tokens(1)
    expired = book(WEDNESDAY_15, member=UserFactory())
    assert meeting_for(expired).state == MeetingState.FAILED
    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_RECONNECTING


def test_http_refusal_fails_the_meeting_with_the_reason(loopback, book):
    account, server = loopback
    server.fail_next(1, status=400)

    booking = book()

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.FAILED
    assert meeting.last_error
    assert "Injected failure." in meeting.last_error


# --------------------------------------------------------------------------------------
# Two workers at once, in real threads
# --------------------------------------------------------------------------------------


def _shared_database() -> bool:
    # Threads cannot share an in-memory SQLite database: they need a file or PostgreSQL.
    test_name = connection.settings_dict.get("TEST", {}).get("NAME")
    file_sqlite = connection.vendor == "sqlite" and ":memory:" not in str(test_name or ":memory:")
    return connection.vendor == "postgresql" or file_sqlite


needs_shared_database = pytest.mark.skipif(
    not _shared_database(),
    reason="needs PostgreSQL (BVC_DATABASE=postgres) or a SQLite file (BVC_SQLITE_TEST_NAME)",
)


def in_parallel(*work):
    """Run each callable in its own thread, all released together; return their results."""
    barrier = threading.Barrier(len(work))
    results = [None] * len(work)

    def run(index, function):
        try:
            barrier.wait(timeout=30)
            results[index] = function()
        except Exception as error:  # noqa: BLE001 - checked by the test in the main thread
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a worker never finished"
    return results


def _booked_with_the_job_lost(member, service, staff, monkeypatch) -> Meeting:
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    booking = bookings.book_appointment(
        member=member, service=service, staff=staff, start=TUESDAY_10
    )
    monkeypatch.undo()
    return meeting_for(booking)


@needs_shared_database
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [2, 8])
def test_workers_running_the_job_at_once_make_one_meeting(
    recorder, service, staff, member, monkeypatch, workers
):
    meeting = _booked_with_the_job_lost(member, service, staff, monkeypatch)

    results = in_parallel(*[lambda: meetings.ensure_meeting(meeting.pk)] * workers)

    assert results.count("created") == 1, results
    assert set(results) <= {"created", "busy", "nothing"}, results
    assert len(rec.attempted("create")) == 1
    assert Meeting.objects.get(pk=meeting.pk).state == MeetingState.READY


@needs_shared_database
@pytest.mark.django_db(transaction=True)
def test_worker_arriving_while_another_waits_for_the_provider_leaves_it_alone(
    recorder, service, staff, member, monkeypatch
):
    meeting = _booked_with_the_job_lost(member, service, staff, monkeypatch)
    entered, release = rec.hold_creates()
    first = []
    worker = threading.Thread(
        target=lambda: (first.append(meetings.ensure_meeting(meeting.pk)), connections.close_all())
    )
    worker.start()
    assert entered.wait(timeout=30)

    others = in_parallel(*[lambda: meetings.ensure_meeting(meeting.pk)] * 3)
    in_parallel(meetings.sweep_meetings)
    release.set()
    worker.join(timeout=30)

    assert others == ["busy", "busy", "busy"]
    assert first == ["created"]
    assert len(rec.attempted("create")) == 1


# --------------------------------------------------------------------------------------
# The whole path, through the site's pages
# --------------------------------------------------------------------------------------


def test_member_books_through_the_pages_and_joins_from_the_members_area_and_the_email(
    recorder, client, clock, service, staff, member, django_capture_on_commit_callbacks
):
    root = Site.objects.get(is_default_site=True).root_page
    root.add_child(
        instance=ContentPage(
            title="Book",
            slug="book",
            body=[
                ("booking_widget", {"heading": "", "service": service}),
            ],
        )
    )
    root.add_child(instance=MembersAreaPage(title="My bookings", slug="my-bookings"))
    client.force_login(member)
    widget = client.get("/book/").content.decode()
    action = re.search(r'<form class="bvc-slot-form" method="get" action="([^"]+)"', widget)[1]
    value = re.search(r'name="slot" id="[^"]+" value="([^"]+)"', widget)[1]
    slot = f"{html.unescape(action)}?{urlencode({'slot': html.unescape(value)})}"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(slot, {"time_zone": "Europe/Rome", "notes": ""})

    assert response.status_code == 302
    booking = Booking.objects.get(member=member)
    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    path = meetings.join_path(booking)
    members_area = client.get("/my-bookings/").content.decode()
    assert path in members_area and meeting.join_url not in members_area
    (confirmation,) = [m for m in mail.outbox if member.email in m.to[0]]
    assert path in confirmation.body and meeting.join_url not in confirmation.body

    inside_window(clock, booking.start)
    assert client.get(path)["Location"] == meeting.join_url


def test_session_back_online_while_its_meeting_is_being_deleted_gets_a_new_one(
    recorder, online_session, run_jobs, monkeypatch
):
    book_seats(run_jobs, online_session, 1)
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    online_session.format_override = SessionFormat.IN_PERSON
    online_session.save()
    delete = rec.RecordingProvider.delete_meeting

    def delete_while_the_session_goes_back_online(self, account, external_id):
        ClassSession.objects.filter(pk=online_session.pk).update(format_override="")
        delete(self, account, external_id)

    monkeypatch.setattr(
        rec.RecordingProvider, "delete_meeting", delete_while_the_session_goes_back_online
    )
    meeting = Meeting.objects.get(session=online_session)

    assert meetings.ensure_meeting(meeting.pk) == "deleted"
    assert meetings.sweep_meetings() == 1

    assert [call.action for call in rec.calls] == ["create", "delete", "create"]
    assert Meeting.objects.get(pk=meeting.pk).state == MeetingState.READY


def test_changes_during_a_rate_limit_wait_go_out_together_once_it_is_over(recorder, book, run_jobs):
    booking = book()
    rec.fail_next(1, RateLimited(retry_after=600))
    run_jobs(bookings.reschedule, booking, start=WEDNESDAY_15)
    thursday = WEDNESDAY_15 + dt.timedelta(days=1)

    run_jobs(bookings.reschedule, booking, start=thursday)

    assert len(rec.attempted("update")) == 1  # the wait is kept
    sweep_at(NOW + dt.timedelta(seconds=601))
    (update,) = rec.succeeded("update")
    assert update.spec.start == thursday
    assert meeting_for(booking).synced_start == thursday


def test_deletion_refused_for_good_waits_for_a_retry_instead_of_trying_again_and_again(
    recorder, book, run_jobs
):
    booking = book()
    rec.fail_next(1, PermanentFailure())

    run_jobs(bookings.cancel, booking)

    assert len(rec.attempted("delete")) == 1
    meeting = meeting_for(booking)
    assert meeting.last_error == "The provider refused the request."
    assert meetings.sweep_meetings() == 0

    run_jobs(meetings.retry, meeting)

    assert len(rec.succeeded("delete")) == 1
    assert meeting_for(booking).state == MeetingState.CANCELLED
