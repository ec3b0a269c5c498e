"""The members-area page: a member's upcoming and past bookings, with their Join buttons."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal
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
from wagtail_bookings_vc import bookings, jobs, meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    Booking,
    BookingStatus,
    JoinPass,
    JoinPassRole,
    MembersAreaPage,
)

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
    count_queries()  # The first visit creates the site's settings rows.
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


# --- the Join button (R22) -------------------------------------------------------------


@pytest.fixture
def default_account():
    from tests.notifications.helpers import connect_default_account

    return connect_default_account()


@pytest.fixture
def online_service(default_account):
    return ServiceFactory(
        name="Online check-in",
        staff=[StaffFactory(name="Anna")],
        online=True,
        meeting_description="Headphones help.",
    )


@pytest.fixture
def book_online(django_capture_on_commit_callbacks, member, online_service):
    """Book through bookings.py and run the jobs (the meeting is made), as a worker would."""

    def make(start=None, **kwargs):
        service = kwargs.pop("service", online_service)
        with django_capture_on_commit_callbacks(execute=True):
            booking = bookings.book_appointment(
                member=member,
                service=service,
                staff=service.staff.get(),
                start=start or at(24, 10),
                time_zone="Europe/Rome",
                **kwargs,
            )
        return Booking.objects.get(pk=booking.pk)

    return make


def page_of(client, member) -> str:
    client.force_login(member)
    response = client.get("/my-bookings/")
    assert response.status_code == 200
    return response.content.decode()


def join_button(content: str) -> str:
    match = re.search(r'<a class="bvc-button bvc-button--join"[^>]*>', content)
    assert match, "no Join button"
    return match[0]


def test_join_button_is_greyed_until_the_meeting_opens(client, members_page, member, book_online):
    booking = book_online()

    content = page_of(client, member)

    button = join_button(content)
    assert 'aria-disabled="true"' in button
    assert "href=" not in button.replace("data-href", "")
    assert "Opens at 09:45" in content
    assert f'data-href="{meetings.join_path(booking)}"' in content
    assert "Headphones help." in content


def test_join_button_is_a_link_once_the_meeting_opens(client, members_page, member, book_online):
    booking = book_online()

    with time_machine.travel(at(24, 10) - dt.timedelta(minutes=10), tick=False):
        content = page_of(client, member)

    button = join_button(content)
    assert f'href="{meetings.join_path(booking)}"' in button
    assert "aria-disabled" not in button
    assert "Opens at" not in content
    # The button leads through the join page to the meeting.
    with time_machine.travel(at(24, 10) - dt.timedelta(minutes=10), tick=False):
        response = client.get(meetings.join_path(booking))
    assert response.status_code == 302
    assert response["Location"].startswith("https://meet.jit.si/")


def test_provider_url_is_never_in_the_page(client, members_page, member, book_online):
    booking = book_online()

    with time_machine.travel(at(24, 10), tick=False):
        content = page_of(client, member)
        detail = client.get(f"/bookings/{booking.reference}/").content.decode()

    meeting_url = meetings.meeting_of(booking).join_url
    assert meeting_url.startswith("https://meet.jit.si/")
    assert meeting_url not in content
    assert meeting_url not in detail
    assert "meet.jit.si" not in content + detail


def test_unpaid_booking_says_why_there_is_no_link(
    client, members_page, member, book_online, online_service
):
    online_service.price = Decimal("35.00")
    online_service.save()
    booking = book_online()

    content = page_of(client, member)

    assert "Your link appears once your payment is received." in content
    assert "bvc-button--join" not in content
    token = JoinPass.objects.get(booking=booking, role=JoinPassRole.ATTENDEE).token
    assert token not in content
    assert (
        "Your link appears once your payment is received."
        in client.get(f"/bookings/{booking.reference}/").content.decode()
    )


def test_link_being_prepared_is_said_so(client, members_page, member, book_online, monkeypatch):
    from tests.notifications.helpers import HeldJobs

    monkeypatch.setattr(jobs, "enqueue", HeldJobs(jobs.enqueue))
    book_online()

    content = page_of(client, member)

    assert "Your link is being prepared." in content
    assert "bvc-button--join" not in content


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"hide_link_in_members_area": True}, id="left-out-of-members-area"),
        pytest.param({"online": False}, id="in-person"),
    ],
)
def test_no_join_button(client, members_page, member, book_online, online_service, change):
    for name, value in change.items():
        setattr(online_service, name, value)
    online_service.save()
    booking = book_online()

    content = page_of(client, member)
    detail = client.get(f"/bookings/{booking.reference}/").content.decode()

    assert "bvc-button--join" not in content + detail
    assert "/bookings/join/" not in content + detail
    assert "Video meeting" not in detail


def test_link_left_out_of_emails_still_shows_in_the_members_area(
    client, members_page, member, book_online, online_service
):
    online_service.hide_link_in_emails = True
    online_service.save()
    book_online()

    assert "bvc-button--join" in page_of(client, member)


def test_cancelled_booking_has_no_join_button(client, members_page, member, book_online):
    booking = book_online()
    bookings.cancel(booking)

    content = page_of(client, member)

    assert booking.reference in content
    assert "bvc-button--join" not in content
    assert "/bookings/join/" not in content


def test_no_join_button_while_the_default_account_is_disconnected(
    client, members_page, member, book_online, default_account
):
    book_online()
    default_account.status = AccountStatus.DISCONNECTED
    default_account.save()

    content = page_of(client, member)

    assert "bvc-button--join" not in content
    assert "/bookings/join/" not in content


def test_past_online_booking_has_no_join_button(client, members_page, member, book_online):
    book_online()

    with time_machine.travel(at(25, 12), tick=False):
        content = page_of(client, member)

    _upcoming, past = sections(content)
    assert "Online check-in" in past
    assert "bvc-button--join" not in content


def test_booking_detail_shows_the_video_meeting(client, members_page, member, book_online):
    booking = book_online()
    client.force_login(member)

    content = client.get(f"/bookings/{booking.reference}/").content.decode()

    assert "Video meeting" in content
    assert 'aria-disabled="true"' in join_button(content)
    assert "Opens at 09:45" in content
    assert "Headphones help." in content


def test_members_area_with_links_queries_do_not_grow(client, members_page, member, book_online):
    client.force_login(member)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/my-bookings/").status_code == 200
        return len(queries)

    book_online()
    count_queries()
    few = count_queries()
    for hour in (12, 14):
        book_online(start=at(24, hour))

    assert count_queries() == few
