"""Every request the fake Google received and every answer it sent, against the spec.

The Calendar calls are checked against Google's Calendar v3 discovery document
(``contracts/google-calendar-v3-discovery.json``, the same file the client library
loads): method and path template, path and query parameters (known, typed, enums,
bounds), and request and response bodies against the ``Event`` schema, walked with a
small validator (types, properties, ``$ref``, arrays, ``additionalProperties``, formats,
enums, ``annotations.required``). Rules the document states only in descriptions (the
event id alphabet, the values of ``statusCode`` and the like) are checked too, and the
test first confirms that the description really says them.

The OAuth endpoints are not in the discovery document; their forms and answers are
checked against the fields of Google's OAuth 2.0 web-server guide.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import pytest
import requests

from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    MeetingSpec,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from wagtail_bookings_vc.providers.google_meet import GoogleMeetProvider
from wagtail_bookings_vc.testing import InMemoryAccount
from wagtail_bookings_vc.testing.google import FakeGoogle, RecordedReply
from wagtail_bookings_vc.testing.server import RecordedRequest

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contracts"
DISCOVERY = json.loads((CONTRACT / "google-calendar-v3-discovery.json").read_text())
SCHEMAS = DISCOVERY["schemas"]
SERVICE_PREFIX = "/" + DISCOVERY["servicePath"].rstrip("/")  # "/calendar/v3"
EVENT_METHODS = DISCOVERY["resources"]["events"]["methods"]
USED_METHODS = ("insert", "get", "patch", "delete")
REDIRECT_URI = "https://studio.example.com/admin/bookings-vc/oauth/callback/"

# Rules the discovery document gives only in prose: (schema, property) -> allowed values.
# Each is checked against the description below, so the table cannot drift from it.
DESCRIBED_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("ConferenceRequestStatus", "statusCode"): ("pending", "success", "failure"),
    ("EntryPoint", "entryPointType"): ("video", "phone", "sip", "more"),
    ("ConferenceSolutionKey", "type"): (
        "eventHangout",
        "eventNamedHangout",
        "hangoutsMeet",
        "addOn",
    ),
    ("Event", "status"): ("confirmed", "tentative", "cancelled"),
    ("EventAttendee", "responseStatus"): ("needsAction", "declined", "tentative", "accepted"),
}
# Event.id when a client chooses it: "lowercase letters a-v and digits 0-9", 5 to 1024.
CLIENT_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Google's error envelope (Calendar API "Handle API errors" guide).
ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "errors"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string", "minLength": 1},
                "status": {"type": "string", "pattern": "^[A-Z_]+$"},
                "errors": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["domain", "reason", "message"],
                        "additionalProperties": False,
                        "properties": {
                            "domain": {"type": "string"},
                            "reason": {"type": "string"},
                            "message": {"type": "string"},
                            "locationType": {"type": "string"},
                            "location": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}

# OAuth 2.0 web-server flow (token endpoint answers and forms).
TOKEN_ANSWER = {
    "type": "object",
    "required": ["access_token", "expires_in", "token_type", "scope"],
    "additionalProperties": False,
    "properties": {
        "access_token": {"type": "string", "minLength": 1},
        "expires_in": {"type": "integer", "minimum": 1},
        "token_type": {"const": "Bearer"},
        "scope": {"type": "string"},
        "refresh_token": {"type": "string", "minLength": 1},
        "id_token": {"type": "string", "pattern": r"^[\w-]+\.[\w-]+\.[\w-]*$"},
    },
}
OAUTH_ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
TOKEN_FORMS = {
    "authorization_code": {"code", "client_id", "client_secret", "redirect_uri", "grant_type"},
    "refresh_token": {"refresh_token", "client_id", "client_secret", "grant_type"},
}
TOKEN_FORM_OPTIONAL = {"code_verifier"}


# --------------------------------------------------------------------------------------
# A validator for discovery schemas
# --------------------------------------------------------------------------------------


def schema_errors(
    value: Any, schema: dict[str, Any], where: str = "$", *, method_id: str = "", name: str = ""
) -> list[str]:
    """Return what is wrong with ``value`` under a discovery ``schema`` (empty: valid).

    ``method_id`` (``calendar.events.insert``) turns on the properties whose
    ``annotations.required`` name that method, at the top level only. ``name`` is the
    schema's id, for the rules stated in descriptions.
    """
    if "$ref" in schema:
        ref = schema["$ref"]
        return schema_errors(value, SCHEMAS[ref], where, method_id=method_id, name=ref)
    errors: list[str] = []
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{where}.{key}")
                allowed = DESCRIBED_VALUES.get((name, key))
                if allowed is not None and item not in allowed:
                    errors.append(f"{where}.{key}: {item!r} is not one of {allowed}")
            elif extra is not None:
                errors += schema_errors(item, extra, f"{where}.{key}")
            else:
                errors.append(f"{where}: unknown property {key!r}")
        if method_id:
            for key, item in properties.items():
                required = item.get("annotations", {}).get("required", [])
                if method_id in required and key not in value:
                    errors.append(f"{where}: {key!r} is required by {method_id}")
        if name == "EventDateTime":
            errors += _date_time_rules(value, where)
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        for index, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{where}[{index}]")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type(value).__name__}"]
        form = schema.get("format")
        if form == "date-time" and not RFC3339.match(value):
            errors.append(f"{where}: {value!r} is not an RFC 3339 date-time")
        elif form == "date" and not DATE.match(value):
            errors.append(f"{where}: {value!r} is not a date")
        elif form in ("int64", "uint64") and not re.fullmatch(r"-?\d+", value):
            errors.append(f"{where}: {value!r} is not a 64-bit integer in a string")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: expected an integer, got {type(value).__name__}"]
        if schema.get("format") == "int32" and not -(2**31) <= value < 2**31:
            errors.append(f"{where}: {value} is out of int32 range")
        errors += _bounds(value, schema, where)
    elif kind == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(f"{where}: expected a number, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected a boolean, got {type(value).__name__}")
    elif kind not in (None, "any"):
        errors.append(f"{where}: the validator does not know type {kind!r}")
    return errors


def _bounds(value: int, schema: dict[str, Any], where: str) -> list[str]:
    errors = []
    if "minimum" in schema and value < int(schema["minimum"]):
        errors.append(f"{where}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > int(schema["maximum"]):
        errors.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    return errors


def _date_time_rules(value: dict[str, Any], where: str) -> list[str]:
    # EventDateTime: "A time zone offset is required unless a time zone is explicitly
    # specified in timeZone"; timeZone is "an IANA Time Zone Database name".
    errors = []
    zone = value.get("timeZone")
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"{where}.timeZone: {zone!r} is not an IANA time zone")
    date_time = value.get("dateTime")
    if (
        isinstance(date_time, str)
        and zone is None
        and not re.search(r"(Z|[+-]\d\d:\d\d)$", date_time)
    ):
        errors.append(f"{where}.dateTime: no offset and no timeZone")
    if "dateTime" not in value and "date" not in value:
        errors.append(f"{where}: neither date nor dateTime")
    return errors


def query_errors(value: str, parameter: dict[str, Any], where: str) -> list[str]:
    """What is wrong with one query or path value under a discovery parameter."""
    kind = parameter.get("type")
    if "enum" in parameter and value not in parameter["enum"]:
        return [f"{where}: {value!r} is not one of {parameter['enum']}"]
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            return [f"{where}: {value!r} is not an integer"]
        return _bounds(int(value), parameter, where)
    if kind == "boolean" and value not in ("true", "false"):
        return [f"{where}: {value!r} is not a boolean"]
    if parameter.get("required") and not value:
        return [f"{where}: required, but empty"]
    return []


# --------------------------------------------------------------------------------------
# Matching traffic to the discovery document
# --------------------------------------------------------------------------------------


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", path)
    regex = "".join(
        f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


def match_method(method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Return (method name, discovery method, path parameters) for a Calendar call."""
    assert path.startswith(SERVICE_PREFIX + "/"), path
    relative = path[len(SERVICE_PREFIX) + 1 :]
    for method_name, description in EVENT_METHODS.items():
        found = _template(description["path"]).match(relative)
        if found and description["httpMethod"] == method:
            return method_name, description, {k: unquote(v) for k, v in found.groupdict().items()}
    raise AssertionError(f"{method} {path} is no events method of the discovery document")


