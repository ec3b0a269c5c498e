"""The admin calendar in a real browser: an administrator opens the week, a booking's
dialog and its meeting; a staff member finds only their own calendar.

The server's clock is frozen on Monday 23 November 2026, 08:00 in Rome, so that the
screenshots saved in docs/screenshots/ show the same week on every run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import time_machine
from playwright.sync_api import Page, expect

from tests.test_accessibility import check_axe, read_axe
from tests.test_admin_calendar import NOW, Scene, at, make_scene, staff_user
from wagtail_bookings_vc import host_links, meetings
from wagtail_bookings_vc.models import Meeting

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
# Tall enough for a whole day of the time grid, 08:00 to 19:00.
TALL = {"width": 1280, "height": 1180}


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    """Save the page as docs/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page, animations="disabled")


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def scene(clock, recorder, live_server) -> Scene:
    return make_scene(lambda change, *args, **kwargs: change(*args, **kwargs))


@pytest.fixture
def desktop(page: Page) -> Page:
    page.set_viewport_size(DESKTOP)
    return page


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1).first).to_be_visible()


def open_calendar_from_the_menu(page: Page) -> None:
    sidebar = page.get_by_role("navigation", name="Main menu")
    sidebar.get_by_role("button", name="Bookings").click()
    sidebar.get_by_role("link", name="Calendar").click()
    expect(page.locator(".bvc-calendar__title")).to_have_text("22 November – 28 November 2026")


def test_an_administrator_opens_a_booking_and_its_meeting_from_the_week(
    desktop: Page, live_server, scene, django_user_model
):
    page = desktop
    django_user_model.objects.create_superuser("boss", "boss@example.com", "password")
    log_in(page, live_server.url, "boss", "password")
    open_calendar_from_the_menu(page)

    items = page.locator(".bvc-cal-item")
    expect(items).to_have_count(7)
    expect(page.locator(".bvc-cal-item--session")).to_contain_text("3 of 12 seats taken")
    page.set_viewport_size(TALL)
    screenshot(page, "admin-calendar-week")
    page.set_viewport_size(DESKTOP)
    check_axe(page, read_axe(), "the calendar's week")

    booking = scene.giulia_physio
    item = page.get_by_role("link", name=re.compile(r"^10:00–11:00, Online physiotherapy, Giulia"))
    item.click()

    dialog = page.get_by_role("dialog", name="Online physiotherapy")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Giulia Bianchi")
    expect(dialog).to_contain_text("Ready at Recorder.")
    open_meeting = dialog.get_by_role("link", name="Open meeting")
    expect(open_meeting).to_be_visible()
    expect(open_meeting).to_have_attribute("href", host_links.open_meeting_url(booking))
    join_link = dialog.get_by_role("textbox", name="Member's join link")
    expect(join_link).to_have_value(re.compile(re.escape(meetings.join_path(booking)) + "$"))
    expect(dialog.get_by_role("link", name="Reschedule")).to_be_visible()
    expect(dialog.get_by_role("link", name="Cancel booking")).to_be_visible()
    assert "meet.example.test" not in page.content()
    screenshot(page, "admin-calendar-booking", full_page=False)
    check_axe(page, read_axe(), "a booking's dialog")

    # Escape closes the dialog and gives the focus back to the booking.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(item).to_be_focused()

    # The keyboard opens it again; the session opens with its attendees.
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    page.locator(".bvc-cal-item--session a").click()
    session_dialog = page.get_by_role("dialog", name="Online yoga")
    expect(session_dialog).to_contain_text("Elena Galli")
    screenshot(page, "admin-calendar-session", full_page=False)
    page.keyboard.press("Escape")

    # At the start, Open meeting sends the host on to the meeting, in a new tab.
    meeting = Meeting.objects.get(booking=booking)
    item.click()
    with time_machine.travel(at(24, 9, 55), tick=False):
        with (
            page.context.expect_page() as opened,
            page.context.expect_event("response", lambda r: "/open-meeting/" in r.url) as sent_on,
        ):
            dialog.get_by_role("link", name="Open meeting").click()
        assert sent_on.value.status == 302
        assert sent_on.value.headers["location"] == meeting.host_url
        assert sent_on.value.headers["referrer-policy"] == "no-referrer"
        opened.value.close()


