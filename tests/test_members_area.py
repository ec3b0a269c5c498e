"""The members-area page: a member's upcoming and past bookings."""

from __future__ import annotations

import datetime as dt
import html
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from wagtail.models import Site

from tests.factories import (
    AppointmentFactory,
    ClassSessionFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from wagtail_bookings_vc.models import BookingStatus, MembersAreaPage

ROME = ZoneInfo("Europe/Rome")
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monday_morning():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def members_page():
    root = Site.objects.get(is_default_site=True).root_page
    page = MembersAreaPage(
        title="My bookings", slug="my-bookings", intro="<p>All in one place.</p>"
    )
    root.add_child(instance=page)
    return page


@pytest.fixture
def member():
    return UserFactory()


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, 0, tzinfo=ROME)


def sections(content: str) -> tuple[str, str]:
    """The upcoming and the past section of the page."""
    upcoming = content.split('id="bvc-upcoming-title"')[1].split('id="bvc-past-title"')[0]
    past = content.split('id="bvc-past-title"')[1]
    return upcoming, past


def test_anonymous_visitor_is_sent_to_log_in(client, members_page):
    response = client.get("/my-bookings/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/my-bookings/"


def test_members_area_lists_upcoming_and_past_bookings(client, members_page, member):
    service = ServiceFactory(name="Physiotherapy", staff=[StaffFactory(name="Anna")])
    later = AppointmentFactory(
        member=member, service=service, start=at(27, 11), time_zone="Europe/Rome"
    )
    sooner = AppointmentFactory(
        member=member, service=service, start=at(25, 9), time_zone="Europe/Rome"
    )
    past = AppointmentFactory(
        member=member, service=service, start=at(16, 9), time_zone="Europe/Rome"
    )
    cancelled = AppointmentFactory(
        member=member,
        service=service,
        start=at(26, 9),
        status=BookingStatus.CANCELLED,
        time_zone="Europe/Rome",
    )
    seat = SeatFactory(
        member=member,
        session=ClassSessionFactory(start=at(24, 18), group_class__location="Studio 2"),
        time_zone="Europe/Rome",
    )
    someone_else = AppointmentFactory(service=service, start=at(25, 10))
    client.force_login(member)

    response = client.get("/my-bookings/")

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    content = html.unescape(response.content.decode())
    assert "My bookings" in content and "All in one place." in content
    upcoming, past_section = sections(content)
    references = re.findall(r'href="/bookings/(\w+)/"', upcoming)
    assert references == [seat.reference, sooner.reference, cancelled.reference, later.reference]
    assert re.findall(r'href="/bookings/(\w+)/"', past_section) == [past.reference]
    assert someone_else.reference not in content
    assert "Wednesday 25 November 2026, 09:00–10:00 (Europe/Rome)" in upcoming
    assert "Studio 2" in upcoming
    assert "Cancelled" in upcoming
    back = "?next=%2Fmy-bookings%2F"
    assert f'href="/bookings/{later.reference}/cancel/{back}"' in upcoming
    assert f'href="/bookings/{later.reference}/reschedule/{back}"' in upcoming
    # Cancelled and past bookings offer nothing to do.
    for booking in (cancelled, past):
        assert f"/bookings/{booking.reference}/cancel/" not in content
        assert f"/bookings/{booking.reference}/reschedule/" not in content


def test_booking_closer_than_the_cut_off_has_no_actions(client, members_page, member):
    soon = AppointmentFactory(member=member, start=at(23, 15))
    client.force_login(member)

    content = client.get("/my-bookings/").content.decode()

    assert f"/bookings/{soon.reference}/" in content
    assert f"/bookings/{soon.reference}/cancel/" not in content


def test_members_area_without_bookings_gives_a_hint(client, members_page, member):
    client.force_login(member)

    content = client.get("/my-bookings/").content.decode()

    assert "You have no upcoming bookings." in content
    assert "No past bookings yet." in content


def test_members_area_queries_do_not_grow_with_the_bookings(client, members_page, member):
    service = ServiceFactory(staff=[StaffFactory()])
    client.force_login(member)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/my-bookings/").status_code == 200
        return len(queries)

    AppointmentFactory(member=member, service=service, start=at(25, 9))
    SeatFactory(member=member, session=ClassSessionFactory(start=at(24, 18)))
    few = count_queries()
    for day in (26, 27):
        AppointmentFactory(member=member, service=service, start=at(day, 9))
        AppointmentFactory(member=member, service=service, start=at(day - 10, 9))
        SeatFactory(member=member, session=ClassSessionFactory(start=at(day, 18)))

    assert count_queries() == few


def test_booking_detail_links_back_to_the_members_area(client, members_page, member):
    booking = AppointmentFactory(member=member, start=at(27, 11))
    client.force_login(member)

    content = client.get(f"/bookings/{booking.reference}/").content.decode()

    assert 'href="/my-bookings/"' in content
