"""The members-area page: a member's upcoming and past bookings, with their Join buttons."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal
from urllib.parse import quote
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
    ConferencingAccount,
    ConferencingSettings,
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


def listed(content: str) -> list[str]:
    """The references of the bookings listed on the page, in order."""
    return re.findall(r'<p class="bvc-booking__title"><a href="/bookings/(\w+)/"', content)


def states(content: str) -> dict[str, str]:
    """Each listed booking's state in words, by reference."""
    return dict(
        re.findall(
            r'<a href="/bookings/(\w+)/">[^<]*</a> <span class="bvc-badge bvc-badge--[\w-]+">'
            r"([^<]+)</span>",
            content,
        )
    )


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
    past_response = client.get("/my-bookings/", {"show": "past"})

    assert response.status_code == past_response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    upcoming = html.unescape(response.content.decode())
    past_page = html.unescape(past_response.content.decode())
    assert "My bookings" in upcoming and "All in one place." in upcoming
    assert listed(upcoming) == [
        seat.reference,
        sooner.reference,
        cancelled.reference,
        later.reference,
    ]
    assert listed(past_page) == [past.reference]
    assert someone_else.reference not in upcoming + past_page
    assert "Wednesday 25 November 2026, 09:00–10:00 (Europe/Rome)" in upcoming
    assert "Studio 2" in upcoming
    assert states(upcoming)[cancelled.reference] == "Cancelled"
    assert states(upcoming)[later.reference] == "Confirmed"
    back = "?next=%2Fmy-bookings%2F"
    assert f'href="/bookings/{later.reference}/cancel/{back}"' in upcoming
    assert f'href="/bookings/{later.reference}/reschedule/{back}"' in upcoming
    # Cancelled and past bookings offer nothing to do.
    for booking in (cancelled, past):
        for content in (upcoming, past_page):
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
    past = client.get("/my-bookings/?show=past").content.decode()

    assert "You have no upcoming bookings." in content
    assert "No past bookings yet." in past


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
        past = client.get("/my-bookings/?show=past").content.decode()

    assert "Online check-in" in past and "Online check-in" not in content
    assert "bvc-button--join" not in content + past
    assert "Add to calendar" not in past


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


# Tabs, pages and states in words ---------------------------------------------------------------


def test_tabs_link_to_upcoming_and_past_and_mark_the_current_one(client, members_page, member):
    client.force_login(member)

    upcoming = client.get("/my-bookings/").content.decode()
    past = client.get("/my-bookings/?show=past").content.decode()

    assert '<nav class="bvc-tabs" aria-label="Your bookings">' in upcoming
    assert '<a class="bvc-tabs__tab" href="/my-bookings/" aria-current="page">Upcoming</a>' in (
        upcoming
    )
    assert '<a class="bvc-tabs__tab" href="/my-bookings/?show=past">Past</a>' in upcoming
    assert '<a class="bvc-tabs__tab" href="/my-bookings/">Upcoming</a>' in past
    assert 'href="/my-bookings/?show=past" aria-current="page">Past</a>' in past
    assert "Upcoming bookings" in upcoming and "Past bookings" in past