def request_errors(request: RecordedRequest) -> list[str]:
    """Everything wrong with one Calendar request, checked against the discovery document."""
    name, method, path_values = match_method(request.method, request.path)
    where = f"{request.method} {request.path}"
    errors: list[str] = []
    parameters = method.get("parameters", {})
    for key in method.get("parameterOrder", []):
        errors += query_errors(path_values.get(key, ""), parameters[key], f"{where} {{{key}}}")
    for key, values in request.query.items():
        parameter = parameters.get(key) or DISCOVERY["parameters"].get(key)
        if parameter is None or parameter.get("location") != "query":
            errors.append(f"{where}: unknown query parameter {key!r}")
            continue
        if len(values) != 1 and not parameter.get("repeated"):
            errors.append(f"{where}: {key!r} given {len(values)} times")
        for value in values:
            errors += query_errors(value, parameter, f"{where} ?{key}")
    if "request" in method:
        try:
            body = request.json()
        except ValueError:
            return [*errors, f"{where}: the body is not JSON"]
        errors += schema_errors(body, method["request"], f"{where} body", method_id=method["id"])
        if name == "insert" and "id" in body and not CLIENT_EVENT_ID.match(str(body["id"])):
            errors.append(f"{where}: event id {body['id']!r} is not 5-1024 base32hex characters")
    elif request.body:
        errors.append(f"{where}: {name} takes no body")
    auth = request.header("Authorization")
    if not auth.startswith("Bearer ") or len(auth) <= 7:
        errors.append(f"{where}: no OAuth 2.0 bearer token")
    return errors


