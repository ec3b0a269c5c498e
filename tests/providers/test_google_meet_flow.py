"""Google Meet end to end: connect in the admin, book, join, reschedule, cancel, disconnect.

The admin connects the site's default account through the real views (POST connect, the
fake Google's consent screen, the callback); members book through ``bookings.py`` with the
jobs run inline; every call to Google goes over HTTP to :class:`FakeGoogle`.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import time_machine
from django.core import mail
from django.db import connection
from django.urls import reverse

from tests.conftest import _with_providers, default_site
from tests.factories import ServiceFactory, StaffFactory, UserFactory
from wagtail_bookings_vc import bookings, meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    ConferencingAccount,
    ConferencingSettings,
    Meeting,
    MeetingState,
)
from wagtail_bookings_vc.testing.google import FakeGoogle

ROME = ZoneInfo("Europe/Rome")
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)  # a Monday
TUESDAY_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
WEDNESDAY_15 = dt.datetime(2026, 11, 25, 15, 0, tzinfo=ROME)
CALLBACK = reverse("wagtail_bookings_vc_admin:oauth_callback")
EVENTS = "/calendar/v3/calendars/{calendarId}/events"
EVENT = EVENTS + "/{eventId}"

pytestmark = pytest.mark.django_db


def admins(email):
    import django

    return [email] if django.VERSION >= (6, 0) else [("Admin", email)]


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def google(settings, db):
    with FakeGoogle(email="studio@example.com") as server:
        server.registered_redirect_uris = {"http://testserver" + CALLBACK}
        # One read of a pending conference per attempt: the pending phase spans jobs.
        _with_providers(settings, {"google_meet": server.provider_options(POLL_ATTEMPTS=1)})
        default_site()
        yield server
    server.raise_errors()


@pytest.fixture
def staff():
    return StaffFactory(name="Anna Rossi", email="anna@example.com")


@pytest.fixture
def service(staff):
    return ServiceFactory(name="Online physiotherapy", staff=[staff], online=True)


@pytest.fixture
def book(run_jobs, service, staff):
    def make(start=TUESDAY_10, member=None):
        member = member or UserFactory(email="giulia@example.com")
        return run_jobs(
            bookings.book_appointment, member=member, service=service, staff=staff, start=start
        )

    return make


def connect(admin_client, google, run_jobs, account=None):
    """Connect the site's Google account the way an administrator does."""
    data = {"account": account.pk} if account else {}
    response = admin_client.post(
        reverse("wagtail_bookings_vc_admin:connect", args=["google_meet"]), data
    )
    assert response.status_code == 302
    assert response["Location"].startswith(google.auth_uri + "?")
    consent = requests.get(response["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    back = urlsplit(consent.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == "http://testserver" + CALLBACK
    # The callback retries meetings that failed for want of the account: run those jobs.
    response = run_jobs(admin_client.get, f"{back.path}?{back.query}")
    assert response.status_code == 302
    assert response["Location"] == reverse("wagtail_bookings_vc_admin:video_conferencing")
    return ConferencingAccount.objects.get(provider="google_meet", staff__isnull=True)


def meeting_for(booking):
    return Meeting.objects.get(pk=meetings.meeting_of(booking).pk)


def join(client, booking):
    return client.get(meetings.join_path(booking))


def stored_credentials_column(account):
    table = ConferencingAccount._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT credentials FROM {table} WHERE id = %s", [account.pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def test_connect_book_join_reschedule_cancel_and_disconnect(
    google, admin_client, client, book, run_jobs, clock
):
    # Connect the site's default account in the admin.
    account = connect(admin_client, google, run_jobs)
    assert account.status == AccountStatus.CONNECTED
    assert account.external_user_id == account.external_email == "studio@example.com"
    assert ConferencingSettings.for_site(default_site()).default_account == account
    refresh_token = account.credentials["refresh_token"]
    assert refresh_token.startswith("1//")
    assert refresh_token not in stored_credentials_column(account)  # encrypted at rest

    # Book: Google is still preparing the Meet call after the first job's read.
    google.pending_answers = 3
    booking = book()
    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.PENDING
    assert "being prepared" in meeting.last_error
    (event,) = google.live_events()
    assert event["id"] == meeting.request_key
    assert event["summary"] == "Online physiotherapy"
    assert event["start"] == {"dateTime": "2026-11-24T10:00:00+01:00", "timeZone": "Europe/Rome"}
    assert f"[booking-ref:{booking.reference}]" in event["description"]
    assert "attendees" not in event

    # Inside the join window, before the retry: the member is told the link is coming.
    clock.move_to(TUESDAY_10 - dt.timedelta(minutes=5), tick=False)
    waiting = join(client, booking)
    assert waiting.status_code == 200
    assert "Your meeting link is being prepared" in waiting.content.decode()

    # The retry (the sweep) finds the event by its id and reads it until it is ready.
    # The access token has expired meanwhile: it is renewed and saved, the refresh token kept.
    old_token = account.credentials["token"]
    meetings.sweep_meetings(now=TUESDAY_10 - dt.timedelta(minutes=5))
    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    (event,) = google.live_events()
    assert meeting.external_id == event["id"]
    assert meeting.join_url == event["hangoutLink"]
    assert meeting.join_url.startswith("https://meet.google.com/")
    account.refresh_from_db()
    assert account.credentials["token"] != old_token
    assert account.credentials["refresh_token"] == refresh_token
    inserts = [r.status for r in google.replies if r.method == "POST" and "/events" in r.path]
    assert inserts == [200, 409]

    response = join(client, booking)
    assert response.status_code == 302
    assert response["Location"] == event["hangoutLink"]

    # Staff reschedule: the event is moved at Google and keeps its Meet call.
    run_jobs(bookings.reschedule, booking, start=WEDNESDAY_15, by_staff=True)
    (patch,) = google.requests_to("PATCH", EVENT)
    assert patch.query_value("conferenceDataVersion") == "1"
    assert json.loads(patch.body)["start"]["dateTime"] == "2026-11-25T15:00:00+01:00"
    (event,) = google.live_events()
    assert event["start"]["dateTime"] == "2026-11-25T15:00:00+01:00"
    moved = meeting_for(booking)
    assert moved.state == MeetingState.READY
    assert moved.join_url == meeting.join_url
    assert moved.synced_start == WEDNESDAY_15

    # Cancel: the event is deleted at Google.
    run_jobs(bookings.cancel, booking)
    (delete,) = google.requests_to("DELETE", EVENT)
    assert delete.query_value("sendUpdates") == "none"
    assert google.live_events() == []
    assert google.deleted_ids() == [meeting.external_id]
    assert meeting_for(booking).state == MeetingState.CANCELLED

    # Disconnect: the grant is revoked at Google and the credentials are gone.
    response = admin_client.post(reverse("wagtail_bookings_vc_admin:disconnect", args=[account.pk]))
    assert response.status_code == 302
    assert google.revoked_tokens == [refresh_token]
    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED
    assert account.credentials == {}


def test_a_revoked_grant_during_a_job_asks_for_a_reconnect_and_tells_the_administrators(
    google, admin_client, client, book, run_jobs, clock, settings
):
    settings.ADMINS = admins("admin@example.com")
    account = connect(admin_client, google, run_jobs)
    google.revoke_all()  # the user removed the site's access in their Google account
    clock.move_to(NOW + dt.timedelta(hours=2), tick=False)  # the access token has expired

    booking = book()

    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.FAILED
    assert "Reconnect" in meeting.last_error
    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_RECONNECTING
    (message,) = [m for m in mail.outbox if "admin@example.com" in m.to]
    assert "needs reconnecting" in message.subject
    refresh = google.requests_to("POST", "/token")[-1]
    assert refresh.form()["grant_type"] == "refresh_token"
    assert google.replies[-1].status == 400
    assert google.live_events() == []

    # Reconnecting the account retries the failed meeting, and the link works.
    account = connect(admin_client, google, run_jobs, account=account)
    assert account.status == AccountStatus.CONNECTED
    meeting = meeting_for(booking)
    assert meeting.state == MeetingState.READY
    (event,) = google.live_events()
    assert meeting.join_url == event["hangoutLink"]
    clock.move_to(TUESDAY_10 - dt.timedelta(minutes=5), tick=False)
    assert join(client, booking)["Location"] == event["hangoutLink"]


def test_a_staff_members_own_google_account_gets_their_bookings(
    google, admin_client, book, run_jobs, staff
):
    connect(admin_client, google, run_jobs)  # the site's default account
    google.email = "anna@example.com"
    response = admin_client.post(
        reverse("wagtail_bookings_vc_admin:connect", args=["google_meet"]), {"staff": staff.pk}
    )
    consent = requests.get(response["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(consent.headers["Location"])
    run_jobs(admin_client.get, f"{back.path}?{back.query}")
    own = ConferencingAccount.objects.get(staff=staff)
    assert own.is_connected and own.external_email == "anna@example.com"

    booking = book()

    meeting = meeting_for(booking)
    assert meeting.account == own
    assert [e["id"] for e in google.live_events("anna@example.com")] == [meeting.external_id]
    assert google.live_events("studio@example.com") == []
