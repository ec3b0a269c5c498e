"""Add-to-calendar links (Google Calendar, Outlook) and the .ics download of a booking.

Each carries the member's personal join link, never the provider's URL.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tests.factories import (
    AppointmentFactory,
    ClassSessionFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from tests.notifications.helpers import connect_default_account
from wagtail_bookings_vc import bookings, links, meetings
from wagtail_bookings_vc.calendar_links import (
    CalendarEvent,
    booking_event,
    calendar_links,
    google_calendar_url,
    outlook_calendar_url,
)
from wagtail_bookings_vc.models import Booking, BookingStatus

ROME = ZoneInfo("Europe/Rome")
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)
START = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
BASE = "https://studio.example.com"

EVENT = CalendarEvent(
    title="Online check-in & more",
    start=START,
    end=START + dt.timedelta(minutes=45),
    location="https://studio.example.com/bookings/join/abc/",
    details="Line one\nLine two",
)


def query(url: str) -> dict[str, str]:
    """The query of ``url`` as single values; fails on a repeated parameter."""
    parsed = parse_qs(urlsplit(url).query, strict_parsing=True)
    assert all(len(values) == 1 for values in parsed.values()), parsed
    return {name: values[0] for name, values in parsed.items()}


# The URLs, from an event ------------------------------------------------------------------------


def test_google_calendar_url_fills_in_the_event():
    url = google_calendar_url(EVENT)

    assert url.startswith("https://calendar.google.com/calendar/render?")
    assert query(url) == {
        "action": "TEMPLATE",
        "text": "Online check-in & more",
        "dates": "20261124T090000Z/20261124T094500Z",
        "details": "Line one\nLine two",
        "location": "https://studio.example.com/bookings/join/abc/",
    }
    # Spaces are %20: some calendar programs show a "+" as it is.
    assert "+" not in url and "Online%20check-in%20%26%20more" in url


@pytest.mark.parametrize(
    ("office", "host"), [(False, "outlook.live.com"), (True, "outlook.office.com")]
)
def test_outlook_url_fills_in_the_event(office, host):
    url = outlook_calendar_url(EVENT, office=office)

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        host,
        "/calendar/0/deeplink/compose",
    )
    assert query(url) == {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": "Online check-in & more",
        "startdt": "2026-11-24T09:00:00Z",
        "enddt": "2026-11-24T09:45:00Z",
        "body": "Line one\nLine two",
        "location": "https://studio.example.com/bookings/join/abc/",
    }
    assert "+" not in url


def test_empty_fields_are_left_out():
    bare = CalendarEvent(title="Massage", start=START, end=START + dt.timedelta(hours=1))

    assert "location" not in query(google_calendar_url(bare))
    assert "details" not in query(google_calendar_url(bare))
    assert "location" not in query(outlook_calendar_url(bare))


# The event of a booking ------------------------------------------------------------------------


@pytest.mark.django_db
def test_event_of_an_online_booking_carries_the_join_link_as_location_and_in_the_details():
    booking = AppointmentFactory(start=START, service__online=True)

    event = booking_event(
        booking,
        join_url=f"{BASE}/bookings/join/TOKEN/",
        join_description="Headphones help.",
        passcode="4321",
        manage_url=f"{BASE}/bookings/{booking.reference}/",
    )

    assert event.title == booking.service.name
    assert (event.start, event.end) == (booking.start, booking.end)
    assert event.location == f"{BASE}/bookings/join/TOKEN/"
    assert event.details.splitlines() == [
        f"Join the video meeting: {BASE}/bookings/join/TOKEN/",
        "How to join: Headphones help.",
        "Passcode: 4321",
        f"Booking reference: {booking.reference}",
        f"See, reschedule or cancel your booking: {BASE}/bookings/{booking.reference}/",
    ]


@pytest.mark.django_db
def test_event_without_a_link_says_where_the_booking_takes_place():
    seat = SeatFactory(session=ClassSessionFactory(group_class__location="Studio 2"))
    in_person = AppointmentFactory()
    online_without_link = AppointmentFactory(service__online=True)

    assert booking_event(seat).location == "Studio 2"
    assert booking_event(in_person).location == ""
    assert booking_event(online_without_link).location == "Online"
    assert "Join the video meeting" not in booking_event(online_without_link).details


# Real bookings, with their personal join link -----------------------------------------------------


@pytest.fixture
def online_booking(db, django_capture_on_commit_callbacks):
    """An online appointment booked through bookings.py, its meeting made (Jitsi)."""
    connect_default_account()
    service = ServiceFactory(name="Online check-in", staff=[StaffFactory()], online=True)
    with (
        time_machine.travel(NOW, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        booking = bookings.book_appointment(
            member=UserFactory(),
            service=service,
            staff=service.staff.get(),
            start=START,
            time_zone="Europe/Rome",
        )
    return Booking.objects.get(pk=booking.pk)


def test_every_button_carries_the_personal_join_link_and_never_the_provider_url(online_booking):
    with time_machine.travel(NOW, tick=False):
        link = links.member_link(online_booking, where=links.MEMBERS_AREA)
        buttons = calendar_links(online_booking, link, base_url=BASE)

    provider_url = meetings.meeting_of(online_booking).join_url
    assert provider_url.startswith("https://meet.jit.si/")
    personal = link.url
    assert personal.endswith(meetings.join_path(online_booking))
    assert "/bookings/join/" in personal
    assert [button.kind for button in buttons] == ["google", "outlook", "office", "ics"]
    google, outlook, office, ics = buttons
    assert query(google.url)["location"] == personal
    assert personal in query(google.url)["details"]
    for button in (outlook, office):
        assert query(button.url)["location"] == personal
        assert personal in query(button.url)["body"]
    assert ics.url == f"/bookings/{online_booking.reference}/calendar.ics" and ics.download
    for button in buttons:
        assert provider_url not in button.url
        assert "meet.jit.si" not in button.url


def test_ics_download_carries_the_personal_join_link_and_never_the_provider_url(
    client, online_booking
):
    client.force_login(online_booking.member)

    with time_machine.travel(NOW, tick=False):
        response = client.get(f"/bookings/{online_booking.reference}/calendar.ics")

    assert response.status_code == 200
    body = response.content.decode().replace("\r\n ", "")  # Unfold long lines.
    token_path = meetings.join_path(online_booking)
    assert f"LOCATION:http://localhost{token_path}" in body
    assert f"URL:http://localhost{token_path}" in body
    assert "meet.jit.si" not in body


def test_unpaid_booking_buttons_hold_no_join_link(online_booking):
    online_booking.price = Decimal("35.00")
    online_booking.payment_status = "pending"
    online_booking.save()

    with time_machine.travel(NOW, tick=False):
        link = links.member_link(online_booking, where=links.MEMBERS_AREA)
        buttons = calendar_links(online_booking, link, base_url=BASE)

    assert link is not None and not link.shown
    for button in buttons:
        assert "/bookings/join/" not in button.url
    assert query(buttons[0].url)["location"] == "Online"


@pytest.mark.django_db
def test_cancelled_booking_has_no_buttons():
    booking = AppointmentFactory(status=BookingStatus.CANCELLED)

    assert calendar_links(booking, None, base_url=BASE) == []
