"""Zoom: OAuth with PKCE, rotating refresh tokens, organisation accounts, meetings, limits,
faults and webhooks, against the loopback fake Zoom through the real HTTP stack."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from django.core.exceptions import ImproperlyConfigured

from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    MeetingSpec,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
    WebhookEvent,
    WebhookRejected,
)
from wagtail_bookings_vc.providers.zoom import (
    ZoomProvider,
    seconds_until_next_utc_day,
    webhook_signature,
)
from wagtail_bookings_vc.testing import InMemoryAccount, json_reply
from wagtail_bookings_vc.testing.contract import ProviderContract
from wagtail_bookings_vc.testing.zoom import FakeZoom, webhook_request

START = datetime(2030, 1, 15, 9, 30, tzinfo=UTC)
END = START + timedelta(minutes=45)
REDIRECT_URI = "https://bookings.example.com/admin/bookings-vc/oauth/callback/"
WEBHOOK_SECRET = "webhook-secret-token-for-tests"


@pytest.fixture(autouse=True)
def _oauth_over_loopback_http(monkeypatch):
    # oauthlib refuses http:// URLs unless told otherwise; the fake is plain http.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def fake():
    with FakeZoom() as server:
        yield server
        server.raise_errors()


def zoom(fake, **options):
    options.setdefault("HTTP_TRUST_ENV", False)
    options.setdefault("HTTP_TIMEOUT", (2.0, 2.0))
    return ZoomProvider(fake.provider_options(**options), provider_id="zoom")


def user_account(fake, user_id="owner", **token_options):
    user = fake.users[user_id]
    return InMemoryAccount(
        fake.issue_user_tokens(user_id, **token_options),
        external_user_id=user["id"],
        external_email=user["email"],
    )


def spec(**changes):
    values = {
        "reference": "BK-1001",
        "topic": "Physiotherapy",
        "agenda": "First consultation.",
        "start": START,
        "end": END,
        "time_zone": "Europe/Rome",
        "host_email": "owner@example.com",
        "options": {"waiting_room": True},
        "request_id": "0123456789abcdef0123456789abcdef",
    }
    values.update(changes)
    return MeetingSpec(**values)


def creates(fake):
    return fake.requests_to("POST", "/v2/users/{user}/meetings")


def token_posts(fake, grant):
    return [
        r for r in fake.requests_to("POST", "/oauth/token") if r.form().get("grant_type") == grant
    ]


# The shared contract ------------------------------------------------------------------


class TestZoomContract(ProviderContract):
    @pytest.fixture(autouse=True)
    def _server(self, monkeypatch):
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
        with FakeZoom() as self.server:
            self.account = user_account(self.server)
            yield

    def make_provider(self):
        return zoom(self.server)

    def make_account(self):
        return self.account


# Settings and checks ------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["CLIENT_ID", "CLIENT_SECRET"])
def test_missing_app_credentials_are_refused_with_a_clear_message(missing):
    options = {"CLIENT_ID": "id", "CLIENT_SECRET": "secret", missing: ""}
    with pytest.raises(ImproperlyConfigured, match=f"needs {missing}.*OAuth app"):
        ZoomProvider(options, provider_id="zoom")


def test_a_bad_passcode_option_is_refused():
    with pytest.raises(ImproperlyConfigured, match="PASSCODE"):
        ZoomProvider({"CLIENT_ID": "i", "CLIENT_SECRET": "s", "PASSCODE": "yes"})


def test_checks_warn_when_no_webhook_secret_is_set(fake):
    warnings = zoom(fake).checks()
    assert [w.id for w in warnings] == ["wagtail_bookings_vc.W201"]
    assert "go unnoticed" in warnings[0].msg
    assert zoom(fake, WEBHOOK_SECRET_TOKEN=WEBHOOK_SECRET).checks() == []


def test_limits_are_declared():
    provider = ZoomProvider({"CLIENT_ID": "i", "CLIENT_SECRET": "s"})
    assert provider.needs_oauth is True
    assert provider.daily_call_limit == 100
    assert provider.create_ahead_days == 14


# Connecting a user's own Zoom ---------------------------------------------------------


def consent(url):
    """Open the consent URL as the browser would, and return the callback's parameters."""
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_connecting_uses_pkce_and_stores_tokens_user_and_plan(fake):
    provider = zoom(fake)
    request = provider.start_authorization(REDIRECT_URI, "state-123")
    query = parse_qs(urlsplit(request.url).query)
    assert request.url.startswith(f"{fake.url}/oauth/authorize?")
    assert query["state"] == ["state-123"]
    assert query["client_id"] == [FakeZoom.CLIENT_ID]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    verifier = request.flow["code_verifier"]
    assert 43 <= len(verifier) <= 128
    assert verifier not in request.url
    # The flow goes into the admin's session: it must survive JSON.
    assert json.loads(json.dumps(dict(request.flow))) == dict(request.flow)

    callback = consent(request.url)
    assert callback["state"] == "state-123"
    account = InMemoryAccount()
    provider.finish_authorization(account, callback, REDIRECT_URI, request.flow)

    exchange = fake.requests_to("POST", "/oauth/token")[-1]
    assert exchange.header("Authorization").startswith("Basic ")
    form = exchange.form()
    assert form["grant_type"] == "authorization_code"
    assert form["code_verifier"] == verifier
    assert form["redirect_uri"] == REDIRECT_URI
    assert "client_secret" not in form
    assert account.external_user_id == "owner"
    assert account.external_email == "owner@example.com"
    credentials = account.credentials
    assert credentials["kind"] == "user"
    assert credentials["access_token"].startswith("at-")
    assert credentials["refresh_token"].startswith("rt-")
    assert credentials["expires_at"] > time.time() + 3000
    assert credentials["plan_type"] == 2
    assert provider.usage(account) == {"max_meeting_minutes": None, "daily_call_limit": 100}


