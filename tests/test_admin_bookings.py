"""Cancelling and rescheduling one booking from the admin, through ``bookings.py``.

The member is emailed, the meeting follows (deleted or moved at the recording
provider), and what the writers refuse (a time just taken, a full session, a booking
already cancelled) is said in a Wagtail message on the page, which then shows what is
still free. Only people who may manage the booking get that far.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import urlencode

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests import recording_provider as rec
from tests.factories import ClassSessionFactory
from tests.test_admin_calendar import (
    NOW,
    Scene,
    at,
    client_for,
    denied,
    make_scene,
    staff_user,
    text,
)
from wagtail_bookings_vc import admin_calendar, bookings
from wagtail_bookings_vc.models import Booking, BookingStatus, Meeting, MeetingState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def scene(recorder, run_jobs) -> Scene:
    return make_scene(run_jobs)


@pytest.fixture
def admin_client(django_user_model) -> Client:
    return client_for(
        django_user_model.objects.create_superuser("boss", "boss@example.com", "password")
    )


@pytest.fixture
def anna_client(scene) -> Client:
    return client_for(staff_user(scene.anna, "anna"))


@pytest.fixture
def viewer_client(django_user_model) -> Client:
    """An admin user who may see every booking but manage none."""
    viewer = django_user_model.objects.create_user("viewer", password="password")
    viewer.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_booking"),
    )
    return client_for(viewer)


def deleted_since(count: int) -> list[str]:
    """The meetings deleted at the provider after the first ``count`` deletes."""
    return [call.external_id for call in rec.succeeded("delete")[count:]]


CALENDAR = admin_calendar.calendar_url("week", dt.date(2026, 11, 24), "service=1")


def cancel_url(booking: Booking, **params: str) -> str:
    url = reverse("wagtail_bookings_vc_admin:booking_cancel", args=[booking.pk])
    return f"{url}?{urlencode(params)}" if params else url


def reschedule_url(booking: Booking, **params: str) -> str:
    url = reverse("wagtail_bookings_vc_admin:booking_reschedule", args=[booking.pk])
    return f"{url}?{urlencode(params)}" if params else url


def messages_of(response) -> list[tuple[str, str]]:
    """The Wagtail messages the response carries: (level, text)."""
    return [
        (message.level_tag, text(str(message))) for message in get_messages(response.wsgi_request)
    ]


def times_offered(content: str) -> list[str]:
    """The free times of the reschedule page that can be chosen."""
    choices = re.findall(r'<input type="radio" name="start" value="([^"]+)"( disabled)?', content)
    return [
        dt.datetime.fromisoformat(html.unescape(value))
        .astimezone(at(1, 0).tzinfo)
        .strftime("%H:%M")
        for value, disabled in choices
        if not disabled
    ]


def emails_to(address: str) -> list[str]:
    return [message.subject for message in mail.outbox if any(address in to for to in message.to)]


# --------------------------------------------------------------------------------------
# Cancel
# --------------------------------------------------------------------------------------


def test_the_confirmation_says_the_member_is_emailed_and_the_meeting_deleted(admin_client, scene):
    response = admin_client.get(cancel_url(scene.giulia_physio, next=CALENDAR))

    assert response.status_code == 200
    shown = text(response.content.decode())
    assert "Cancel booking" in shown
    assert "Giulia Bianchi" in shown and "Online physiotherapy" in shown
    assert "Tuesday 24 November 2026, 10:00–11:00 (Europe/Rome)" in shown
    assert "Giulia Bianchi is emailed that the booking is cancelled." in shown
    assert "Its video meeting is deleted at the provider." in shown
    assert "The member's personal join link stops working." in shown
    assert f'<input type="hidden" name="next" value="{html.escape(CALENDAR)}">' in (
        response.content.decode()
    )


def test_an_administrator_cancels_a_booking(
    admin_client, scene, django_capture_on_commit_callbacks
):
    booking = scene.giulia_physio
    meeting = Meeting.objects.get(booking=booking)
    deletes = len(rec.succeeded("delete"))
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(cancel_url(booking), {"next": CALENDAR})

    assert response.status_code == 302
    assert response["Location"] == CALENDAR
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert deleted_since(deletes) == [meeting.external_id]
    assert Meeting.objects.get(pk=meeting.pk).state == MeetingState.CANCELLED
    assert emails_to("giulia@example.com"), mail.outbox
    assert messages_of(response) == [
        ("success", f"Booking {booking.reference} of Giulia Bianchi is cancelled.")
    ]


def test_a_booking_inside_the_members_cut_off_can_still_be_cancelled_by_staff(
    admin_client, scene, clock
):
    clock.move_to(at(24, 9, 30), tick=False)  # half an hour before, well inside the 24 hours

    response = admin_client.post(cancel_url(scene.giulia_physio))

    assert response.status_code == 302
    # Without a way back given, to the booking's day in the calendar.
    assert response["Location"] == admin_calendar.calendar_url("day", dt.date(2026, 11, 24))
    assert Booking.objects.get(pk=scene.giulia_physio.pk).status == BookingStatus.CANCELLED


def test_cancelling_twice_says_it_is_already_cancelled(admin_client, scene):
    booking = scene.giulia_physio
    admin_client.post(cancel_url(booking))

    page = admin_client.get(cancel_url(booking))
    assert "This booking is already cancelled." in text(page.content.decode())
    assert "Yes, cancel the booking" not in text(page.content.decode())

    response = admin_client.post(cancel_url(booking))
    assert response.status_code == 200
    assert messages_of(response) == [("error", "This booking has already been cancelled.")]


def test_a_paid_booking_says_the_payment_is_not_refunded(admin_client, scene):
    bookings.mark_paid(scene.elena_massage)

    shown = text(admin_client.get(cancel_url(scene.elena_massage)).content.decode())

    assert "The payment is not refunded by the site" in shown
    assert "video meeting" not in shown  # in person


def test_cancelling_a_seat_keeps_the_session_and_its_meeting(admin_client, scene, run_jobs):
    seat = scene.seats[0]
    shown = text(admin_client.get(cancel_url(seat)).content.decode())
    assert "the session and its meeting stay for the other attendees" in shown
    deletes = len(rec.succeeded("delete"))

    run_jobs(admin_client.post, cancel_url(seat))

    assert Booking.objects.get(pk=seat.pk).status == BookingStatus.CANCELLED
    assert Meeting.objects.get(session=scene.yoga_session).state == MeetingState.READY
    assert deleted_since(deletes) == []


def test_cancelling_needs_management_rights(viewer_client, anna_client, scene):
    for client, booking in ((viewer_client, scene.giulia_physio), (anna_client, scene.sara_physio)):
        assert denied(client.get(cancel_url(booking)))
        assert denied(client.post(cancel_url(booking)))
        assert Booking.objects.get(pk=booking.pk).status == BookingStatus.CONFIRMED


def test_a_staff_member_cancels_their_own_booking(anna_client, scene):
    response = anna_client.post(cancel_url(scene.luca_physio))

    assert response.status_code == 302
    assert Booking.objects.get(pk=scene.luca_physio.pk).status == BookingStatus.CANCELLED


def test_a_next_url_elsewhere_is_ignored(admin_client, scene):
    response = admin_client.post(
        cancel_url(scene.giulia_physio), {"next": "https://elsewhere.example/"}
    )

    assert response["Location"] == admin_calendar.calendar_url("day", dt.date(2026, 11, 24))


# --------------------------------------------------------------------------------------
# Reschedule an appointment
# --------------------------------------------------------------------------------------


def test_the_reschedule_page_offers_the_free_times_of_a_day(admin_client, scene):
    response = admin_client.get(reschedule_url(scene.elena_massage, date="2026-11-26"))

    assert response.status_code == 200
    content = response.content.decode()
    shown = text(content)
    assert "Free times on Thursday 26 November 2026 (Europe/Rome)" in shown
    # Anna works 9–17 and has Elena's massage at 14:00 (its own time, not choosable).
    assert times_offered(content) == ["09:00", "10:00", "11:00", "12:00", "13:00", "15:00", "16:00"]
    assert "current time" in shown
    # By default, the booking's own day.
    default = admin_client.get(reschedule_url(scene.elena_massage)).content.decode()
    assert "Thursday 26 November 2026" in text(default)


def test_an_administrator_moves_a_booking_to_a_free_time(
    admin_client, scene, django_capture_on_commit_callbacks
):
    booking = scene.giulia_physio
    meeting = Meeting.objects.get(booking=booking)
    mail.outbox.clear()
    page = admin_client.get(reschedule_url(booking, date="2026-11-25", next=CALENDAR))
    assert "12:00" in times_offered(page.content.decode())
    assert "09:00" not in times_offered(page.content.decode())  # Luca's

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reschedule_url(booking),
            {"start": at(25, 12).isoformat(), "date": "2026-11-25", "next": CALENDAR},
        )

    assert response.status_code == 302
    assert response["Location"] == CALENDAR
    booking.refresh_from_db()
    assert (booking.start, booking.end) == (at(25, 12), at(25, 13))
    assert booking.staff == scene.anna
    update = rec.succeeded("update")[-1]
    assert update.external_id == meeting.external_id
    assert update.spec.start == at(25, 12)
    assert emails_to("giulia@example.com")
    ((level, message),) = messages_of(response)
    assert level == "success"
    assert message.startswith(
        f"Booking {booking.reference} is moved to Wednesday 25 November 2026, 12:00–13:00 "
        "(Europe/Rome). Giulia Bianchi is emailed the new time."
    )
    assert "Show in calendar" in message


def test_a_time_taken_in_the_meantime_is_refused_clearly(admin_client, scene, run_jobs):
    booking = scene.giulia_physio
    page = admin_client.get(reschedule_url(booking, date="2026-11-25")).content.decode()
    assert "12:00" in times_offered(page)
    # Someone else books 12:00 while the administrator is choosing.
    run_jobs(
        bookings.book_appointment,
        member=scene.members["sara"],
        service=scene.physio,
        staff=scene.anna,
        start=at(25, 12),
    )

    response = admin_client.post(
        reschedule_url(booking), {"start": at(25, 12).isoformat(), "date": "2026-11-25"}
    )

    assert response.status_code == 200
    assert messages_of(response) == [
        ("error", "This time has just been taken by someone else. Please choose another.")
    ]
    assert "12:00" not in times_offered(response.content.decode())
    assert Booking.objects.get(pk=booking.pk).start == at(24, 10)


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (at(23, 7), "This time has already passed. Please choose another."),
        (at(23, 8, 30), "This must be booked at least 60 minutes ahead."),
        (at(25, 18), "This time is not available. Please choose another."),
        (None, "Choose the new time."),
    ],
)
def test_a_time_that_cannot_be_booked_is_refused(admin_client, scene, start, message):
    booking = scene.giulia_physio
    data = {"start": start.isoformat() if start else "", "date": "2026-11-25"}

    response = admin_client.post(reschedule_url(booking), data)

    assert response.status_code == 200
    ((level, said),) = messages_of(response)
    assert level == "error" and said.startswith(message)
    assert Booking.objects.get(pk=booking.pk).start == at(24, 10)


def test_a_cancelled_booking_cannot_be_moved(admin_client, scene):
    page = admin_client.get(reschedule_url(scene.cancelled))
    assert "This booking is cancelled: it cannot be moved." in text(page.content.decode())

    response = admin_client.post(reschedule_url(scene.cancelled), {"start": at(25, 12).isoformat()})
    assert messages_of(response) == [("error", "This booking has already been cancelled.")]


def test_a_booking_cancelled_meanwhile_is_refused_and_shown_cancelled(admin_client, scene):
    booking = scene.giulia_physio
    assert "Move the booking" in text(admin_client.get(reschedule_url(booking)).content.decode())
    bookings.cancel(booking)  # the member cancels while the administrator is choosing

    response = admin_client.post(reschedule_url(booking), {"start": at(25, 12).isoformat()})

    assert messages_of(response) == [("error", "This booking has already been cancelled.")]
    assert "This booking is cancelled: it cannot be moved." in text(response.content.decode())


def test_rescheduling_needs_management_rights(viewer_client, anna_client, scene):
    for client, booking in ((viewer_client, scene.giulia_physio), (anna_client, scene.sara_physio)):
        assert denied(client.get(reschedule_url(booking)))
        assert denied(client.post(reschedule_url(booking), {"start": at(25, 12).isoformat()}))
        assert Booking.objects.get(pk=booking.pk).start == at(24, 10)


def test_a_staff_member_moves_their_own_booking(anna_client, scene):
    response = anna_client.post(
        reschedule_url(scene.luca_physio), {"start": at(26, 11).isoformat()}
    )

    assert response.status_code == 302
    assert Booking.objects.get(pk=scene.luca_physio.pk).start == at(26, 11)


# --------------------------------------------------------------------------------------
# Move a class seat
# --------------------------------------------------------------------------------------


def test_a_seat_moves_to_another_session_of_the_class(admin_client, scene, run_jobs):
    seat = scene.seats[0]
    later = ClassSessionFactory(group_class=scene.yoga, start=at(27, 18))
    full = ClassSessionFactory(group_class=scene.yoga, start=at(30, 18), capacity=1)
    run_jobs(bookings.book_session, member=scene.members["sara"], session=full)

    page = admin_client.get(reschedule_url(seat)).content.decode()
    shown = text(page)
    assert "Move the seat to another session of this class" in shown
    assert "Friday 27 November 2026, 18:00–19:00 (Europe/Rome) 12 seats left" in shown
    assert "Monday 30 November 2026, 18:00–19:00 (Europe/Rome) full" in shown
    assert f'value="{full.pk}" disabled' in page
    assert f'value="{scene.yoga_session.pk}" disabled' in page  # the current one

    refused = admin_client.post(reschedule_url(seat), {"session": full.pk})
    assert messages_of(refused) == [("error", "Sorry, this session is full.")]

    response = run_jobs(admin_client.post, reschedule_url(seat), {"session": later.pk})
    assert response.status_code == 302
    seat.refresh_from_db()
    assert seat.session == later and seat.start == at(27, 18)


def test_a_seat_does_not_move_to_another_class(admin_client, scene):
    other = ClassSessionFactory(start=at(27, 18))

    response = admin_client.post(reschedule_url(scene.seats[0]), {"session": other.pk})
    garbled = admin_client.post(reschedule_url(scene.seats[0]), {"session": "first"})

    assert messages_of(response) == [("error", "Choose the session to move the booking to.")]
    assert messages_of(garbled) == [("error", "Choose the session to move the booking to.")]
    assert Booking.objects.get(pk=scene.seats[0].pk).session == scene.yoga_session


def test_the_staff_member_of_a_class_may_move_its_seats(anna_client, scene):
    later = ClassSessionFactory(group_class=scene.yoga, start=at(27, 18))

    response = anna_client.post(reschedule_url(scene.seats[1]), {"session": later.pk})

    assert response.status_code == 302
    assert Booking.objects.get(pk=scene.seats[1].pk).session == later


def test_someone_else_is_refused_moving_a_seat(django_user_model, scene):
    bruno = client_for(staff_user(scene.bruno, "bruno"))
    later = ClassSessionFactory(group_class=scene.yoga, start=at(27, 18))

    assert denied(bruno.post(reschedule_url(scene.seats[1]), {"session": later.pk}))
    assert Booking.objects.get(pk=scene.seats[1].pk).session == scene.yoga_session
