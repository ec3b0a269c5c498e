"""Microsoft Teams through the user's path: connect a staff member's work account in the
admin, book an online class session for two members, move it, cancel it, disconnect; a
personal account refused; an organisation connected and its users mapped (R5); a refused
refresh. Jobs run inline; Microsoft is the loopback fake (MSAL's https authority routed to
it)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from tests.conftest import _with_providers, default_site, make_default_account
from tests.factories import ClassSessionFactory, GroupClassFactory, StaffFactory, UserFactory
from wagtail_bookings_vc import bookings, meetings
from wagtail_bookings_vc.models import AccountStatus, ConferencingAccount, Meeting, MeetingState
from wagtail_bookings_vc.testing.microsoft import FakeMicrosoft

ROME = ZoneInfo("Europe/Rome")
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)  # a Monday morning
WEDNESDAY_15 = dt.datetime(2026, 11, 25, 15, 0, tzinfo=ROME)
CALLBACK = reverse("wagtail_bookings_vc_admin:oauth_callback")
CONNECT = reverse("wagtail_bookings_vc_admin:connect", args=["microsoft_teams"])

pytestmark = [
    pytest.mark.django_db,
    # MSAL recommends form_post; the admin's callback is a GET with the answer in the query.
    pytest.mark.filterwarnings("ignore:response_mode='form_post'"),
]


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def enable(settings, fake, **options):
    _with_providers(settings, {"microsoft_teams": fake.provider_options(**options)})


@pytest.fixture
def fake(settings, monkeypatch):
    with FakeMicrosoft() as server:
        server.route_sessions(monkeypatch)
        server.add_user("anna@contoso.example", "Anna Rossi")
        enable(settings, server)
        default_site()
        yield server
        server.raise_errors()


@pytest.fixture
def staff():
    return StaffFactory(name="Anna Rossi", email="anna@example.com")


@pytest.fixture
def session(staff):
    group_class = GroupClassFactory(name="Online yoga", staff=staff, online=True, capacity=10)
    return ClassSessionFactory(group_class=group_class, start=WEDNESDAY_15)


def book_seats(run_jobs, session, count):
    return [
        run_jobs(bookings.book_session, member=UserFactory(), session=session) for _ in range(count)
    ]


def start_connecting(admin_client, staff) -> str:
    """POST connect for ``staff``; return the Microsoft sign-in URL the admin is sent to."""
    response = admin_client.post(CONNECT, {"staff": staff.pk})
    assert response.status_code == 302
    assert response["Location"].startswith(
        "https://login.fake.test/organizations/oauth2/v2.0/authorize?"
    ) or response["Location"].startswith("https://login.fake.test/common/oauth2/v2.0/authorize?")
    return response["Location"]


def come_back(admin_client, location: str, **kwargs):
    back = urlsplit(location)
    assert (back.netloc, back.path) == ("testserver", CALLBACK)
    return admin_client.get(f"{back.path}?{back.query}", **kwargs)


def connect_own_teams(admin_client, staff, fake, user) -> ConferencingAccount:
    """Connect ``staff``'s own Teams the way an administrator does it in the admin."""
    sign_in = start_connecting(admin_client, staff)
    # Microsoft's sign-in page (the fake consents at once as ``user``) sends the browser back.
    done = come_back(admin_client, fake.consent(sign_in, as_user=user))
    assert done.status_code == 302
    return ConferencingAccount.objects.get(staff=staff)


# --------------------------------------------------------------------------------------
# The path
# --------------------------------------------------------------------------------------