def test_a_basic_plan_user_is_warned_of_the_40_minute_limit(fake):
    fake.consenting_user = "basic"
    provider = zoom(fake)
    request = provider.start_authorization(REDIRECT_URI, "s")
    account = InMemoryAccount()
    provider.finish_authorization(account, consent(request.url), REDIRECT_URI, request.flow)
    assert account.credentials["plan_type"] == 1
    assert provider.usage(account) == {"max_meeting_minutes": 40, "daily_call_limit": 100}


def test_a_wrong_code_verifier_is_refused(fake):
    provider = zoom(fake)
    request = provider.start_authorization(REDIRECT_URI, "s")
    account = InMemoryAccount()
    with pytest.raises(AuthorizationExpired, match="Start connecting the account again"):
        provider.finish_authorization(
            account, consent(request.url), REDIRECT_URI, {"code_verifier": "x" * 64}
        )
    assert account.credentials == {}


def test_a_code_works_once(fake):
    provider = zoom(fake)
    request = provider.start_authorization(REDIRECT_URI, "s")
    callback = consent(request.url)
    provider.finish_authorization(InMemoryAccount(), callback, REDIRECT_URI, request.flow)
    with pytest.raises(AuthorizationExpired):
        provider.finish_authorization(InMemoryAccount(), callback, REDIRECT_URI, request.flow)


def test_consent_refused_on_zoom_is_reported(fake):
    fake.deny_consent = True
    provider = zoom(fake)
    request = provider.start_authorization(REDIRECT_URI, "s")
    callback = consent(request.url)
    assert callback["error"] == "access_denied"
    with pytest.raises(AuthorizationExpired, match="access was not allowed"):
        provider.finish_authorization(InMemoryAccount(), callback, REDIRECT_URI, request.flow)
    assert fake.requests_to("POST", "/oauth/token") == []


def test_a_wrong_client_secret_points_at_the_settings(fake):
    provider = zoom(fake, CLIENT_SECRET="wrong")
    request = provider.start_authorization(REDIRECT_URI, "s")
    with pytest.raises(PermanentFailure, match="CLIENT_ID and CLIENT_SECRET"):
        provider.finish_authorization(
            InMemoryAccount(), consent(request.url), REDIRECT_URI, request.flow
        )


# Refreshing tokens --------------------------------------------------------------------


def test_an_expiring_token_is_refreshed_first_and_the_rotated_pair_saved(fake):
    provider = zoom(fake)
    account = user_account(fake, expires_in=30)  # within the refresh margin
    old = dict(account.credentials)
    provider.create_meeting(account, spec())

    refreshes = token_posts(fake, "refresh_token")
    assert len(refreshes) == 1
    assert refreshes[0].form()["refresh_token"] == old["refresh_token"]
    assert refreshes[0].header("Authorization").startswith("Basic ")
    # Saved by assigning a new dict, with both tokens new.
    assert len(account.credential_history) == 1
    saved = account.credential_history[0]
    assert saved["access_token"] != old["access_token"]
    assert saved["refresh_token"] != old["refresh_token"]
    assert saved["expires_at"] > time.time() + 3000
    assert saved["plan_type"] == old["plan_type"]
    # The meeting was made with the new token.
    assert creates(fake)[0].header("Authorization") == f"Bearer {saved['access_token']}"
    # Rotation: the old refresh token no longer works at Zoom.
    stale = InMemoryAccount({**old, "expires_at": 0})
    with pytest.raises(AuthorizationExpired):
        provider.create_meeting(stale, spec())