def reply_errors(reply: RecordedReply) -> list[str]:
    """Everything wrong with one Calendar answer, checked against the discovery document."""
    name, method, _ = match_method(reply.method, reply.path)
    where = f"{reply.method} {reply.path} -> {reply.status}"
    if reply.status >= 400:
        return envelope_errors(reply, where)
    if "response" not in method:
        if reply.status != 204 or reply.body:
            return [f"{where}: {name} answers 204 without a body"]
        return []
    if reply.status != 200:
        return [f"{where}: {name} answers 200"]
    if "json" not in reply.headers.get("Content-Type", ""):
        return [f"{where}: not JSON"]
    return schema_errors(reply.json(), method["response"], f"{where} body")


def envelope_errors(reply: RecordedReply, where: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(ERROR_ENVELOPE)
    body = reply.json()
    errors = [f"{where}: {error.message}" for error in validator.iter_errors(body)]
    if not errors and body["error"]["code"] != reply.status:
        errors.append(f"{where}: error.code {body['error']['code']} is not the status")
    return errors


def oauth_errors(request: RecordedRequest, reply: RecordedReply | None) -> list[str]:
    """Check a token or revocation call against the OAuth 2.0 web-server guide."""
    where = f"{request.method} {request.path}"
    errors: list[str] = []
    if request.header("Content-Type") != "application/x-www-form-urlencoded":
        errors.append(f"{where}: not a form")
    form = request.form()
    if request.path == "/token":
        expected = TOKEN_FORMS.get(form.get("grant_type", ""))
        if expected is None:
            return [f"{where}: unknown grant_type {form.get('grant_type')!r}"]
        if not expected <= set(form) or set(form) - expected - TOKEN_FORM_OPTIONAL:
            errors.append(f"{where}: form fields {sorted(form)} are not {sorted(expected)}")
    elif set(form) != {"token"}:
        errors.append(f"{where}: revocation takes one field, token")
    if reply is None:
        return errors
    body = reply.json()
    if reply.status >= 400:
        schema = OAUTH_ERROR
    elif request.path == "/token":
        schema = TOKEN_ANSWER
        if form.get("grant_type") == "refresh_token" and "refresh_token" in body:
            errors.append(f"{where}: Google's refresh answers carry no refresh token")
        if form.get("grant_type") == "authorization_code" and "refresh_token" not in body:
            errors.append(f"{where}: an offline consent gives a refresh token")
    else:
        schema = {"type": "object", "maxProperties": 0}
    errors += [
        f"{where}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(body)
    ]
    return errors


# --------------------------------------------------------------------------------------
# The document says what the table says
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("schema", "field"), list(DESCRIBED_VALUES))
def test_described_values_are_the_ones_the_document_states(schema, field):
    description = SCHEMAS[schema]["properties"][field]["description"]
    for value in DESCRIBED_VALUES[(schema, field)]:
        assert f'"{value}"' in description, (schema, field, value)


def test_the_event_id_rule_is_the_one_the_document_states():
    description = SCHEMAS["Event"]["properties"]["id"]["description"]
    assert "lowercase letters a-v and digits 0-9" in description
    assert "between 5 and 1024 characters" in description


def test_the_methods_used_are_in_the_document_with_the_parameters_sent():
    for name in USED_METHODS:
        assert name in EVENT_METHODS
    assert EVENT_METHODS["insert"]["parameters"]["conferenceDataVersion"]["maximum"] == "1"
    assert EVENT_METHODS["patch"]["parameters"]["sendUpdates"]["enum"] == [
        "all",
        "externalOnly",
        "none",
    ]
    assert "response" not in EVENT_METHODS["delete"]


# --------------------------------------------------------------------------------------
# The validator finds mistakes
# --------------------------------------------------------------------------------------

