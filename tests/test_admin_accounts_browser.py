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


# --------------------------------------------------------------------------------------
# Through a provider's consent screen (the loopback Zoom), the report's Retry, and axe
# --------------------------------------------------------------------------------------


@pytest.fixture
def zoom_site(live_server, settings, monkeypatch):
    from wagtail_bookings_vc.testing.zoom import FakeZoom

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake speaks plain http
    with FakeZoom() as fake:
        fake.add_user("studio", email="studio@example.com", first_name="Studio", last_name="")
        fake.add_user("giulia", email="giulia@example.com", first_name="Giulia", last_name="")
        _with_providers(settings, {"zoom": fake.provider_options(HTTP_TIMEOUT=(2.0, 2.0))})
        call_command("load_demo_data", stdout=StringIO())
        # Start without a default account: the administrator connects Zoom as the default.
        from wagtail_bookings_vc.models import ConferencingSettings

        ConferencingSettings.objects.update(default_account=None)
        ConferencingAccount.objects.all().delete()
        yield live_server.url, fake


def test_connecting_zoom_as_the_default_then_as_a_staff_members_own(page: Page, zoom_site):
    from tests.test_accessibility import check_axe, read_axe

    site_url, fake = zoom_site
    axe = read_axe()
    admin_log_in(page, site_url, "admin")
    page.goto(f"{site_url}/admin/bookings-vc/video/")
    expect(page.get_by_text("No default account yet.")).to_be_visible()
    page.wait_for_load_state("networkidle")  # the admin's sidebar is drawn by script
    check_axe(page, axe, "the video conferencing screen")

    fake.consenting_user = "studio"
    page.get_by_role("button", name="Connect Zoom").first.click()
    # Zoom's consent page (the fake's agrees at once) sends the browser back.
    # Named after the provider and the Zoom user who consented.
    expect(page.get_by_text("Zoom · studio@example.com is connected.")).to_be_visible()
    expect(page.get_by_text("Zoom · studio@example.com", exact=True)).to_be_visible()
    default = ConferencingAccount.objects.get(staff__isnull=True)
    assert default.provider == "zoom" and default.is_connected
    screenshot(page, "admin-video-conferencing-zoom")
    admin_log_out(page, site_url)

    # Giulia, a member of staff, connects her own Zoom on My video account.
    admin_log_in(page, site_url, "staff")
    page.get_by_role("link", name="My video account").click()
    expect(page.get_by_text("Meetings of bookings with")).to_be_visible()
    page.wait_for_load_state("networkidle")
    check_axe(page, axe, "My video account")
    fake.consenting_user = "giulia"
    page.get_by_role("button", name="Connect Zoom").click()
    expect(page.get_by_text("Zoom · giulia@example.com is connected.")).to_be_visible()
    own = ConferencingAccount.objects.get(staff__user__username="staff")
    assert own.external_email == "giulia@example.com" and own.is_connected
    screenshot(page, "admin-my-video-account-connected")


def test_retry_in_the_report_turns_a_failed_meeting_ready(page: Page, zoom_site):
    from tests.test_accessibility import check_axe, read_axe
    from wagtail_bookings_vc.models import Booking, Meeting, MeetingState

    site_url, fake = zoom_site
    account = ConferencingAccount.objects.create(
        provider="zoom", credentials=fake.issue_user_tokens("studio"), external_user_id="studio"
    )
    from wagtail_bookings_vc.models import ConferencingSettings

    ConferencingSettings.objects.update(default_account=account)
    booking = Booking.objects.filter(service__online=True, status="confirmed").first()
    meeting, _created = Meeting.objects.update_or_create(
        booking=booking,
        defaults={
            "state": MeetingState.FAILED,
            "provider": "zoom",
            "account": account,
            "last_error": "Zoom refused the request.",
        },
    )
    admin_log_in(page, site_url, "admin")
    page.goto(f"{site_url}/admin/bookings-vc/online-meetings/?attention=retry")
    expect(page.get_by_text("Zoom refused the request.")).to_be_visible()
    page.wait_for_load_state("networkidle")
    check_axe(page, axe_source=read_axe(), what="the online meetings report")
    screenshot(page, "admin-report-failed")

    page.get_by_role(
        "button", name=re.compile(f"Retry the meeting of booking {booking.reference}")
    ).click()

    expect(page.get_by_text("Zoom refused the request.")).to_have_count(0)
    meeting.refresh_from_db()
    assert meeting.state == MeetingState.READY
    assert len(fake.meetings_of("studio")) == 1


def admin_log_out(page: Page, site_url: str) -> None:
    page.context.clear_cookies()
