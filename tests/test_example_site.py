"""The example site: its demo data, its pages and its configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone
from wagtail.models import Page, Site

from example_site.home.models import ContentPage, HomePage
from wagtail_bookings_vc import meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    Booking,
    BookingStatus,
    ClassSession,
    ConferencingAccount,
    ConferencingSettings,
    GroupClass,
    MeetingState,
    MembersAreaPage,
    PaymentStatus,
    Service,
    Staff,
)

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


def load_demo_data() -> str:
    out = StringIO()
    call_command("load_demo_data", stdout=out)
    return out.getvalue()


@pytest.fixture
def demo() -> str:
    return load_demo_data()


def logged_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def counts() -> dict[str, int]:
    return {
        "users": get_user_model().objects.count(),
        "staff": Staff.objects.count(),
        "services": Service.objects.count(),
        "classes": GroupClass.objects.count(),
        "sessions": ClassSession.objects.count(),
        "pages": Page.objects.count(),
        "bookings": Booking.objects.count(),
        "sites": Site.objects.count(),
    }


def test_demo_data_loads_twice_without_duplicates(demo):
    first = counts()

    second_output = load_demo_data()

    assert counts() == first
    assert "nothing was replaced" in second_output


def test_demo_data_has_the_documented_accounts(demo):
    users = get_user_model().objects
    admin = users.get(username="admin")
    maria = users.get(username="member")
    assert admin.is_superuser and admin.check_password("admin")
    assert maria.check_password("member")
    assert (maria.first_name, maria.last_name) == ("Maria", "Rossi")
    assert maria.email
    assert users.get(username="member2").check_password("member2")
    staff_user = users.get(username="staff")
    assert staff_user.check_password("staff")
    assert staff_user.has_perm("wagtailadmin.access_admin")


def test_demo_passwords_are_restored_on_the_next_run(demo):
    maria = get_user_model().objects.get(username="member")
    maria.set_password("something else")
    maria.save()

    load_demo_data()

    maria.refresh_from_db()
    assert maria.check_password("member")


def test_demo_staff_work_weekdays_in_rome(demo):
    assert Staff.objects.count() == 3
    for staff in Staff.objects.all():
        assert staff.time_zone == "Europe/Rome"
        weekdays = set(staff.working_hours.values_list("weekday", flat=True))
        assert weekdays == {0, 1, 2, 3, 4}
    assert Staff.objects.get(user__username="staff").name == "Giulia Bianchi"


def test_demo_services_and_classes(demo):
    consultation = Service.objects.get(name="Online consultation")
    physio = Service.objects.get(name="Physiotherapy session")
    check_in = Service.objects.get(name="Nutrition check-in")
    assert (consultation.duration_minutes, consultation.online) == (30, True)
    assert consultation.is_priced
    assert (physio.duration_minutes, physio.online) == (45, False)
    assert (check_in.duration_minutes, check_in.online, check_in.is_priced) == (20, True, False)
    assert all(service.staff.exists() for service in (consultation, physio, check_in))

    yoga = GroupClass.objects.get(name="Morning yoga")
    pilates = GroupClass.objects.get(name="Online pilates")
    assert (yoga.capacity, yoga.online) == (12, False)
    assert (pilates.capacity, pilates.online) == (20, True)
    now = timezone.now()
    for group_class in (yoga, pilates):
        upcoming = group_class.sessions.filter(start__gt=now)
        # Two sessions a week for four weeks, less the ones already past today.
        assert 7 <= upcoming.count() <= 8


def test_demo_page_tree_replaces_the_welcome_page(demo):
    site = Site.objects.get(is_default_site=True)
    home = site.root_page.specific
    assert isinstance(home, HomePage)
    assert site.site_name == "Riverside Wellbeing Studio"
    assert home.tagline
    assert [block.block_type for block in home.body][:2] == ["paragraph", "booking_widget"]
    # Only the tree root and the demo's own pages are left.
    assert Page.objects.count() == 4
    classes = ContentPage.objects.child_of(home).get(slug="classes")
    assert "class_schedule" in [block.block_type for block in classes.body]
    assert MembersAreaPage.objects.child_of(home).get().title == "My bookings"


def test_demo_has_a_real_sample_booking_for_maria(demo):
    booking = Booking.objects.get(member__username="member", service__isnull=False)
    assert booking.status == BookingStatus.CONFIRMED
    assert booking.start > timezone.now()
    assert booking.service.name == "Online consultation"
    assert booking.staff in booking.service.staff.all()


def test_home_page_shows_the_booking_widget_and_navigation(demo, client):
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Riverside Wellbeing Studio" in html
    for service in Service.objects.all():
        assert service.name in html
    assert 'href="/classes/"' in html
    assert 'href="/my-bookings/"' in html
    assert "/static/css/site.css" in html


def test_classes_page_lists_sessions(demo, client):
    response = client.get("/classes/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Morning yoga" in html
    assert "Online pilates" in html
    assert 'aria-current="page"' in html


def test_members_page_sends_anonymous_visitors_to_log_in(demo, client):
    response = client.get("/my-bookings/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "next=/my-bookings/" in response["Location"]


def test_members_page_lists_the_members_bookings(demo):
    response = logged_in("member").get("/my-bookings/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Online consultation" in html
    assert "Maria" in html
    # Django 5+ logs out only by POST.
    assert 'action="/accounts/logout/"' in html
    assert 'method="post"' in html


def test_login_page_and_log_in(demo, client):
    assert client.get("/accounts/login/").status_code == 200

    response = client.post(
        "/accounts/login/", {"username": "member", "password": "member", "next": "/my-bookings/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/my-bookings/"


def test_unknown_page_uses_the_sites_404_page(demo, client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "find that page" in response.content.decode()


def test_server_error_page_renders_without_a_request():
    html = render_to_string("500.html")

    assert "Something went wrong" in html
    assert "/static/css/site.css" in html


def test_dev_settings_pass_the_system_checks(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_site.settings.dev",
        "EXAMPLE_SITE_DB": str(tmp_path / "check.sqlite3"),
    }

    result = subprocess.run(  # noqa: S603 - this project's own manage.py
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- video meetings --------------------------------------------------------------------


@pytest.fixture
def demo_with_jobs(django_capture_on_commit_callbacks) -> str:
    """The demo data with the jobs it leaves run, as the demo's worker runs them."""
    with django_capture_on_commit_callbacks(execute=True):
        return load_demo_data()