GOOD_BODY = {
    "id": "abcdefghijklmnopqrstuv0123456789",
    "summary": "Yoga",
    "start": {"dateTime": "2030-01-01T10:00:00+01:00", "timeZone": "Europe/Rome"},
    "end": {"dateTime": "2030-01-01T11:00:00+01:00", "timeZone": "Europe/Rome"},
    "conferenceData": {
        "createRequest": {"requestId": "r", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
    },
    "extendedProperties": {"private": {"bookingReference": "BK-1"}},
}


def fake_request(
    method="POST", path="/calendar/v3/calendars/primary/events", query=None, body=None
):
    return RecordedRequest(
        method=method,
        path=path,
        query=query or {"conferenceDataVersion": ["1"], "alt": ["json"]},
        headers={"Authorization": "Bearer ya29.x"},
        body=json.dumps(body if body is not None else GOOD_BODY).encode(),
    )


def changed(**changes):
    body = json.loads(json.dumps(GOOD_BODY))
    for dotted, value in changes.items():
        target = body
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return body


def test_the_validator_accepts_a_good_insert():
    assert request_errors(fake_request()) == []


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (fake_request(body=changed(start="2030-01-01T10:00:00Z")), "expected an object"),
        (fake_request(body=changed(start=None)), "'start' is required"),
        (fake_request(body=changed(summry="typo")), "unknown property 'summry'"),
        (fake_request(body=changed(id="Upper-Case")), "base32hex"),
        (fake_request(body=changed(start__timeZone="Mars/Olympus")), "IANA"),
        (
            fake_request(body=changed(start__timeZone=None, start__dateTime="2030-01-01T10:00:00")),
            "no offset",
        ),
        (
            fake_request(
                body=changed(conferenceData__createRequest__conferenceSolutionKey={"type": "zoom"})
            ),
            "not one of",
        ),
        (fake_request(body=changed(extendedProperties__private={"n": 1})), "expected a string"),
        (fake_request(query={"conferenceDataVersion": ["2"]}), "above the maximum"),
        (fake_request(query={"sendUpdates": ["everyone"]}), "not one of"),
        (fake_request(query={"conferenceVersion": ["1"]}), "unknown query parameter"),
        (
            fake_request(method="PUT", path="/calendar/v3/calendars/primary/events"),
            "no events method",
        ),
    ],
)
def test_the_validator_finds_mistakes(request_, expected):
    try:
        errors = request_errors(request_)
    except AssertionError as error:
        errors = [str(error)]
    assert any(expected in error for error in errors), errors


def test_the_validator_finds_a_wrong_answer():
    event = {
        "id": "abcde",
        "status": "done",
        "sequence": "1",
        "start": {"dateTime": "2030-01-01T10:00:00Z"},
        "end": {"dateTime": "tomorrow"},
        "conferenceData": {"createRequest": {"status": {"statusCode": "ready"}}},
    }
    reply = RecordedReply(
        "GET",
        "/calendar/v3/calendars/primary/events/abcde",
        {},
        200,
        {"Content-Type": "application/json"},
        json.dumps(event).encode(),
    )
    errors = "\n".join(reply_errors(reply))
    assert "'done' is not one of" in errors
    assert "expected an integer" in errors
    assert "not an RFC 3339 date-time" in errors
    assert "'ready' is not one of" in errors
    bad_error = RecordedReply("GET", reply.path, {}, 404, {}, b'{"error": {"code": 404}}')
    assert reply_errors(bad_error)


# --------------------------------------------------------------------------------------
# A scripted session: everything the provider does, faults included
# --------------------------------------------------------------------------------------


def spec(request_id: str, **changes: Any) -> MeetingSpec:
    start = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "reference": "BK-2001",
        "topic": "Physiotherapy",
        "agenda": "First session.",
        "start": start,
        "end": start + timedelta(minutes=50),
        "time_zone": "Europe/Berlin",
        "attendee_emails": ("ann@example.com",),
        "request_id": request_id,
    }
    values.update(changes)
    return MeetingSpec(**values)