def test_a_token_zoom_expired_early_is_refreshed_once_on_401(fake):
    provider = zoom(fake)
    account = user_account(fake)
    fake.expire_tokens()
    details = provider.create_meeting(account, spec())
    assert details.external_id
    assert len(token_posts(fake, "refresh_token")) == 1
    refused, accepted = (r.header("Authorization") for r in creates(fake))
    assert refused != accepted  # sent again with the new token
    assert len(fake.meetings) == 1


def test_a_second_401_after_refreshing_means_the_account_must_reconnect(fake):
    provider = zoom(fake)
    account = user_account(fake)
    fake.expire_tokens(2, path="/v2/")
    with pytest.raises(AuthorizationExpired, match="Reconnect"):
        provider.create_meeting(account, spec())
    assert len(token_posts(fake, "refresh_token")) == 1
    assert fake.meetings == {}


def test_a_refused_refresh_is_authorization_expired(fake):
    provider = zoom(fake)
    account = user_account(fake, expires_in=0)
    fake.revoke_refresh_tokens()
    with pytest.raises(AuthorizationExpired) as caught:
        provider.create_meeting(account, spec())
    assert caught.value.provider_code == "invalid_grant"
    assert "Reconnect the account" in str(caught.value.message)
    assert account.credential_history == []
    assert creates(fake) == []


def test_a_token_endpoint_outage_is_temporary(fake):
    provider = zoom(fake)
    account = user_account(fake, expires_in=0)
    fake.fail_next(1, status=503, path="/oauth/token")
    with pytest.raises(TemporaryFailure):
        provider.create_meeting(account, spec())
    # The refresh token was not burnt: the next attempt works.
    provider.create_meeting(account, spec())
    assert len(fake.meetings) == 1


def test_two_workers_refreshing_one_account_make_one_refresh_call(fake):
    provider = zoom(fake)
    account = user_account(fake, expires_in=0)
    fake.token_latency = 0.2  # the first refresh is still running when the second wants one
    barrier = threading.Barrier(2)
    results, errors = [], []

    def work(reference):
        barrier.wait()
        try:
            results.append(provider.create_meeting(account, spec(reference=reference)))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"BK-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(results) == 2
    assert len(token_posts(fake, "refresh_token")) == 1
    assert len(account.credential_history) == 1
    assert len(fake.meetings) == 2


# Organisation accounts (Server-to-Server OAuth) ---------------------------------------


def test_organisation_fields_ask_for_account_and_app_credentials():
    fields = {f.name: f for f in ZoomProvider.organisation_fields}
    assert list(fields) == ["account_id", "client_id", "client_secret"]
    assert fields["client_secret"].secret is True
    assert fields["account_id"].secret is False


def test_connecting_an_organisation_mints_a_token_and_stores_it(fake):
    provider = zoom(fake)
    account = InMemoryAccount()
    provider.connect_organisation(account, fake.organisation_values())
    mint = fake.requests_to("POST", "/oauth/token")[-1]
    assert mint.query_value("grant_type") == "account_credentials"
    assert mint.query_value("account_id") == FakeZoom.S2S_ACCOUNT_ID
    assert mint.header("Authorization").startswith("Basic ")
    credentials = account.credentials
    assert credentials["kind"] == "s2s"
    assert credentials["account_id"] == FakeZoom.S2S_ACCOUNT_ID
    assert credentials["access_token"].startswith("s2s-")
    assert "refresh_token" not in credentials


@pytest.mark.parametrize(
    "change",
    [{"client_secret": "wrong"}, {"account_id": "someone-else"}, {"client_id": "nobody"}],
)
def test_refused_organisation_credentials_fail_clearly(fake, change):
    account = InMemoryAccount()
    with pytest.raises(PermanentFailure, match="Server-to-Server OAuth app"):
        zoom(fake).connect_organisation(account, {**fake.organisation_values(), **change})
    assert account.credentials == {}


def test_organisation_values_must_all_be_given(fake):
    with pytest.raises(PermanentFailure, match="Client secret"):
        zoom(fake).connect_organisation(
            InMemoryAccount(), {**fake.organisation_values(), "client_secret": " "}
        )
    assert fake.requests == []


def test_list_users_reads_every_page(fake):
    for n in range(400):
        fake.add_user(f"u{n:03}", email=f"u{n:03}@example.com", first_name="User", last_name=str(n))
    provider = zoom(fake)
    account = InMemoryAccount()
    provider.connect_organisation(account, fake.organisation_values())
    users = provider.list_users(account)
    assert len(users) == 402
    assert len(fake.requests_to("GET", "/v2/users")) == 2  # 300 a page
    by_id = {user.id: user for user in users}
    assert by_id["u007"].email == "u007@example.com"
    assert by_id["u007"].name == "User 7"
    assert by_id["owner"].name == "Olive Owner"
    # The plans are kept for the 40-minute warning of mapped Basic users.
    basic = InMemoryAccount(account.credentials, external_user_id="basic")
    licensed = InMemoryAccount(account.credentials, external_user_id="owner")
    assert provider.usage(basic)["max_meeting_minutes"] == 40
    assert provider.usage(licensed)["max_meeting_minutes"] is None


