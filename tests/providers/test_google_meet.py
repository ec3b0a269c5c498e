"""Google Meet through Google Calendar, against the loopback fake Google.

Every test talks HTTP to :class:`FakeGoogle` through the real client libraries
(google-api-python-client, google-auth) and the provider's requests session.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured

from wagtail_bookings_vc.providers import google_meet
from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    MeetingSpec,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from wagtail_bookings_vc.providers.google_meet import (
    CALENDAR_SCOPE,
    GoogleMeetProvider,
    event_id_for,
)
from wagtail_bookings_vc.providers.registry import ProviderRegistry
from wagtail_bookings_vc.testing import InMemoryAccount
from wagtail_bookings_vc.testing.contract import ProviderContract
from wagtail_bookings_vc.testing.google import FakeGoogle, google_error

START = datetime(2030, 1, 15, 9, 30, tzinfo=UTC)
END = START + timedelta(minutes=45)
EVENTS = "/calendar/v3/calendars/{calendarId}/events"
EVENT = "/calendar/v3/calendars/{calendarId}/events/{eventId}"
REDIRECT_URI = "https://studio.example.com/admin/bookings-vc/oauth/callback/"


@pytest.fixture
def google():
    with FakeGoogle() as server:
        yield server
    server.raise_errors()


def make_provider(google, **options):
    return GoogleMeetProvider(google.provider_options(**options), provider_id="google_meet")


def make_spec(**changes):
    values = {
        "reference": "BK-1001",
        "topic": "Sports massage",
        "agenda": "Bring comfortable clothes.",
        "start": START,
        "end": END,
        "time_zone": "Europe/Rome",
        "host_email": "host@example.com",
        "attendee_emails": ("ann@example.com",),
        "request_id": uuid.uuid4().hex,
    }
    values.update(changes)
    return MeetingSpec(**values)


def connected(google, **changes):
    return InMemoryAccount({**google.connect(), **changes})


def calls(google, method, pattern):
    return google.requests_to(method, pattern)


# Settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["CLIENT_ID", "CLIENT_SECRET"])
def test_missing_client_credentials_are_refused_clearly(missing):
    options = {"CLIENT_ID": "id", "CLIENT_SECRET": "secret", missing: ""}
    with pytest.raises(ImproperlyConfigured, match=f"needs {missing}.*Google Cloud console"):
        GoogleMeetProvider(options, provider_id="google_meet")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"POLL_ATTEMPTS": "often"}, "POLL_ATTEMPTS"),
        ({"POLL_DELAY": -1}, "must not be negative"),
        ({"CALENDAR_ID": " "}, "CALENDAR_ID"),
        ({"TOKEN_URI": "oauth2.googleapis.com/token"}, "TOKEN_URI"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        GoogleMeetProvider(
            {"CLIENT_ID": "id", "CLIENT_SECRET": "secret", **options}, provider_id="google_meet"
        )


def test_the_registry_builds_it_with_googles_urls_and_reports_missing_credentials():
    registry = ProviderRegistry({"google_meet": {"CLIENT_ID": "id", "CLIENT_SECRET": "s"}})
    provider = registry.get("google_meet")
    assert isinstance(provider, GoogleMeetProvider)
    assert provider.options["API_BASE_URL"] == "https://www.googleapis.com/calendar/v3"
    assert provider.options["TOKEN_URI"] == "https://oauth2.googleapis.com/token"
    assert provider.calendar_id == "primary"
    assert provider.needs_oauth and provider.needs_account
    broken = ProviderRegistry({"google_meet": {}})
    assert "CLIENT_ID and CLIENT_SECRET" in broken.errors["google_meet"]


def test_event_ids_are_base32hex_and_new_per_generation():
    request_id = uuid.uuid4().hex
    assert event_id_for(request_id) == request_id
    assert event_id_for(request_id, 2) == f"{request_id}g2"
    derived = event_id_for("BK-1001 (not hex)")
    assert derived == event_id_for("BK-1001 (not hex)")
    assert set(derived) <= set("0123456789abcdefghijklmnopqrstuv")
    assert 5 <= len(derived) <= 1024


# Connecting ---------------------------------------------------------------------------


def consent(url):
    """Follow the consent URL like a browser: the fake consents and redirects back."""
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def test_authorization_url_asks_for_offline_access_to_calendar_events(google):
    request = make_provider(google).start_authorization(REDIRECT_URI, "state-123")
    parts = urlsplit(request.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == google.auth_uri
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == google.client_id
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["scope"].split() == [CALENDAR_SCOPE, "openid", "email"]
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert query["state"] == "state-123"
    assert query["code_challenge_method"] == "S256"
    assert request.flow["code_verifier"]
    assert request.flow["code_verifier"] not in request.url


def test_connect_exchanges_the_code_and_stores_tokens_and_the_google_account(google, caplog):
    caplog.set_level(logging.DEBUG)
    google.email = "Hana.Host@Example.com"
    provider = make_provider(google)
    request = provider.start_authorization(REDIRECT_URI, "state-abc")
    callback = consent(request.url)
    assert callback["state"] == "state-abc"
    account = InMemoryAccount()
    provider.finish_authorization(account, callback, REDIRECT_URI, request.flow)

    credentials = account.credentials
    assert credentials["token"].startswith("ya29.")
    assert credentials["refresh_token"].startswith("1//")
    expiry = datetime.fromisoformat(credentials["expiry"])
    assert timedelta(minutes=55) < expiry - datetime.now(UTC) < timedelta(minutes=61)
    assert CALENDAR_SCOPE in credentials["scopes"]
    assert account.external_user_id == account.external_email == "hana.host@example.com"

    (exchange,) = calls(google, "POST", "/token")
    form = exchange.form()
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == REDIRECT_URI
    assert form["code_verifier"] == request.flow["code_verifier"]
    # Nothing secret reaches the logs.
    for secret in (
        callback["code"],
        google.client_secret,
        credentials["token"],
        credentials["refresh_token"],
        request.flow["code_verifier"],
    ):
        assert secret not in caplog.text

    # The new connection works for meetings.
    details = provider.create_meeting(account, make_spec())
    assert details.join_url.startswith("https://meet.google.com/")


def test_a_used_code_or_a_wrong_verifier_is_refused(google):
    provider = make_provider(google)
    request = provider.start_authorization(REDIRECT_URI, "s")
    callback = consent(request.url)
    provider.finish_authorization(InMemoryAccount(), callback, REDIRECT_URI, request.flow)
    with pytest.raises(AuthorizationExpired) as used:
        provider.finish_authorization(InMemoryAccount(), callback, REDIRECT_URI, request.flow)
    assert used.value.provider_code == "invalid_grant"

    request = provider.start_authorization(REDIRECT_URI, "s")
    callback = consent(request.url)
    with pytest.raises(AuthorizationExpired):
        provider.finish_authorization(
            InMemoryAccount(), callback, REDIRECT_URI, {"code_verifier": "someone-elses"}
        )


def test_denied_consent_is_refused_and_stores_nothing(google):
    google.consent_error = "access_denied"
    provider = make_provider(google)
    request = provider.start_authorization(REDIRECT_URI, "s")
    callback = consent(request.url)
    assert "code" not in callback
    account = InMemoryAccount()
    with pytest.raises(AuthorizationExpired, match="did not grant access"):
        provider.finish_authorization(account, callback, REDIRECT_URI, request.flow)
    assert account.credentials == {}
    assert calls(google, "POST", "/token") == []


def test_a_consent_without_the_calendar_box_ticked_is_refused(google):
    google.granted_scope = "openid https://www.googleapis.com/auth/userinfo.email"
    provider = make_provider(google)
    request = provider.start_authorization(REDIRECT_URI, "s")
    account = InMemoryAccount()
    with pytest.raises(PermanentFailure, match="calendar's events"):
        provider.finish_authorization(account, consent(request.url), REDIRECT_URI, request.flow)
    assert account.credentials == {}
    # The unusable grant is handed back to Google.
    (exchange,) = [r for r in google.replies if r.path == "/token"]
    assert google.revoked_tokens == [exchange.json()["refresh_token"]]


def test_a_wrong_client_secret_is_reported_as_a_settings_problem(google):
    request = make_provider(google).start_authorization(REDIRECT_URI, "s")
    callback = consent(request.url)
    wrong = make_provider(google, CLIENT_SECRET="not-the-secret")
    with pytest.raises(PermanentFailure, match="CLIENT_SECRET") as refused:
        wrong.finish_authorization(InMemoryAccount(), callback, REDIRECT_URI, request.flow)
    assert refused.value.provider_code == "invalid_client"


# Creating -----------------------------------------------------------------------------


def test_create_inserts_an_event_with_a_meet_conference_and_no_attendees(google):
    provider = make_provider(google)
    spec = make_spec()
    details = provider.create_meeting(connected(google), spec)

    (insert,) = calls(google, "POST", EVENTS)
    assert insert.path == "/calendar/v3/calendars/primary/events"
    assert insert.query_value("conferenceDataVersion") == "1"
    assert insert.query_value("sendUpdates") == "none"
    body = insert.json()
    assert body["id"] == spec.request_id
    assert body["conferenceData"]["createRequest"] == {
        "requestId": spec.request_id,
        "conferenceSolutionKey": {"type": "hangoutsMeet"},
    }
    assert body["summary"] == "Sports massage"
    assert body["description"] == "Bring comfortable clothes.\n\n[booking-ref:BK-1001]"
    assert body["start"] == {"dateTime": "2030-01-15T10:30:00+01:00", "timeZone": "Europe/Rome"}
    assert body["end"] == {"dateTime": "2030-01-15T11:15:00+01:00", "timeZone": "Europe/Rome"}
    assert body["guestsCanSeeOtherGuests"] is False
    assert "attendees" not in body

    (event,) = google.live_events()
    video = next(
        e for e in event["conferenceData"]["entryPoints"] if e["entryPointType"] == "video"
    )
    assert details.external_id == event["id"] == spec.request_id
    assert details.join_url == video["uri"] == event["hangoutLink"]
    assert details.extra["conference_id"] == event["conferenceData"]["conferenceId"]
    assert details.host_url == details.passcode == ""
    assert details.extra["attendees_invited"] is False


def test_attendees_are_invited_only_when_the_service_says_so(google):
    provider = make_provider(google)
    spec = make_spec(options={"invite_attendees": True})
    details = provider.create_meeting(connected(google), spec)
    (insert,) = calls(google, "POST", EVENTS)
    assert insert.query_value("sendUpdates") == "all"
    assert insert.json()["attendees"] == [{"email": "ann@example.com"}]
    assert details.extra["attendees_invited"] is True
    (event,) = google.live_events()
    assert [a["email"] for a in event["attendees"]] == ["ann@example.com"]


def test_a_pending_conference_is_polled_with_a_growing_pause_until_success(google, monkeypatch):
    pauses = []
    monkeypatch.setattr(google_meet.time, "sleep", pauses.append)
    google.pending_answers = 4  # the insert's answer and three reads say "pending"
    provider = make_provider(google, POLL_ATTEMPTS=5, POLL_DELAY=0.25)
    details = provider.create_meeting(connected(google), make_spec())
    assert len(calls(google, "GET", EVENT)) == 4
    assert pauses == [0.25, 0.5, 1.0, 2.0]
    assert details.join_url.startswith("https://meet.google.com/")


def test_still_pending_after_the_polls_is_tried_again_and_finds_the_same_event(google):
    google.pending_answers = 6
    account = connected(google)
    spec = make_spec()
    with pytest.raises(TemporaryFailure, match="being prepared") as pending:
        make_provider(google, POLL_ATTEMPTS=2).create_meeting(account, spec)
    assert pending.value.provider_code == "pending"
    assert len(google.live_events()) == 1

    # The job's next attempt: the insert gets 409, the event is read until it is ready.
    details = make_provider(google, POLL_ATTEMPTS=5).create_meeting(account, spec)
    inserts = [r.status for r in google.replies if r.method == "POST" and "events" in r.path]
    assert inserts == [200, 409]
    (event,) = google.live_events()
    assert details.external_id == event["id"]
    assert details.join_url == event["hangoutLink"]


def test_a_lost_insert_answer_then_a_retry_makes_one_event(google):
    account = connected(google)
    spec = make_spec(may_exist=False)
    provider = make_provider(google)
    google.lose_answer_next(path="/calendar/v3/calendars/primary/events")
    with pytest.raises(TemporaryFailure):
        provider.create_meeting(account, spec)
    assert len(google.live_events()) == 1  # Google made it; the answer never came

    details = provider.create_meeting(account, make_spec(request_id=spec.request_id))
    (event,) = google.live_events()
    assert details.external_id == event["id"] == spec.request_id
    statuses = [(r.method, r.status) for r in google.replies if "/events" in r.path]
    assert statuses == [("POST", 409), ("GET", 200)]


def test_an_insert_that_times_out_is_a_temporary_failure_and_the_retry_reads_it_back(google):
    account = connected(google)
    spec = make_spec()
    provider = make_provider(google, HTTP_TIMEOUT=(2.0, 0.3))
    google.timeout_next(seconds=0.6, path="/calendar/v3/calendars/primary/events")
    started = time.monotonic()
    with pytest.raises(TemporaryFailure, match="No answer"):
        provider.create_meeting(account, spec)
    assert time.monotonic() - started < 1.5
    deadline = time.monotonic() + 3
    while not google.live_events() and time.monotonic() < deadline:
        time.sleep(0.02)  # the held insert is handled after the client gave up
    details = provider.create_meeting(account, spec)
    assert [e["id"] for e in google.live_events()] == [details.external_id]


def test_a_conference_that_fails_is_reported_and_a_retry_asks_for_a_new_one(google):
    google.conference_outcome = "failure"
    account = connected(google)
    spec = make_spec()
    provider = make_provider(google)
    with pytest.raises(PermanentFailure, match="could not add a Google Meet call") as failed:
        provider.create_meeting(account, spec)
    assert failed.value.provider_code == "failure"

    google.conference_outcome = "success"
    details = provider.create_meeting(account, spec)  # an administrator's retry
    (event,) = google.live_events()
    assert details.join_url == event["hangoutLink"]
    patch = calls(google, "PATCH", EVENT)[-1]
    assert patch.query_value("conferenceDataVersion") == "1"
    assert patch.json()["conferenceData"]["createRequest"]["requestId"] != spec.request_id


def test_a_calendar_that_does_not_allow_meet_is_a_permanent_failure_with_a_clear_message(google):
    google.meet_allowed = False
    with pytest.raises(PermanentFailure) as refused:
        make_provider(google).create_meeting(connected(google), make_spec())
    assert "does not allow Google Meet on this calendar" in str(refused.value.message)
    assert "Workspace" in str(refused.value.message)
    assert refused.value.provider_code == "invalid"
    assert "Invalid conference type value" in refused.value.provider_message
    assert google.live_events() == []


def test_an_event_id_of_a_deleted_event_is_not_reused(google):
    account = connected(google)
    spec = make_spec()
    provider = make_provider(google)
    first = provider.create_meeting(account, spec)
    google.delete_event(first.external_id)  # deleted in Calendar before the retry
    second = provider.create_meeting(account, spec)
    assert second.external_id == f"{spec.request_id}g1"
    assert [e["id"] for e in google.live_events()] == [second.external_id]


def test_participant_url_is_the_meet_link_for_everyone(google):
    provider = make_provider(google)
    details = provider.create_meeting(connected(google), make_spec())
    for is_host in (True, False):
        url = provider.participant_url(details, name="A", email="a@example.com", is_host=is_host)
        assert url == details.join_url


# Tokens -------------------------------------------------------------------------------


def test_a_401_refreshes_once_keeps_the_refresh_token_and_saves_the_new_token(google):
    account = connected(google)
    old = dict(account.credentials)
    google.expire_tokens(1)
    details = make_provider(google).create_meeting(account, make_spec())
    assert details.join_url

    (refresh,) = calls(google, "POST", "/token")
    assert refresh.form()["grant_type"] == "refresh_token"
    assert refresh.form()["refresh_token"] == old["refresh_token"]
    saved = account.credential_history[-1]
    assert saved["token"] != old["token"]
    assert saved["refresh_token"] == old["refresh_token"]
    assert datetime.fromisoformat(saved["expiry"]) > datetime.now(UTC) + timedelta(minutes=50)
    statuses = [(r.method, r.status) for r in google.replies]
    assert statuses == [("POST", 401), ("POST", 200), ("POST", 200)]


def test_a_second_401_after_the_refresh_means_the_account_must_be_reconnected(google):
    account = connected(google)
    google.expire_tokens(2)
    with pytest.raises(AuthorizationExpired):
        make_provider(google).create_meeting(account, make_spec())
    assert len(calls(google, "POST", "/token")) == 1


def test_an_expired_token_is_refreshed_before_the_call(google):
    expired = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    account = connected(google, expiry=expired)
    make_provider(google).create_meeting(account, make_spec())
    assert [r.path for r in google.requests][:2] == ["/token", EVENTS.format(calendarId="primary")]
    assert [r.status for r in google.replies] == [200, 200]


def test_a_token_refreshed_by_another_worker_meanwhile_is_used(google):
    fresh = google.connect()

    class RacingAccount(InMemoryAccount):
        @contextlib.contextmanager
        def credentials_lock(self):
            # Another worker refreshed while this one waited for the lock.
            self._credentials = dict(fresh)
            yield

    account = RacingAccount({**fresh, "token": "ya29.stale"})
    make_provider(google).create_meeting(account, make_spec())
    assert calls(google, "POST", "/token") == []
    assert account.credential_history == []


def test_a_revoked_grant_gives_invalid_grant_and_authorization_expired(google):
    account = connected(google)
    google.revoke_all()
    with pytest.raises(AuthorizationExpired, match="no longer accepts") as expired:
        make_provider(google).create_meeting(account, make_spec())
    assert expired.value.provider_code == "invalid_grant"
    assert google.live_events() == []


def test_a_refused_client_secret_on_refresh_is_a_permanent_failure(google):
    expired = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    account = connected(google, expiry=expired)
    with pytest.raises(PermanentFailure, match="CLIENT_ID and CLIENT_SECRET"):
        make_provider(google, CLIENT_SECRET="old-secret").create_meeting(account, make_spec())


@pytest.mark.parametrize(("status", "error"), [(503, TemporaryFailure), (429, RateLimited)])
def test_token_endpoint_trouble_is_left_to_the_job_queue_without_waiting(google, status, error):
    expired = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    account = connected(google, expiry=expired)
    google.fail_next(1, status, path="/token")
    started = time.monotonic()
    with pytest.raises(error):
        make_provider(google).create_meeting(account, make_spec())
    # google-auth would retry the token endpoint itself, sleeping a second or more.
    assert len(calls(google, "POST", "/token")) == 1
    assert time.monotonic() - started < 0.9


def test_a_token_without_the_calendar_scope_needs_a_reconnect(google):
    account = InMemoryAccount(google.connect(scope="openid email"))
    with pytest.raises(AuthorizationExpired, match="Reconnect") as refused:
        make_provider(google).create_meeting(account, make_spec())
    assert refused.value.provider_code == "insufficientPermissions"


def test_an_account_without_credentials_is_not_connected(google):
    with pytest.raises(AuthorizationExpired):
        make_provider(google).create_meeting(InMemoryAccount(), make_spec())
    assert google.requests == []


# Errors -------------------------------------------------------------------------------


def test_429_is_rate_limited_with_googles_retry_after(google):
    google.rate_limit_next(1, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        make_provider(google).create_meeting(connected(google), make_spec())
    assert limited.value.retry_after == 7
    assert limited.value.provider_code == "rateLimitExceeded"


@pytest.mark.parametrize(
    ("reason", "retry_after", "expected"),
    [("userRateLimitExceeded", None, None), ("rateLimitExceeded", "3", 3.0)],
)
def test_403_rate_limit_reasons_are_rate_limited(google, reason, retry_after, expected):
    google.quota_error_next(reason=reason, retry_after=retry_after)
    with pytest.raises(RateLimited) as limited:
        make_provider(google).create_meeting(connected(google), make_spec())
    assert limited.value.retry_after == expected
    assert limited.value.provider_code == reason


def test_other_403s_are_permanent(google):
    google.fail_next(1, 403, reply=google_error(403, "forbidden", "Forbidden"))
    with pytest.raises(PermanentFailure, match="CALENDAR_ID") as refused:
        make_provider(google).create_meeting(connected(google), make_spec())
    assert refused.value.provider_code == "forbidden"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_temporary(google, status):
    google.fail_next(1, status)
    with pytest.raises(TemporaryFailure) as failed:
        make_provider(google).create_meeting(connected(google), make_spec())
    assert failed.value.provider_code == "backendError"
    assert len(google.requests) == 1  # the client library did not retry by itself


def test_an_unknown_calendar_is_a_permanent_failure_naming_the_setting(google):
    provider = make_provider(google, CALENDAR_ID="bookings@group.calendar.google.com")
    with pytest.raises(PermanentFailure, match="CALENDAR_ID"):
        provider.create_meeting(connected(google), make_spec())
    assert google.requests[0].path.startswith(
        "/calendar/v3/calendars/bookings%40group.calendar.google.com/"
    )


def test_an_environment_proxy_is_not_used_and_timeouts_are_the_apps(google, monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    provider = make_provider(google, HTTP_TIMEOUT=(1.0, 0.3))
    account = connected(google)
    assert provider.create_meeting(account, make_spec()).join_url
    google.add_latency(0.8)
    started = time.monotonic()
    with pytest.raises(TemporaryFailure):
        provider.create_meeting(account, make_spec())
    assert time.monotonic() - started < 0.8
    google.add_latency(0)


# Updating -----------------------------------------------------------------------------


def test_update_patches_times_and_keeps_the_conference(google):
    account = connected(google)
    provider = make_provider(google)
    spec = make_spec()
    details = provider.create_meeting(account, spec)
    moved = make_spec(
        request_id=spec.request_id,
        topic="Sports massage (long)",
        start=START + timedelta(days=1),
        end=END + timedelta(days=1, minutes=15),
    )
    updated = provider.update_meeting(account, details.external_id, moved)
    assert (updated.external_id, updated.join_url) == (details.external_id, details.join_url)

    (patch,) = calls(google, "PATCH", EVENT)
    assert patch.query_value("conferenceDataVersion") == "1"
    assert patch.query_value("sendUpdates") == "none"
    body = patch.json()
    assert set(body) == {"summary", "start", "end"}
    assert body["end"] == {"dateTime": "2030-01-16T11:30:00+01:00", "timeZone": "Europe/Rome"}
    (event,) = google.live_events()
    assert event["summary"] == "Sports massage (long)"
    assert event["end"]["dateTime"] == "2030-01-16T11:30:00+01:00"
    assert event["sequence"] == 1
    assert event["hangoutLink"] == details.join_url


def test_update_of_an_event_deleted_in_calendar_makes_a_new_one(google):
    account = connected(google)
    provider = make_provider(google)
    spec = make_spec()
    details = provider.create_meeting(account, spec)
    google.delete_event(details.external_id)
    updated = provider.update_meeting(account, details.external_id, spec)
    assert updated.external_id == f"{spec.request_id}g1"
    assert updated.join_url != details.join_url
    assert [e["id"] for e in google.live_events()] == [updated.external_id]
    (patch,) = [r for r in google.replies if r.method == "PATCH"]
    assert patch.status == 410


def test_update_of_an_event_that_never_existed_makes_it(google):
    account = connected(google)
    spec = make_spec()
    updated = make_provider(google).update_meeting(account, "00000unknown", spec)
    assert updated.external_id == spec.request_id
    assert [(r.method, r.status) for r in google.replies] == [
        ("PATCH", 404),
        ("POST", 200),
    ]


def test_update_puts_back_a_meet_call_removed_in_calendar(google):
    account = connected(google)
    provider = make_provider(google)
    spec = make_spec()
    details = provider.create_meeting(account, spec)
    google.drop_conference(details.external_id)
    updated = provider.update_meeting(account, details.external_id, spec)
    assert updated.external_id == details.external_id
    assert updated.join_url.startswith("https://meet.google.com/")
    assert google.event(details.external_id)["hangoutLink"] == updated.join_url


def test_update_with_invited_attendees_sends_updates(google):
    account = connected(google)
    provider = make_provider(google)
    spec = make_spec(options={"invite_attendees": True})
    details = provider.create_meeting(account, spec)
    provider.update_meeting(account, details.external_id, spec)
    (patch,) = calls(google, "PATCH", EVENT)
    assert patch.query_value("sendUpdates") == "all"
    assert patch.json()["attendees"] == [{"email": "ann@example.com"}]


# Deleting -----------------------------------------------------------------------------


def test_delete_removes_the_event_and_a_second_delete_counts_as_done(google):
    account = connected(google)
    provider = make_provider(google)
    details = provider.create_meeting(account, make_spec())
    provider.delete_meeting(account, details.external_id)
    assert google.live_events() == []
    assert google.deleted_ids() == [details.external_id]
    (delete,) = calls(google, "DELETE", EVENT)
    assert delete.query_value("sendUpdates") == "none"
    # Already gone: Google's GET shows it "cancelled", and nothing more is sent.
    provider.delete_meeting(account, details.external_id)
    last = google.replies[-1]
    assert (last.method, last.status, last.json()["status"]) == ("GET", 200, "cancelled")
    assert len(calls(google, "DELETE", EVENT)) == 1


@pytest.mark.parametrize("status", [404, 410])
def test_a_read_answering_404_or_410_counts_as_deleted(google, status):
    google.deleted_get_status = 410
    account = connected(google)
    provider = make_provider(google)
    details = provider.create_meeting(account, make_spec())
    event_id = details.external_id if status == 410 else "00000unknown"
    google.delete_event(details.external_id)
    provider.delete_meeting(account, event_id)
    assert google.replies[-1].status == status
    assert calls(google, "DELETE", EVENT) == []


def test_a_delete_answered_410_counts_as_done(google):
    account = connected(google)
    provider = make_provider(google)
    details = provider.create_meeting(account, make_spec())

    def deleted_meanwhile(request, **params):
        # Deleted in Calendar between the read and the delete.
        return google_error(410, "deleted", "Resource has been deleted")

    google.add_route("DELETE", EVENT, deleted_meanwhile)
    provider.delete_meeting(account, details.external_id)
    assert [(r.method, r.status) for r in google.replies][-2:] == [("GET", 200), ("DELETE", 410)]


def test_delete_errors_other_than_gone_are_raised(google):
    account = connected(google)
    provider = make_provider(google)
    details = provider.create_meeting(account, make_spec())
    google.fail_next(1, 503)
    with pytest.raises(TemporaryFailure):
        provider.delete_meeting(account, details.external_id)
    assert len(google.live_events()) == 1


def test_delete_sends_cancellations_only_when_attendees_were_invited(google):
    account = connected(google)
    provider = make_provider(google)
    details = provider.create_meeting(account, make_spec(options={"invite_attendees": True}))
    provider.delete_meeting(account, details.external_id)
    (delete,) = calls(google, "DELETE", EVENT)
    assert delete.query_value("sendUpdates") == "all"


# Disconnecting ------------------------------------------------------------------------


def test_disconnect_revokes_the_refresh_token(google):
    account = connected(google)
    provider = make_provider(google)
    provider.disconnect(account)
    assert google.revoked_tokens == [account.credentials["refresh_token"]]
    (revoke,) = calls(google, "POST", "/revoke")
    assert revoke.header("Content-Type") == "application/x-www-form-urlencoded"
    # The grant is gone at Google: the next refresh is refused.
    google.expire_tokens(1)
    with pytest.raises(AuthorizationExpired):
        provider.create_meeting(account, make_spec())


def test_disconnect_failures_are_logged_not_raised(google, caplog):
    account = connected(google)
    google.fail_next(1, 503, path="/revoke")
    make_provider(google).disconnect(account)
    assert "revoking the grant answered HTTP 503" in caplog.text
    assert account.credentials["refresh_token"] not in caplog.text
    unreachable = make_provider(google, HTTP_TIMEOUT=(0.3, 0.3))
    google.stop()  # Google cannot be reached at all
    unreachable.disconnect(account)
    assert "revoking the grant failed" in caplog.text


def test_disconnect_without_tokens_calls_nothing(google):
    make_provider(google).disconnect(InMemoryAccount())
    assert google.requests == []


# The fake behaves like Google where the provider relies on it -------------------------


def api(google, method, path, token, **kwargs):
    return requests.request(
        method,
        google.url_for(path),
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
        **kwargs,
    )


def test_fake_ignores_conference_data_without_conference_data_version(google):
    token = google.connect()["token"]
    body = {
        "id": "abcdef12345",
        "start": {"dateTime": "2030-01-01T10:00:00Z"},
        "end": {"dateTime": "2030-01-01T11:00:00Z"},
        "conferenceData": {
            "createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
        },
    }
    made = api(google, "POST", "/calendar/v3/calendars/primary/events", token, json=body).json()
    assert "conferenceData" not in made and "hangoutLink" not in made
    path = "/calendar/v3/calendars/primary/events/abcdef12345"
    patched = api(google, "PATCH", path, token, json=body).json()
    assert "conferenceData" not in patched
    patched = api(
        google, "PATCH", path, token, json=body, params={"conferenceDataVersion": 1}
    ).json()
    assert patched["conferenceData"]["createRequest"]["status"]["statusCode"] == "success"
    again = api(google, "PATCH", path, token, json=body, params={"conferenceDataVersion": 1}).json()
    # The same requestId again is ignored: the conference stays.
    assert again["conferenceData"]["conferenceId"] == patched["conferenceData"]["conferenceId"]


def test_fake_refuses_bad_ids_empty_time_ranges_and_unknown_tokens(google):
    token = google.connect()["token"]
    events = "/calendar/v3/calendars/primary/events"
    start, end = {"dateTime": "2030-01-01T10:00:00Z"}, {"dateTime": "2030-01-01T09:00:00Z"}
    bad_id = api(google, "POST", events, token, json={"id": "UPPER", "start": start, "end": start})
    assert bad_id.status_code == 400
    empty = api(google, "POST", events, token, json={"start": start, "end": end})
    assert empty.json()["error"]["errors"][0]["reason"] == "timeRangeEmpty"
    stranger = api(google, "POST", events, "ya29.nobody", json={"start": start, "end": end})
    assert stranger.status_code == 401
    assert stranger.json()["error"]["status"] == "UNAUTHENTICATED"


# The contract every provider passes ---------------------------------------------------


class TestGoogleMeetContract(ProviderContract):
    @pytest.fixture(autouse=True)
    def _server(self):
        with FakeGoogle() as self.server:
            yield
        self.server.raise_errors()

    def make_provider(self):
        return make_provider(self.server)

    def make_account(self):
        return connected(self.server)

    def make_spec(self, **changes):
        changes.setdefault("request_id", uuid.uuid4().hex)
        return super().make_spec(**changes)