def run_session(google: FakeGoogle) -> None:
    provider = GoogleMeetProvider(google.provider_options(), provider_id="google_meet")
    started = provider.start_authorization(REDIRECT_URI, "state-1")
    answer = requests.get(started.url, allow_redirects=False, timeout=5)
    callback = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    account = InMemoryAccount()
    provider.finish_authorization(account, callback, REDIRECT_URI, started.flow)

    first = uuid.uuid4().hex
    google.pending_answers = 3
    details = provider.create_meeting(account, spec(first))
    google.pending_answers = 0
    provider.update_meeting(account, details.external_id, spec(first, topic="Physio (moved)"))

    invited = uuid.uuid4().hex
    with_guests = spec(invited, options={"invite_attendees": True})
    google.lose_answer_next(path=f"{SERVICE_PREFIX}/calendars/primary/events")
    with pytest.raises(TemporaryFailure):
        provider.create_meeting(account, with_guests)
    guests = provider.create_meeting(account, with_guests)  # 409, then read back

    google.delete_event(details.external_id)
    provider.update_meeting(account, details.external_id, spec(first))  # 410, made again

    google.expire_tokens(1)
    provider.update_meeting(account, guests.external_id, with_guests)  # 401, refresh
    google.rate_limit_next(1, retry_after=2)
    with pytest.raises(RateLimited):
        provider.create_meeting(account, spec(uuid.uuid4().hex))
    google.quota_error_next(reason="userRateLimitExceeded")
    with pytest.raises(RateLimited):
        provider.create_meeting(account, spec(uuid.uuid4().hex))
    google.fail_next(1, 500)
    with pytest.raises(TemporaryFailure):
        provider.create_meeting(account, spec(uuid.uuid4().hex))
    google.meet_allowed = False
    with pytest.raises(PermanentFailure):
        provider.create_meeting(account, spec(uuid.uuid4().hex))
    google.meet_allowed = True

    provider.delete_meeting(account, guests.external_id)
    google.deleted_get_status = 410
    provider.delete_meeting(account, guests.external_id)
    provider.delete_meeting(account, "0000unknown0")
    provider.disconnect(account)
    google.expire_tokens(1)
    with pytest.raises(AuthorizationExpired):
        provider.create_meeting(account, spec(uuid.uuid4().hex))


@pytest.fixture(scope="module")
def session():
    with FakeGoogle() as google:
        run_session(google)
        google.raise_errors()
        yield google


def calendar_requests(google):
    return [r for r in google.requests if r.path.startswith(SERVICE_PREFIX)]


def calendar_replies(google):
    return [r for r in google.replies if r.path.startswith(SERVICE_PREFIX)]


def test_every_calendar_request_matches_the_discovery_document(session):
    requests_ = calendar_requests(session)
    assert len(requests_) > 20
    problems = [problem for request in requests_ for problem in request_errors(request)]
    assert problems == []


def test_every_calendar_answer_matches_the_discovery_document(session):
    replies = calendar_replies(session)
    problems = [problem for reply in replies for problem in reply_errors(reply)]
    assert problems == []


def test_the_session_covered_each_method_and_the_answers_that_matter(session):
    seen = {(match_method(r.method, r.path)[0], r.status) for r in calendar_replies(session)}
    for name in USED_METHODS:
        assert any(method == name and status < 300 for method, status in seen), name
    statuses = {status for _, status in seen}
    assert {200, 204, 400, 401, 403, 404, 409, 410, 429, 500} <= statuses
    codes = set()
    for reply in calendar_replies(session):
        body = reply.json() if reply.status == 200 else None
        status = ((body or {}).get("conferenceData") or {}).get("createRequest", {})
        codes.add((status.get("status") or {}).get("statusCode"))
    assert {"pending", "success"} <= codes


def test_every_insert_and_patch_asks_for_conference_data_version_1(session):
    for request in calendar_requests(session):
        if request.method in ("POST", "PATCH"):
            assert request.query_value("conferenceDataVersion") == "1", request.path


def test_every_oauth_call_and_answer_matches_googles_oauth_guide(session):
    oauth = [r for r in session.requests if r.path in ("/token", "/revoke")]
    replies = [r for r in session.replies if r.path in ("/token", "/revoke")]
    assert len(oauth) == len(replies) >= 4
    assert {r.form()["grant_type"] for r in oauth if r.path == "/token"} == set(TOKEN_FORMS)
    problems = [
        p
        for request, reply in zip(oauth, replies, strict=True)
        for p in oauth_errors(request, reply)
    ]
    assert problems == []


def test_the_consent_url_and_redirect_follow_the_web_server_flow(session):
    (consent,) = [r for r in session.requests if r.path == "/o/oauth2/v2/auth"]
    query = {k: v[0] for k, v in consent.query.items()}
    assert {"response_type", "client_id", "redirect_uri", "scope", "state"} <= set(query)
    assert query["access_type"] == "offline"
    (redirect,) = [r for r in session.replies if r.path == "/o/oauth2/v2/auth"]
    assert redirect.status == 302
    back = parse_qs(urlsplit(redirect.headers["Location"]).query)
    assert back["state"] == ["state-1"] and back["code"][0]