def test_meetings_of_a_mapped_staff_member_are_made_for_their_zoom_user(fake):
    provider = zoom(fake)
    organisation = InMemoryAccount()
    provider.connect_organisation(organisation, fake.organisation_values())
    mapped = InMemoryAccount(dict(organisation.credentials), external_user_id="basic")
    details = provider.create_meeting(mapped, spec())
    assert fake.meetings[int(details.external_id)]["host_id"] == "basic"
    assert creates(fake)[0].path == "/v2/users/basic/meetings"
    # The cached token serves further calls: no second mint.
    provider.delete_meeting(mapped, details.external_id)
    assert fake.grants == ["account_credentials"]


def test_an_organisation_token_is_minted_again_when_zoom_refuses_it(fake):
    provider = zoom(fake)
    organisation = InMemoryAccount()
    provider.connect_organisation(organisation, fake.organisation_values())
    mapped = InMemoryAccount(organisation.credentials, external_user_id="owner")
    fake.expire_tokens()
    provider.create_meeting(mapped, spec())
    assert fake.grants == ["account_credentials", "account_credentials"]
    assert mapped.credential_history[-1]["client_secret"] == FakeZoom.S2S_CLIENT_SECRET
    assert len(fake.meetings) == 1


def test_an_organisation_account_without_a_mapped_user_uses_the_host_email(fake):
    provider = zoom(fake)
    organisation = InMemoryAccount()
    provider.connect_organisation(organisation, fake.organisation_values())
    details = provider.create_meeting(organisation, spec(host_email="basic@example.com"))
    assert fake.meetings[int(details.external_id)]["host_id"] == "basic"
    with pytest.raises(PermanentFailure, match="Map the staff member"):
        provider.create_meeting(organisation, spec(host_email=""))


# Meetings -----------------------------------------------------------------------------


def test_create_sends_a_scheduled_meeting_in_utc_with_reference_and_passcode(fake):
    provider = zoom(fake)
    details = provider.create_meeting(user_account(fake), spec())
    sent = creates(fake)[0]
    assert sent.path == "/v2/users/me/meetings"
    body = sent.json()
    assert body["type"] == 2
    assert body["start_time"] == "2030-01-15T09:30:00Z"
    assert body["duration"] == 45
    assert body["timezone"] == "Europe/Rome"
    assert body["topic"] == "Physiotherapy"
    assert body["agenda"] == "First consultation.\n\n[booking-ref:BK-1001]"
    assert re.fullmatch(r"[A-Za-z0-9@\-_*]{10}", body["password"])
    assert body["settings"] == {"waiting_room": True, "join_before_host": False}

    stored = fake.meetings[int(details.external_id)]
    assert details.external_id == str(stored["id"])
    assert isinstance(details.external_id, str)
    assert int(details.external_id) > 2**32
    assert details.join_url == stored["join_url"]
    assert details.passcode == body["password"]
    assert details.host_url == ""
    assert details.extra["host_id"] == "owner"


def test_the_host_start_url_is_never_part_of_the_stored_details(fake):
    details = zoom(fake).create_meeting(user_account(fake), spec())
    stored = json.dumps(details.to_dict())
    assert "/s/" not in stored
    assert "zak" not in stored
    assert "start_url" not in stored


def test_without_a_waiting_room_people_may_join_before_the_host(fake):
    zoom(fake).create_meeting(user_account(fake), spec(options={"waiting_room": False}))
    assert creates(fake)[0].json()["settings"] == {
        "waiting_room": False,
        "join_before_host": True,
    }


def test_passcode_options(fake):
    account = user_account(fake)
    zoom(fake, PASSCODE="numeric").create_meeting(account, spec())
    zoom(fake, PASSCODE=False).create_meeting(account, spec(reference="BK-2"))
    numeric, none = (r.json() for r in creates(fake))
    assert re.fullmatch(r"\d{10}", numeric["password"])
    assert "password" not in none


def test_a_long_agenda_is_cut_so_the_reference_always_fits(fake):
    zoom(fake).create_meeting(user_account(fake), spec(agenda="x" * 5000))
    agenda = creates(fake)[0].json()["agenda"]
    assert len(agenda) <= 2000
    assert agenda.endswith("[booking-ref:BK-1001]")