def test_a_staff_members_work_account_from_connect_to_disconnect(
    fake, admin_client, client, staff, session, run_jobs, clock
):
    make_default_account("jitsi")  # the site's default account comes first (R3, R4)
    anna = fake.user("anna@contoso.example")

    account = connect_own_teams(admin_client, staff, fake, anna)

    # Connected: who Anna is at Microsoft, and MSAL's token cache, stored encrypted.
    assert account.status == AccountStatus.CONNECTED
    assert account.provider == "microsoft_teams"
    assert account.external_user_id == anna.id
    assert account.external_email == "anna@contoso.example"
    assert account.credentials["kind"] == "delegated"
    assert "fake-rt." in account.credentials["token_cache"]
    (exchange,) = fake.token_requests("authorization_code")
    assert exchange["redirect_uri"] == "http://testserver" + CALLBACK
    assert exchange["code_verifier"]

    # Two members book the online class session: one Teams meeting, made as Anna.
    first, second = book_seats(run_jobs, session, 2)
    meeting = Meeting.objects.get(session=session)
    assert meeting.state == MeetingState.READY
    assert meeting.account == account
    (made,) = fake.meetings_of(anna)
    assert made["externalId"] == meeting.request_key
    assert made["subject"] == "Online yoga"
    assert made["startDateTime"].startswith("2026-11-25T14:00:00")
    assert made["endDateTime"].startswith("2026-11-25T15:00:00")
    assert made["lobbyBypassSettings"]["scope"] == "organizer"  # the class's waiting room
    assert meeting.external_id == made["id"]
    assert meeting.join_url == made["joinWebUrl"]
    assert meeting.passcode == ""

    # Two different personal links, both leading to the same Teams meeting.
    paths = [meetings.join_path(first), meetings.join_path(second)]
    assert paths[0] != paths[1] and all(paths)
    clock.move_to(WEDNESDAY_15 - dt.timedelta(minutes=5), tick=False)
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == made["joinWebUrl"]
    clock.move_to(NOW, tick=False)

    # The session moves: start and end reach Teams together, the link stays.
    session.start = WEDNESDAY_15 + dt.timedelta(hours=2)
    run_jobs(session.save)
    (patch,) = [r for r in fake.graph_requests("PATCH") if "startDateTime" in r.json()]
    assert patch.path == f"/v1.0/me/onlineMeetings/{made['id']}"
    assert patch.json()["startDateTime"] == "2026-11-25T16:00:00Z"
    assert patch.json()["endDateTime"] == "2026-11-25T17:00:00Z"
    (moved,) = fake.meetings_of(anna)
    assert moved["joinWebUrl"] == made["joinWebUrl"]
    assert Meeting.objects.get(pk=meeting.pk).synced_start == session.start

    # The session is cancelled: the Teams meeting is deleted.
    session.cancelled = True
    run_jobs(session.save)
    (delete,) = fake.graph_requests("DELETE")
    assert delete.path == f"/v1.0/me/onlineMeetings/{made['id']}"
    assert fake.meetings_of(anna) == []
    assert Meeting.objects.get(pk=meeting.pk).state == MeetingState.CANCELLED

    # Disconnected: the token cache and the credentials are gone.
    fake.clear()
    run_jobs(admin_client.post, reverse("wagtail_bookings_vc_admin:disconnect", args=[account.pk]))
    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED
    assert account.credentials == {}
    # The provider emptied MSAL's cache first; Microsoft has nothing to revoke.
    assert [r.path for r in fake.requests] == [
        "/organizations/v2.0/.well-known/openid-configuration"
    ]


def test_a_personal_microsoft_account_is_refused_and_nothing_is_saved(
    fake, settings, admin_client, staff
):
    # Through ".../common" Microsoft lets personal accounts sign in; the site refuses them.
    enable(settings, fake, AUTHORITY="https://login.fake.test/common")
    make_default_account("jitsi")

    sign_in = start_connecting(admin_client, staff)
    shown = come_back(admin_client, fake.consent(sign_in, as_user=fake.personal_user), follow=True)

    assert shown.status_code == 200
    said = [str(message) for message in shown.context["messages"]]
    assert any("Teams meetings need a work or school Microsoft account" in m for m in said), said
    assert not ConferencingAccount.objects.filter(staff=staff).exists()
    assert ConferencingAccount.objects.filter(provider="microsoft_teams").count() == 0


