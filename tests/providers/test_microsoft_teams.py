"""Microsoft Teams through MSAL and Graph, against the loopback fake Microsoft.

Every test drives the real MSAL and requests over HTTP to :class:`FakeMicrosoft`; MSAL's
identity calls go to ``https://login.fake.test`` and are routed to the fake's port.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured

from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    MeetingSpec,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from wagtail_bookings_vc.providers.microsoft_teams import MicrosoftTeamsProvider
from wagtail_bookings_vc.providers.registry import ProviderRegistry
from wagtail_bookings_vc.testing import InMemoryAccount
from wagtail_bookings_vc.testing.contract import ProviderContract
from wagtail_bookings_vc.testing.microsoft import MSA_TENANT, WORK_TENANT, FakeMicrosoft

# MSAL recommends form_post; the admin's callback is a GET with the answer in the query.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post'")

REDIRECT = "https://bookings.example/admin/bookings-vc/oauth/callback/"
START = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
END = START + timedelta(minutes=45)
REQUEST_ID = "5e1b8a0c2f7d4e3b9a6c1d0e2f3a4b5c"


@pytest.fixture
def fake(monkeypatch):
    with FakeMicrosoft() as server:
        server.route_sessions(monkeypatch)
        yield server
        server.raise_errors()


def teams(fake, **options) -> MicrosoftTeamsProvider:
    return MicrosoftTeamsProvider(fake.provider_options(**options), provider_id="microsoft_teams")


def spec(**changes) -> MeetingSpec:
    values = {
        "reference": "BK-1001",
        "topic": "Online physiotherapy",
        "start": START,
        "end": END,
        "request_id": REQUEST_ID,
        "options": {"waiting_room": True},
    }
    values.update(changes)
    return MeetingSpec(**values)


def connect(provider, fake, as_user=None, account=None, state="state-1"):
    """The admin's round trip: consent page, callback, finish (the flow kept as JSON)."""
    started = provider.start_authorization(REDIRECT, state)
    back = fake.consent(started.url, as_user)
    callback = dict(parse_qsl(urlsplit(back).query))
    account = account if account is not None else InMemoryAccount()
    flow = json.loads(json.dumps(dict(started.flow)))  # the admin's session stores JSON
    provider.finish_authorization(account, callback, REDIRECT, flow)
    return account


def later(hours=2):
    """Travel past the access token's lifetime (the fake's clock moves too)."""
    return time_machine.travel(datetime.now(UTC) + timedelta(hours=hours), tick=True)


def cache_entries(account, kind):
    return json.loads(account.credentials["token_cache"] or "{}").get(kind, {})


# The shared contract ------------------------------------------------------------------


class TestTeamsContract(ProviderContract):
    spec_options = {"waiting_room": True}

    @pytest.fixture(autouse=True)
    def _fake(self, fake):
        self.fake = fake
        self.provider = teams(fake)
        self.account = connect(self.provider, fake)

    def make_provider(self):
        return self.provider

    def make_account(self):
        return self.account


# Settings ------------------------------------------------------------------------------


def test_the_registry_builds_it_with_microsofts_real_endpoints():
    registry = ProviderRegistry({"microsoft_teams": {"CLIENT_ID": "id", "CLIENT_SECRET": "s"}})
    provider = registry.get("microsoft_teams")
    assert isinstance(provider, MicrosoftTeamsProvider)
    assert provider.needs_oauth and provider.needs_account
    assert provider.authority_host == "login.microsoftonline.com"
    assert provider.authority_tenant == "organizations"
    assert provider.graph_base == "https://graph.microsoft.com/v1.0"
    assert [field.name for field in provider.organisation_fields] == ["tenant_id"]
    assert provider.checks() == []


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"CLIENT_ID": ""}, "CLIENT_ID and CLIENT_SECRET"),
        ({"CLIENT_SECRET": ""}, "CLIENT_ID and CLIENT_SECRET"),
        ({"AUTHORITY": "http://login.fake.test/organizations"}, "https URL"),
        ({"AUTHORITY": "https://login.fake.test"}, "one tenant"),
        ({"AUTHORITY": "https://login.fake.test/consumers"}, "personal Microsoft accounts"),
        ({"GRAPH_BASE_URL": "graph"}, "GRAPH_BASE_URL"),
    ],
)
def test_bad_settings_are_refused_at_start_up(options, complaint):
    base = {"CLIENT_ID": "id", "CLIENT_SECRET": "secret"}
    with pytest.raises(ImproperlyConfigured, match=complaint):
        MicrosoftTeamsProvider({**base, **options}, provider_id="microsoft_teams")


