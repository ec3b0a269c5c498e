"""Accessibility of the member's pages in a real browser (Playwright driving Debian's Chromium).

axe-core (the npm package, installed by ``scripts/install-axe``) is injected into each page
and must report no serious or critical violation on the booking widget, the booking
confirmation, the members area and the join countdown. A member books using the keyboard
alone. The browser runs in New York time, so that the widget has to notice a zone that is
not the studio's (Rome).

Screenshots land in docs/screenshots/ (desktop at 1280 pixels wide, phone at 390×844).
"""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from wagtail_bookings_vc import links, meetings
from wagtail_bookings_vc.models import Booking

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
BROWSER_ZONE = "America/New_York"
BOOKING_URL = re.compile(r"/bookings/([A-Z0-9]{12})/$")
WIDGET_URL = "/?bvc_service=physiotherapy-session"
# Impacts that fail the check; "moderate" and "minor" findings are reported by axe too,
# but are advice rather than barriers.
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """A visitor whose computer is set to New York time, at desktop size."""
    return {**browser_context_args, "timezone_id": BROWSER_ZONE, "viewport": DESKTOP}


def read_axe(path: Path = AXE) -> str:
    """axe-core's script, or a failure that says how to install it."""
    if not path.is_file():
        pytest.fail(
            f"axe-core is missing ({path}): run scripts/install-axe "
            "(it installs the npm package at the version in package-lock.json)."
        )
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def axe_source() -> str:
    return read_axe()


@pytest.fixture
def site_url(live_server) -> str:
    """The live server's address, with the demo data loaded."""
    call_command("load_demo_data", stdout=StringIO())
    return live_server.url


def check_axe(page: Page, axe_source: str, what: str) -> None:
    """Run axe-core on the page as it is now; fail on any serious or critical violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    results = page.evaluate("async () => await window.axe.run(document)")
    blocking = [rule for rule in results["violations"] if rule["impact"] in BLOCKING]
    report = [
        {
            "rule": rule["id"],
            "impact": rule["impact"],
            "help": rule["help"],
            "where": [node["target"] for node in rule["nodes"]][:5],
        }
        for rule in blocking
    ]
    assert not report, f"axe-core on {what}:\n{json.dumps(report, indent=2)}"
    # The check really ran: axe tried its rules on this page.
    assert len(results["passes"]) > 10


def screenshot(page: Page, name: str, *, phone: bool = False) -> None:
    """Save the whole page as docs/screenshots/<name>.png, at phone width if asked."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if phone:
        page.set_viewport_size(PHONE)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True, animations="disabled")
    if phone:
        page.set_viewport_size(DESKTOP)


# Keyboard helpers ------------------------------------------------------------------------------


def focused(page: Page, selector: str) -> bool:
    return page.evaluate(
        "s => !!document.activeElement && document.activeElement.matches(s)", selector
    )


def focus_name(page: Page) -> str:
    """A short name for the focused element: its id, else its text or name."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el) { return ""; }
            if (el.matches("[data-bvc-slot]")) { return "slot"; }
            return el.id || el.name || el.textContent.replace(/\\s+/g, " ").trim();
        }"""
    )


def tab_to(page: Page, selector: str, *, limit: int = 80, backwards: bool = False) -> list[str]:
    """Press Tab until the focus is on ``selector``; the names of the stops on the way."""
    stops = []
    for _press in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        stops.append(focus_name(page))
        if focused(page, selector):
            return stops
    raise AssertionError(f"Tab never reached {selector}; stops: {stops}")


def has_visible_focus(page: Page, selector: str) -> bool:
    """Whether ``selector`` is drawn with a focus outline at least 2 pixels wide."""
    return page.evaluate(
        """s => {
            const style = getComputedStyle(document.querySelector(s));
            return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
        }""",
        selector,
    )


def log_in_by_keyboard(page: Page, site_url: str, username: str = "member") -> None:
    """Log in on the site's login page with the keyboard; passwords equal usernames."""
    page.goto(f"{site_url}/accounts/login/")
    tab_to(page, "input[name=username]")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    assert focused(page, "input[name=password]")
    page.keyboard.type(username)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


