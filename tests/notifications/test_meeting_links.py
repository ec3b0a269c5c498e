"""Meeting links in emails and calendar files (R15, R19, R20, R21, R3).

Bookings go through ``bookings.py`` and every job they leave runs inline, in the order a
worker would take them; the meetings are real Jitsi rooms made by the meeting job.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from icalendar import Calendar
from wagtail.models import Site

from tests.factories import ClassSessionFactory, UserFactory
from wagtail_bookings_vc import bookings, jobs, meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    Booking,
    BookingEmailSettings,
    ConferencingSettings,
    JoinPassRole,
    Meeting,
)
from wagtail_bookings_vc.notifications import link_ready
from wagtail_bookings_vc.notifications.emails import LINK_READY, build_booking_email, deliver

from .helpers import SITE_URL, START, HeldJobs, connect_default_account, html_of, ics_of

pytestmark = pytest.mark.django_db

NOW = START - dt.timedelta(days=7)
JOIN_LINK = re.compile(re.escape(SITE_URL) + r"/bookings/join/[\w-]+/")


@pytest.fixture
def account(site):
    return connect_default_account()


@pytest.fixture
def online(service, account):
    """The Massage service, online and free (so that no payment holds the link back)."""
    service.online = True
    service.price = None
    service.save()
    return service


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    def run(change, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return change(*args, **kwargs)

    return run


@pytest.fixture
def book(run_jobs, member, online, staff):
    def make(**kwargs) -> Booking:
        values = {
            "member": member,
            "service": online,
            "staff": staff,
            "start": START,
            "time_zone": "America/New_York",
            "now": NOW,
        }
        values.update(kwargs)
        booking = run_jobs(bookings.book_appointment, **values)
        return Booking.objects.get(pk=booking.pk)

    return make


@pytest.fixture
def held(monkeypatch):
    """Meetings are made only when the test says so (``make_meetings``)."""
    held = HeldJobs(jobs.enqueue)
    monkeypatch.setattr(jobs, "enqueue", held)
    return held


@pytest.fixture
def make_meetings(run_jobs, held):
    def make() -> None:
        for meeting_id in held.meeting_ids:
            run_jobs(meetings.ensure_meeting, meeting_id)
        held.meeting_ids.clear()

    return make


def to(address: str) -> list:
    return [message for message in mail.outbox if address in message.to[0]]


def subjects(address: str) -> list[str]:
    return [message.subject for message in to(address)]


def join_url_of(booking: Booking, role: str = JoinPassRole.ATTENDEE) -> str:
    return SITE_URL + meetings.join_path(booking, role)


def provider_url(booking: Booking) -> str:
    url = meetings.meeting_of(booking).join_url
    assert url.startswith("https://meet.jit.si/")
    return url


def event_of(message):
    (event,) = Calendar.from_ical(ics_of(message)).walk("VEVENT")
    return event


def everything_in(message) -> str:
    return message.body + html_of(message) + ics_of(message).decode()


# --- confirmation and reminder ---------------------------------------------------------


def test_confirmation_carries_the_members_personal_join_link(book):
    booking = book()

    (message,) = to("ada@example.com")

    assert join_url_of(booking) in message.body
    assert "Join the video meeting with your personal link:" in message.body
    # 09:00 UTC is 04:00 in New York; the link opens 15 minutes earlier.
    assert "The link opens at 03:45, shortly before the start." in message.body
    assert f'href="{join_url_of(booking)}"' in html_of(message)
    assert provider_url(booking) not in everything_in(message)


def test_an_email_job_reads_the_site_and_its_settings_once(book, make_meetings):
    booking = book()
    make_meetings()
    mail.outbox.clear()

    with CaptureQueriesContext(connection) as queries:
        assert deliver(booking.pk, "member_confirmation")

    for model in (Site, ConferencingSettings, BookingEmailSettings):
        table = connection.ops.quote_name(model._meta.db_table)
        reads = [query for query in queries.captured_queries if f"FROM {table}" in query["sql"]]
        assert len(reads) == 1, model
    assert join_url_of(booking) in to("ada@example.com")[0].body


def test_reminder_carries_the_join_link(book):
    booking = book()
    mail.outbox.clear()

    assert deliver(booking.pk, "member_reminder")

    (message,) = mail.outbox
    assert join_url_of(booking) in message.body
    assert provider_url(booking) not in everything_in(message)


def test_staff_emails_carry_the_host_link_not_the_members(book):
    booking = book()

    (message,) = to("giulia@example.com")

    host = join_url_of(booking, JoinPassRole.HOST)
    assert host in message.body
    assert "Open the video meeting as its host with your personal link:" in message.body
    assert join_url_of(booking) not in everything_in(message)
    assert provider_url(booking) not in everything_in(message)
    assert str(event_of(message)["LOCATION"]) == host


def test_new_time_emails_carry_the_links_too(book, run_jobs):
    booking = book()
    mail.outbox.clear()

    run_jobs(bookings.reschedule, booking, start=START + dt.timedelta(hours=2), now=NOW)

    (member_message,) = to("ada@example.com")
    (staff_message,) = to("giulia@example.com")
    assert join_url_of(booking) in member_message.body
    assert join_url_of(booking, JoinPassRole.HOST) in staff_message.body


def test_in_person_booking_emails_say_nothing_of_a_link(book, online):
    online.online = False
    online.save()
    book()

    for message in mail.outbox:
        assert "/bookings/join/" not in everything_in(message)
        assert "video meeting" not in message.body


def test_cancellation_emails_carry_no_link(book, run_jobs):
    booking = book()
    mail.outbox.clear()

    run_jobs(bookings.cancel, booking, now=NOW)

    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert "/bookings/join/" not in everything_in(message)


# --- the calendar file -----------------------------------------------------------------


def test_calendar_file_holds_the_join_link(book):
    booking = book()

    event = event_of(to("ada@example.com")[0])

    assert str(event["LOCATION"]) == join_url_of(booking)
    assert str(event["URL"]) == join_url_of(booking)
    assert join_url_of(booking) in str(event["DESCRIPTION"])
    # The page to manage the booking stays in the description.
    assert f"{SITE_URL}/bookings/{booking.reference}/" in str(event["DESCRIPTION"])


def test_downloaded_calendar_file_holds_the_join_link(book, client, member):
    booking = book()
    client.force_login(member)

    response = client.get(f"/bookings/{booking.reference}/calendar.ics")

    (event,) = Calendar.from_ical(response.content).walk("VEVENT")
    assert str(event["LOCATION"]) == join_url_of(booking)
    assert provider_url(booking) not in response.content.decode()


def test_manual_link_note_and_passcode_go_with_the_link(book, online):
    online.meeting_link_mode = "manual"
    online.meeting_url = "https://whereby.com/riverside"
    online.meeting_passcode = "4321"
    online.meeting_description = "Use the browser; no app needed."
    online.save()
    booking = book()

    message = to("ada@example.com")[0]

    assert join_url_of(booking) in message.body
    assert "How to join: Use the browser; no app needed." in message.body
    assert "Passcode: 4321" in message.body
    assert "whereby.com" not in everything_in(message)
    assert "Passcode: 4321" in str(event_of(message)["DESCRIPTION"])


# --- left out, unpaid, disconnected ----------------------------------------------------


def test_link_left_out_of_emails(book, online):
    online.hide_link_in_emails = True
    online.save()
    booking = book()

    member_message = to("ada@example.com")[0]
    assert "/bookings/join/" not in everything_in(member_message)
    assert str(event_of(member_message)["LOCATION"]) == "Online"
    # Staff keep their host link.
    assert join_url_of(booking, JoinPassRole.HOST) in to("giulia@example.com")[0].body


def test_unpaid_booking_gets_its_link_once_paid(book, online, run_jobs):
    online.price = 40
    online.save()
    booking = book()

    (confirmation,) = to("ada@example.com")
    assert "/bookings/join/" not in everything_in(confirmation)
    assert "Your link appears once your payment is received." in confirmation.body
    mail.outbox.clear()

    run_jobs(bookings.mark_paid, booking)

    (message,) = mail.outbox
    assert message.subject == "Your meeting link: Massage, Tuesday 12 January 2027"
    assert join_url_of(booking) in message.body


def test_paying_for_an_in_person_booking_sends_nothing(book, online, run_jobs):
    online.online = False
    online.price = 40
    online.save()
    booking = book()
    mail.outbox.clear()

    run_jobs(bookings.mark_paid, booking)

    assert mail.outbox == []


def test_no_link_in_emails_while_the_default_account_is_disconnected(book, account):
    account.status = AccountStatus.DISCONNECTED
    account.save()

    book()

    for message in mail.outbox:
        assert "/bookings/join/" not in everything_in(message)
        assert "meet.jit.si" not in everything_in(message)
        assert "Your link" not in message.body


# --- "your link is ready" --------------------------------------------------------------


def test_link_follows_when_the_meeting_is_made_after_the_confirmation(book, make_meetings):
    booking = book()
    (confirmation,) = to("ada@example.com")
    assert "/bookings/join/" not in everything_in(confirmation)
    assert "Your link is being prepared. We will email it to you" in confirmation.body
    mail.outbox.clear()

    make_meetings()

    (message,) = mail.outbox
    assert message.to == ["Ada Lovelace <ada@example.com>"]
    assert message.subject == "Your meeting link: Massage, Tuesday 12 January 2027"
    assert "The link to your video meeting is ready." in message.body
    assert join_url_of(booking) in message.body
    assert str(event_of(message)["LOCATION"]) == join_url_of(booking)
    assert provider_url(booking) not in everything_in(message)


def test_link_ready_email_goes_out_once(book, make_meetings, run_jobs):
    booking = book()
    make_meetings()
    meeting = meetings.meeting_of(booking)
    assert Meeting.objects.get(pk=meeting.pk).link_ready_notified
    mail.outbox.clear()

    # The signal again, a second worker, the job run twice: nothing more.
    assert run_jobs(link_ready.send_link_ready, meeting.pk) == 0
    run_jobs(meetings.ensure_meeting, meeting.pk)

    assert mail.outbox == []


def test_no_link_ready_email_when_the_confirmation_had_the_link(book):
    booking = book()

    assert sorted(subjects("ada@example.com")) == [
        "Booking confirmed: Massage, Tuesday 12 January 2027"
    ]
    assert join_url_of(booking) in to("ada@example.com")[0].body


def test_each_waiting_attendee_of_a_class_gets_their_link(
    run_jobs, held, make_meetings, group_class, account
):
    group_class.online = True
    group_class.save()
    session = ClassSessionFactory(group_class=group_class, start=START)
    attendees = [UserFactory(email=f"attendee{n}@example.com") for n in range(2)]
    seats = [
        run_jobs(bookings.book_session, member=attendee, session=session, now=NOW)
        for attendee in attendees
    ]
    mail.outbox.clear()

    make_meetings()

    assert len(mail.outbox) == 2
    for attendee, seat in zip(attendees, seats, strict=True):
        (message,) = to(attendee.email)
        assert join_url_of(seat) in message.body
        other = next(s for s in seats if s != seat)
        assert join_url_of(other) not in message.body


def test_link_ready_email_is_not_sent_for_a_cancelled_booking(book, make_meetings, run_jobs):
    booking = book()
    run_jobs(bookings.cancel, booking, now=NOW)
    mail.outbox.clear()

    make_meetings()

    assert mail.outbox == []


def test_link_ready_email_is_not_built_without_a_link(booking):
    assert build_booking_email(booking, LINK_READY) is None


def test_link_ready_email_has_a_well_formed_html_version(book, make_meetings):
    from .test_emails import _unclosed_tags

    book()
    mail.outbox.clear()
    make_meetings()

    html = html_of(mail.outbox[0])
    assert html.startswith("<!DOCTYPE html>")
    assert _unclosed_tags(html) == []


# --- editors' texts --------------------------------------------------------------------


def test_editor_texts_can_place_both_links(book, email_prefs):
    email_prefs.member_confirmation_body = "Join: {{ join_link }} (from {{ join_opens }})"
    email_prefs.staff_confirmation_body = "Host: {{ host_link }}|{{ join_link }}|"
    email_prefs.save()

    booking = book()

    member_message = to("ada@example.com")[0]
    staff_message = to("giulia@example.com")[0]
    assert member_message.body == f"Join: {join_url_of(booking)} (from 03:45)\n"
    assert staff_message.body == f"Host: {join_url_of(booking, JoinPassRole.HOST)}||\n"