def test_the_common_authority_is_warned_about():
    provider = MicrosoftTeamsProvider(
        {
            "CLIENT_ID": "id",
            "CLIENT_SECRET": "s",
            "AUTHORITY": "https://login.microsoftonline.com/common",
        },
        provider_id="microsoft_teams",
    )
    (warning,) = provider.checks()
    assert "personal Microsoft accounts" in warning.msg


# Connecting ------------------------------------------------------------------------------


def test_the_consent_url_asks_for_meetings_with_pkce_and_the_apps_state(fake):
    started = teams(fake).start_authorization(REDIRECT, "the-state")

    url = urlsplit(started.url)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "login.fake.test",
        "/organizations/oauth2/v2.0/authorize",
    )
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert query["state"] == "the-state"
    assert query["redirect_uri"] == REDIRECT
    assert query["client_id"] == fake.client_id
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["prompt"] == "select_account"
    assert set(query["scope"].split()) == {
        "OnlineMeetings.ReadWrite",
        "User.Read",
        "openid",
        "profile",
        "offline_access",
    }
    # The flow (with the PKCE verifier) stays in the admin's session, not in the URL.
    assert json.loads(json.dumps(dict(started.flow)))["code_verifier"] not in started.url


def test_connecting_a_work_account_stores_its_token_cache_and_who_it_is(fake):
    ada = fake.user("ada@contoso.example")

    account = connect(teams(fake), fake)

    assert account.external_user_id == ada.id
    assert account.external_email == "ada@contoso.example"
    credentials = account.credentials
    assert credentials["kind"] == "delegated"
    assert credentials["home_account_id"] == f"{ada.id}.{WORK_TENANT}"
    assert credentials["tenant_id"] == WORK_TENANT
    assert json.loads(json.dumps(credentials)) == credentials
    (refresh,) = cache_entries(account, "RefreshToken").values()
    assert refresh["secret"].startswith("fake-rt.")
    (exchange,) = fake.token_requests("authorization_code")
    assert exchange["code_verifier"] and exchange["redirect_uri"] == REDIRECT


def test_a_staff_member_consents_as_themselves(fake):
    ben = fake.user("ben@contoso.example")
    account = connect(teams(fake), fake, as_user=ben)
    assert (account.external_user_id, account.external_email) == (ben.id, "ben@contoso.example")


def test_a_personal_microsoft_account_is_refused_and_nothing_is_stored(fake):
    provider = teams(fake, AUTHORITY="https://login.fake.test/common")
    account = InMemoryAccount()

    with pytest.raises(PermanentFailure) as caught:
        connect(provider, fake, as_user=fake.personal_user, account=account)

    assert "work or school Microsoft account" in str(caught.value.message)
    assert account.credentials == {} and account.credential_history == []
    assert account.external_user_id == ""
    # Microsoft did sign the person in: the refusal is the provider's own.
    assert fake.token_requests("authorization_code")


def test_through_organizations_the_sign_in_page_itself_refuses_a_personal_account(fake):
    started = teams(fake).start_authorization(REDIRECT, "s")
    fake.sign_in_as(fake.personal_user)
    response = fake.visit(started.url)
    assert response.status_code == 400
    assert "work or school account" in response.text


def test_a_callback_from_another_connection_is_refused(fake):
    provider = teams(fake)
    started = provider.start_authorization(REDIRECT, "mine")
    back = dict(parse_qsl(urlsplit(fake.consent(started.url)).query))

    with pytest.raises(AuthorizationExpired, match="does not belong"):
        provider.finish_authorization(
            InMemoryAccount(), {**back, "state": "other"}, REDIRECT, dict(started.flow)
        )
    assert fake.token_requests() == []


def test_a_code_used_twice_is_refused(fake):
    provider = teams(fake)
    started = provider.start_authorization(REDIRECT, "s")
    back = dict(parse_qsl(urlsplit(fake.consent(started.url)).query))
    provider.finish_authorization(InMemoryAccount(), back, REDIRECT, dict(started.flow))

    with pytest.raises(AuthorizationExpired, match="expired or was already used"):
        provider.finish_authorization(InMemoryAccount(), back, REDIRECT, dict(started.flow))


