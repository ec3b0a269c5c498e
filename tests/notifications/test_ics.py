"""Calendar files: parsed back with icalendar, as a calendar program would read them."""

from __future__ import annotations

import datetime as dt

import pytest
from icalendar import Calendar

from wagtail_bookings_vc.models import BookingStatus
from wagtail_bookings_vc.notifications.emails import build_booking_email
from wagtail_bookings_vc.notifications.ics import booking_ics, content_type

from .helpers import END, SITE_HOST, SITE_URL, START, ics_of

pytestmark = pytest.mark.django_db


def parse(data: bytes) -> tuple[Calendar, object]:
    calendar = Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def test_request_has_the_calendar_headers(booking):
    calendar, _event = parse(booking_ics(booking, method="REQUEST"))

    assert calendar["VERSION"] == "2.0"
    assert calendar["METHOD"] == "REQUEST"
    assert "wagtail-bookings-vc" in str(calendar["PRODID"])


def test_event_describes_the_booking(booking):
    data = booking_ics(booking, method="REQUEST")
    _calendar, event = parse(data)

    assert str(event["UID"]) == f"booking-{booking.reference}@{SITE_HOST}"
    assert event["SEQUENCE"] == 0
    assert event["SUMMARY"] == "Massage"
    assert event["STATUS"] == "CONFIRMED"
    assert event.decoded("DTSTAMP").tzinfo is not None
    manage_url = f"{SITE_URL}/bookings/{booking.reference}/"
    assert manage_url in str(event["DESCRIPTION"])
    assert str(event["URL"]) == manage_url
    assert str(event["ORGANIZER"]) == "mailto:bookings@example.com"
    assert str(event["ATTENDEE"]) == "mailto:ada@example.com"
    assert event["ATTENDEE"].params["CN"] == "Ada Lovelace"
    # Already booked: calendar programs must not ask the member to accept or decline.
    assert event["ATTENDEE"].params["RSVP"] == "FALSE"
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"


def test_times_are_in_utc(booking):
    data = booking_ics(booking, method="REQUEST")
    _calendar, event = parse(data)

    assert event.decoded("DTSTART") == START
    assert event.decoded("DTSTART").utcoffset() == dt.timedelta(0)
    assert event.decoded("DTEND") == END
    assert b"DTSTART:20270112T090000Z" in data
    assert b"DTEND:20270112T100000Z" in data


def test_cancel_removes_the_same_event(booking):
    request_uid = parse(booking_ics(booking, method="REQUEST"))[1]["UID"]
    booking.status = BookingStatus.CANCELLED
    booking.sequence = 1
    booking.save()

    calendar, event = parse(booking_ics(booking, method="CANCEL"))

    assert calendar["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert event["UID"] == request_uid
    assert event["SEQUENCE"] == 1


def test_uid_is_stable_and_sequence_follows_the_booking(booking):
    first = parse(booking_ics(booking, method="REQUEST"))[1]
    booking.start += dt.timedelta(days=1)
    booking.end += dt.timedelta(days=1)
    booking.sequence = 3
    booking.save()

    moved = parse(booking_ics(booking, method="REQUEST"))[1]

    assert moved["UID"] == first["UID"]
    assert moved["SEQUENCE"] == 3
    assert moved.decoded("DTSTART") == START + dt.timedelta(days=1)


def test_class_session_location(class_booking):
    event = parse(booking_ics(class_booking, method="REQUEST"))[1]

    assert event["LOCATION"] == "Studio 2"
    assert event["SUMMARY"] == "Morning yoga"


def test_online_booking_location(booking, service):
    service.online = True
    service.save()

    event = parse(booking_ics(booking, method="REQUEST"))[1]

    assert event["LOCATION"] == "Online"


def test_appointment_in_person_has_no_location(booking):
    event = parse(booking_ics(booking, method="REQUEST"))[1]

    assert "LOCATION" not in event


def test_publish_is_a_plain_download(booking):
    calendar, event = parse(booking_ics(booking, method="publish"))

    assert calendar["METHOD"] == "PUBLISH"
    assert "ATTENDEE" not in event
    assert str(event["ORGANIZER"]) == "mailto:bookings@example.com"


def test_unknown_method_is_refused(booking):
    with pytest.raises(ValueError, match="method"):
        booking_ics(booking, method="REFRESH")


def test_content_type_names_the_method():
    assert content_type("cancel") == "text/calendar; method=CANCEL; charset=utf-8"


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("member_confirmation", "REQUEST"),
        ("member_reschedule", "REQUEST"),
        ("member_reminder", "REQUEST"),
        ("member_cancellation", "CANCEL"),
        ("staff_confirmation", "REQUEST"),
        ("staff_reschedule", "REQUEST"),
        ("staff_cancellation", "CANCEL"),
    ],
)
def test_each_email_attaches_the_right_method(booking, kind, method):
    if method == "CANCEL":
        booking.status = BookingStatus.CANCELLED
        booking.save()

    message = build_booking_email(booking, kind)

    calendar, event = parse(ics_of(message))
    assert calendar["METHOD"] == method
    assert str(event["UID"]) == f"booking-{booking.reference}@{SITE_HOST}"


JOIN_URL = f"{SITE_URL}/bookings/join/personal-token/"


def test_meeting_link_is_the_events_location_and_link(booking):
    event = parse(
        booking_ics(
            booking,
            method="REQUEST",
            meeting_url=JOIN_URL,
            meeting_description="Headphones help.",
            meeting_passcode="4321",
        )
    )[1]

    assert str(event["LOCATION"]) == JOIN_URL
    assert str(event["URL"]) == JOIN_URL
    description = str(event["DESCRIPTION"])
    assert f"Join the video meeting: {JOIN_URL}" in description
    assert "How to join: Headphones help." in description
    assert "Passcode: 4321" in description
    assert f"{SITE_URL}/bookings/{booking.reference}/" in description


def test_cancelled_event_carries_no_meeting_link(booking):
    data = booking_ics(booking, method="CANCEL", meeting_url=JOIN_URL, meeting_passcode="4321")

    assert b"/bookings/join/" not in data
    assert b"4321" not in data
