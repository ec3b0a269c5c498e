"""Connecting, mapping and disconnecting conferencing accounts in the admin (R2–R7)."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from tests import recording_provider as rec
from tests.conftest import _with_providers, default_site, make_default_account
from tests.factories import ServiceFactory, StaffFactory, UserFactory
from wagtail_bookings_vc import bookings, meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    ConferencingAccount,
    ConferencingSettings,
    Meeting,
    MeetingState,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
TUESDAY_10 = dt.datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def oauth(settings, db):
    _with_providers(
        settings,
        {
            "recorder": {"CLASS": "tests.recording_provider.RecordingProvider"},
            "oauthrec": {"CLASS": "tests.recording_provider.OAuthRecordingProvider"},
        },
    )
    rec.reset()
    rec.reset_oauth()
    default_site()
    yield
    rec.reset()
    rec.reset_oauth()


def connect_url(provider="oauthrec"):
    return reverse("wagtail_bookings_vc_admin:connect", args=[provider])


CALLBACK = reverse("wagtail_bookings_vc_admin:oauth_callback")


def start(client, staff=None, provider="oauthrec"):
    """POST connect; return the state the provider was given."""
    data = {"staff": staff.pk} if staff else {}
    response = client.post(connect_url(provider), data)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.netloc == "consent.invalid"
    query = parse_qs(location.query)
    assert query["redirect_uri"] == ["http://testserver" + CALLBACK]
    return query["state"][0]


def finish(client, state, code="good-alice"):
    return client.get(CALLBACK, {"state": state, "code": code})


def staff_user(staff):
    """A Wagtail user who is ``staff`` and may manage only their own video account."""
    user = UserFactory(username=f"user-{staff.pk}")
    group = Group.objects.create(name=f"Staff {staff.pk}")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="connect_own_account"),
    )
    user.groups.add(group)
    staff.user = user
    staff.save()
    return user


def denied(response):
    """Wagtail answers a denied admin request by sending the user to the dashboard or login."""
    return response.status_code == 403 or (
        response.status_code == 302
        and response["Location"].startswith("/admin/")
        and "bookings-vc" not in response["Location"].split("?")[0]
    )


# --------------------------------------------------------------------------------------
# The site's default account
# --------------------------------------------------------------------------------------


def test_connecting_the_first_site_account_makes_it_the_default(oauth, admin_client):
    state = start(admin_client)
    response = finish(admin_client, state)

    assert response.status_code == 302
    assert response["Location"] == reverse("wagtail_bookings_vc_admin:video_conferencing")
    account = ConferencingAccount.objects.get()
    assert account.provider == "oauthrec" and account.staff is None
    assert account.is_connected and account.connected_at == NOW
    assert account.external_user_id == "alice"
    assert account.credentials == {"access_token": "token-alice", "refresh_token": "r-alice"}
    assert ConferencingSettings.for_site(default_site()).default_account == account
    # What start_authorization asked to keep came back to finish_authorization.
    assert rec.oauth_log["finished"][0]["flow"] == {"verifier": "v-" + state[:6]}


def test_the_state_works_once(oauth, admin_client):
    state = start(admin_client)
    finish(admin_client, state)

    response = finish(admin_client, state, code="good-mallory")

    assert response.status_code == 302
    assert ConferencingAccount.objects.get().external_user_id == "alice"
    assert len(rec.oauth_log["finished"]) == 1


def test_a_forged_state_changes_nothing(oauth, admin_client):
    start(admin_client)

    response = admin_client.get(CALLBACK, {"state": "forged", "code": "good-mallory"}, follow=True)

    assert not ConferencingAccount.objects.exists()
    assert "not valid any more" in response.content.decode()


def test_a_state_from_another_session_is_refused(oauth, admin_client, client, django_user_model):
    state = start(admin_client)
    other = django_user_model.objects.create_superuser("other", "other@example.com", "pw")
    client.force_login(other)

    finish(client, state, code="good-mallory")

    assert not ConferencingAccount.objects.exists()
    assert rec.oauth_log["finished"] == []


def test_a_state_older_than_ten_minutes_is_refused(oauth, admin_client, clock):
    state = start(admin_client)
    clock.shift(dt.timedelta(minutes=11))

    finish(admin_client, state)

    assert not ConferencingAccount.objects.exists()


def test_a_refused_code_shows_why_and_saves_nothing(oauth, admin_client):
    state = start(admin_client)

    response = admin_client.get(CALLBACK, {"state": state, "code": "bad"}, follow=True)

    assert not ConferencingAccount.objects.exists()
    assert "The consent code was refused." in response.content.decode()


def test_consent_denied_at_the_provider_is_shown(oauth, admin_client):
    state = start(admin_client)

    response = admin_client.get(
        CALLBACK,
        {"state": state, "error": "access_denied", "error_description": "User said no"},
        follow=True,
    )

    assert not ConferencingAccount.objects.exists()
    assert "User said no" in response.content.decode()


def test_connect_needs_a_post(oauth, admin_client):
    assert admin_client.get(connect_url()).status_code == 405


def test_connect_refuses_a_request_without_the_csrf_token(oauth, admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    assert client.post(connect_url()).status_code == 403


def test_a_provider_without_consent_is_connected_at_once(oauth, admin_client):
    admin_client.post(connect_url("jitsi"))

    account = ConferencingAccount.objects.get()
    assert account.provider == "jitsi" and account.is_connected
    assert ConferencingSettings.for_site(default_site()).default_account == account


def test_reconnecting_a_site_account_that_needs_it_keeps_the_account(oauth, admin_client):
    account = make_default_account(
        "oauthrec", status=AccountStatus.NEEDS_RECONNECTING, credentials={"access_token": "old"}
    )
    response = admin_client.post(connect_url(), {"account": account.pk})
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]

    finish(admin_client, state, code="good-bob")

    account.refresh_from_db()
    assert ConferencingAccount.objects.count() == 1
    assert account.is_connected and account.credentials["access_token"] == "token-bob"


def test_the_video_conferencing_screen_shows_accounts_and_their_state(oauth, admin_client):
    make_default_account("oauthrec", external_email="studio@provider.example")
    StaffFactory(name="Anna Rossi")

    response = admin_client.get(reverse("wagtail_bookings_vc_admin:video_conferencing"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "studio@provider.example" in content
    assert "Anna Rossi" in content
    assert "Uses the default account" in content
    assert "Connect Consenting recorder" in content


# --------------------------------------------------------------------------------------
# What accounts are called
# --------------------------------------------------------------------------------------


def test_a_connected_account_is_named_after_its_provider_and_the_user_who_connected(
    oauth, admin_client
):
    response = finish(admin_client, start(admin_client))

    account = ConferencingAccount.objects.get()
    assert str(account) == "Consenting recorder · alice@provider.example"
    page = admin_client.get(response["Location"]).content.decode()
    assert "Consenting recorder · alice@provider.example is connected." in page


def test_without_the_users_email_the_name_says_whose_account_it_is(oauth, admin_client):
    admin_client.post(connect_url("jitsi"))
    site_account = ConferencingAccount.objects.get()
    anna = ConferencingAccount.objects.create(
        provider="oauthrec", staff=StaffFactory(name="Anna Rossi")
    )
    organisation = ConferencingAccount.objects.create(provider="oauthrec", is_organisation=True)
    gone = ConferencingAccount.objects.create(provider="retired")

    assert str(site_account) == "Jitsi Meet · site account"
    assert str(anna) == "Consenting recorder · Anna Rossi"
    assert str(organisation) == "Consenting recorder · organisation account"
    assert str(gone) == "retired · site account"  # a provider no longer enabled: its id


def test_the_name_is_in_the_admins_language(oauth, admin_client):
    from django.utils import translation

    admin_client.post(connect_url("jitsi"))

    with translation.override("sv"):
        assert str(ConferencingAccount.objects.get()) == "Jitsi Meet · webbplatsens konto"


def test_a_name_given_to_an_account_is_kept_when_it_is_reconnected(oauth, admin_client):
    account = make_default_account("oauthrec", status=AccountStatus.NEEDS_RECONNECTING)
    account.label = "Front desk"
    account.save()
    response = admin_client.post(connect_url(), {"account": account.pk})
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]

    response = finish(admin_client, state, code="good-bob")

    account.refresh_from_db()
    assert account.external_email == "bob@provider.example"
    assert str(account) == "Front desk"
    assert "Front desk is connected." in admin_client.get(response["Location"]).content.decode()


# --------------------------------------------------------------------------------------
# Staff accounts (R4)
# --------------------------------------------------------------------------------------


@pytest.fixture
def staff():
    return StaffFactory(name="Anna Rossi", email="anna@example.com")


def test_an_administrator_connects_a_staff_members_own_account(oauth, admin_client, staff):
    default = make_default_account("recorder")
    state = start(admin_client, staff=staff)

    finish(admin_client, state, code="good-anna")

    own = ConferencingAccount.objects.get(staff=staff)
    assert own.is_connected and own.external_user_id == "anna"
    # The site's default stays the default.
    assert ConferencingSettings.for_site(default_site()).default_account == default


def test_staff_accounts_need_the_default_account_first(oauth, admin_client, staff):
    response = admin_client.post(connect_url(), {"staff": staff.pk}, follow=True)

    assert not ConferencingAccount.objects.exists()
    assert "default account first" in response.content.decode()


def test_a_staff_member_connects_their_own_account(oauth, client, staff):
    make_default_account("recorder")
    client.force_login(staff_user(staff))

    page = client.get(reverse("wagtail_bookings_vc_admin:my_video_account"))
    assert page.status_code == 200
    assert "Connect Consenting recorder" in page.content.decode()

    finish(client, start(client, staff=staff), code="good-anna")

    assert ConferencingAccount.objects.get(staff=staff).external_user_id == "anna"


def test_a_staff_member_cannot_touch_anyone_elses_account(oauth, client, staff):
    make_default_account("recorder")
    other = StaffFactory(name="Bruno")
    other_account = ConferencingAccount.objects.create(provider="oauthrec", staff=other)
    client.force_login(staff_user(staff))

    assert denied(client.post(connect_url(), {"staff": other.pk}))
    assert denied(client.post(connect_url()))  # the site's account
    disconnect = reverse("wagtail_bookings_vc_admin:disconnect", args=[other_account.pk])
    assert denied(client.post(disconnect))
    assert denied(client.get(reverse("wagtail_bookings_vc_admin:video_conferencing")))
    other_account.refresh_from_db()
    assert other_account.is_connected


def test_a_staff_members_callback_is_checked_again(oauth, client, staff):
    """Permission taken away during the consent round trip: the callback refuses."""
    make_default_account("recorder")
    user = staff_user(staff)
    client.force_login(user)
    state = start(client, staff=staff)
    user.groups.clear()

    assert denied(finish(client, state))
    assert not ConferencingAccount.objects.filter(staff=staff).exists()


def test_switching_provider_needs_a_disconnect_first(oauth, admin_client, staff):
    make_default_account("recorder")
    ConferencingAccount.objects.create(provider="recorder", staff=staff)

    response = admin_client.post(connect_url(), {"staff": staff.pk}, follow=True)

    assert "Disconnect that account first" in response.content.decode()
    assert ConferencingAccount.objects.get(staff=staff).provider == "recorder"


def test_a_booking_uses_the_staff_members_connected_account(
    oauth, admin_client, staff, django_capture_on_commit_callbacks
):
    make_default_account("recorder")
    finish(admin_client, start(admin_client, staff=staff), code="good-anna")
    service = ServiceFactory(name="Online physiotherapy", staff=[staff], online=True)
    member = UserFactory()

    with django_capture_on_commit_callbacks(execute=True):
        booking = bookings.book_appointment(
            member=member, service=service, staff=staff, start=TUESDAY_10
        )

    (create,) = rec.succeeded("create")
    assert create.account_id == ConferencingAccount.objects.get(staff=staff).pk
    assert meetings.meeting_of(booking).state == MeetingState.READY


# --------------------------------------------------------------------------------------
# Disconnecting (R3, R7)
# --------------------------------------------------------------------------------------


def test_disconnecting_the_default_says_every_link_stops(oauth, admin_client):
    account = make_default_account("oauthrec", credentials={"access_token": "t"})
    url = reverse("wagtail_bookings_vc_admin:disconnect", args=[account.pk])

    content = admin_client.get(url).content.decode()

    assert "no automatic meeting link shows anywhere" in content
    account.refresh_from_db()
    assert account.is_connected  # asking changed nothing


def test_disconnecting_revokes_and_forgets_the_credentials(oauth, admin_client):
    account = make_default_account("oauthrec", credentials={"access_token": "t"})

    admin_client.post(reverse("wagtail_bookings_vc_admin:disconnect", args=[account.pk]))

    account.refresh_from_db()
    assert rec.oauth_log["revoked"] == [{"access_token": "t"}]
    assert account.status == AccountStatus.DISCONNECTED
    assert account.credentials == {}


def test_a_staff_members_meetings_move_to_the_default_when_they_disconnect(
    oauth, admin_client, staff, django_capture_on_commit_callbacks
):
    default = make_default_account("recorder")
    own = ConferencingAccount.objects.create(provider="recorder", staff=staff)
    service = ServiceFactory(name="Online physiotherapy", staff=[staff], online=True)
    with django_capture_on_commit_callbacks(execute=True):
        booking = bookings.book_appointment(
            member=UserFactory(), service=service, staff=staff, start=TUESDAY_10
        )
    assert meetings.meeting_of(booking).account == own

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("wagtail_bookings_vc_admin:disconnect", args=[own.pk]))

    meeting = Meeting.objects.get(booking=booking)
    assert meeting.state == MeetingState.READY and meeting.account == default
    assert [call.account_id for call in rec.succeeded("create")] == [own.pk, default.pk]


# --------------------------------------------------------------------------------------
# Organisation accounts (R5)
# --------------------------------------------------------------------------------------


def test_an_organisation_account_is_connected_and_staff_are_mapped_to_its_users(
    oauth, admin_client, staff, django_capture_on_commit_callbacks
):
    make_default_account("recorder")
    url = reverse("wagtail_bookings_vc_admin:connect_organisation", args=["oauthrec"])
    assert "Organisation key" in admin_client.get(url).content.decode()

    response = admin_client.post(url, {"label": "Clinic Zoom", "org_key": "k1"})

    organisation = ConferencingAccount.objects.get(label="Clinic Zoom")
    assert organisation.is_organisation and organisation.credentials == {"org_token": "org-k1"}
    map_url = reverse("wagtail_bookings_vc_admin:map_staff", args=[organisation.pk])
    assert response["Location"] == map_url
    assert "two@org.example" in admin_client.get(map_url).content.decode()

    admin_client.post(map_url, {"staff": staff.pk, "user": "u-2"})

    mapped = ConferencingAccount.objects.get(staff=staff)
    assert mapped.organisation == organisation and mapped.external_user_id == "u-2"
    assert mapped.credentials == {}  # the organisation's are used
    handle = meetings.accounts.AccountHandle(mapped)
    assert handle.credentials == {"org_token": "org-k1"}
    assert handle.external_user_id == "u-2"


def test_refused_organisation_values_show_the_providers_message(oauth, admin_client):
    url = reverse("wagtail_bookings_vc_admin:connect_organisation", args=["oauthrec"])

    response = admin_client.post(url, {"org_key": "bad"})

    assert "The organisation key was refused." in response.content.decode()
    assert not ConferencingAccount.objects.exists()


def test_disconnecting_an_organisation_disconnects_its_staff(oauth, admin_client, staff):
    organisation = ConferencingAccount.objects.create(
        provider="oauthrec", is_organisation=True, credentials={"org_token": "x"}
    )
    mapped = ConferencingAccount.objects.create(
        provider="oauthrec", staff=staff, organisation=organisation, external_user_id="u-1"
    )

    admin_client.post(reverse("wagtail_bookings_vc_admin:disconnect", args=[organisation.pk]))

    mapped.refresh_from_db()
    assert mapped.status == AccountStatus.DISCONNECTED and not mapped.is_connected


def test_a_mapped_staff_member_is_off_while_the_organisation_needs_reconnecting(oauth, staff):
    organisation = ConferencingAccount.objects.create(
        provider="oauthrec", is_organisation=True, status=AccountStatus.NEEDS_RECONNECTING
    )
    mapped = ConferencingAccount.objects.create(
        provider="oauthrec", staff=staff, organisation=organisation
    )

    assert not mapped.is_connected


# --------------------------------------------------------------------------------------
# Webhooks (R7, R24)
# --------------------------------------------------------------------------------------


def post_webhook(client, event, signature="ok"):
    return client.post(
        reverse("wagtail_bookings_vc:webhook", args=["oauthrec"]),
        data=json.dumps(event),
        content_type="application/json",
        headers={"X-Test-Signature": signature},
    )


@pytest.fixture
def ready_meeting(oauth, staff, django_capture_on_commit_callbacks):
    account = make_default_account("oauthrec")
    service = ServiceFactory(name="Online physiotherapy", staff=[staff], online=True)
    with django_capture_on_commit_callbacks(execute=True):
        booking = bookings.book_appointment(
            member=UserFactory(), service=service, staff=staff, start=TUESDAY_10
        )
    meeting = Meeting.objects.get(booking=booking)
    assert meeting.state == MeetingState.READY and meeting.account == account
    return meeting


def test_a_webhook_with_a_bad_signature_is_refused(ready_meeting, client):
    event = {"kind": "meeting_deleted", "external_id": ready_meeting.external_id}

    assert post_webhook(client, event, signature="forged").status_code == 401

    ready_meeting.refresh_from_db()
    assert ready_meeting.changed_outside_at is None


def test_a_meeting_deleted_at_the_provider_is_made_again(
    ready_meeting, client, django_capture_on_commit_callbacks
):
    old_id = ready_meeting.external_id
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, {"kind": "meeting_deleted", "external_id": old_id})

    assert response.status_code == 200 and response.json() == {"ok": True}
    ready_meeting.refresh_from_db()
    assert ready_meeting.state == MeetingState.READY
    assert ready_meeting.external_id != old_id
    assert ready_meeting.changed_outside_at == NOW


def test_a_meeting_moved_at_the_provider_is_put_back(
    ready_meeting, client, django_capture_on_commit_callbacks
):
    moved = {
        "kind": "meeting_changed",
        "external_id": ready_meeting.external_id,
        "start": (TUESDAY_10 + dt.timedelta(hours=3)).isoformat(),
    }
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, moved)

    (update,) = rec.succeeded("update")
    assert update.spec.start == TUESDAY_10
    ready_meeting.refresh_from_db()
    assert ready_meeting.synced_start == TUESDAY_10 and ready_meeting.changed_outside_at == NOW


def test_the_sites_own_change_coming_back_is_ignored(ready_meeting, client):
    same = {
        "kind": "meeting_changed",
        "external_id": ready_meeting.external_id,
        "start": TUESDAY_10.isoformat(),
    }

    post_webhook(client, same)

    assert rec.succeeded("update") == []
    ready_meeting.refresh_from_db()
    assert ready_meeting.changed_outside_at is None


def test_an_app_removed_at_the_provider_shows_disconnected(ready_meeting, client, settings):
    account = ready_meeting.account
    account.external_user_id = "alice"
    account.credentials = {"access_token": "t"}
    account.save()

    post_webhook(client, {"kind": "account_revoked", "external_user_id": "alice"})

    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED and account.credentials == {}


# --------------------------------------------------------------------------------------
# Daily call limits and making meetings closer to the date (R16)
# --------------------------------------------------------------------------------------


@pytest.fixture
def limited(settings, db):
    _with_providers(
        settings,
        {
            "oauthrec": {
                "CLASS": "tests.recording_provider.OAuthRecordingProvider",
                "DAILY_CALL_LIMIT": 3,
                "CREATE_AHEAD_DAYS": 14,
            }
        },
    )
    rec.reset()
    default_site()
    yield make_default_account("oauthrec", external_user_id="host-1")
    rec.reset()


def test_calls_over_the_daily_limit_wait_for_the_next_utc_day(
    limited, staff, django_capture_on_commit_callbacks
):
    service = ServiceFactory(name="Online physiotherapy", staff=[staff], online=True)
    with django_capture_on_commit_callbacks(execute=True):
        made = [
            bookings.book_appointment(
                member=UserFactory(),
                service=service,
                staff=staff,
                start=TUESDAY_10 + dt.timedelta(hours=hour),
            )
            for hour in range(5)
        ]

    assert len(rec.succeeded("create")) == 3
    waiting = Meeting.objects.filter(state=MeetingState.PENDING)
    assert waiting.count() == 2
    tomorrow = dt.datetime(2026, 3, 3, tzinfo=UTC)
    assert all(tomorrow < m.next_attempt_at < tomorrow + dt.timedelta(minutes=11) for m in waiting)
    assert "daily limit" in waiting.first().last_error
    assert meetings.calls_today(limited) == 3

    after_midnight = tomorrow + dt.timedelta(minutes=15)
    with time_machine.travel(after_midnight, tick=False):
        meetings.sweep_meetings(now=after_midnight)

    assert len(rec.succeeded("create")) == 5
    assert all(meetings.meeting_of(b).state == MeetingState.READY for b in made)


def test_meetings_far_ahead_are_made_closer_to_the_date(
    limited, staff, django_capture_on_commit_callbacks
):
    service = ServiceFactory(name="Online physiotherapy", staff=[staff], online=True)
    far = NOW + dt.timedelta(days=60)
    with django_capture_on_commit_callbacks(execute=True):
        booking = bookings.book_appointment(
            member=UserFactory(), service=service, staff=staff, start=far
        )

    meeting = meetings.meeting_of(booking)
    assert rec.succeeded("create") == []
    assert meeting.state == MeetingState.PENDING
    assert far - dt.timedelta(days=14) <= meeting.next_attempt_at <= far - dt.timedelta(days=7)
    assert meetings.calls_today(limited) == 0

    # Moved to tomorrow: made at once.
    with django_capture_on_commit_callbacks(execute=True):
        bookings.reschedule(booking, start=TUESDAY_10)
    assert len(rec.succeeded("create")) == 1


def test_a_burst_of_sessions_is_spread_without_a_refused_call(limited, staff, clock):
    """Many meetings coming due at once all get made, never over the host's daily limit."""
    from tests.factories import ClassSessionFactory, GroupClassFactory

    group_class = GroupClassFactory(name="Online yoga", staff=staff, online=True, capacity=5)
    for hour in range(8):
        session = ClassSessionFactory(
            group_class=group_class, start=NOW + dt.timedelta(days=5, hours=hour)
        )
        Meeting.objects.create(session=session)

    moment = NOW
    for _day in range(3):
        meetings.sweep_meetings(now=moment)
        moment += dt.timedelta(days=1)
        clock.move_to(moment, tick=False)

    assert len(rec.succeeded("create")) == 8
    assert Meeting.objects.filter(state=MeetingState.READY).count() == 8
    counts = dict(meetings.ProviderCallCount.objects.values_list("day", "calls"))
    assert sorted(counts.values()) == [2, 3, 3]
