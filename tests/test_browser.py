"""The example site in a real browser: a member books an appointment and a class seat,
and finds the Join button of an online booking in the members area.

Each step is also saved as a screenshot in docs/screenshots/ (desktop at 1280 pixels
wide, the booking widget and the members area also at phone width, 390 pixels).
"""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from wagtail_bookings_vc import bookings, links, meetings
from wagtail_bookings_vc.models import Booking, BookingStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
BOOKING_URL = re.compile(r"/bookings/([A-Z0-9]{12})/$")


@pytest.fixture
def site_url(live_server) -> str:
    """The live server's address, with the demo data loaded."""
    call_command("load_demo_data", stdout=StringIO())
    return live_server.url


@pytest.fixture
def desktop(page: Page) -> Page:
    page.set_viewport_size(DESKTOP)
    return page


def screenshot(page: Page, name: str, *, phone: bool = False) -> None:
    """Save the whole page as docs/screenshots/<name>.png, at phone width if asked."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if phone:
        page.set_viewport_size(PHONE)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True, animations="disabled")
    if phone:
        page.set_viewport_size(DESKTOP)


def log_in(page: Page, site_url: str, username: str = "member") -> None:
    """Log in on the site's login page; the demo's passwords equal the usernames."""
    page.goto(f"{site_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def pick_first_free_time(page: Page) -> None:
    """Pick the first free time in the widget and go on, moving on a week if this one is full."""
    slots = page.locator(".bvc-slot")
    week = page.locator(".bvc-week__title")
    for _week in range(3):
        if slots.count():
            break
        shown = week.inner_text()
        page.get_by_role("link", name="Next week").click()
        expect(week).not_to_have_text(shown)
    slots.first.click()
    page.get_by_role("button", name="Continue").click()


def booking_from_url(page: Page) -> Booking:
    match = BOOKING_URL.search(page.url)
    assert match, page.url
    return Booking.objects.select_related("member", "service", "session").get(reference=match[1])


def test_member_books_an_appointment_and_finds_it_in_my_bookings(desktop: Page, site_url):
    page = desktop
    page.goto(f"{site_url}/accounts/login/")
    screenshot(page, "login")
    log_in(page, site_url)
    expect(page).to_have_url(f"{site_url}/")

    expect(page.get_by_role("heading", name="Book an appointment")).to_be_visible()
    screenshot(page, "home")
    screenshot(page, "home-phone", phone=True)

    page.locator(".bvc-service__link", has_text="Physiotherapy session").click()
    expect(page.locator(".bvc-week__title")).to_be_visible()
    screenshot(page, "booking-widget")
    screenshot(page, "booking-widget-phone", phone=True)

    pick_first_free_time(page)
    expect(page).to_have_url(re.compile(r"/bookings/services/physiotherapy-session/book/\?"))
    expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
    screenshot(page, "booking-confirm")
    screenshot(page, "booking-confirm-phone", phone=True)

    page.get_by_role("button", name="Book this time").click()
    expect(page).to_have_url(BOOKING_URL)
    booking = booking_from_url(page)
    assert booking.member.username == "member"
    assert booking.service.name == "Physiotherapy session"
    assert booking.status == BookingStatus.CONFIRMED
    expect(page.get_by_text(f"Reference {booking.reference}")).to_be_visible()
    screenshot(page, "booking-detail")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My bookings").click()
    expect(page.get_by_role("heading", name="My bookings", level=1)).to_be_visible()
    listed = page.locator(f'.bvc-booking a[href$="/bookings/{booking.reference}/"]')
    expect(listed).to_have_text("Physiotherapy session")
    # The demo's own sample booking is there too.
    expect(page.locator(".bvc-booking", has_text="Online consultation")).to_be_visible()
    screenshot(page, "members-area")
    screenshot(page, "members-area-phone", phone=True)


def test_member_books_the_online_consultation_and_finds_its_join_button(desktop: Page, site_url):
    page = desktop
    log_in(page, site_url)
    page.locator(".bvc-service__link", has_text="Online consultation").click()
    pick_first_free_time(page)
    page.get_by_role("button", name="Book this time").click()
    expect(page).to_have_url(BOOKING_URL)
    booking = booking_from_url(page)
    # A priced service: the link waits for the payment (R19).
    expect(page.get_by_text("Your link appears once your payment is received.")).to_be_visible()
    assert "/bookings/join/" not in page.content()

    # The payment arrives, as a payment integration (or the admin's "Mark as paid") reports it.
    bookings.mark_paid(booking)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My bookings").click()

    row = page.locator(".bvc-booking").filter(
        has=page.locator(f'a[href$="/bookings/{booking.reference}/"]')
    )
    join = row.get_by_role("link", name=re.compile(r"^Join"))
    expect(join).to_have_attribute("aria-disabled", "true")
    expect(join).not_to_have_attribute("href", re.compile("."))
    expect(row.locator(".bvc-join__opens")).to_have_text(re.compile(r"^Opens at \d\d:\d\d$"))
    # Maria's own sample consultation has its Join button too.
    expect(page.locator(".bvc-button--join")).to_have_count(2)
    assert "meet.jit.si" not in page.content()
    screenshot(page, "members-area-join")
    screenshot(page, "members-area-join-phone", phone=True)

    row.get_by_role("link", name="Online consultation", exact=True).click()
    meeting = page.get_by_role("region", name="Video meeting")
    expect(meeting.get_by_role("link", name=re.compile(r"^Join"))).to_have_attribute(
        "aria-disabled", "true"
    )
    screenshot(page, "booking-detail-join")


def test_join_button_opens_and_then_opens_the_meeting_by_itself(desktop: Page, site_url):
    """With the page left open, the button works from the opening time and the meeting
    opens by itself at the start (R22)."""
    page = desktop
    booking = Booking.objects.get(member__username="member", service__isnull=False)
    link = links.member_link(booking, where=links.MEMBERS_AREA)
    assert link is not None and link.shown
    page.clock.install(time=link.opens_at - dt.timedelta(minutes=2))
    log_in(page, site_url)
    page.goto(f"{site_url}/my-bookings/")
    join = page.locator(".bvc-button--join")
    expect(join).to_have_attribute("aria-disabled", "true")

    page.clock.run_for(3 * 60 * 1000)

    expect(join).to_have_attribute("href", meetings.join_path(booking))
    expect(join).not_to_have_attribute("aria-disabled", "true")
    expect(page.locator(".bvc-join__opens")).to_be_hidden()
    screenshot(page, "members-area-join-open")

    # Only the browser's clock has moved: the server would still say "not yet", so the
    # join link is answered here, to see the browser go there.
    page.route("**/bookings/join/**", lambda route: route.fulfill(body="The meeting"))
    page.clock.run_for(15 * 60 * 1000)
    expect(page).to_have_url(f"{site_url}{meetings.join_path(booking)}")


def test_member_books_a_seat_in_a_class(desktop: Page, site_url):
    page = desktop
    log_in(page, site_url)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Classes").click()
    expect(page.get_by_role("heading", name="Classes", level=1)).to_be_visible()
    screenshot(page, "classes")
    screenshot(page, "classes-phone", phone=True)

    first_pilates = page.locator(".bvc-session", has_text="Online pilates").first
    expect(first_pilates).to_contain_text("20 seats left")
    first_pilates.get_by_role("link", name=re.compile(r"^Book")).click()
    expect(page.get_by_role("heading", name="Confirm your seat")).to_be_visible()
    screenshot(page, "class-confirm")

    page.get_by_role("button", name="Book my seat").click()
    expect(page).to_have_url(BOOKING_URL)
    booking = booking_from_url(page)
    assert booking.member.username == "member"
    assert booking.session.group_class.name == "Online pilates"
    assert booking.status == BookingStatus.CONFIRMED
    screenshot(page, "class-booking-detail")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Classes").click()
    booked = page.locator(".bvc-session", has_text="Online pilates").first
    expect(booked).to_contain_text("Booked")


def test_visitor_logs_in_on_the_way_and_comes_back_to_the_chosen_time(desktop: Page, site_url):
    page = desktop
    page.goto(f"{site_url}/")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    page.locator(".bvc-service__link", has_text="Nutrition check-in").click()
    pick_first_free_time(page)

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill("member2")
    page.get_by_label("Password").fill("member2")
    page.locator("main").get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/bookings/services/nutrition-check-in/book/\?"))
    page.get_by_role("button", name="Book this time").click()
    expect(page).to_have_url(BOOKING_URL)
    assert booking_from_url(page).member.username == "member2"


def test_unknown_address_shows_the_sites_not_found_page(desktop: Page, site_url):
    page = desktop
    response = page.goto(f"{site_url}/no-such-page/")

    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="We couldn’t find that page")).to_be_visible()
    page.get_by_role("link", name="Back to the home page").click()
    expect(page).to_have_url(f"{site_url}/")
    page.goto(f"{site_url}/no-such-page/")
    screenshot(page, "not-found-phone", phone=True)
