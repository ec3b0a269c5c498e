"""The fake Zoom keeps to Zoom's published API: every request it receives and every answer it
sends in a scripted session is checked against the OpenAPI spec in ``shared/contracts``.

The spec is Zoom's mid-2023 Meeting API (the subset of the paths the provider calls; the
user list, which the subset leaves out, from the full file beside it). Its known errata
(``contracts/README.md``) are applied: ``userId``'s ``oneOf`` is read as ``anyOf``, and
error bodies, described in prose only, are checked against ``{code, message, errors}``.
Extra properties are allowed, as Zoom adds fields over time.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import requests

from wagtail_bookings_vc.providers.base import (
    MeetingSpec,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from wagtail_bookings_vc.providers.zoom import ZoomProvider
from wagtail_bookings_vc.testing import InMemoryAccount
from wagtail_bookings_vc.testing.zoom import FakeZoom

CONTRACTS = Path(__file__).resolve().parents[2].parent / "shared" / "contracts"
REDIRECT_URI = "https://bookings.example.com/admin/bookings-vc/oauth/callback/"
START = datetime(2030, 2, 1, 14, 0, tzinfo=UTC)

# Error bodies: "{"code": <int>, "message": "..."}; validation adds errors[{field, message}]".
ERROR_BODY = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
# The token endpoint is described by the spec's securitySchemes only; its answers follow
# OAuth 2 (RFC 6749 §5.1, §5.2) with Zoom's "reason" for the error text.
TOKEN_BODY = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string", "minLength": 1},
        "token_type": {"enum": ["bearer"]},
        "refresh_token": {"type": "string", "minLength": 1},
        "expires_in": {"type": "integer", "minimum": 1},
        "scope": {"type": "string"},
    },
}
TOKEN_ERROR_BODY = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {
        "error": {
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "unauthorized_client",
                "unsupported_grant_type",
            ]
        },
        "reason": {"type": "string"},
    },
}


@pytest.fixture(autouse=True)
def _oauth_over_loopback_http(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


# Reading the spec ---------------------------------------------------------------------


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((CONTRACTS / name).read_text())


def resolve(node: Any, document: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Return ``node`` with every local ``$ref`` replaced by what it points at."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/") or ref in seen:
                raise AssertionError(f"cannot resolve $ref {ref!r}")
            target: Any = document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return resolve(target, document, (*seen, ref))
        return {key: resolve(value, document, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, document, seen) for item in node]
    return node


def as_json_schema(schema: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema: ``nullable``, and the ``oneOf`` erratum."""
    if isinstance(schema, dict):
        converted = {key: as_json_schema(value) for key, value in schema.items()}
        if "oneOf" in converted:
            # Zoom's userId: an id, an email or "me"; "me" and emails match two branches.
            converted["anyOf"] = converted.pop("oneOf")
        if converted.pop("nullable", False) and "type" in converted:
            converted["type"] = [converted["type"], "null"]
        return converted
    if isinstance(schema, list):
        return [as_json_schema(item) for item in schema]
    return schema


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def check(instance: Any, schema: Any, what: str) -> None:
    validator = jsonschema.Draft4Validator(as_json_schema(schema), format_checker=FORMATS)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{what}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )


def operation(method: str, api_path: str) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """Find the spec's operation for a request path (without ``/v2``)."""
    for name in ("zoom-meetings-openapi.subset.json", "zoom-meetings-openapi.json"):
        document = load(name)
        for template, item in document["paths"].items():
            regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            match = re.match(regex, api_path)
            if match and method.lower() in item:
                return template, resolve(item[method.lower()], document), match.groupdict()
    return None


def coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


# Checking one exchange ----------------------------------------------------------------