def test_declined_consent_is_refused(fake):
    provider = teams(fake)
    started = provider.start_authorization(REDIRECT, "s")
    fake.deny_consent_next()
    back = dict(parse_qsl(urlsplit(fake.consent(started.url)).query))
    account = InMemoryAccount()

    with pytest.raises(AuthorizationExpired) as caught:
        provider.finish_authorization(account, back, REDIRECT, dict(started.flow))
    assert caught.value.provider_code == "access_denied"
    assert account.credentials == {}


def test_a_wrong_client_secret_is_explained(fake):
    provider = teams(fake, CLIENT_SECRET="not-the-secret")
    with pytest.raises(PermanentFailure, match="CLIENT_SECRET"):
        connect(provider, fake)


# Meetings ------------------------------------------------------------------------------


@pytest.fixture
def provider(fake):
    return teams(fake)


@pytest.fixture
def account(provider, fake):
    return connect(provider, fake)


def test_create_or_get_twice_with_one_request_id_makes_one_meeting(provider, account, fake):
    first = provider.create_meeting(account, spec())
    second = provider.create_meeting(account, spec(may_exist=True))

    assert first == second
    (meeting,) = fake.meetings_of("ada@contoso.example")
    assert meeting["externalId"] == REQUEST_ID
    assert first.external_id == meeting["id"]
    assert first.join_url == meeting["joinWebUrl"]
    assert first.join_url.startswith("https://teams.fake.test/l/meetup-join/")
    assert first.host_url == "" and first.passcode == ""
    statuses = [r.status for r in fake.replies if r.path.endswith("/createOrGet")]
    assert statuses == [201, 200]
    posted = fake.graph_requests("POST")[0].json()
    assert posted == {
        "externalId": REQUEST_ID,
        "startDateTime": "2030-03-04T09:00:00Z",
        "endDateTime": "2030-03-04T09:45:00Z",
        "subject": "Online physiotherapy",
    }


def test_the_waiting_room_becomes_the_teams_lobby(provider, account, fake):
    provider.create_meeting(account, spec())
    (meeting,) = fake.meetings_of("ada@contoso.example")
    assert meeting["lobbyBypassSettings"] == {"scope": "organizer", "isDialInBypassEnabled": False}
    assert meeting["allowedPresenters"] == "organizer"
    # Found again with the settings in place: no second PATCH.
    provider.create_meeting(account, spec())
    assert len(fake.graph_requests("PATCH")) == 1

    provider.create_meeting(account, spec(request_id="f" * 32, options={"waiting_room": False}))
    open_meeting = next(m for m in fake.meetings.values() if m["externalId"] == "f" * 32)
    assert open_meeting["lobbyBypassSettings"] == {
        "scope": "everyone",
        "isDialInBypassEnabled": True,
    }


def test_a_create_whose_answer_was_lost_finds_its_meeting_again(fake):
    provider = teams(fake, HTTP_TIMEOUT=(2.0, 0.3))
    account = connect(provider, fake)
    fake.timeout_next(1, seconds=0.6, path="/v1.0/me/onlineMeetings/createOrGet")

    with pytest.raises(TemporaryFailure):
        provider.create_meeting(account, spec())
    details = provider.create_meeting(account, spec(may_exist=True))

    (meeting,) = fake.meetings_of("ada@contoso.example")
    assert details.external_id == meeting["id"]


def test_a_meeting_found_again_with_old_times_is_moved_to_the_booked_time(provider, account, fake):
    provider.create_meeting(account, spec())
    moved = spec(start=START + timedelta(hours=3), end=END + timedelta(hours=3), may_exist=True)

    provider.create_meeting(account, moved)

    (meeting,) = fake.meetings_of("ada@contoso.example")
    assert meeting["startDateTime"].startswith("2030-03-04T12:00:00")
    assert meeting["endDateTime"].startswith("2030-03-04T12:45:00")