def test_bookings_come_ten_to_a_page(client, members_page, member):
    service = ServiceFactory(staff=[StaffFactory()])
    made = [
        AppointmentFactory(member=member, service=service, start=at(24 + n // 4, 9 + n % 4))
        for n in range(12)
    ]
    client.force_login(member)

    first = client.get("/my-bookings/").content.decode()
    second = client.get("/my-bookings/?page=2").content.decode()
    beyond = client.get("/my-bookings/?page=99").content.decode()

    assert listed(first) == [booking.reference for booking in made[:10]]
    assert listed(second) == [booking.reference for booking in made[10:]]
    assert listed(beyond) == listed(second)
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert 'href="?page=2" rel="next"' in first and 'rel="prev"' not in first
    assert 'href="?page=1" rel="prev"' in second and 'rel="next"' not in second
    # Cancelling or moving a booking comes back to the same page.
    assert f"/bookings/{made[10].reference}/cancel/?next=%2Fmy-bookings%2F%3Fpage%3D2" in second


def test_past_bookings_have_pages_too(client, members_page, member):
    service = ServiceFactory(staff=[StaffFactory()])
    made = [
        AppointmentFactory(member=member, service=service, start=at(9 + n, 9)) for n in range(11)
    ]
    client.force_login(member)

    second = client.get("/my-bookings/?show=past&page=2").content.decode()

    assert listed(second) == [made[0].reference]
    assert 'href="?show=past&amp;page=1" rel="prev"' in second
    assert 'aria-current="page">Past</a>' in second


def test_each_booking_says_its_state_in_words(
    client, members_page, member, book_online, online_service, monkeypatch
):
    from tests.notifications.helpers import HeldJobs

    ready = book_online(start=at(24, 10))
    unpaid = AppointmentFactory(
        member=member, service=online_service, start=at(24, 12), payment_status="pending"
    )
    cancelled = AppointmentFactory(
        member=member, service=online_service, start=at(24, 14), status=BookingStatus.CANCELLED
    )
    monkeypatch.setattr(jobs, "enqueue", HeldJobs(jobs.enqueue))
    preparing = book_online(start=at(25, 10))

    found = states(page_of(client, member))

    assert found == {
        ready.reference: "Confirmed",
        unpaid.reference: "Awaiting payment",
        cancelled.reference: "Cancelled",
        preparing.reference: "Link being prepared",
    }
    detail = client.get(f"/bookings/{preparing.reference}/").content.decode()
    assert '<span class="bvc-badge bvc-badge--preparing">Link being prepared</span>' in detail


# Add to calendar ---------------------------------------------------------------------------------


def test_upcoming_bookings_can_be_added_to_a_calendar_with_the_personal_join_link(
    client, members_page, member, book_online
):
    booking = book_online()
    join_url = "http://localhost" + meetings.join_path(booking)

    content = html.unescape(page_of(client, member))
    detail = html.unescape(client.get(f"/bookings/{booking.reference}/").content.decode())

    for page in (content, detail):
        google = re.search(r'href="(https://calendar\.google\.com/[^"]+)"', page)[1]
        outlook = re.search(r'href="(https://outlook\.live\.com/[^"]+)"', page)[1]
        for url in (google, outlook):
            assert quote(join_url, safe="") in url
        assert f'href="/bookings/{booking.reference}/calendar.ics"' in page
    assert "<summary" in content and "Add to calendar" in content
    meeting_url = meetings.meeting_of(booking).join_url
    assert "meet.jit.si" in meeting_url
    assert "meet.jit.si" not in content + detail


def test_calendar_links_of_an_unpaid_booking_hold_no_join_link(
    client, members_page, member, book_online, online_service
):
    online_service.price = Decimal("35.00")
    online_service.save()
    booking = book_online()

    content = page_of(client, member)

    token = JoinPass.objects.get(booking=booking, role=JoinPassRole.ATTENDEE).token
    assert "calendar.google.com" in content
    assert token not in content


# Queries -----------------------------------------------------------------------------------------


def test_members_area_queries_stay_the_same_with_many_bookings(
    client,
    members_page,
    member,
    book_online,
    online_service,
    django_assert_max_num_queries,
):
    client.force_login(member)
    book_online(start=at(24, 9))
    AppointmentFactory(member=member, service=online_service, start=at(13, 9))
    for show in ("", "past"):
        client.get("/my-bookings/", {"show": show})  # The first visit makes the settings rows.
    counts = {}
    for show in ("", "past"):
        with CaptureQueriesContext(connection) as queries:
            client.get("/my-bookings/", {"show": show})
        counts[show] = len(queries)

    for day in range(24, 28):
        for hour in (10, 11, 12):
            book_online(start=at(day, hour))
        AppointmentFactory(member=member, service=online_service, start=at(day - 10, 9))
        AppointmentFactory(
            member=member, service=online_service, start=at(day, 15), payment_status="pending"
        )
        SeatFactory(member=member, session=ClassSessionFactory(start=at(day, 18)))
        SeatFactory(member=member, session=ClassSessionFactory(start=at(day - 10, 18)))

    for show in ("", "past"):
        with django_assert_max_num_queries(counts[show]):
            response = client.get("/my-bookings/", {"show": show})
        assert len(listed(response.content.decode())) >= 8


def test_members_area_reads_the_sites_conferencing_settings_once_for_all_its_rows(
    client, members_page, member, book_online
):
    client.force_login(member)
    for hour in (9, 10, 11):
        book_online(start=at(24, hour))
    client.get("/my-bookings/")  # The first visit makes the settings rows.

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/my-bookings/")

    assert len(listed(response.content.decode())) == 3
    for model in (ConferencingSettings, ConferencingAccount):
        table = connection.ops.quote_name(model._meta.db_table)
        reads = [query for query in queries.captured_queries if f"FROM {table}" in query["sql"]]
        assert len(reads) == 1, model