def test_update_patches_then_reads_the_meeting_back(fake):
    provider = zoom(fake)
    account = user_account(fake)
    details = provider.create_meeting(account, spec())
    moved = spec(start=START + timedelta(days=1), end=END + timedelta(days=1, minutes=15))
    updated = provider.update_meeting(account, details.external_id, moved)

    patch = fake.requests_to("PATCH", "/v2/meetings/{id}")[0]
    assert patch.path == f"/v2/meetings/{details.external_id}"
    assert patch.json()["start_time"] == "2030-01-16T09:30:00Z"
    assert patch.json()["duration"] == 60
    assert "password" not in patch.json()  # the passcode people have keeps working
    assert fake.requests[-1].method == "GET"
    assert updated.external_id == details.external_id
    assert updated.join_url == details.join_url
    assert updated.passcode == details.passcode
    assert updated.extra["start_time"] == "2030-01-16T09:30:00Z"
    assert fake.meetings[int(details.external_id)]["duration"] == 60


def test_updating_a_meeting_deleted_in_zoom_makes_it_again(fake):
    provider = zoom(fake)
    account = user_account(fake)
    details = provider.create_meeting(account, spec())
    del fake.meetings[int(details.external_id)]
    updated = provider.update_meeting(account, details.external_id, spec())
    assert updated.external_id != details.external_id
    assert list(fake.meetings) == [int(updated.external_id)]
    # It looked for a meeting an earlier attempt may have made before creating.
    assert fake.requests_to("GET", "/v2/users/me/meetings")


def test_delete_and_delete_again(fake):
    provider = zoom(fake)
    account = user_account(fake)
    details = provider.create_meeting(account, spec())
    provider.delete_meeting(account, details.external_id)
    assert fake.meetings == {}
    assert fake.deleted == [int(details.external_id)]
    provider.delete_meeting(account, details.external_id)  # 404, code 3001: done
    gone = fake.exchanges[-1][1]
    assert gone.status == 404
    assert json.loads(gone.body)["code"] == 3001


def test_delete_refused_for_another_reason_is_reported(fake):
    provider = zoom(fake)
    account = user_account(fake)
    fake.fail_next(
        1,
        path="/v2/meetings/",
        reply=json_reply(
            {
                "code": 3002,
                "message": "Sorry, you cannot delete this meeting since it is in progress.",
            },
            400,
        ),
    )
    with pytest.raises(PermanentFailure) as caught:
        provider.delete_meeting(account, "85000000001")
    assert caught.value.provider_code == "3002"


# No duplicates without an idempotency key ---------------------------------------------


@pytest.mark.parametrize("wait", [0.0, 0.6], ids=["connection-dropped", "timeout"])
def test_a_create_whose_answer_was_lost_is_found_instead_of_made_twice(fake, wait):
    provider = zoom(fake, HTTP_TIMEOUT=(2.0, 0.3))
    account = user_account(fake)
    fake.lose_answer_next(path="/v2/users/me/meetings", wait=wait)
    with pytest.raises(TemporaryFailure):
        provider.create_meeting(account, spec())
    assert len(fake.meetings) == 1  # made, though the answer never arrived

    details = provider.create_meeting(account, spec(may_exist=True))
    assert len(fake.meetings) == 1
    (stored,) = fake.meetings.values()
    assert details.external_id == str(stored["id"])
    assert details.passcode == stored["password"]
    assert len(creates(fake)) == 1


def test_finding_reads_meetings_whose_listed_agenda_was_cut(fake):
    provider = zoom(fake)
    account = user_account(fake)
    long_agenda = "A long description of the service. " * 30
    made = provider.create_meeting(account, spec(agenda=long_agenda))
    for n in range(1, 4):
        later = {"start": START + timedelta(days=n), "end": END + timedelta(days=n)}
        provider.create_meeting(
            account, spec(reference=f"BK-OTHER-{n}", agenda=long_agenda, **later)
        )
    fake.clear()
    found = provider.create_meeting(account, spec(agenda=long_agenda, may_exist=True))
    assert found.external_id == made.external_id
    assert creates(fake) == []
    # The list cut every agenda before the marker, so candidates are read in full, the
    # one starting at the booked time first: one read is enough here.
    (listing,) = [reply for request, reply in fake.exchanges if request.path.endswith("/meetings")]
    assert all(len(m["agenda"]) == 250 for m in json.loads(listing.body)["meetings"])
    reads = fake.requests_to("GET", "/v2/meetings/{id}")
    assert [r.path for r in reads] == [f"/v2/meetings/{made.external_id}"]


def test_finding_pages_through_every_upcoming_meeting(fake):
    provider = zoom(fake)
    account = user_account(fake)
    for n in range(301):
        fake.meetings[n + 1] = {
            "uuid": f"u{n}",
            "id": n + 1,
            "host_id": "owner",
            "topic": "Other",
            "type": 2,
            "start_time": "2030-01-01T08:00:00Z",
            "duration": 30,
            "timezone": "UTC",
            "agenda": f"[booking-ref:OTHER-{n}]",
            "created_at": "2029-01-01T00:00:00Z",
            "join_url": f"https://{FakeZoom.JOIN_HOST}/j/{n + 1}",
            "password": "",
            "settings": {},
        }
    made = provider.create_meeting(account, spec())
    found = provider.create_meeting(account, spec(may_exist=True))
    assert found.external_id == made.external_id
    lists = fake.requests_to("GET", "/v2/users/me/meetings")
    assert len(lists) == 2
    assert lists[0].query_value("type") == "upcoming"
    assert lists[1].query_value("next_page_token")