def test_reschedule_patches_start_and_end_together(provider, account, fake):
    details = provider.create_meeting(account, spec())
    moved = spec(start=START + timedelta(days=1), end=END + timedelta(days=1, minutes=15))

    updated = provider.update_meeting(account, details.external_id, moved)

    assert updated == details
    patch = fake.graph_requests("PATCH")[-1]
    assert patch.path.endswith(details.external_id)
    body = patch.json()
    assert body["startDateTime"] == "2030-03-05T09:00:00Z"
    assert body["endDateTime"] == "2030-03-05T10:00:00Z"
    assert body["subject"] == "Online physiotherapy"
    (meeting,) = fake.meetings_of("ada@contoso.example")
    assert meeting["startDateTime"].startswith("2030-03-05T09:00:00")


def test_reschedule_of_a_meeting_deleted_in_teams_makes_it_again(provider, account, fake):
    details = provider.create_meeting(account, spec())
    fake.meetings.clear()  # deleted in Teams by the organiser

    moved = spec(start=START + timedelta(days=1), end=END + timedelta(days=1))
    updated = provider.update_meeting(account, details.external_id, moved)

    (meeting,) = fake.meetings_of("ada@contoso.example")
    assert updated.external_id == meeting["id"] != details.external_id
    assert updated.join_url == meeting["joinWebUrl"]
    assert meeting["startDateTime"].startswith("2030-03-05T09:00:00")


def test_cancel_deletes_the_meeting_and_a_missing_one_counts_as_deleted(provider, account, fake):
    details = provider.create_meeting(account, spec())

    provider.delete_meeting(account, details.external_id)
    assert fake.meetings == {}
    provider.delete_meeting(account, details.external_id)

    deletes = [r for r in fake.replies if r.method == "DELETE"]
    assert [r.status for r in deletes] == [204, 404]


# Tokens ---------------------------------------------------------------------------------


def test_an_expired_access_token_is_refreshed_silently_and_saved(provider, account, fake):
    provider.create_meeting(account, spec())
    old_refresh = next(iter(cache_entries(account, "RefreshToken").values()))["secret"]
    saved_before = len(account.credential_history)

    with later():
        provider.create_meeting(account, spec(request_id="e" * 32))

    assert len(fake.token_requests("refresh_token")) == 1
    assert len(account.credential_history) == saved_before + 1
    new_refresh = next(iter(cache_entries(account, "RefreshToken").values()))["secret"]
    assert new_refresh != old_refresh
    assert len(fake.meetings) == 2


def test_a_cached_token_is_used_without_asking_microsoft_again(provider, account, fake):
    provider.create_meeting(account, spec())
    saved = len(account.credential_history)
    provider.create_meeting(account, spec(request_id="d" * 32))
    assert fake.token_requests("refresh_token") == []
    assert len(account.credential_history) == saved


def test_a_401_gets_a_fresh_token_once_and_tries_again(provider, account, fake):
    provider.create_meeting(account, spec())
    fake.revoke_access_tokens()  # Graph stops accepting it; MSAL's cache still trusts it

    details = provider.create_meeting(account, spec(request_id="c" * 32))

    assert details.external_id
    assert len(fake.token_requests("refresh_token")) == 1
    tries = [r for r in fake.replies if r.path.endswith("/createOrGet")]
    assert [r.status for r in tries] == [201, 401, 201]
    first, second = fake.graph_requests("POST")[-2:]
    assert first.header("Authorization") != second.header("Authorization")


def test_a_second_401_is_not_retried_again(provider, account, fake):
    fake.expire_tokens(5, path="/v1.0/")

    with pytest.raises(AuthorizationExpired):
        provider.create_meeting(account, spec())

    assert len(fake.graph_requests("POST")) == 2
    assert len(fake.token_requests("refresh_token")) == 1
    assert fake.pending_faults == 3


def test_a_revoked_refresh_token_means_reconnect(provider, account, fake):
    fake.revoke_refresh_tokens("ada@contoso.example")

    with later(), pytest.raises(AuthorizationExpired) as caught:
        provider.create_meeting(account, spec())

    assert caught.value.provider_code == "invalid_grant"
    assert "Reconnect" in str(caught.value.message)
    assert fake.meetings == {}


def test_a_revoked_grant_found_after_a_401_means_reconnect(provider, account, fake):
    fake.revoke_refresh_tokens()
    fake.revoke_access_tokens()

    with pytest.raises(AuthorizationExpired) as caught:
        provider.create_meeting(account, spec())
    assert caught.value.provider_code == "invalid_grant"


