"""Zoom through the user's path: connect in the admin, book, move, cancel, disconnect; the
faults on the way (a crash mid-create, an expired token, a refused refresh); and Zoom's
webhooks posted to the site's real endpoint. Jobs run inline; Zoom is the loopback fake."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import time_machine
from django.core import mail
from django.urls import reverse

from tests.conftest import _with_providers, default_site, make_default_account
from tests.factories import ServiceFactory, StaffFactory, UserFactory
from wagtail_bookings_vc import bookings, jobs, meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    ConferencingAccount,
    JoinPassRole,
    Meeting,
    MeetingState,
)
from wagtail_bookings_vc.testing.zoom import FakeZoom

ROME = ZoneInfo("Europe/Rome")
UTC = dt.UTC
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)  # a Monday morning
TUESDAY_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
WEDNESDAY_15 = dt.datetime(2026, 11, 25, 15, 0, tzinfo=ROME)
SECRET = "zoom-webhook-secret-token"
CALLBACK = reverse("wagtail_bookings_vc_admin:oauth_callback")
WEBHOOK = reverse("wagtail_bookings_vc:webhook", args=["zoom"])

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def fake(settings, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake speaks plain http
    with FakeZoom() as server:
        server.add_user("anna", email="anna@example.com", first_name="Anna", last_name="Rossi")
        server.consenting_user = "anna"
        _with_providers(
            settings,
            {"zoom": server.provider_options(HTTP_TIMEOUT=(2.0, 1.0), WEBHOOK_SECRET_TOKEN=SECRET)},
        )
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
        return run_jobs(
            bookings.book_appointment,
            member=member or UserFactory(),
            service=service,
            staff=staff,
            start=start,
        )

    return make


def connect_own_zoom(admin_client, staff, fake) -> ConferencingAccount:
    """Connect ``staff``'s own Zoom the way an administrator does it in the admin."""
    response = admin_client.post(
        reverse("wagtail_bookings_vc_admin:connect", args=["zoom"]), {"staff": staff.pk}
    )
    assert response.status_code == 302
    consent_url = response["Location"]
    assert consent_url.startswith(f"{fake.url}/oauth/authorize?")
    # Zoom's consent page (the fake's consents at once) sends the browser back.
    answer = requests.get(consent_url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert back.path == CALLBACK
    done = admin_client.get(f"{back.path}?{back.query}")
    assert done.status_code == 302
    return ConferencingAccount.objects.get(staff=staff)


def admins(email: str) -> list:
    """ADMINS in the form the running Django expects (plain addresses from Django 6)."""
    import django

    return [email] if django.VERSION >= (6, 0) else [("Admin", email)]


def meeting_of(booking) -> Meeting:
    return Meeting.objects.get(pk=meetings.meeting_of(booking).pk)


@pytest.fixture
def anna_zoom(fake, admin_client, staff):
    make_default_account("jitsi")  # the site's default account comes first (R3, R4)
    return connect_own_zoom(admin_client, staff, fake)


# --------------------------------------------------------------------------------------
# The path
# --------------------------------------------------------------------------------------


def test_a_staff_members_own_zoom_from_connect_to_disconnect(
    fake, admin_client, client, staff, book, run_jobs, clock
):
    make_default_account("jitsi")
    account = connect_own_zoom(admin_client, staff, fake)

    # Connected in the admin: the Zoom user, the plan and the tokens, stored encrypted.
    assert account.status == AccountStatus.CONNECTED
    assert account.provider == "zoom"
    assert account.external_user_id == "anna"
    assert account.external_email == "anna@example.com"
    assert account.credentials["plan_type"] == 1
    assert account.credentials["refresh_token"].startswith("rt-")
    (exchange,) = fake.requests_to("POST", "/oauth/token")
    assert exchange.form()["redirect_uri"] == "http://testserver" + CALLBACK
    assert exchange.form()["code_verifier"]

    # Booked: the meeting is made on Anna's own Zoom user.
    booking = book()
    meeting = meeting_of(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.account == account
    (made,) = fake.meetings_of("anna")
    assert meeting.external_id == str(made["id"])
    assert made["start_time"] == "2026-11-24T09:00:00Z"
    assert made["duration"] == 60
    assert made["timezone"] == "Europe/Rome"
    assert made["agenda"].endswith(f"[booking-ref:{booking.reference}]")
    assert meeting.join_url == made["join_url"]
    assert meeting.host_url == ""
    assert fake.meetings_of("owner") == []

    # Moved: the same meeting is patched.
    run_jobs(bookings.reschedule, booking, start=WEDNESDAY_15, by_staff=True)
    (patch,) = fake.requests_to("PATCH", "/v2/meetings/{id}")
    assert patch.path == f"/v2/meetings/{meeting.external_id}"
    (moved,) = fake.meetings_of("anna")
    assert moved["id"] == made["id"]
    assert moved["start_time"] == "2026-11-25T14:00:00Z"
    assert meeting_of(booking).synced_start == WEDNESDAY_15

    # The host's link: a start URL fetched from Zoom at the click, stored nowhere.
    clock.move_to(WEDNESDAY_15 - dt.timedelta(minutes=5), tick=False)
    fake.clear()
    host = client.get(meetings.join_path(booking, JoinPassRole.HOST))
    assert host.status_code == 302
    assert host["Location"].startswith(f"https://{FakeZoom.JOIN_HOST}/s/{made['id']}?zak=")
    assert [r.path for r in fake.requests if r.path.startswith("/v2/")] == [
        f"/v2/meetings/{made['id']}"
    ]
    assert "zak" not in str(Meeting.objects.filter(pk=meeting.pk).values().get())
    member = client.get(meetings.join_path(booking))
    assert member["Location"] == made["join_url"]
    clock.move_to(NOW, tick=False)

    # Cancelled: the meeting is deleted at Zoom.
    run_jobs(bookings.cancel, booking, by_staff=True)
    assert fake.deleted == [made["id"]]
    assert fake.meetings_of("anna") == []
    assert meeting_of(booking).state == MeetingState.CANCELLED

    # Disconnected: revoked at Zoom, and nothing of Zoom left in the database.
    token = ConferencingAccount.objects.get(pk=account.pk).credentials["refresh_token"]
    run_jobs(admin_client.post, reverse("wagtail_bookings_vc_admin:disconnect", args=[account.pk]))
    assert fake.revoked == [token]
    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED
    assert account.credentials == {}
    # No other account uses Zoom: its user ids, meeting ids and links are gone too.
    assert account.external_user_id == "" and account.external_email == ""
    gone = Meeting.objects.get(pk=meeting.pk)
    assert (gone.external_id, gone.join_url, gone.host_url, gone.passcode) == ("", "", "", "")
    assert not meetings.ProviderCallCount.objects.filter(provider="zoom").exists()


def test_a_crash_between_the_create_call_and_saving_its_answer_makes_one_meeting(
    anna_zoom, fake, staff, service, monkeypatch
):
    class WorkerDied(BaseException):
        """The worker process ends: nothing after the provider's answer runs."""

    def die(*args, **kwargs):
        raise WorkerDied

    with monkeypatch.context() as patched:
        patched.setattr(jobs, "enqueue", lambda *args: None)
        booking = bookings.book_appointment(
            member=UserFactory(), service=service, staff=staff, start=TUESDAY_10
        )
        patched.setattr(meetings, "_record_success", die)
        with pytest.raises(WorkerDied):
            meetings.ensure_meeting(meeting_of(booking).pk)

    left = meeting_of(booking)
    assert left.state == MeetingState.CREATING
    assert left.request_key
    assert left.external_id == ""
    assert len(fake.meetings_of("anna")) == 1  # Zoom made it; the site never heard

    later = NOW + meetings.LEASE + dt.timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        assert meetings.sweep_meetings(now=later) == 1

    (made,) = fake.meetings_of("anna")
    meeting = meeting_of(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.external_id == str(made["id"])
    assert len(fake.requests_to("POST", "/v2/users/{user}/meetings")) == 1
    assert fake.requests_to("GET", "/v2/users/me/meetings")  # looked before creating


def test_a_lost_answer_is_tried_again_without_a_second_meeting(anna_zoom, fake, book):
    fake.lose_answer_next(path="/v2/users/me/meetings")
    booking = book()
    meeting = meeting_of(booking)
    assert meeting.state == MeetingState.PENDING
    assert meeting.next_attempt_at is not None

    later = meeting.next_attempt_at + dt.timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        meetings.sweep_meetings(now=later)

    (made,) = fake.meetings_of("anna")
    assert meeting_of(booking).external_id == str(made["id"])
    assert meeting_of(booking).state == MeetingState.READY


def test_a_booking_cancelled_after_a_lost_answer_leaves_no_meeting_at_zoom(
    anna_zoom, fake, book, run_jobs
):
    """Zoom made the meeting but its answer never came; then the member cancels. The site
    never learnt the meeting's id, yet the meeting must not stay behind at Zoom."""
    fake.lose_answer_next(path="/v2/users/me/meetings")
    booking = book()
    assert len(fake.meetings_of("anna")) == 1
    assert meeting_of(booking).external_id == ""

    run_jobs(bookings.cancel, booking, by_staff=True)
    later = NOW + dt.timedelta(hours=1)
    with time_machine.travel(later, tick=False):
        meetings.sweep_meetings(now=later)

    assert fake.meetings_of("anna") == []
    assert meeting_of(booking).state == MeetingState.CANCELLED


def test_a_token_that_expired_mid_run_is_refreshed_and_the_new_one_saved(
    anna_zoom, fake, book, run_jobs
):
    booking = book()
    before = ConferencingAccount.objects.get(pk=anna_zoom.pk).credentials
    fake.expire_tokens()

    run_jobs(bookings.reschedule, booking, start=WEDNESDAY_15, by_staff=True)

    assert meeting_of(booking).synced_start == WEDNESDAY_15
    assert fake.grants.count("refresh_token") == 1
    after = ConferencingAccount.objects.get(pk=anna_zoom.pk).credentials
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    # The saved refresh token is the one Zoom will take next time.
    fake.expire_tokens()
    run_jobs(bookings.reschedule, booking, start=TUESDAY_10, by_staff=True)
    assert fake.grants.count("refresh_token") == 2
    assert meeting_of(booking).synced_start == TUESDAY_10


def test_a_refused_refresh_asks_for_a_reconnect_and_tells_the_administrators(
    anna_zoom, fake, book, settings
):
    settings.ADMINS = admins("admin@example.com")
    fake.revoke_refresh_tokens()  # Anna removed the app in Zoom
    fake.expire_tokens()

    booking = book()

    meeting = meeting_of(booking)
    assert meeting.state == MeetingState.FAILED
    assert "Reconnect the account" in meeting.last_error
    anna_zoom.refresh_from_db()
    assert anna_zoom.status == AccountStatus.NEEDS_RECONNECTING
    (message,) = [m for m in mail.outbox if "admin@example.com" in m.to]
    assert "needs reconnecting" in message.subject
    assert "Zoom · anna@example.com" in message.body
    assert "Reconnect the account" in message.body
    assert fake.meetings == {}


def test_a_day_over_zoom_s_limit_waits_for_midnight_utc(anna_zoom, fake, book):
    fake.set_calls_today("anna", fake.daily_limit)  # another app used up Anna's day
    booking = book()

    meeting = meeting_of(booking)
    assert meeting.state == MeetingState.PENDING
    midnight = dt.datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert midnight < meeting.next_attempt_at <= midnight + dt.timedelta(minutes=2)
    assert "00:00 UTC" in meeting.last_error

    with time_machine.travel(meeting.next_attempt_at, tick=False):
        meetings.sweep_meetings(now=meeting.next_attempt_at)
    assert meeting_of(booking).state == MeetingState.READY
    assert len(fake.meetings_of("anna")) == 1


# --------------------------------------------------------------------------------------
# Webhooks posted to the site's endpoint
# --------------------------------------------------------------------------------------


def test_zoom_validates_the_webhook_url(fake, client):
    response = fake.send_webhook(
        WEBHOOK, "endpoint.url_validation", {"plainToken": "plain-123"}, SECRET, client=client
    )
    assert response.status_code == 200
    expected = hmac.new(SECRET.encode(), b"plain-123", hashlib.sha256).hexdigest()
    assert response.json() == {"plainToken": "plain-123", "encryptedToken": expected}


def test_a_meeting_deleted_in_zoom_is_made_again(anna_zoom, fake, book, client, run_jobs):
    booking = book()
    old = meeting_of(booking).external_id
    fake.meetings.clear()  # the host deleted it in Zoom

    response = run_jobs(
        fake.send_webhook,
        WEBHOOK,
        "meeting.deleted",
        {"account_id": "acc", "object": {"id": int(old), "host_id": "anna"}},
        SECRET,
        client=client,
    )

    assert response.status_code == 200
    meeting = meeting_of(booking)
    assert meeting.state == MeetingState.READY
    assert meeting.external_id != old
    assert meeting.changed_outside_at == NOW
    (made,) = fake.meetings_of("anna")
    assert str(made["id"]) == meeting.external_id


def test_a_meeting_moved_in_zoom_is_put_back(anna_zoom, fake, book, client, run_jobs):
    booking = book()
    meeting_id = int(meeting_of(booking).external_id)
    fake.meetings[meeting_id]["start_time"] = "2026-11-24T15:00:00Z"  # moved in Zoom

    run_jobs(
        fake.send_webhook,
        WEBHOOK,
        "meeting.updated",
        {"object": {"id": meeting_id, "start_time": "2026-11-24T15:00:00Z"}},
        SECRET,
        client=client,
    )

    assert fake.meetings[meeting_id]["start_time"] == "2026-11-24T09:00:00Z"
    assert meeting_of(booking).changed_outside_at == NOW


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": "not-the-secret"},
        {"timestamp": "stale"},
        {"drop_headers": ("x-zm-signature",)},
    ],
    ids=["wrong-signature", "stale", "unsigned"],
)
def test_badly_signed_or_stale_webhooks_change_nothing(
    anna_zoom, fake, book, client, run_jobs, kwargs
):
    booking = book()
    old = meeting_of(booking).external_id
    if kwargs.get("timestamp") == "stale":
        kwargs = {"timestamp": int(NOW.timestamp()) - 600}
    send = {"secret": SECRET, **kwargs}

    response = run_jobs(
        fake.send_webhook,
        WEBHOOK,
        "meeting.deleted",
        {"object": {"id": int(old)}},
        client=client,
        **send,
    )

    assert response.status_code == 401
    meeting = meeting_of(booking)
    assert meeting.external_id == old
    assert meeting.changed_outside_at is None
    assert len(fake.meetings_of("anna")) == 1


def test_removing_the_app_in_zoom_disconnects_the_account(anna_zoom, fake, client, run_jobs):
    response = run_jobs(
        fake.send_webhook,
        WEBHOOK,
        "app_deauthorized",
        {"account_id": "acc", "user_id": "anna", "client_id": FakeZoom.CLIENT_ID},
        SECRET,
        client=client,
    )

    assert response.status_code == 200
    anna_zoom.refresh_from_db()
    assert anna_zoom.status == AccountStatus.DISCONNECTED
    assert anna_zoom.credentials == {}


# --------------------------------------------------------------------------------------
# Zoom's daily limit, respected rather than discovered (R16)
# --------------------------------------------------------------------------------------


def test_a_burst_of_500_class_sessions_is_made_without_a_call_refused(anna_zoom, fake, clock):
    """A whole programme of online sessions added at once: every meeting gets made, spread
    over the days it takes, and Zoom never has to refuse a call for Anna's daily limit."""
    from tests.factories import ClassSessionFactory, GroupClassFactory

    group_class = GroupClassFactory(
        name="Online yoga", staff=anna_zoom.staff, online=True, capacity=5
    )
    first = NOW + dt.timedelta(days=7)
    for number in range(500):
        session = ClassSessionFactory(
            group_class=group_class, start=first + dt.timedelta(minutes=20 * number)
        )
        Meeting.objects.create(session=session)

    moment = NOW
    for _day in range(7):
        clock.move_to(moment, tick=False)
        meetings.sweep_meetings(now=moment)
        moment += dt.timedelta(days=1)

    made = fake.meetings_of("anna")
    assert len(made) == 500
    assert Meeting.objects.filter(state=MeetingState.READY).count() == 500
    creates = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/meetings")]
    assert len(creates) == 500  # one create call per meeting: none was answered 429
    per_day = meetings.ProviderCallCount.objects.filter(user_key="anna").values_list(
        "calls", flat=True
    )
    assert sorted(per_day) == [100, 100, 100, 100, 100]
