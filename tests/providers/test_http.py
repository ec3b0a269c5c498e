"""The HTTP helper: status to error mapping, Retry-After, timeouts, secrets kept out of logs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
import requests

from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from wagtail_bookings_vc.providers.http import (
    REDACTED,
    error_from_response,
    make_session,
    parse_retry_after,
    provider_error_details,
    raise_for_status,
    redact,
    redact_headers,
    redact_url,
)
from wagtail_bookings_vc.testing import FakeServer, Reply, json_reply


def response(status, body=None, headers=None):
    answer = requests.Response()
    answer.status_code = status
    answer.url = "https://api.example.com/v2/meetings"
    if body is not None:
        answer._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
        answer.headers["Content-Type"] = "application/json"
    else:
        answer._content = b""
    answer.headers.update(headers or {})
    return answer


# Status -> error ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (200, {}, None, None),
        (201, {}, None, None),
        (204, {}, None, None),
        (401, {}, {"code": 124, "message": "Access token is expired."}, AuthorizationExpired),
        (
            400,
            {},
            {"error": "invalid_grant", "error_description": "Bad refresh"},
            AuthorizationExpired,
        ),
        (429, {"Retry-After": "30"}, None, RateLimited),
        (429, {}, None, RateLimited),
        (503, {"Retry-After": "5"}, None, RateLimited),
        (503, {}, None, TemporaryFailure),
        (500, {}, None, TemporaryFailure),
        (502, {}, None, TemporaryFailure),
        (504, {}, None, TemporaryFailure),
        (408, {}, None, TemporaryFailure),
        (400, {}, {"code": 300, "message": "Invalid field."}, PermanentFailure),
        (400, {}, {"error": "invalid_client"}, PermanentFailure),
        (403, {}, None, PermanentFailure),
        (404, {}, {"code": 3001, "message": "Meeting is not found"}, PermanentFailure),
        (409, {}, None, PermanentFailure),
        (410, {}, None, PermanentFailure),
        (422, {}, None, PermanentFailure),
    ],
)
def test_status_codes_map_to_the_error_tree(status, headers, body, expected):
    error = error_from_response(response(status, body, headers), "Zoom")
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected


def test_rate_limited_reads_retry_after():
    assert error_from_response(response(429, headers={"Retry-After": "30"})).retry_after == 30.0
    assert error_from_response(response(429)).retry_after is None


def test_messages_name_the_provider_and_status_in_plain_words():
    error = error_from_response(response(502), "Zoom")
    assert str(error.message) == (
        "A temporary problem at Zoom (HTTP 502). The request will be tried again."
    )
    unnamed = error_from_response(response(401))
    assert "the video-meeting provider" in str(unnamed.message)
    assert "Reconnect" in str(unnamed.message)


def test_raise_for_status_returns_successful_answers_and_raises_the_rest():
    ok = response(200, {"id": 1})
    assert raise_for_status(ok) is ok
    with pytest.raises(PermanentFailure) as caught:
        raise_for_status(response(404, {"code": 3001, "message": "Meeting 1 is not found"}), "Zoom")
    assert caught.value.provider_code == "3001"
    assert "Meeting 1 is not found" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"code": 124, "message": "Invalid access token."}, ("124", "Invalid access token.")),
        (
            {
                "error": {
                    "code": 403,
                    "message": "Rate Limit Exceeded",
                    "errors": [{"reason": "rateLimitExceeded"}],
                }
            },
            ("rateLimitExceeded", "Rate Limit Exceeded"),
        ),
        (
            {
                "error": {
                    "code": "InvalidAuthenticationToken",
                    "message": "Access token has expired.",
                }
            },
            ("InvalidAuthenticationToken", "Access token has expired."),
        ),
        (
            {"error": "invalid_grant", "error_description": "AADSTS70008: expired"},
            ("invalid_grant", "AADSTS70008: expired"),
        ),
        (
            {"reason": "Invalid client_id or client_secret", "error": "invalid_client"},
            ("invalid_client", "Invalid client_id or client_secret"),
        ),
        (b"<html>Bad gateway</html>", ("", "")),
        ([1, 2], ("", "")),
    ],
)
def test_the_providers_own_code_and_message_are_read(body, expected):
    assert provider_error_details(response(400, body)) == expected


def test_the_providers_message_is_scrubbed_and_shortened():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    body = {"code": 1, "message": f"Token {jwt} refused; header was Bearer abc.def " + "x" * 500}
    _, message = provider_error_details(response(400, body))
    assert jwt not in message and "abc.def" not in message
    assert len(message) <= 200


# Retry-After --------------------------------------------------------------------------

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("Tue, 01 Jan 2030 12:01:30 GMT", 90.0),
        ("Tue, 01 Jan 2030 11:00:00 GMT", 0.0),
        ("-1", None),
        ("inf", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


# Redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://zoom.us/oauth/token?grant_type=authorization_code&code=SECRET1",
            "https://zoom.us/oauth/token?grant_type=authorization_code&code=[redacted]",
        ),
        (
            "https://us02web.zoom.us/j/123?pwd=SECRET1",
            "https://us02web.zoom.us/j/123?pwd=[redacted]",
        ),
        (
            "https://meet.example.com/room?jwt=SECRET1",
            "https://meet.example.com/room?jwt=[redacted]",
        ),
        (
            "https://x.example/t?client_secret=SECRET1&refresh_token=SECRET2&client_id=abc",
            "https://x.example/t?client_secret=[redacted]&refresh_token=[redacted]&client_id=abc",
        ),
        (
            "https://x.example/t?access_token=SECRET1&password=SECRET2&passcode=SECRET3&state=s1",
            "https://x.example/t?access_token=[redacted]&password=[redacted]&passcode=[redacted]&state=s1",
        ),
        ("https://user:SECRET1@x.example/p", "https://[redacted]@x.example/p"),
        ("https://x.example/p#jwt=SECRET1", "https://x.example/p#jwt=[redacted]"),
        ("https://x.example/users/me/meetings", "https://x.example/users/me/meetings"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_headers():
    headers = {
        "Authorization": "Bearer SECRET1",
        "proxy-authorization": "Basic SECRET2",
        "Cookie": "sid=SECRET3",
        "x-zm-signature": "v0=SECRET4",
        "X-Goog-Channel-Token": "SECRET5",
        "Content-Type": "application/json",
    }
    cleaned = redact_headers(headers)
    assert "SECRET" not in json.dumps(cleaned)
    assert cleaned["Content-Type"] == "application/json"


def test_redact_walks_nested_json():
    data = {
        "access_token": "SECRET1",
        "expires_in": 3599,
        "meeting": {
            "id": 85746065432,
            "start_url": "https://zoom.us/s/1?zak=SECRET2",
            "join_url": "https://zoom.us/j/1?pwd=SECRET3",
            "password": "SECRET4",
            "settings": {"waiting_room": True},
        },
        "items": [{"refresh_token": "SECRET5"}, "https://x.example/?code=SECRET6"],
    }
    cleaned = redact(data)
    assert "SECRET" not in json.dumps(cleaned)
    assert cleaned["meeting"]["id"] == 85746065432
    assert cleaned["meeting"]["join_url"] == f"https://zoom.us/j/1?pwd={REDACTED}"
    assert cleaned["meeting"]["settings"] == {"waiting_room": True}
    assert cleaned["expires_in"] == 3599


# The session ---------------------------------------------------------------------------


@pytest.fixture
def server():
    with FakeServer() as fake:
        fake.add_route("*", "^/.*$", lambda request: json_reply({"access_token": "SECRET-OUT"}))
        yield fake


def test_no_secret_reaches_the_logs(server, caplog):
    caplog.set_level(logging.DEBUG, logger="wagtail_bookings_vc")
    session = make_session("Zoom", trust_env=False)
    session.post(
        server.url_for("/oauth/token?jwt=SECRET-JWT&grant_type=authorization_code"),
        data={"code": "SECRET-CODE", "client_secret": "SECRET-CS", "refresh_token": "SECRET-RT"},
        headers={"Authorization": "Basic SECRET-BASIC"},
    )
    session.post(
        server.url_for("/v2/users/me/meetings"),
        json={"topic": "Visit", "password": "SECRET-PW", "settings": {"passcode": "SECRET-PC"}},
        headers={"Authorization": "Bearer SECRET-BEARER"},
    )
    server.fail_next(1, 500)
    with pytest.raises(TemporaryFailure):
        raise_for_status(session.get(server.url_for("/v2/meetings/1?pwd=SECRET-PWD")), "Zoom")
    text = caplog.text
    assert "SECRET" not in text
    assert "POST" in text and "/oauth/token" in text and "grant_type=authorization_code" in text
    assert '"topic": "Visit"' in text
    assert "-> 500" in text


def test_every_request_gets_the_default_timeout(settings, server):
    settings.WAGTAIL_BOOKINGS_VC = {"HTTP_TIMEOUT": (0.5, 0.2)}
    session = make_session("Slow", trust_env=False)
    assert session.get_adapter(server.url).timeout == (0.5, 0.2)
    server.add_latency(0.6)
    with pytest.raises(TemporaryFailure) as caught:
        session.get(server.url_for("/slow"))
    assert "No answer from Slow in time" in str(caught.value)
    # A timeout given to one request still wins.
    assert session.get(server.url_for("/slow"), timeout=3).status_code == 200


def test_a_timeout_error_does_not_chain_the_url_with_its_secrets(server):
    session = make_session("Zoom", timeout=0.2, trust_env=False)
    server.timeout_next(1, seconds=1)
    with pytest.raises(TemporaryFailure) as caught:
        session.get(server.url_for("/v2/meetings?access_token=SECRET-QUERY"))
    error = caught.value
    assert error.__cause__ is None and error.__suppress_context__
    assert "SECRET" not in str(error)


def test_connection_refused_is_a_temporary_failure():
    with FakeServer() as gone:
        url = gone.url_for("/v2/users/me")
    with pytest.raises(TemporaryFailure, match="Could not reach Zoom"):
        make_session("Zoom", trust_env=False).get(url)


def test_trust_env_follows_the_setting(settings):
    settings.WAGTAIL_BOOKINGS_VC = {"HTTP_TRUST_ENV": False}
    assert make_session().trust_env is False
    settings.WAGTAIL_BOOKINGS_VC = {}
    assert make_session().trust_env is True
    assert make_session(trust_env=False).trust_env is False


def test_an_existing_session_is_configured_in_place():
    own = requests.Session()
    assert make_session("Zoom", timeout=4, session=own) is own
    assert own.get_adapter("https://api.zoom.us").timeout == (4.0, 4.0)
    assert own.headers["User-Agent"].startswith("wagtail-bookings-vc/")


def test_an_answer_cut_off_midway_is_a_temporary_failure(server):
    server.add_route(
        "GET",
        "/cut",
        lambda request: Reply(200, b'{"id": 1', {"Content-Length": "100"}),
    )
    with pytest.raises(TemporaryFailure, match="answer from Zoom was cut off"):
        make_session("Zoom", timeout=1, trust_env=False).get(server.url_for("/cut"))