@pytest.mark.parametrize(
    "credentials",
    [{}, {"kind": "delegated", "token_cache": "{}", "home_account_id": "someone.else"}],
)
def test_no_account_in_the_cache_means_reconnect(provider, fake, credentials):
    with pytest.raises(AuthorizationExpired):
        provider.create_meeting(InMemoryAccount(credentials), spec())
    assert fake.graph_requests() == []


def test_two_workers_never_refresh_with_a_stale_cache(provider, account, fake):
    """The cache is read again under the lock: the second worker uses the first's token."""

    class SharedAccount:
        """Like the app's account handle: the lock re-reads what is stored."""

        store = {"credentials": dict(account.credentials)}
        lock = threading.Lock()

        def __init__(self):
            self.credentials = dict(self.store["credentials"])  # read before the refresh
            self.external_user_id = account.external_user_id
            self.external_email = account.external_email

        def __setattr__(self, name, value):
            object.__setattr__(self, name, value)
            if name == "credentials":
                SharedAccount.store["credentials"] = dict(value)

        @contextlib.contextmanager
        def credentials_lock(self):
            with self.lock:
                object.__setattr__(self, "credentials", dict(self.store["credentials"]))
                yield

    first, second = SharedAccount(), SharedAccount()
    with later():
        provider.create_meeting(first, spec(request_id="1" * 32))
        provider.create_meeting(second, spec(request_id="2" * 32))

    assert len(fake.token_requests("refresh_token")) == 1
    assert len(fake.meetings) == 2


# Errors ------------------------------------------------------------------------------


def test_throttling_honours_graphs_retry_after(provider, account, fake):
    fake.rate_limit_next(1, retry_after=7, path="/v1.0/")
    with pytest.raises(RateLimited) as caught:
        provider.create_meeting(account, spec())
    assert caught.value.retry_after == 7.0
    assert caught.value.provider_code == "TooManyRequests"
    # Nothing was made, and the next try goes through.
    assert fake.meetings == {}
    provider.create_meeting(account, spec())
    assert len(fake.meetings) == 1


def test_a_503_with_retry_after_is_throttling_and_without_it_a_temporary_failure(
    provider, account, fake
):
    fake.rate_limit_next(1, retry_after=3, status=503, path="/v1.0/")
    with pytest.raises(RateLimited) as caught:
        provider.create_meeting(account, spec())
    assert caught.value.retry_after == 3.0

    fake.fail_next(1, status=503, path="/v1.0/")
    with pytest.raises(TemporaryFailure):
        provider.create_meeting(account, spec())


def test_a_throttled_token_endpoint_is_throttling_too(provider, account, fake):
    """MSAL remembers a throttled token call for Retry-After; the next call is a new app."""
    fake.fail_next(1, reply=fake.token_throttled_reply(9), path="/organizations/oauth2/v2.0/token")

    with later():
        with pytest.raises(RateLimited) as caught:
            provider.create_meeting(account, spec())
        assert caught.value.retry_after == 9.0
        provider.create_meeting(account, spec())

    assert len(fake.token_requests("refresh_token")) == 2
    assert len(fake.meetings) == 1


def test_a_sign_in_service_outage_is_temporary(provider, account, fake):
    fake.fail_next(1, status=500, path="/organizations/oauth2/v2.0/token")
    with later(), pytest.raises(TemporaryFailure):
        provider.create_meeting(account, spec())


def test_a_403_for_a_delegated_account_explains_the_permission(provider, account, fake):
    fake.fail_next(
        1,
        path="/v1.0/",
        reply=fake.graph_error(
            403, "Forbidden", "Insufficient privileges to complete the operation."
        ),
    )
    with pytest.raises(PermanentFailure) as caught:
        provider.create_meeting(account, spec())
    assert "Teams licence" in str(caught.value.message)
    assert "OnlineMeetings.ReadWrite" in str(caught.value.message)
    assert caught.value.provider_code == "Forbidden"


def test_a_refused_request_is_permanent_with_graphs_own_words(provider, account, fake):
    fake.fail_next(1, path="/v1.0/", reply=fake.graph_error(400, "BadRequest", "Bad subject."))
    with pytest.raises(PermanentFailure) as caught:
        provider.create_meeting(account, spec(request_id="9" * 32))
    assert (caught.value.provider_code, caught.value.provider_message) == (
        "BadRequest",
        "Bad subject.",
    )


# Organisation accounts (R5) ---------------------------------------------------------------