def test_through_the_default_authority_microsoft_turns_personal_accounts_away(
    fake, admin_client, staff
):
    make_default_account("jitsi")
    sign_in = start_connecting(admin_client, staff)
    with pytest.raises(AssertionError, match="work or school account"):
        fake.consent(sign_in, as_user=fake.personal_user)
    assert not ConferencingAccount.objects.filter(staff=staff).exists()


def test_the_site_default_account_on_teams_serves_a_class_without_own_accounts(
    fake, admin_client, session, run_jobs
):
    response = admin_client.post(CONNECT)
    come_back(admin_client, fake.consent(response["Location"]))
    (account,) = ConferencingAccount.objects.filter(provider="microsoft_teams")
    assert account.staff is None

    book_seats(run_jobs, session, 1)

    assert Meeting.objects.get(session=session).account == account
    assert len(fake.meetings_of("ada@contoso.example")) == 1


# --------------------------------------------------------------------------------------
# Organisation accounts (R5)
# --------------------------------------------------------------------------------------


def test_an_organisation_with_a_mapped_staff_member(fake, admin_client, staff, session, run_jobs):
    make_default_account("jitsi")
    fake.grant_admin_consent()
    anna = fake.user("anna@contoso.example")

    response = admin_client.post(
        reverse("wagtail_bookings_vc_admin:connect_organisation", args=["microsoft_teams"]),
        {"label": "Contoso", **fake.organisation_values()},
    )
    assert response.status_code == 302
    organisation = ConferencingAccount.objects.get(label="Contoso")
    assert organisation.is_organisation and organisation.credentials["kind"] == "organisation"

    # The admin picks Anna's directory user from the list Graph gave.
    page = admin_client.get(reverse("wagtail_bookings_vc_admin:map_staff", args=[organisation.pk]))
    assert anna.id in page.content.decode()
    admin_client.post(
        reverse("wagtail_bookings_vc_admin:map_staff", args=[organisation.pk]),
        {"staff": staff.pk, "user": anna.id},
    )
    mapped = ConferencingAccount.objects.get(staff=staff)
    assert mapped.organisation == organisation and mapped.external_user_id == anna.id

    # Without the Teams application access policy the meeting fails, with the advice.
    book_seats(run_jobs, session, 1)
    meeting = Meeting.objects.get(session=session)
    assert meeting.state == MeetingState.FAILED
    assert "Grant-CsApplicationAccessPolicy" in meeting.last_error
    assert fake.meetings == {}

    # Granted: a retry makes the meeting with Anna as organiser, through app-only tokens.
    fake.grant_access_policy(anna)
    run_jobs(meetings.retry, meeting)  # the report's Retry
    meeting.refresh_from_db()
    assert meeting.state == MeetingState.READY
    (made,) = fake.meetings_of(anna)
    assert made["id"] == meeting.external_id
    assert fake.graph_requests("POST")[-1].path == (
        f"/v1.0/users/{anna.id}/onlineMeetings/createOrGet"
    )


# --------------------------------------------------------------------------------------
# A refused refresh
# --------------------------------------------------------------------------------------


def test_a_revoked_connection_marks_the_account_and_tells_the_admins(
    fake, admin_client, staff, session, run_jobs, settings, clock
):
    settings.ADMINS = (
        ["admin@example.com"]
        if __import__("django").VERSION >= (6, 0)
        else [("Admin", "admin@example.com")]
    )
    make_default_account("jitsi")
    anna = fake.user("anna@contoso.example")
    account = connect_own_teams(admin_client, staff, fake, anna)
    fake.revoke_refresh_tokens(anna)
    clock.move_to(NOW + dt.timedelta(hours=2), tick=False)  # the access token has expired

    book_seats(run_jobs, session, 1)

    meeting = Meeting.objects.get(session=session)
    assert meeting.state == MeetingState.FAILED
    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_RECONNECTING
    assert "Reconnect" in account.last_error
    assert any("admin@example.com" in message.to for message in mail.outbox)
    assert fake.meetings == {}
