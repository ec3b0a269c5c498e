"""Emails and calendar files across a booking's life, driven through ``bookings.py``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import translation
from icalendar import Calendar

from wagtail_bookings_vc import bookings
from wagtail_bookings_vc.notifications.reminders import send_due_reminders

from .helpers import SITE_HOST, START, ics_of

pytestmark = pytest.mark.django_db

NOW = START - dt.timedelta(days=7)
NEW_START = START + dt.timedelta(days=1, hours=1)  # Wednesday, 11:00 in Rome


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Run what a booking change leaves for after the commit: signals, then the email jobs."""

    def run(change, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            result = change(*args, **kwargs)
        return result

    return run


@pytest.fixture
def book(run_jobs, site, member, service, staff):
    def make(**kwargs):
        values = {
            "member": member,
            "service": service,
            "staff": staff,
            "start": START,
            "time_zone": "America/New_York",
            "notes": "First visit",
            "now": NOW,
        }
        values.update(kwargs)
        return run_jobs(bookings.book_appointment, **values)

    return make


def _event(message):
    calendar = Calendar.from_ical(ics_of(message))
    (event,) = calendar.walk("VEVENT")
    return calendar["METHOD"], event


def _by_recipient(outbox):
    return {message.to[0].split("<")[1].rstrip(">"): message for message in outbox}


def test_booking_emails_the_member_and_the_staff_member(book):
    booking = book()

    messages = _by_recipient(mail.outbox)
    assert set(messages) == {"ada@example.com", "giulia@example.com"}
    member_message = messages["ada@example.com"]
    staff_message = messages["giulia@example.com"]
    assert member_message.subject == "Booking confirmed: Massage, Tuesday 12 January 2027"
    assert "04:00–05:00 (America/New_York)" in member_message.body
    assert f"/bookings/{booking.reference}/" in member_message.body
    assert "10:00–11:00 (Europe/Rome)" in staff_message.body
    assert "First visit" in staff_message.body


def test_member_emails_are_in_the_language_they_booked_in(book):
    with translation.override("it"):
        book()

    messages = _by_recipient(mail.outbox)
    assert "Martedì 12 Gennaio 2027" in messages["ada@example.com"].body
    assert "Tuesday 12 January 2027" in messages["giulia@example.com"].body


def test_staff_are_not_emailed_when_turned_off(book, email_prefs):
    email_prefs.notify_staff = False
    email_prefs.save()

    book()

    assert [message.to for message in mail.outbox] == [["Ada Lovelace <ada@example.com>"]]


def test_calendar_event_follows_the_booking_through_its_life(book, run_jobs):
    booking = book()
    method, confirmed = _event(_by_recipient(mail.outbox)["ada@example.com"])
    assert method == "REQUEST"
    assert confirmed["SEQUENCE"] == 0
    assert str(confirmed["UID"]) == f"booking-{booking.reference}@{SITE_HOST}"

    mail.outbox.clear()
    run_jobs(bookings.reschedule, booking, start=NEW_START, now=NOW)
    member_message = _by_recipient(mail.outbox)["ada@example.com"]
    staff_message = _by_recipient(mail.outbox)["giulia@example.com"]
    method, moved = _event(member_message)
    assert member_message.subject.startswith("New time for your booking: Massage")
    assert "Wednesday 13 January 2027, 05:00–06:00 (America/New_York)" in member_message.body
    assert staff_message.subject.startswith("Booking moved: Massage")
    assert method == "REQUEST"
    assert moved["UID"] == confirmed["UID"]
    assert moved["SEQUENCE"] == 1
    assert moved.decoded("DTSTART") == NEW_START
    assert moved.decoded("DTSTART").utcoffset() == dt.timedelta(0)

    mail.outbox.clear()
    run_jobs(bookings.cancel, booking, now=NOW)
    member_message = _by_recipient(mail.outbox)["ada@example.com"]
    assert member_message.subject.startswith("Booking cancelled: Massage")
    assert _by_recipient(mail.outbox)["giulia@example.com"].subject.startswith("Booking cancelled")
    method, cancelled = _event(member_message)
    assert method == "CANCEL"
    assert cancelled["STATUS"] == "CANCELLED"
    assert cancelled["UID"] == confirmed["UID"]
    assert cancelled["SEQUENCE"] == 2


def test_class_booking_emails_the_instructor(run_jobs, member, class_booking):
    session = class_booking.session
    class_booking.delete()

    run_jobs(bookings.book_session, member=member, session=session, time_zone="UTC", now=NOW)

    messages = _by_recipient(mail.outbox)
    assert set(messages) == {"ada@example.com", "oskar@example.com"}
    assert "Where: Studio 2" in messages["ada@example.com"].body
    assert "09:00–10:00 (UTC)" in messages["ada@example.com"].body
    assert "10:00–11:00 (Europe/Stockholm)" in messages["oskar@example.com"].body


def test_payment_sends_no_email(book, run_jobs, service):
    booking = book()
    mail.outbox.clear()

    run_jobs(bookings.mark_paid, booking)

    assert mail.outbox == []


def test_rescheduled_booking_is_reminded_again(book, run_jobs):
    booking = book()
    mail.outbox.clear()
    assert send_due_reminders(now=START - dt.timedelta(hours=10)) == 1

    run_jobs(bookings.reschedule, booking, start=NEW_START, by_staff=True, now=NOW)
    mail.outbox.clear()

    assert send_due_reminders(now=START - dt.timedelta(hours=9)) == 0
    assert send_due_reminders(now=NEW_START - dt.timedelta(hours=10)) == 1
    (reminder,) = mail.outbox
    assert "Wednesday 13 January 2027, 05:00–06:00" in reminder.body
    assert _event(reminder)[1]["SEQUENCE"] == 1


def test_cancelled_booking_gets_no_reminder(book, run_jobs):
    booking = book()
    run_jobs(bookings.cancel, booking, now=NOW)
    mail.outbox.clear()

    assert send_due_reminders(now=START - dt.timedelta(hours=10)) == 0
    assert mail.outbox == []