def test_the_filter_drawer_narrows_the_week_and_other_views_keep_it(
    desktop: Page, live_server, scene, django_user_model
):
    page = desktop
    django_user_model.objects.create_superuser("boss", "boss@example.com", "password")
    log_in(page, live_server.url, "boss", "password")
    page.goto(f"{live_server.url}/admin/bookings-vc/calendar/week/2026-11-24/")

    page.get_by_role("button", name="Filter").click()
    page.get_by_role("button", name="Staff").click()
    page.get_by_label("Staff").select_option(label="Bruno Conti")

    expect(page.locator(".bvc-cal-item")).to_have_count(3)
    expect(page.locator(".w-active-filters")).to_contain_text("Bruno Conti")
    expect(page).to_have_url(re.compile(rf"\?staff={scene.bruno.pk}$"))
    screenshot(page, "admin-calendar-filtered")

    page.keyboard.press("Escape")
    page.get_by_role("link", name="Day", exact=True).click()
    expect(page.locator(".bvc-calendar__title")).to_have_text("Tuesday 24 November 2026")
    expect(page.locator(".bvc-timegrid__column")).to_have_count(1)
    expect(page.locator(".bvc-cal-item")).to_have_count(2)

    page.get_by_role("link", name="Month", exact=True).click()
    expect(page.locator(".bvc-calendar__title")).to_have_text("November 2026")
    expect(page.locator(".bvc-cal-item")).to_have_count(3)
    page.goto(f"{live_server.url}/admin/bookings-vc/calendar/month/2026-11-24/")
    screenshot(page, "admin-calendar-month")
    check_axe(page, read_axe(), "the calendar's month")
    page.get_by_role("link", name="Day", exact=True).click()
    expect(page.locator(".bvc-timegrid__column")).to_have_count(2)
    page.set_viewport_size(TALL)
    screenshot(page, "admin-calendar-day")
    check_axe(page, read_axe(), "the calendar's day")


def test_a_staff_member_finds_only_their_own_calendar(desktop: Page, live_server, scene):
    page = desktop
    anna = staff_user(scene.anna, "anna")
    anna.set_password("anna-password")
    anna.save()
    log_in(page, live_server.url, "anna", "anna-password")
    open_calendar_from_the_menu(page)

    expect(page.locator(".bvc-calendar__meta")).to_contain_text("Your calendar, Anna Rossi")
    expect(page.locator(".bvc-cal-item")).to_have_count(4)
    expect(page.locator(".bvc-calendar")).not_to_contain_text("Bruno Conti")
    expect(page.locator(".bvc-calendar")).not_to_contain_text("Sara Greco")

    # Another staff member's calendar cannot be asked for through the address.
    page.goto(f"{page.url}?staff={scene.bruno.pk}")
    expect(page.locator(".bvc-cal-item")).to_have_count(4)
    expect(page.locator(".bvc-calendar")).not_to_contain_text("Sara Greco")
    screenshot(page, "admin-calendar-staff")


def test_an_administrator_moves_and_cancels_bookings_from_the_dialog(
    desktop: Page, live_server, scene, django_user_model
):
    page = desktop
    django_user_model.objects.create_superuser("boss", "boss@example.com", "password")
    log_in(page, live_server.url, "boss", "password")
    week = f"{live_server.url}/admin/bookings-vc/calendar/week/2026-11-24/"
    page.goto(week)

    page.get_by_role("link", name=re.compile(r"^10:00–11:00, Online physiotherapy, Giulia")).click()
    page.get_by_role("dialog").get_by_role("link", name="Reschedule").click()
    expect(page.get_by_text("Free times on Tuesday 24 November 2026")).to_be_visible()
    page.get_by_label("Date").fill("2026-11-25")
    page.get_by_role("button", name="Show free times").click()
    expect(page.get_by_text("Free times on Wednesday 25 November 2026")).to_be_visible()
    page.get_by_label("12:00–13:00").check()
    screenshot(page, "admin-booking-reschedule")
    check_axe(page, read_axe(), "the reschedule page")
    page.get_by_role("button", name="Move the booking").click()

    expect(page).to_have_url(week)
    expect(page.locator(".messages")).to_contain_text(
        "is moved to Wednesday 25 November 2026, 12:00–13:00 (Europe/Rome)"
    )
    moved = page.get_by_role("link", name=re.compile(r"^12:00–13:00, Online physiotherapy, Giulia"))
    expect(moved).to_be_visible()
    screenshot(page, "admin-calendar-moved", full_page=False)

    moved.click()
    page.get_by_role("dialog").get_by_role("link", name="Cancel booking").click()
    expect(
        page.get_by_text("Giulia Bianchi is emailed that the booking is cancelled.")
    ).to_be_visible()
    screenshot(page, "admin-booking-cancel")
    check_axe(page, read_axe(), "the cancel page")
    page.get_by_role("button", name="Yes, cancel the booking").click()

    expect(page).to_have_url(week)
    expect(page.locator(".messages")).to_contain_text("of Giulia Bianchi is cancelled.")
    expect(moved).to_have_count(0)
    scene.giulia_physio.refresh_from_db()
    assert scene.giulia_physio.status == "cancelled"
