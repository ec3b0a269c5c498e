"""The personal join link, ``/bookings/join/<token>/``: checked at click time (R18, R19, R22)."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tests import recording_provider as rec
from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from wagtail_bookings_vc import bookings, jobs, meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    Booking,
    ConferencingSettings,
    JoinPass,
    JoinPassRole,
    Meeting,
    PaymentStatus,
)

ROME = ZoneInfo("Europe/Rome")
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)
START = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
END = START + dt.timedelta(hours=1)
GUESSED = "a" * 43

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def staff():
    return StaffFactory(name="Anna Rossi", time_zone="Europe/Rome")


@pytest.fixture
def service(staff):
    return ServiceFactory(name="Online physiotherapy", staff=[staff], online=True)


@pytest.fixture
def member():
    return UserFactory(first_name="Giulia", last_name="Bianchi")


@pytest.fixture
def book(recorder, run_jobs, service, staff, member):
    def make(**kwargs):
        values = {
            "member": member,
            "service": service,
            "staff": staff,
            "start": START,
            "time_zone": "America/New_York",
        }
        values.update(kwargs)
        return run_jobs(bookings.book_appointment, **values)

    return make


@pytest.fixture
def booking(book):
    return book()


def path_of(booking, role=JoinPassRole.ATTENDEE) -> str:
    path = meetings.join_path(booking, role)
    assert path
    return path


def join_url(booking) -> str:
    return Meeting.objects.get(booking=booking).join_url


def text(response) -> str:
    return html.unescape(response.content.decode())


def attribute(content, name) -> dt.datetime:
    (value,) = re.findall(rf'{name}="([^"]+)"', content)
    return dt.datetime.fromisoformat(value)


def assert_private(response):
    cache_control = response["Cache-Control"]
    for directive in ("no-cache", "no-store", "must-revalidate", "private"):
        assert directive in cache_control
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]


# The window ------------------------------------------------------------------------------


def test_before_the_window_the_link_shows_the_start_time_and_a_countdown(client, booking):
    response = client.get(path_of(booking))

    assert response.status_code == 200
    content = text(response)
    assert "Online physiotherapy" in content
    # In the member's own time zone: 10:00 in Rome is 04:00 in New York.
    assert "Tuesday 24 November 2026, 04:00–05:00 (America/New_York)" in content
    assert "The meeting opens at 03:45, shortly before it starts." in content
    assert "takes you to the meeting by itself at the start" in content
    # What the countdown counts towards, and the server's clock to correct the visitor's.
    assert attribute(content, "data-opens-at") == START - dt.timedelta(minutes=15)
    assert attribute(content, "data-starts-at") == START
    assert attribute(content, "data-now") == NOW
    assert "data-bvc-countdown" in content and 'role="timer"' in content
    # Once open, the page offers this same link, never the provider's.
    assert f'href="{path_of(booking)}" rel="noreferrer"' in content
    assert join_url(booking) not in content
    assert "meet.example.test" not in content
    assert_private(response)


def test_inside_the_window_the_link_sends_the_member_to_the_meeting(client, booking, clock):
    clock.move_to(START - dt.timedelta(minutes=15), tick=False)

    response = client.get(path_of(booking))

    assert response.status_code == 302
    assert response["Location"] == join_url(booking)
    assert_private(response)


def test_window_opens_exactly_when_configured(client, booking, clock):
    conferencing = ConferencingSettings.objects.get()
    conferencing.join_opens_minutes_before = 30
    conferencing.save()

    clock.move_to(START - dt.timedelta(minutes=30, seconds=1), tick=False)
    assert client.get(path_of(booking)).status_code == 200
    clock.move_to(START - dt.timedelta(minutes=30), tick=False)
    assert client.get(path_of(booking)).status_code == 302


def test_link_works_until_the_end_and_then_says_the_meeting_has_ended(client, booking, clock):
    clock.move_to(END - dt.timedelta(seconds=1), tick=False)
    assert client.get(path_of(booking)).status_code == 302

    clock.move_to(END, tick=False)
    response = client.get(path_of(booking))

    assert response.status_code == 200
    content = text(response)
    assert "This meeting has ended." in content
    assert 'class="bvc-join" data-bvc-join-page' not in content
    assert join_url(booking) not in content
    assert_private(response)


def test_link_of_a_meeting_still_being_made_asks_to_wait_then_works(
    recorder, client, clock, service, staff, member, monkeypatch
):
    monkeypatch.setattr(jobs, "enqueue", lambda *args: None)
    booking = bookings.book_appointment(member=member, service=service, staff=staff, start=START)
    monkeypatch.undo()
    clock.move_to(START - dt.timedelta(minutes=5), tick=False)

    waiting = client.get(path_of(booking))

    assert waiting.status_code == 200
    assert "being prepared" in text(waiting)
    assert 'data-retry-seconds="10"' in text(waiting)
    assert "meet.example.test" not in text(waiting)
    assert_private(waiting)

    meetings.sweep_meetings()

    assert client.get(path_of(booking))["Location"] == join_url(booking)


def test_every_click_is_counted_on_the_pass(client, booking, clock):
    clock.move_to(START, tick=False)

    client.get(path_of(booking))
    client.get(path_of(booking))

    join_pass = JoinPass.objects.get(booking=booking, role=JoinPassRole.ATTENDEE)
    assert join_pass.use_count == 2
    assert join_pass.last_used_at == START


def test_the_countdown_page_does_not_count_as_a_use(client, booking):
    client.get(path_of(booking))

    assert JoinPass.objects.get(booking=booking, role=JoinPassRole.ATTENDEE).use_count == 0


# Who may use it --------------------------------------------------------------------------


def not_found_body(client) -> str:
    """The 404 page of a guessed token, with the token (echoed in a log-in link) taken out."""
    response = client.get(f"/bookings/join/{GUESSED}/")
    assert response.status_code == 404
    assert_private(response)
    return response.content.decode().replace(GUESSED, "<token>")


def body_of(response, path) -> str:
    token = path.rstrip("/").rsplit("/", 1)[1]
    return response.content.decode().replace(token, "<token>")


def test_guessed_token_is_not_found(client, booking, clock):
    clock.move_to(START, tick=False)

    real = path_of(booking).split("/")[-2]
    for token in (GUESSED, "x", "%00", "a" * 500, real.upper(), f"{real}%0A", f"{real}%00"):
        assert client.get(f"/bookings/join/{token}/").status_code == 404


def test_cancelled_booking_link_is_not_found_and_looks_like_a_guess(
    client, booking, clock, run_jobs
):
    path = path_of(booking)
    run_jobs(bookings.cancel, booking)

    for moment in (NOW, START):
        clock.move_to(moment, tick=False)
        response = client.get(path)
        assert response.status_code == 404
        assert body_of(response, path) == not_found_body(client)


def test_revoked_pass_is_not_found_even_while_the_booking_stands(client, booking, clock):
    path = path_of(booking)
    JoinPass.objects.filter(booking=booking).update(revoked_at=NOW)
    clock.move_to(START, tick=False)

    response = client.get(path)

    assert response.status_code == 404
    assert body_of(response, path) == not_found_body(client)


def test_unpaid_booking_link_is_not_found_until_it_is_paid(book, service, client, clock):
    service.price = Decimal("40.00")
    service.save()
    booking = book()
    assert booking.payment_status == PaymentStatus.PENDING
    path = path_of(booking)

    # Not even the countdown: nothing about the meeting before the payment (R19), and
    # a "not found" that no cache keeps for after it.
    early = client.get(path)
    assert early.status_code == 404
    assert_private(early)
    clock.move_to(START, tick=False)
    response = client.get(path)
    assert response.status_code == 404
    assert body_of(response, path) == not_found_body(client)

    bookings.mark_paid(booking)

    assert client.get(path)["Location"] == join_url(booking)


def test_refunded_booking_link_is_not_found(book, service, client, clock):
    service.price = Decimal("40.00")
    service.save()
    booking = bookings.mark_paid(book())
    Booking.objects.filter(pk=booking.pk).update(payment_status=PaymentStatus.REFUNDED)
    clock.move_to(START, tick=False)

    assert client.get(path_of(booking)).status_code == 404


def test_disconnected_default_account_hides_even_the_countdown(recorder, client, booking):
    recorder.status = AccountStatus.DISCONNECTED
    recorder.save()

    assert client.get(path_of(booking)).status_code == 404


def test_join_link_answers_only_get(client, booking, clock):
    clock.move_to(START, tick=False)

    assert client.post(path_of(booking)).status_code == 405
    assert JoinPass.objects.get(booking=booking, role=JoinPassRole.ATTENDEE).use_count == 0


# Hosts -----------------------------------------------------------------------------------


def test_host_link_of_an_appointment_shows_times_in_the_staff_members_zone(client, booking):
    content = text(client.get(path_of(booking, JoinPassRole.HOST)))

    assert "Tuesday 24 November 2026, 10:00–11:00 (Europe/Rome)" in content


def test_host_link_of_a_cancelled_appointment_is_not_found(client, booking, clock, run_jobs):
    host_path = path_of(booking, JoinPassRole.HOST)
    run_jobs(bookings.cancel, booking)
    clock.move_to(START, tick=False)

    assert client.get(host_path).status_code == 404


def test_host_link_of_a_class_session_opens_the_host_url_without_asking_for_payment(
    recorder, run_jobs, client, clock, staff
):
    group_class = GroupClassFactory(staff=staff, online=True, price=Decimal("15.00"))
    session = ClassSessionFactory(group_class=group_class, start=START)
    seat = run_jobs(bookings.book_session, member=UserFactory(), session=session)
    assert seat.payment_status == PaymentStatus.PENDING
    clock.move_to(START, tick=False)

    response = client.get(path_of(seat, JoinPassRole.HOST))

    meeting = Meeting.objects.get(session=session)
    assert response["Location"] == meeting.host_url
    assert meeting.host_url != meeting.join_url
    assert client.get(path_of(seat)).status_code == 404  # the attendee has not paid
    assert rec.succeeded("create")


# In a browser --------------------------------------------------------------------------
#
# The server's clock is frozen by ``clock``; the browser's is Playwright's fake clock, set
# apart from the server's on purpose: the page must go by the server's time.


@pytest.fixture
def early_page(book, clock, live_server, page):
    """The join page of a booking opened a minute before the window opens (at 09:44)."""
    booking = book()
    clock.move_to(START - dt.timedelta(minutes=16), tick=False)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    # The visitor's computer is an hour and a half ahead.
    visitor_time = dt.datetime(2026, 11, 24, 11, 14, tzinfo=ROME)
    page.clock.install(time=visitor_time)
    url = live_server.url + path_of(booking)
    page.goto(url)
    page.clock.pause_at(visitor_time + dt.timedelta(seconds=2))
    return booking, page, url, requests


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_join_page_left_open_counts_down_offers_the_link_and_joins_at_the_start(early_page, clock):
    from playwright.sync_api import expect

    booking, page, url, requests = early_page
    timer = page.locator("[data-bvc-timer]")
    join_now = page.get_by_role("link", name="Join now")

    # By the server's clock, not the visitor's: the window opens in a minute.
    expect(timer).to_have_text(re.compile(r"^Opens in\s+00:5\d$"), use_inner_text=True)
    expect(join_now).to_be_hidden()

    page.clock.run_for("01:00")
    expect(timer).to_have_text(re.compile(r"^Starts in\s+14:5\d$"), use_inner_text=True)
    expect(join_now).to_be_visible()
    assert join_now.get_attribute("href") == path_of(booking)

    # At the start the page loads the link again, and the server sends it on (to a
    # provider that does not exist, so the browser goes no further).
    clock.move_to(START, tick=False)
    with page.expect_response(url) as sent_on:
        page.clock.run_for("15:00")
    assert sent_on.value.status == 302
    assert sent_on.value.headers["location"] == Meeting.objects.get(booking=booking).join_url
    assert requests.count(url) == 2


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_join_page_does_not_reload_again_and_again_when_the_server_says_not_yet(early_page):
    booking, page, url, requests = early_page

    # The browser's clock runs far past the start while the server's stays put.
    page.clock.run_for("20:00")
    page.wait_for_load_state()
    page.clock.run_for("00:30")

    assert requests.count(url) == 2  # one reload at the start, then the countdown again