@pytest.fixture
def organisation(provider, fake):
    fake.grant_admin_consent()
    account = InMemoryAccount()
    provider.connect_organisation(account, fake.organisation_values())
    return account


def test_an_organisation_connects_with_app_only_credentials(provider, fake, organisation):
    assert organisation.credentials["kind"] == "organisation"
    assert organisation.credentials["tenant_id"] == WORK_TENANT
    (grant,) = fake.token_requests("client_credentials")
    assert grant["scope"] == "https://graph.microsoft.com/.default"
    assert cache_entries(organisation, "AccessToken")
    assert cache_entries(organisation, "RefreshToken") == {}


def test_list_users_follows_graphs_pages(fake, organisation):
    fake.max_page_size = 2
    for n in range(3):
        fake.add_user(f"user{n}@contoso.example", f"User {n}")
    fake.add_user(
        "other@fabrikam.example", "Other", tenant_id="11111111-2222-3333-4444-555555555555"
    )

    users = teams(fake).list_users(organisation)

    assert [u.email for u in users] == [
        "ada@contoso.example",
        "ben@contoso.example",
        "user0@contoso.example",
        "user1@contoso.example",
        "user2@contoso.example",
    ]
    assert users[0].id == fake.user("ada@contoso.example").id
    assert users[0].name == "Ada Lovelace"
    pages = fake.graph_requests("GET")[1:]  # after the check made at connect time
    assert len(pages) == 3
    assert pages[0].query_value("$select") == "id,displayName,mail,userPrincipalName"


def test_a_mapped_staff_member_gets_meetings_as_their_tenant_user(provider, fake, organisation):
    ben = fake.user("ben@contoso.example")
    fake.grant_access_policy(ben)
    mapped = InMemoryAccount(organisation.credentials, external_user_id=ben.id)

    details = provider.create_meeting(mapped, spec())
    (meeting,) = fake.meetings_of(ben)
    assert details.external_id == meeting["id"]
    assert (
        fake.graph_requests("POST")[-1].path == f"/v1.0/users/{ben.id}/onlineMeetings/createOrGet"
    )

    moved = spec(start=START + timedelta(hours=1), end=END + timedelta(hours=1))
    assert provider.update_meeting(mapped, details.external_id, moved) == details
    provider.delete_meeting(mapped, details.external_id)
    assert fake.meetings == {}


def test_a_missing_application_access_policy_is_explained(provider, fake, organisation):
    ben = fake.user("ben@contoso.example")
    mapped = InMemoryAccount(organisation.credentials, external_user_id=ben.id)

    with pytest.raises(PermanentFailure) as caught:
        provider.create_meeting(mapped, spec())

    message = str(caught.value.message)
    assert "New-CsApplicationAccessPolicy" in message
    assert "Grant-CsApplicationAccessPolicy" in message
    assert "not authorized to Create meeting" in caught.value.provider_message
    assert fake.meetings == {}


def test_the_other_wording_of_a_missing_policy_is_recognised(provider, fake, organisation):
    ben = fake.user("ben@contoso.example")
    fake.grant_access_policy(ben)
    fake.fail_next(
        1,
        path="/v1.0/users/",
        reply=fake.graph_error(403, "General", "No application access policy found for this app."),
    )
    mapped = InMemoryAccount(organisation.credentials, external_user_id=ben.id)
    with pytest.raises(PermanentFailure, match="New-CsApplicationAccessPolicy"):
        provider.create_meeting(mapped, spec())


def test_an_organisation_account_that_is_not_mapped_makes_no_meeting(provider, organisation):
    with pytest.raises(PermanentFailure, match="not mapped"):
        provider.create_meeting(organisation, spec())


def test_without_admin_consent_the_admin_is_told_to_grant_it(provider, fake):
    account = InMemoryAccount()
    with pytest.raises(PermanentFailure) as caught:
        provider.connect_organisation(account, fake.organisation_values())
    assert "admin consent" in str(caught.value.message)
    assert caught.value.provider_code == "unauthorized_client"
    assert account.credentials == {}


def test_consent_without_the_application_permissions_is_caught_at_connect(provider, fake):
    fake.grant_admin_consent(roles=())
    with pytest.raises(PermanentFailure, match="admin consent"):
        provider.connect_organisation(InMemoryAccount(), fake.organisation_values())