def check_api_exchange(request, reply) -> tuple[str, str, int]:
    api_path = request.path.removeprefix("/v2")
    found = operation(request.method, api_path)
    assert found, f"{request.method} {api_path} is not in Zoom's spec"
    template, op, path_values = found
    what = f"{request.method} {template}"
    parameters = {(p["in"], p["name"]): p for p in op.get("parameters", [])}
    for name, value in path_values.items():
        parameter = parameters[("path", name)]
        schema = parameter["schema"]
        check(coerce(value, schema), schema, f"{what}: path parameter {name}")
    for name, values in request.query.items():
        parameter = parameters.get(("query", name))
        assert parameter, f"{what}: query parameter {name} is not in the spec"
        check(coerce(values[0], parameter["schema"]), parameter["schema"], f"{what}: ?{name}")
    if request.body:
        body_spec = op.get("requestBody", {}).get("content", {}).get("application/json")
        assert body_spec, f"{what}: the spec takes no JSON body"
        assert request.header("Content-Type").startswith("application/json")
        check(request.json(), body_spec["schema"], f"{what}: request body")
    else:
        assert not op.get("requestBody", {}).get("required"), f"{what}: body required"

    status = str(reply.status)
    response_spec = op["responses"].get(status)
    if reply.status >= 400:
        # No meeting operation lists 401 or 429; error bodies are described in prose.
        assert response_spec or reply.status in (401, 429), f"{what}: undocumented {status}"
        check(json.loads(reply.body), ERROR_BODY, f"{what}: error body {status}")
        return template, request.method, reply.status
    assert response_spec, f"{what}: status {status} is not documented"
    content = (response_spec.get("content") or {}).get("application/json")
    if content is None:
        assert reply.body == b"", f"{what}: {status} must have no body"
    else:
        assert reply.headers["Content-Type"].startswith("application/json")
        check(json.loads(reply.body), content["schema"], f"{what}: response {status}")
    return template, request.method, reply.status


def check_oauth_exchange(request, reply) -> tuple[str, str, int]:
    schemes = load("zoom-meetings-openapi.subset.json")["components"]["securitySchemes"]
    flow = schemes["OAuth"]["flows"]["authorizationCode"]
    assert urlsplit(flow["authorizationUrl"]).path == "/oauth/authorize"
    assert urlsplit(flow["tokenUrl"]).path == "/oauth/token"
    if request.path == "/oauth/authorize":
        assert request.method == "GET"
        assert request.query_value("response_type") == "code"
        assert request.query_value("client_id") == FakeZoom.CLIENT_ID
        assert reply.status == 302
        location = parse_qs(urlsplit(reply.headers["Location"]).query)
        assert ("code" in location) != ("error" in location)
        assert location["state"] == request.query["state"]
    elif request.path == "/oauth/token":
        assert request.method == "POST"
        assert request.header("Authorization").startswith("Basic ")
        assert request.header("Content-Type") in ("", "application/x-www-form-urlencoded")
        schema = TOKEN_BODY if reply.status == 200 else TOKEN_ERROR_BODY
        check(json.loads(reply.body), schema, f"token answer {reply.status}")
    else:
        assert request.path == "/oauth/revoke"
        assert request.method == "POST"
        assert request.query_value("token")
        assert request.header("Authorization").startswith("Basic ")
        assert reply.status == 200
    return request.path, request.method, reply.status


# The scripted session -----------------------------------------------------------------


def spec(**changes) -> MeetingSpec:
    values = {
        "reference": "BK-CONTRACT",
        "topic": "Yoga for beginners",
        "agenda": "Bring a mat.",
        "start": START,
        "end": START + timedelta(minutes=60),
        "time_zone": "Europe/Rome",
        "host_email": "owner@example.com",
        "options": {"waiting_room": False},
    }
    values.update(changes)
    return MeetingSpec(**values)