# The tests -------------------------------------------------------------------------------------


def test_member_books_with_the_keyboard_alone(page: Page, site_url, axe_source):
    log_in_by_keyboard(page, site_url)
    expect(page).to_have_url(f"{site_url}/")

    # The service, from the widget's list.
    tab_to(page, ".bvc-service__link")
    while "Physiotherapy session" not in focus_name(page):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    widget = page.locator("[data-bvc-widget]")
    summary = widget.locator("[data-bvc-summary]")
    # The browser's zone is picked by itself, and named.
    expect(summary).to_contain_text(f"Times are in {BROWSER_ZONE} time.")
    expect(widget.get_by_label("Time zone")).to_have_value(BROWSER_ZONE)
    expect(page).to_have_url(re.compile(r"bvc_tz=America%2FNew_York"))

    # Focus order: the zone, the week, then the times as one stop, then the button.
    stops = tab_to(page, "[data-bvc-slot]")
    zone = next(n for n, stop in enumerate(stops) if stop.endswith("-zone"))
    assert stops.index("Next week →") > zone
    assert stops[-1] == "slot" and stops.count("slot") == 1
    first = page.evaluate("() => document.activeElement.id")
    assert has_visible_focus(page, f"label[for='{first}']")
    # Arrow keys move between the times and pick one; Space picks the focused one.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    picked = page.locator("[data-bvc-slot]:checked")
    expect(picked).to_have_count(1)
    picked_id = picked.get_attribute("id")
    assert picked_id != first and focused(page, f"#{picked_id}")
    picked_time = page.locator(f"label[for='{picked_id}']").inner_text()
    screenshot(page, "booking-widget-keyboard")
    screenshot(page, "booking-widget-keyboard-phone", phone=True)

    page.keyboard.press("Tab")
    assert focus_name(page) == "Continue"
    assert has_visible_focus(page, ".bvc-slot-form button[type=submit]")
    page.keyboard.press("Enter")

    # The confirmation: the time in the visitor's zone, the zone preselected.
    expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
    when = page.locator(".bvc-summary").get_by_text(re.compile(rf"\({BROWSER_ZONE}\)$"))
    expect(when).to_contain_text(f"{picked_time}–")
    check_axe(page, axe_source, "the confirmation page")
    tab_to(page, "select[name=time_zone]")
    expect(page.locator("select[name=time_zone]")).to_have_value(BROWSER_ZONE)
    page.keyboard.press("Tab")
    assert focused(page, "textarea[name=notes]")
    page.keyboard.type("Booked with the keyboard")
    page.keyboard.press("Tab")
    assert focus_name(page) == "Book this time"
    page.keyboard.press("Enter")

    expect(page).to_have_url(BOOKING_URL)
    reference = BOOKING_URL.search(page.url)[1]
    booking = Booking.objects.get(reference=reference)
    assert booking.member.username == "member"
    assert booking.time_zone == BROWSER_ZONE
    assert booking.notes == "Booked with the keyboard"
    expect(page.get_by_text("Your booking is confirmed.")).to_be_visible()
    expect(page.locator(".bvc-summary")).to_contain_text(f"({BROWSER_ZONE})")
    expect(page.get_by_role("region", name="Add to your calendar")).to_be_visible()
    check_axe(page, axe_source, "the booking page after booking")
    screenshot(page, "booking-detail-calendar")


