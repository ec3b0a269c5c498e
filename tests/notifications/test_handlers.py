"""Booking signals enqueue the right emails, to the right people, once the booking commits."""

from __future__ import annotations

import pytest
from django.core import mail

from wagtail_bookings_vc import jobs
from wagtail_bookings_vc.models import Booking, BookingEmailSettings, BookingStatus, Meeting
from wagtail_bookings_vc.notifications.handlers import SEND_EMAIL_JOB
from wagtail_bookings_vc.notifications.link_ready import LINK_READY_JOB
from wagtail_bookings_vc.signals import (
    booking_cancelled,
    booking_confirmed,
    booking_paid,
    booking_rescheduled,
    meeting_ready,
)

from .helpers import START

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    """Record the jobs enqueued instead of running them."""
    calls = []
    monkeypatch.setattr(jobs, "enqueue", lambda func, *args: calls.append((func, *args)))
    return calls


def test_confirmation_enqueues_member_and_staff_emails(booking, enqueued):
    booking_confirmed.send(sender=Booking, booking=booking)

    assert enqueued == [
        (SEND_EMAIL_JOB, booking.pk, "member_confirmation"),
        (SEND_EMAIL_JOB, booking.pk, "staff_confirmation"),
    ]


def test_job_path_names_the_email_job():
    from django.utils.module_loading import import_string

    from wagtail_bookings_vc.notifications.emails import send_booking_email

    assert import_string(SEND_EMAIL_JOB) is send_booking_email


def test_cancellation_enqueues_cancellation_emails(booking, enqueued):
    booking_cancelled.send(sender=Booking, booking=booking)

    assert [kind for *_job, kind in enqueued] == ["member_cancellation", "staff_cancellation"]


def test_reschedule_enqueues_reschedule_emails(booking, enqueued):
    booking_rescheduled.send(sender=Booking, booking=booking, previous_start=START)

    assert [kind for *_job, kind in enqueued] == ["member_reschedule", "staff_reschedule"]


def test_payment_of_an_in_person_booking_sends_no_email(booking, enqueued):
    booking_paid.send(sender=Booking, booking=booking)

    assert enqueued == []


def test_payment_of_an_online_booking_asks_for_the_link_email(booking, service, enqueued):
    service.online = True
    service.save()
    enqueued.clear()

    booking_paid.send(sender=Booking, booking=booking)

    assert enqueued == [(SEND_EMAIL_JOB, booking.pk, "member_link_ready")]


def test_a_ready_meeting_asks_for_the_link_ready_job(booking, enqueued):
    meeting = Meeting.objects.create(booking=booking, provider="jitsi")

    meeting_ready.send(sender=Meeting, meeting=meeting)

    assert enqueued == [(LINK_READY_JOB, meeting.pk)]


def test_job_path_names_the_link_ready_job():
    from django.utils.module_loading import import_string

    from wagtail_bookings_vc.notifications.link_ready import send_link_ready

    assert import_string(LINK_READY_JOB) is send_link_ready


def test_staff_are_not_emailed_when_the_setting_is_off(booking, email_prefs, enqueued):
    email_prefs.notify_staff = False
    email_prefs.save()

    booking_confirmed.send(sender=Booking, booking=booking)

    assert [kind for *_job, kind in enqueued] == ["member_confirmation"]


def test_the_setting_of_the_default_site_decides_and_its_default_is_on(
    booking, email_prefs, enqueued
):
    from wagtail.models import Site

    other = Site.objects.create(hostname="other.example", root_page=email_prefs.site.root_page)
    BookingEmailSettings.objects.create(site=other, notify_staff=False)
    BookingEmailSettings.objects.all().exclude(site=other).delete()

    # Nothing saved for the default site yet: its settings start with staff emails on.
    booking_confirmed.send(sender=Booking, booking=booking)
    email_prefs = BookingEmailSettings.objects.get(site=email_prefs.site)
    email_prefs.notify_staff = False
    email_prefs.save()
    booking_confirmed.send(sender=Booking, booking=booking)

    assert [kind for *_job, kind in enqueued] == [
        "member_confirmation",
        "staff_confirmation",
        "member_confirmation",
    ]


def test_staff_without_an_address_get_no_email(booking, staff, enqueued):
    staff.email = ""
    staff.save()

    booking_confirmed.send(sender=Booking, booking=booking)

    assert [kind for *_job, kind in enqueued] == ["member_confirmation"]


def test_class_instructor_is_the_staff_member(class_booking, enqueued):
    class_booking.staff = None  # only the class knows its instructor
    class_booking.save()

    booking_confirmed.send(sender=Booking, booking=class_booking)

    assert [kind for *_job, kind in enqueued] == ["member_confirmation", "staff_confirmation"]


def test_class_without_instructor_emails_only_the_member(class_booking, enqueued):
    group_class = class_booking.session.group_class
    group_class.staff = None
    group_class.save()
    class_booking.staff = None
    class_booking.save()

    booking_confirmed.send(sender=Booking, booking=class_booking)

    assert [kind for *_job, kind in enqueued] == ["member_confirmation"]


def test_emails_wait_for_the_commit(booking, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        booking_confirmed.send(sender=Booking, booking=booking)
        assert mail.outbox == []

    assert len(callbacks) == 2
    assert mail.outbox == []


def test_emails_go_out_through_the_queue(booking, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        booking_confirmed.send(sender=Booking, booking=booking)

    assert sorted(message.to[0] for message in mail.outbox) == [
        "Ada Lovelace <ada@example.com>",
        "Giulia Rossi <giulia@example.com>",
    ]


def test_late_confirmation_job_for_a_cancelled_booking_sends_nothing(
    booking, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        booking_confirmed.send(sender=Booking, booking=booking)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CANCELLED)

    for callback in callbacks:
        callback()

    assert mail.outbox == []