def run_session(fake: FakeZoom) -> None:
    """Use every call the provider makes, with its successes and its refusals."""
    provider = ZoomProvider(
        fake.provider_options(HTTP_TRUST_ENV=False, HTTP_TIMEOUT=(2.0, 0.5)), provider_id="zoom"
    )
    request = provider.start_authorization(REDIRECT_URI, "contract-state")
    location = requests.get(request.url, allow_redirects=False, timeout=5).headers["Location"]
    callback = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    account = InMemoryAccount()
    provider.finish_authorization(account, callback, REDIRECT_URI, request.flow)

    details = provider.create_meeting(account, spec())
    provider.participant_url(details, name="Host", email="h@x.com", is_host=True, account=account)
    later = {"start": START + timedelta(hours=2), "end": START + timedelta(hours=3)}
    provider.update_meeting(account, details.external_id, spec(**later))
    fake.lose_answer_next(path="/v2/users/me/meetings")
    with pytest.raises(TemporaryFailure):  # the lost answer
        provider.create_meeting(account, spec(reference="BK-LOST", agenda="x" * 600))
    provider.create_meeting(account, spec(reference="BK-LOST", agenda="x" * 600, may_exist=True))
    fake.expire_tokens()
    provider.delete_meeting(account, details.external_id)  # 401, refresh, 204
    provider.delete_meeting(account, details.external_id)  # 404, 3001
    provider.update_meeting(account, details.external_id, spec())  # 404, then made again
    fake.set_calls_today("owner", fake.daily_limit)
    with pytest.raises(RateLimited):
        provider.create_meeting(account, spec(reference="BK-LIMIT"))
    provider.disconnect(account)

    organisation = InMemoryAccount()
    with pytest.raises(PermanentFailure):  # refused credentials
        provider.connect_organisation(
            organisation, {**fake.organisation_values(), "client_secret": "wrong"}
        )
    provider.connect_organisation(organisation, fake.organisation_values())
    users = provider.list_users(organisation)
    mapped = InMemoryAccount(organisation.credentials, external_user_id=users[1].id)
    provider.create_meeting(mapped, spec(reference="BK-ORG"))
    gone = InMemoryAccount(organisation.credentials, external_user_id="no-such-user")
    with pytest.raises(PermanentFailure):  # 404, code 1001
        provider.create_meeting(gone, spec(reference="BK-GONE"))
    # A body the spec allows but Zoom's passcode rules refuse, sent as a client would.
    token = organisation.credentials["access_token"]
    requests.post(
        f"{fake.api_url}/users/owner/meetings",
        json={"topic": "x", "type": 2, "password": "pass word!"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def test_every_exchange_of_a_session_keeps_to_zoom_s_published_api():
    with FakeZoom() as fake:
        run_session(fake)
        fake.raise_errors()
        exchanges = list(fake.exchanges)

    covered = set()
    for request, reply in exchanges:
        if request.path.startswith("/oauth/"):
            covered.add(check_oauth_exchange(request, reply))
        else:
            covered.add(check_api_exchange(request, reply))

    # Everything the provider relies on was exercised (and so checked).
    assert covered >= {
        ("/oauth/authorize", "GET", 302),
        ("/oauth/token", "POST", 200),
        ("/oauth/token", "POST", 401),
        ("/oauth/revoke", "POST", 200),
        ("/users/{userId}", "GET", 200),
        ("/users", "GET", 200),
        ("/users/{userId}/meetings", "POST", 201),
        ("/users/{userId}/meetings", "POST", 400),
        ("/users/{userId}/meetings", "POST", 404),
        ("/users/{userId}/meetings", "POST", 429),
        ("/users/{userId}/meetings", "GET", 200),
        ("/meetings/{meetingId}", "GET", 200),
        ("/meetings/{meetingId}", "PATCH", 204),
        ("/meetings/{meetingId}", "PATCH", 404),
        ("/meetings/{meetingId}", "DELETE", 204),
        ("/meetings/{meetingId}", "DELETE", 401),
        ("/meetings/{meetingId}", "DELETE", 404),
    }, sorted(covered)


def test_the_checks_catch_what_the_spec_refuses():
    found = operation("POST", "/users/me/meetings")
    assert found is not None
    _, op, _ = found
    body = op["requestBody"]["content"]["application/json"]["schema"]
    with pytest.raises(AssertionError, match="agenda"):
        check({"agenda": "x" * 2001}, body, "create")
    with pytest.raises(AssertionError, match="type"):
        check({"type": 5}, body, "create")
    answer = op["responses"]["201"]["content"]["application/json"]["schema"]
    with pytest.raises(AssertionError, match="id"):
        check({"id": "85000000001"}, answer, "created")  # ids are int64 numbers
    with pytest.raises(AssertionError, match="start_time"):
        check({"start_time": "15/01/2030 09:30"}, answer, "created")
    with pytest.raises(AssertionError, match="message"):
        check({"code": 3001}, ERROR_BODY, "error")
    assert operation("GET", "/no/such/path") is None