def test_an_unknown_directory_is_named(provider, fake):
    with pytest.raises(PermanentFailure, match="does not know the directory"):
        provider.connect_organisation(
            InMemoryAccount(), {"tenant_id": "99999999-9999-4999-8999-999999999999"}
        )


@pytest.mark.parametrize("tenant", ["", "common", "organizations", "consumers", MSA_TENANT, "x y"])
def test_a_value_that_is_not_one_directory_is_refused(provider, fake, tenant):
    with pytest.raises(PermanentFailure, match="directory"):
        provider.connect_organisation(InMemoryAccount(), {"tenant_id": tenant})
    assert fake.requests == []


def test_an_organisation_by_domain_name(provider, fake):
    fake.grant_admin_consent()
    account = InMemoryAccount()
    provider.connect_organisation(account, {"tenant_id": "contoso.example"})
    assert provider.list_users(account)


def test_a_wrong_secret_at_organisation_connect_names_the_setting(fake):
    fake.grant_admin_consent()
    with pytest.raises(PermanentFailure, match="CLIENT_SECRET"):
        teams(fake, CLIENT_SECRET="wrong").connect_organisation(
            InMemoryAccount(), fake.organisation_values()
        )


def test_an_app_only_401_drops_the_cached_token_and_gets_another(provider, fake, organisation):
    ben = fake.user("ben@contoso.example")
    fake.grant_access_policy(ben)
    mapped = InMemoryAccount(organisation.credentials, external_user_id=ben.id)
    fake.revoke_access_tokens()

    provider.create_meeting(mapped, spec())

    assert len(fake.token_requests("client_credentials")) == 2


# Disconnecting ------------------------------------------------------------------------


def test_disconnect_removes_the_account_from_the_cache(provider, account, fake):
    provider.create_meeting(account, spec())

    provider.disconnect(account)

    for kind in ("RefreshToken", "AccessToken", "IdToken", "Account"):
        assert cache_entries(account, kind) == {}, kind
    # Nothing to revoke at Microsoft: no call but the metadata MSAL reads.
    assert [r.path for r in fake.requests[-1:]] == [
        "/organizations/v2.0/.well-known/openid-configuration"
    ]
    with pytest.raises(AuthorizationExpired):
        provider.create_meeting(account, spec())


def test_disconnect_of_an_organisation_drops_its_app_tokens(provider, organisation):
    provider.disconnect(organisation)
    assert cache_entries(organisation, "AccessToken") == {}


def test_disconnect_forgets_the_tokens_even_when_microsoft_is_unreachable(provider, account, fake):
    fake.fail_next(1, status=500, path="/organizations/v2.0/")
    provider.disconnect(account)
    assert account.credentials["token_cache"] == ""


# Secrets ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_token_cache_is_stored_encrypted_and_never_logged(fake, caplog):
    from django.db import connection

    from wagtail_bookings_vc.accounts import AccountHandle
    from wagtail_bookings_vc.models import ConferencingAccount

    caplog.set_level(logging.DEBUG)
    provider = teams(fake)
    stored = ConferencingAccount.objects.create(provider="microsoft_teams", label="Teams")
    handle = AccountHandle(stored)
    connect(provider, fake, account=handle)
    stored.save()  # as the admin's callback does
    details = provider.create_meeting(handle, spec())
    with later():
        provider.update_meeting(handle, details.external_id, spec(end=END + timedelta(minutes=5)))
    provider.delete_meeting(handle, details.external_id)

    credentials = ConferencingAccount.objects.get(pk=stored.pk).credentials
    refresh = next(iter(cache_entries(handle, "RefreshToken").values()))["secret"]
    assert refresh in credentials["token_cache"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM wagtail_bookings_vc_conferencingaccount WHERE id = %s",
            [stored.pk],
        )
        (raw,) = cursor.fetchone()
    assert "fake-rt." not in str(raw) and "token_cache" not in str(raw)

    secrets_seen = [fake.client_secret, *fake._refresh, *fake._tokens, *fake._codes]
    secrets_seen += [form["code_verifier"] for form in fake.token_requests("authorization_code")]
    secrets_seen += [
        r.json()["id_token"] for r in fake.replies if r.path.endswith("/token") and r.status == 200
    ]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "createOrGet" in logged  # the calls are logged, the secrets are not
    for secret in secrets_seen:
        assert secret not in logged