def test_may_exist_creates_when_nothing_is_found(fake):
    provider = zoom(fake)
    details = provider.create_meeting(user_account(fake), spec(may_exist=True))
    assert list(fake.meetings) == [int(details.external_id)]
    assert len(creates(fake)) == 1


# Limits and faults --------------------------------------------------------------------


def test_per_second_rate_limit_passes_retry_after_on(fake):
    provider = zoom(fake)
    fake.rate_limit_next(1, retry_after=7, path="/v2/")
    with pytest.raises(RateLimited) as caught:
        provider.create_meeting(user_account(fake), spec())
    assert caught.value.retry_after == 7
    assert fake.meetings == {}


def test_per_second_rate_limit_without_retry_after_leaves_the_pause_to_the_app(fake):
    fake.rate_limit_next(1, retry_after=None, path="/v2/")
    with pytest.raises(RateLimited) as caught:
        zoom(fake).create_meeting(user_account(fake), spec())
    assert caught.value.retry_after is None


def test_the_daily_limit_defers_to_after_midnight_utc(fake):
    provider = zoom(fake)
    account = user_account(fake)
    with time_machine.travel(datetime(2030, 1, 10, 22, 0, tzinfo=UTC), tick=False):
        fake.set_calls_today("owner", 99)
        provider.create_meeting(account, spec())  # the 100th call of the day
        with pytest.raises(RateLimited) as caught:
            provider.create_meeting(account, spec(reference="BK-2"))
    error = caught.value
    assert error.retry_after == 2 * 3600 + 60
    assert "daily limit" in str(error.message)
    assert "00:00 UTC" in str(error.message)
    assert error.provider_code == "429"
    assert len(fake.meetings) == 1
    with time_machine.travel(datetime(2030, 1, 11, 0, 1, 1, tzinfo=UTC), tick=False):
        provider.create_meeting(account, spec(reference="BK-2"))
    assert len(fake.meetings) == 2


def test_updates_count_towards_the_daily_limit(fake):
    provider = zoom(fake)
    account = user_account(fake)
    details = provider.create_meeting(account, spec())
    fake.set_calls_today("owner", 100)
    with pytest.raises(RateLimited):
        provider.update_meeting(account, details.external_id, spec(end=END + timedelta(hours=1)))


def test_the_daily_limit_header_is_enough(fake):
    fake.fail_next(
        1,
        path="/v2/",
        reply=json_reply(
            {"code": 429, "message": "Too many requests."}, 429, {"X-RateLimit-Type": "Daily-limit"}
        ),
    )
    with (
        time_machine.travel(datetime(2030, 1, 10, 23, 30, tzinfo=UTC), tick=False),
        pytest.raises(RateLimited) as caught,
    ):
        zoom(fake).create_meeting(user_account(fake), spec())
    assert caught.value.retry_after == 30 * 60 + 60


def test_seconds_until_next_utc_day():
    now = datetime(2030, 3, 1, 23, 59, 0, tzinfo=UTC)
    assert seconds_until_next_utc_day(now) == 60 + 60


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_temporary(fake, status):
    fake.fail_next(1, status=status, path="/v2/")
    with pytest.raises(TemporaryFailure):
        zoom(fake).create_meeting(user_account(fake), spec())


def test_a_timeout_is_temporary(fake):
    fake.timeout_next(1, seconds=1.0, path="/v2/", process=False)
    with pytest.raises(TemporaryFailure, match="No answer"):
        zoom(fake, HTTP_TIMEOUT=(1.0, 0.2)).create_meeting(user_account(fake), spec())


def test_a_user_missing_in_zoom_is_a_permanent_failure_in_plain_words(fake):
    provider = zoom(fake)
    organisation = InMemoryAccount()
    provider.connect_organisation(organisation, fake.organisation_values())
    mapped = InMemoryAccount(organisation.credentials, external_user_id="gone-user")
    with pytest.raises(PermanentFailure, match="was not found in Zoom") as caught:
        provider.create_meeting(mapped, spec())
    assert caught.value.provider_code == "1001"


def test_an_invalid_field_is_a_permanent_failure_in_plain_words(fake):
    fake.fail_next(
        1,
        path="/v2/users/",
        reply=json_reply(
            {
                "code": 300,
                "message": "Validation Failed.",
                "errors": [{"field": "password", "message": "Passcode must be numeric."}],
            },
            400,
        ),
    )
    with pytest.raises(PermanentFailure, match="passcode rules"):
        zoom(fake).create_meeting(user_account(fake), spec())


