"""Reminders: sent once, when due, by the periodic sweep."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from wagtail_bookings_vc import jobs
from wagtail_bookings_vc.models import Booking, BookingStatus
from wagtail_bookings_vc.notifications.reminders import send_due_reminders

from .helpers import START, ics_of

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def _remind_a_day_ahead(email_prefs):
    email_prefs.reminder_hours_before = 24
    email_prefs.save()


def test_due_reminder_is_sent_and_recorded(booking):
    now = START - 10 * HOUR

    assert send_due_reminders(now=now) == 1

    (message,) = mail.outbox
    assert message.to == ["Ada Lovelace <ada@example.com>"]
    assert message.subject.startswith("Reminder: Massage")
    assert b"METHOD:REQUEST" in ics_of(message)
    booking.refresh_from_db()
    assert booking.reminder_sent_at == now


def test_running_twice_sends_once(booking):
    now = START - 10 * HOUR

    assert send_due_reminders(now=now) == 1
    assert send_due_reminders(now=now + 5 * dt.timedelta(minutes=1)) == 0

    assert len(mail.outbox) == 1


def test_reminder_at_the_edge_of_the_window_is_due(booking):
    assert send_due_reminders(now=START - 24 * HOUR) == 1


def test_reminder_is_not_due_yet(booking):
    assert send_due_reminders(now=START - 25 * HOUR) == 0

    assert mail.outbox == []
    booking.refresh_from_db()
    assert booking.reminder_sent_at is None


def test_started_booking_gets_no_reminder(booking):
    assert send_due_reminders(now=START + dt.timedelta(minutes=1)) == 0
    assert mail.outbox == []


def test_reminder_already_sent_is_not_sent_again(make_booking):
    make_booking(reminder_sent_at=START - 30 * HOUR)

    assert send_due_reminders(now=START - 10 * HOUR) == 0
    assert mail.outbox == []


def test_cancelled_booking_gets_no_reminder(make_booking):
    make_booking(status=BookingStatus.CANCELLED)

    assert send_due_reminders(now=START - 10 * HOUR) == 0
    assert mail.outbox == []


def test_cancelled_session_gets_no_reminder(class_booking):
    session = class_booking.session
    session.cancelled = True
    session.save()

    assert send_due_reminders(now=START - 10 * HOUR) == 0


def test_reminders_can_be_turned_off(booking, email_prefs):
    email_prefs.reminder_hours_before = 0
    email_prefs.save()

    assert send_due_reminders(now=START - HOUR) == 0
    assert mail.outbox == []


def test_window_follows_the_setting(booking, email_prefs):
    email_prefs.reminder_hours_before = 2
    email_prefs.save()

    assert send_due_reminders(now=START - 3 * HOUR) == 0
    assert send_due_reminders(now=START - 2 * HOUR) == 1


def test_only_due_bookings_are_reminded(make_booking):
    soon = make_booking()
    make_booking(start=START + 48 * HOUR, end=START + 49 * HOUR)

    assert send_due_reminders(now=START - HOUR) == 1

    assert Booking.objects.filter(reminder_sent_at__isnull=False).get() == soon


def test_reminder_that_failed_to_send_is_tried_again(booking, monkeypatch):
    def refuse(self, fail_silently=False):
        raise OSError("mail server down")

    monkeypatch.setattr(EmailMultiAlternatives, "send", refuse)
    assert send_due_reminders(now=START - 10 * HOUR) == 0
    booking.refresh_from_db()
    assert booking.reminder_sent_at is None

    monkeypatch.undo()
    assert send_due_reminders(now=START - 9 * HOUR) == 1
    assert len(mail.outbox) == 1


def test_a_booking_claimed_by_another_sweep_is_skipped(booking, monkeypatch):
    """Two sweeps list the same booking; only the one that claims it first sends."""
    from wagtail_bookings_vc.notifications import reminders

    real_deliver = reminders.deliver

    def other_sweep_first(booking_id, kind):
        # Runs after this sweep claimed the booking: the other sweep finds it taken.
        assert send_due_reminders(now=START - 10 * HOUR) == 0
        return real_deliver(booking_id, kind)

    monkeypatch.setattr(reminders, "deliver", other_sweep_first)

    assert send_due_reminders(now=START - 10 * HOUR) == 1
    assert len(mail.outbox) == 1


def test_member_without_address_is_claimed_but_not_counted(make_booking, member):
    member.email = ""
    member.save()
    booking = make_booking(member_email="")

    assert send_due_reminders(now=START - 10 * HOUR) == 0
    booking.refresh_from_db()
    assert booking.reminder_sent_at is not None


# --- the periodic sweep ---------------------------------------------------------------


def test_sweep_sends_due_reminders(make_booking):
    start = timezone.now() + 2 * HOUR
    make_booking(start=start, end=start + HOUR)

    jobs.sweep()

    assert len(mail.outbox) == 1


def test_schedule_runs_the_sweep(make_booking, monkeypatch):
    from django_q.conf import Conf
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    monkeypatch.setattr(Conf, "SYNC", True)
    start = timezone.now() + 2 * HOUR
    booking = make_booking(start=start, end=start + HOUR)
    jobs.ensure_schedules()
    schedule = Schedule.objects.get(name=jobs.SWEEP_SCHEDULE_NAME)
    schedule.next_run = timezone.now() - dt.timedelta(seconds=1)
    schedule.save()

    scheduler()

    (message,) = mail.outbox
    assert message.subject.startswith("Reminder: Massage")
    booking.refresh_from_db()
    assert booking.reminder_sent_at is not None
    schedule.refresh_from_db()
    assert schedule.next_run > timezone.now()

    # The next run finds nothing left to send.
    schedule.next_run = timezone.now() - dt.timedelta(seconds=1)
    schedule.save()
    scheduler()
    assert len(mail.outbox) == 1