def test_widget_announces_new_times_and_changes_zone_from_the_keyboard(
    page: Page, site_url, axe_source
):
    page.goto(f"{site_url}{WIDGET_URL}")
    widget = page.locator("[data-bvc-widget]")
    status = widget.locator("[data-bvc-status]")
    expect(widget.locator("[data-bvc-summary]")).to_contain_text(BROWSER_ZONE)
    assert status.get_attribute("aria-live") == "polite"
    check_axe(page, axe_source, "the booking widget")
    page.set_viewport_size(PHONE)
    check_axe(page, axe_source, "the booking widget at phone width")
    page.set_viewport_size(DESKTOP)

    # Next week: new times in place, announced, and the focus on the new week's heading.
    week = widget.locator(".bvc-week__title")
    shown = week.inner_text()
    tab_to(page, "a[rel=next][data-bvc-nav]")
    page.keyboard.press("Enter")
    expect(week).not_to_have_text(shown)
    expect(status).to_contain_text(week.inner_text())
    expect(status).to_contain_text(f"Times are in {BROWSER_ZONE} time.")
    assert focused(page, ".bvc-week__title")
    expect(page).to_have_url(re.compile(r"bvc_week="))

    # Another zone, typed into the select: the times follow, and the zone is named.
    tab_to(page, "select[data-bvc-zone]", backwards=True)
    page.keyboard.type("Asia/Tokyo")
    expect(status).to_contain_text("Times are in Asia/Tokyo time.")
    expect(widget.locator("[data-bvc-summary]")).to_contain_text("Asia/Tokyo")
    assert focused(page, "select[data-bvc-zone]")
    expect(page).to_have_url(re.compile(r"bvc_tz=Asia%2FTokyo"))
    screenshot(page, "booking-widget-time-zone")
    screenshot(page, "booking-widget-time-zone-phone", phone=True)

    # Going on without a time: a message tied to the times, and the focus on the first.
    tab_to(page, ".bvc-slot-form button[type=submit]")
    page.keyboard.press("Enter")
    error = widget.locator("[data-bvc-slot-error]")
    expect(error).to_be_visible()
    expect(error).to_have_text("Please pick a time first.")
    assert focused(page, "[data-bvc-slot]")
    error_id = error.get_attribute("id")
    expect(widget.locator("[data-bvc-slot]").first).to_have_attribute("aria-describedby", error_id)
    check_axe(page, axe_source, "the booking widget showing an error")
    page.keyboard.press("Space")
    expect(error).to_be_hidden()


def test_members_area_and_join_countdown_pass_axe(page: Page, site_url, axe_source):
    log_in_by_keyboard(page, site_url)
    page.goto(f"{site_url}/my-bookings/")
    upcoming = page.get_by_role("link", name="Upcoming", exact=True)
    expect(upcoming).to_have_attribute("aria-current", "page")
    row = page.locator(".bvc-booking", has_text="Online consultation").first
    expect(row.locator(".bvc-badge")).to_have_text("Confirmed")
    check_axe(page, axe_source, "the members area")

    # Add to calendar, opened with the keyboard: the personal join link, never the provider's.
    tab_to(page, ".bvc-calendar__summary")
    page.keyboard.press("Enter")
    google = page.locator(".bvc-calendar[open] .bvc-calendar__link--google")
    expect(google).to_be_visible()
    booking = Booking.objects.get(member__username="member", service__isnull=False)
    link = links.member_link(booking, where=links.MEMBERS_AREA)
    assert link is not None and link.shown
    assert meetings.join_path(booking) in (google.get_attribute("href") or "").replace("%2F", "/")
    assert "meet.jit.si" not in page.content()
    check_axe(page, axe_source, "the members area with add-to-calendar open")
    screenshot(page, "members-area-calendar")
    screenshot(page, "members-area-calendar-phone", phone=True)

    past = page.get_by_role("link", name="Past", exact=True)
    past.focus()
    page.keyboard.press("Enter")
    expect(past).to_have_attribute("aria-current", "page")
    check_axe(page, axe_source, "the members area's past bookings")

    # The join link before the meeting opens: the countdown page.
    page.goto(f"{site_url}{link.path}")
    expect(page.locator("[data-bvc-timer]")).to_be_visible()
    check_axe(page, axe_source, "the join countdown")
    screenshot(page, "join-countdown-phone", phone=True)


def test_missing_axe_points_to_the_install_script(tmp_path):
    """Without node_modules, the check fails with a message that says what to run."""
    with pytest.raises(pytest.fail.Exception, match="run scripts/install-axe"):
        read_axe(tmp_path / "node_modules" / "axe-core" / "axe.min.js")
    assert "axe.run" in read_axe()