def test_no_credentials_means_reconnect(fake):
    with pytest.raises(AuthorizationExpired, match="not connected"):
        zoom(fake).create_meeting(InMemoryAccount(), spec())
    assert fake.requests == []


def test_no_token_code_or_start_url_reaches_the_logs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    provider = zoom(fake)
    request = provider.start_authorization(REDIRECT_URI, "s")
    callback = consent(request.url)
    account = InMemoryAccount()
    provider.finish_authorization(account, callback, REDIRECT_URI, request.flow)
    details = provider.create_meeting(account, spec())
    host_url = provider.participant_url(
        details, name="Olive", email="owner@example.com", is_host=True, account=account
    )
    fake.expire_tokens()
    provider.update_meeting(account, details.external_id, spec())
    secrets_seen = [
        callback["code"],
        request.flow["code_verifier"],
        account.credentials["access_token"],
        account.credentials["refresh_token"],
        details.passcode,
        host_url,
        parse_qs(urlsplit(host_url).query)["zak"][0],
    ]
    for secret in secrets_seen:
        assert secret not in caplog.text


# Joining ------------------------------------------------------------------------------


def test_the_host_gets_a_fresh_start_url_at_each_click(fake):
    provider = zoom(fake)
    account = user_account(fake)
    details = provider.create_meeting(account, spec())
    fake.clear()
    first = provider.participant_url(
        details, name="Olive", email="owner@example.com", is_host=True, account=account
    )
    second = provider.participant_url(
        details, name="Olive", email="owner@example.com", is_host=True, account=account
    )
    assert first.startswith(f"https://{FakeZoom.JOIN_HOST}/s/{details.external_id}?zak=")
    assert first != second
    assert [r.path for r in fake.requests] == [f"/v2/meetings/{details.external_id}"] * 2


def test_attendees_get_the_join_url_without_a_call(fake):
    provider = zoom(fake)
    account = user_account(fake)
    details = provider.create_meeting(account, spec())
    fake.clear()
    url = provider.participant_url(
        details, name="Ann", email="ann@example.com", is_host=False, account=account
    )
    assert url == details.join_url
    assert fake.requests == []


def test_a_host_link_for_a_meeting_gone_from_zoom_is_an_error(fake):
    provider = zoom(fake)
    account = user_account(fake)
    details = provider.create_meeting(account, spec())
    fake.meetings.clear()
    with pytest.raises(PermanentFailure):
        provider.participant_url(details, name="O", email="o@x.com", is_host=True, account=account)


# Disconnecting ------------------------------------------------------------------------


def test_disconnect_revokes_the_token_at_zoom(fake):
    provider = zoom(fake)
    account = user_account(fake)
    token = account.credentials["refresh_token"]
    provider.disconnect(account)
    (revoke,) = fake.requests_to("POST", "/oauth/revoke")
    assert revoke.query_value("token") == token
    assert revoke.header("Authorization").startswith("Basic ")
    assert fake.revoked == [token]
    with pytest.raises(AuthorizationExpired):
        provider.create_meeting(InMemoryAccount({**account.credentials, "expires_at": 0}), spec())


def test_a_failed_revoke_is_logged_not_raised(fake, caplog):
    fake.fail_next(1, status=500, path="/oauth/revoke")
    zoom(fake).disconnect(user_account(fake))
    assert "revoke" in caplog.text


def test_an_unreachable_zoom_does_not_stop_disconnecting(fake, caplog):
    provider = zoom(fake)
    account = user_account(fake)
    fake.stop()
    provider.disconnect(account)
    assert "Could not revoke" in caplog.text


def test_organisation_accounts_have_nothing_to_revoke(fake):
    provider = zoom(fake)
    organisation = InMemoryAccount()
    provider.connect_organisation(organisation, fake.organisation_values())
    provider.disconnect(organisation)
    assert fake.requests_to("POST", "/oauth/revoke") == []


# Webhooks -----------------------------------------------------------------------------


def hook(fake, event, payload, secret=WEBHOOK_SECRET, **kwargs):
    body, headers = webhook_request(event, payload, secret, **kwargs)
    return zoom(fake, WEBHOOK_SECRET_TOKEN=WEBHOOK_SECRET).handle_webhook(headers, body)