def test_demo_uses_jitsi_as_the_default_conferencing_account(demo):
    account = ConferencingAccount.objects.get()
    settings = ConferencingSettings.for_site(Site.objects.get(is_default_site=True))

    assert (account.provider, account.label, account.staff) == ("jitsi", "Jitsi Meet", None)
    assert account.is_connected
    assert settings.default_account == account


def test_demo_reconnects_its_account_on_the_next_run(demo):
    account = ConferencingAccount.objects.get()
    account.status = AccountStatus.DISCONNECTED
    account.save()

    load_demo_data()

    assert ConferencingAccount.objects.get().is_connected


def test_marias_online_booking_has_a_real_jitsi_room(demo_with_jobs):
    booking = Booking.objects.get(member__username="member", service__isnull=False)

    meeting = meetings.meeting_of(booking)
    assert booking.payment_status == PaymentStatus.PAID
    assert meeting.state == MeetingState.READY
    assert meeting.join_url.startswith("https://meet.jit.si/")


def test_marias_members_page_shows_a_join_button(demo_with_jobs):
    booking = Booking.objects.get(member__username="member", service__isnull=False)

    html = logged_in("member").get("/my-bookings/").content.decode()

    assert "bvc-button--join" in html
    assert meetings.join_path(booking) in html
    assert "meet.jit.si" not in html
