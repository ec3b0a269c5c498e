"""The video conferencing admin screens in a real browser, as an administrator and as a
member of staff, each saved as a screenshot in docs/screenshots/."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from tests.conftest import _with_providers
from wagtail_bookings_vc.models import AccountStatus, ConferencingAccount, Staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture
def site_url(live_server, settings) -> str:
    _with_providers(
        settings,
        {"oauthrec": {"CLASS": "tests.recording_provider.OAuthRecordingProvider"}},
    )
    call_command("load_demo_data", stdout=StringIO())
    return live_server.url


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True, animations="disabled")


def admin_log_in(page: Page, site_url: str, username: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{site_url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username)
    page.get_by_role("button", name=re.compile("Sign in", re.I)).click()
    expect(page).to_have_url(re.compile(r"/admin/$"))


def test_an_administrator_sees_every_account_and_what_disconnecting_means(
    page: Page, site_url: str
):
    admin_log_in(page, site_url, "admin")
    giulia = Staff.objects.get(user__username="staff")
    ConferencingAccount.objects.create(
        provider="oauthrec",
        staff=giulia,
        external_email="giulia@provider.example",
        status=AccountStatus.NEEDS_RECONNECTING,
        last_error="The provider no longer accepts the connection to this account.",
    )

    page.goto(f"{site_url}/admin/")
    page.get_by_role("button", name="Bookings").click()
    page.get_by_role("link", name="Video conferencing").click()

    expect(page.get_by_role("heading", name="The site's default account")).to_be_visible()
    expect(page.get_by_text("Needs reconnecting")).to_be_visible()
    expect(page.get_by_role("button", name="Reconnect Consenting recorder")).to_be_visible()
    screenshot(page, "admin-video-conferencing")

    page.locator("section").first.get_by_role("link", name="Disconnect").click()
    expect(page.get_by_text("This is the site's default account.")).to_be_visible()
    screenshot(page, "admin-disconnect-default")
    page.get_by_role("button", name="Yes, disconnect").click()
    expect(page.get_by_text("is disconnected.")).to_be_visible()

    page.goto(f"{site_url}/admin/bookings-vc/organisation/oauthrec/")
    expect(page.get_by_label("Organisation key")).to_be_visible()
    screenshot(page, "admin-organisation-account")


def test_a_member_of_staff_manages_only_their_own_video_account(page: Page, site_url: str):
    admin_log_in(page, site_url, "staff")

    page.get_by_role("link", name="My video account").click()

    expect(page.get_by_text("Meetings of bookings with")).to_be_visible()
    expect(page.get_by_role("button", name="Connect Consenting recorder")).to_be_visible()
    screenshot(page, "admin-my-video-account")
    page.goto(f"{site_url}/admin/bookings-vc/video/")
    expect(page).not_to_have_url(re.compile("/bookings-vc/video/"))