def test_url_validation_is_answered_with_the_hmac_of_the_plain_token(fake):
    reply = hook(fake, "endpoint.url_validation", {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"})
    expected = hmac.new(
        WEBHOOK_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256
    ).hexdigest()
    assert reply.status == 200
    assert reply.data == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
    assert reply.events == ()


def test_an_unsigned_url_validation_is_refused(fake):
    with pytest.raises(WebhookRejected):
        hook(fake, "endpoint.url_validation", {"plainToken": "abc"}, signature="v0=00")


def test_meeting_deleted_becomes_an_event(fake):
    reply = hook(fake, "meeting.deleted", {"account_id": "a", "object": {"id": 85000000001}})
    assert reply.status == 200
    assert reply.data is None
    assert reply.events == (WebhookEvent(WebhookEvent.MEETING_DELETED, external_id="85000000001"),)


def test_meeting_updated_carries_the_new_start(fake):
    reply = hook(
        fake,
        "meeting.updated",
        {"object": {"id": 85000000001, "start_time": "2030-01-15T10:00:00Z"}},
    )
    (event,) = reply.events
    assert event.kind == WebhookEvent.MEETING_CHANGED
    assert event.external_id == "85000000001"
    assert event.start == datetime(2030, 1, 15, 10, 0, tzinfo=UTC)
    (topic_only,) = hook(fake, "meeting.updated", {"object": {"id": 5, "topic": "New"}}).events
    assert topic_only.start is None


def test_app_deauthorized_revokes_the_account(fake):
    reply = hook(
        fake,
        "app_deauthorized",
        {"account_id": "acc", "user_id": "owner", "client_id": FakeZoom.CLIENT_ID},
    )
    assert reply.events == (WebhookEvent(WebhookEvent.ACCOUNT_REVOKED, external_user_id="owner"),)


def test_other_events_are_acknowledged_without_events(fake):
    assert hook(fake, "meeting.started", {"object": {"id": 1}}).events == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": "another-secret"},
        {"signature": "v0=" + "0" * 64},
        {"signature": ""},
        {"timestamp": -301},
        {"timestamp": +310},
    ],
    ids=["wrong-secret", "wrong-signature", "empty-signature", "stale", "future"],
)
def test_bad_or_stale_signatures_are_refused(fake, kwargs):
    if "timestamp" in kwargs:
        kwargs = {"timestamp": int(time.time()) + kwargs["timestamp"]}  # seconds from now
    with pytest.raises(WebhookRejected) as caught:
        hook(fake, "meeting.deleted", {"object": {"id": 1}}, **kwargs)
    assert caught.value.status == 401


def test_missing_signature_headers_are_refused(fake):
    body, headers = webhook_request("meeting.deleted", {"object": {"id": 1}}, WEBHOOK_SECRET)
    provider = zoom(fake, WEBHOOK_SECRET_TOKEN=WEBHOOK_SECRET)
    for name in ("x-zm-signature", "x-zm-request-timestamp"):
        without = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(WebhookRejected):
            provider.handle_webhook(without, body)


def test_the_signature_is_over_the_raw_bytes(fake):
    body, headers = webhook_request("meeting.deleted", {"object": {"id": 1}}, WEBHOOK_SECRET)
    provider = zoom(fake, WEBHOOK_SECRET_TOKEN=WEBHOOK_SECRET)
    reserialised = json.dumps(json.loads(body)).encode()
    assert reserialised != body
    with pytest.raises(WebhookRejected):
        provider.handle_webhook(headers, reserialised)
    # Header names are read case-insensitively, as HTTP has them.
    upper = {k.upper(): v for k, v in headers.items()}
    assert provider.handle_webhook(upper, body).events


def test_a_millisecond_timestamp_is_read_too(fake):
    stamp = str(int(time.time() * 1000))
    reply = hook(fake, "meeting.deleted", {"object": {"id": 9}}, timestamp=stamp)
    assert reply.events[0].external_id == "9"


def test_without_a_secret_token_webhooks_are_refused_and_logged(fake, caplog):
    body, headers = webhook_request("meeting.deleted", {"object": {"id": 1}}, WEBHOOK_SECRET)
    with pytest.raises(WebhookRejected) as caught:
        zoom(fake).handle_webhook(headers, body)
    assert caught.value.status == 404
    assert "WEBHOOK_SECRET_TOKEN" in caplog.text


def test_the_fake_signs_as_zoom_documents():
    body = b'{"event":"meeting.deleted"}'
    expected = hmac.new(b"s", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert webhook_signature("s", "1700000000", body) == f"v0={expected}"


def test_the_fake_posts_webhooks_over_http(fake):
    received = []

    def capture(request):
        received.append(request)
        return json_reply({}, 200)

    fake.add_route("POST", "/hook", capture)
    response = fake.send_webhook(
        fake.url_for("/hook"), "meeting.deleted", {"object": {"id": 3}}, WEBHOOK_SECRET
    )
    assert response.status_code == 200
    (request,) = received
    reply = zoom(fake, WEBHOOK_SECRET_TOKEN=WEBHOOK_SECRET).handle_webhook(
        request.headers, request.body
    )
    assert reply.events[0].external_id == "3"
