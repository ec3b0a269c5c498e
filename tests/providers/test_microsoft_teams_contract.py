"""The fake Microsoft keeps to the published Graph subset, and the provider's calls do too.

A scripted session drives the Teams provider (delegated and organisation accounts, errors
included) against :class:`FakeMicrosoft`; then every Graph request the fake received and
every answer it sent is checked against ``shared/contracts/msgraph-onlinemeetings-subset.json``
(paths, methods, query parameters, bodies through ``jsonschema``, statuses and headers),
and ``createOrGet`` bodies against the action's parameters in the CSDL beside it.

The subset's errata (``contracts/README.md``) are applied: ``nullable`` is OpenAPI's, and
``anyOf: [{$ref}, {type: object, nullable: true}]`` means "the referenced type or null".
Graph entities are open types, so answers may carry more properties; what the provider
*writes* must be declared properties.

Outside the subset: ``GET /users`` (the CSDL shows the ``user`` type without properties),
checked against the selected properties; and the identity platform, checked against the
subset's ``securitySchemes`` (endpoints, scopes) and OAuth 2 / OpenID Connect answer shapes.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import pytest
import requests
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from wagtail_bookings_vc.providers.base import (
    MeetingSpec,
    PermanentFailure,
    RateLimited,
)
from wagtail_bookings_vc.providers.microsoft_teams import MicrosoftTeamsProvider
from wagtail_bookings_vc.testing import InMemoryAccount
from wagtail_bookings_vc.testing.microsoft import FakeMicrosoft

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post'")

CONTRACTS = Path(__file__).resolve().parents[3] / "shared" / "contracts"
SPEC_URI = "urn:msgraph-subset"
REDIRECT = "https://bookings.example/admin/bookings-vc/oauth/callback/"
START = datetime(2030, 6, 3, 16, 0, tzinfo=UTC)
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"

# ``GET /users?$select=id,displayName,mail,userPrincipalName``: not in the subset.
USERS_PAGE = {
    "type": "object",
    "required": ["value"],
    "properties": {
        "value": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "displayName": {"type": ["string", "null"]},
                    "mail": {"type": ["string", "null"]},
                    "userPrincipalName": {"type": ["string", "null"]},
                },
            },
        },
        "@odata.nextLink": {"type": "string", "format": "uri"},
    },
}
# RFC 6749 §5.1 with Microsoft's fields, and §5.2 with Microsoft's error envelope.
TOKEN_ANSWER = {
    "type": "object",
    "required": ["token_type", "expires_in", "access_token"],
    "properties": {
        "token_type": {"const": "Bearer"},
        "expires_in": {"type": "integer", "minimum": 1},
        "ext_expires_in": {"type": "integer", "minimum": 1},
        "access_token": {"type": "string", "minLength": 1},
        "refresh_token": {"type": "string", "minLength": 1},
        "id_token": {"type": "string", "pattern": r"^[\w-]+\.[\w-]+\.[\w-]*$"},
        "scope": {"type": "string"},
        "client_info": {"type": "string"},
    },
}
TOKEN_ERROR = {
    "type": "object",
    "required": [
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
    ],
    "properties": {
        "error": {
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "invalid_scope",
                "unauthorized_client",
                "unsupported_grant_type",
                "invalid_tenant",
                "temporarily_unavailable",
            ]
        },
        "error_description": {"type": "string", "pattern": r"^AADSTS\d+: "},
        "error_codes": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
    },
}
OPENID_CONFIGURATION = {
    "type": "object",
    "required": ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"],
    "properties": {
        name: {"type": "string", "pattern": r"^https://login\.fake\.test/"}
        for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    },
}


# Reading the contract -----------------------------------------------------------------


@cache
def spec() -> dict[str, Any]:
    return json.loads((CONTRACTS / "msgraph-onlinemeetings-subset.json").read_text())


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema, with the subset's errata applied."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"anyOf"} and len(node["anyOf"]) == 2:
        ref, other = node["anyOf"]
        if "$ref" in ref and other == {"type": "object", "nullable": True}:
            return {"anyOf": [as_json_schema(ref), {"type": "null"}]}
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


@cache
def registry() -> Registry:
    document = {"components": as_json_schema(spec()["components"])}
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # RFC 3339: an offset or Z is required; Graph writes up to seven fractional digits.
    if not isinstance(value, str):
        return True
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
    if not match:
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    datetime.fromisoformat(match.group(1))
    return True


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if isinstance(value, str) and not urlsplit(value).scheme:
        raise ValueError(f"not an absolute URI: {value!r}")
    return True


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Validate against ``schema``, whose ``$ref``s point into the subset's components."""
    schema = json.loads(json.dumps(schema).replace('"#/components/', f'"{SPEC_URI}#/components/'))
    validator = jsonschema.Draft202012Validator(
        as_json_schema(schema), registry=registry(), format_checker=FORMATS
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def operation(method: str, path: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The subset's (template, path item, operation) for a Graph request path."""
    relative = path.removeprefix("/v1.0")
    for template, item in spec()["paths"].items():
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(regex, relative) and method.lower() in item:
            return template, item, item[method.lower()]
    raise AssertionError(f"{method} {path} is not an operation of the Graph subset")


def schema_of(content: dict[str, Any]) -> dict[str, Any]:
    return content["application/json"]["schema"]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


@cache
def csdl() -> ET.Element:
    # The project's own copy of Microsoft's metadata, not data from outside.
    path = CONTRACTS / "msgraph-onlinemeetings-subset.csdl.xml"
    return ET.parse(path).getroot()  # noqa: S314


@cache
def action_parameters(name: str) -> frozenset[str]:
    action = next(a for a in csdl().iter(f"{EDM}Action") if a.get("Name") == name)
    return frozenset(
        p.get("Name") for p in action.iter(f"{EDM}Parameter") if p.get("Name") != "bindingParameter"
    )


@cache
def entity_properties(name: str) -> frozenset[str]:
    """Structural properties of an entity type and its base types, from the CSDL."""
    types = {t.get("Name"): t for t in csdl().iter(f"{EDM}EntityType")}
    found: set[str] = set()
    current = types.get(name)
    while current is not None:
        found |= {p.get("Name") for p in current.iter(f"{EDM}Property")}
        base = (current.get("BaseType") or "").removeprefix("graph.")
        current = types.get(base)
    return frozenset(found)


# Checking one exchange ----------------------------------------------------------------


def check_graph_request(request) -> None:
    template, item, op = operation(request.method, request.path)
    declared = {p["name"] for p in [*item.get("parameters", []), *op.get("parameters", [])]}
    for name in request.query:
        assert name in declared, f"{request.method} {template}: undeclared query {name}"
    assert request.header("Authorization").startswith("Bearer ")
    body = op.get("requestBody")
    if body is None:
        assert not request.body, f"{request.method} {template} takes no body"
        return
    assert request.header("Content-Type").startswith("application/json")
    payload = request.json()
    validate(payload, schema_of(body["content"]))
    if template.endswith("/createOrGet"):
        # An OData action takes exactly its parameters.
        assert set(payload) <= action_parameters("createOrGet"), set(payload)
        assert "externalId" in payload
    elif "onlineMeetings" in template:
        assert set(payload) <= entity_properties("onlineMeeting"), set(payload)
        if request.method == "PATCH" and ({"startDateTime", "endDateTime"} & set(payload)):
            assert {"startDateTime", "endDateTime"} <= set(payload), "start and end together"


def check_graph_reply(reply) -> None:
    _, _, op = operation(reply.method, reply.path)
    declared = op["responses"]
    if 200 <= reply.status < 300:
        assert str(reply.status) in declared, f"{reply.method} {reply.path}: {reply.status}"
        answer = declared[str(reply.status)]
    else:
        answer = declared.get(str(reply.status)) or resolve(declared["default"])
    content = answer.get("content")
    if content is None:
        assert reply.body == b"", f"{reply.status} must have no body"
        return
    assert reply.headers["Content-Type"].startswith("application/json")
    validate(reply.json(), schema_of(content))
    if reply.status == 429:
        assert re.fullmatch(r"\d+", reply.headers.get("Retry-After", "")), "429 needs Retry-After"
    if "Retry-After" in reply.headers:
        header_schema = answer.get("headers", {}).get("Retry-After", {}).get("schema")
        assert header_schema == {"type": "integer"}
        int(reply.headers["Retry-After"])


def check_users_exchange(request, reply) -> None:
    """``GET /users``: outside the subset (see the module docstring)."""
    assert set(request.query) <= {"$select", "$top", "$skiptoken"}
    if reply.status == 200:
        validate(reply.json(), USERS_PAGE)
    else:
        validate(reply.json(), {"$ref": "#/components/schemas/odata.error"})


def check_identity_exchange(request, reply, flows) -> None:
    authorize = urlsplit(flows["authorizationCode"]["authorizationUrl"]).path
    token = urlsplit(flows["authorizationCode"]["tokenUrl"]).path
    as_regex = lambda template: "^" + template.replace("{tenant}", "[^/]+") + "$"  # noqa: E731
    if request.path.endswith("/.well-known/openid-configuration"):
        assert re.match(r"^/[^/]+/v2\.0/\.well-known/openid-configuration$", request.path)
        validate(reply.json(), OPENID_CONFIGURATION if reply.status == 200 else TOKEN_ERROR)
    elif re.match(as_regex(authorize), request.path):
        query = {k: v[0] for k, v in request.query.items()}
        scopes = set(query["scope"].split())
        known = set(flows["authorizationCode"]["scopes"]) | {"openid", "profile", "User.Read"}
        assert scopes <= known, scopes - known
        assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
        if reply.status == 302:
            back = dict(parse_qsl(urlsplit(reply.headers["Location"]).query))
            assert back["state"] == query["state"] and ("code" in back or "error" in back)
    elif re.match(as_regex(token), request.path):
        assert request.method == "POST"
        assert request.header("Content-Type") == "application/x-www-form-urlencoded"
        form = request.form()
        if form["grant_type"] == "client_credentials":
            assert form["scope"] in flows["clientCredentials"]["scopes"]
        validate(reply.json(), TOKEN_ANSWER if reply.status == 200 else TOKEN_ERROR)
    else:
        raise AssertionError(f"unexpected identity call {request.method} {request.path}")


def check_all(fake: FakeMicrosoft, probes: range = range(0)) -> dict[str, int]:
    """Check every exchange the fake saw; return how many of each kind there were.

    ``probes`` are requests sent on purpose against the contract: the check must refuse
    them, and the fake's answers to them must still keep to the contract.
    """
    requests_seen, replies = list(fake.requests), list(fake.replies)
    assert len(requests_seen) == len(replies)
    flows = spec()["components"]["securitySchemes"]["azureaadv2"]["flows"]
    counts = {"graph": 0, "users": 0, "identity": 0}
    for index, (request, reply) in enumerate(zip(requests_seen, replies, strict=True)):
        assert (request.method, request.path) == (reply.method, reply.path)
        if index in probes:
            with pytest.raises(AssertionError):
                check_graph_request(request)
            assert reply.status == 400
            check_graph_reply(reply)
            counts["graph"] += 1
        elif request.path == "/v1.0/users":
            check_users_exchange(request, reply)
            counts["users"] += 1
        elif request.path.startswith("/v1.0/"):
            check_graph_request(request)
            check_graph_reply(reply)
            counts["graph"] += 1
        else:
            check_identity_exchange(request, reply, flows)
            counts["identity"] += 1
    return counts


# The scripted session -----------------------------------------------------------------


def meeting_spec(request_id: str, hours: int = 0, **changes: Any) -> MeetingSpec:
    start = START + timedelta(hours=hours)
    values = {
        "reference": "S-77",
        "topic": "Evening yoga",
        "start": start,
        "end": start + timedelta(hours=1),
        "request_id": request_id,
        "options": {"waiting_room": True},
    }
    values.update(changes)
    return MeetingSpec(**values)


def connect(provider: MicrosoftTeamsProvider, fake: FakeMicrosoft) -> InMemoryAccount:
    started = provider.start_authorization(REDIRECT, "contract-state")
    callback = dict(parse_qsl(urlsplit(fake.consent(started.url)).query))
    account = InMemoryAccount()
    provider.finish_authorization(account, callback, REDIRECT, dict(started.flow))
    return account


def graph(fake: FakeMicrosoft, account, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A direct Graph call with the account's cached token (what the provider does not call)."""
    cache = json.loads(account.credentials["token_cache"])
    token = next(iter(cache["AccessToken"].values()))["secret"]
    with requests.Session() as session:
        session.trust_env = False
        return session.request(
            method,
            f"{fake.url}/v1.0{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
            **kwargs,
        )


@pytest.fixture
def fake(monkeypatch):
    with FakeMicrosoft(max_page_size=2) as server:
        server.route_sessions(monkeypatch)
        yield server
        server.raise_errors()


def test_every_exchange_of_a_scripted_session_keeps_to_the_contract(fake):
    provider = MicrosoftTeamsProvider(fake.provider_options(), provider_id="microsoft_teams")

    # A staff member's own account.
    account = connect(provider, fake)
    made = provider.create_meeting(account, meeting_spec("a" * 32))
    provider.create_meeting(account, meeting_spec("a" * 32, may_exist=True))
    provider.create_meeting(account, meeting_spec("b" * 32, options={"waiting_room": False}))
    moved = provider.update_meeting(account, made.external_id, meeting_spec("a" * 32, hours=24))
    fake.rate_limit_next(1, retry_after=4, path="/v1.0/")
    with pytest.raises(RateLimited):
        provider.create_meeting(account, meeting_spec("c" * 32))
    fake.revoke_access_tokens()
    provider.create_meeting(account, meeting_spec("c" * 32))
    assert graph(fake, account, "GET", f"/me/onlineMeetings/{moved.external_id}").ok
    found = graph(
        fake,
        account,
        "GET",
        "/me/onlineMeetings",
        params={"$filter": f"JoinWebUrl eq '{moved.join_url}'"},
    )
    assert [m["id"] for m in found.json()["value"]] == [moved.external_id]
    provider.delete_meeting(account, moved.external_id)
    provider.delete_meeting(account, moved.external_id)
    remade = provider.update_meeting(account, moved.external_id, meeting_spec("a" * 32, hours=2))
    assert remade.external_id != moved.external_id
    assert graph(fake, account, "GET", "/me/onlineMeetings/unknown-id").status_code == 404
    # Requests that break the contract, answered the way Graph answers them.
    first_probe = len(fake.requests)
    refused = [
        graph(
            fake,
            account,
            "POST",
            "/me/onlineMeetings/createOrGet",
            json={"externalId": "x", "lobbyBypassSettings": {"scope": "everyone"}},
        ),
        graph(
            fake,
            account,
            "PATCH",
            f"/me/onlineMeetings/{remade.external_id}",
            json={"startDateTime": "2030-06-04T10:00:00Z"},
        ),
    ]
    assert [answer.status_code for answer in refused] == [400, 400]
    probes = range(first_probe, len(fake.requests))

    # An organisation, with one user granted the access policy and one not.
    fake.grant_admin_consent()
    for n in range(3):
        fake.add_user(f"coach{n}@contoso.example", f"Coach {n}")
    organisation = InMemoryAccount()
    provider.connect_organisation(organisation, fake.organisation_values())
    users = provider.list_users(organisation)
    assert len(users) == 5
    ben = fake.user("ben@contoso.example")
    fake.grant_access_policy(ben)
    mapped = InMemoryAccount(organisation.credentials, external_user_id=ben.id)
    details = provider.create_meeting(mapped, meeting_spec("d" * 32))
    provider.update_meeting(mapped, details.external_id, meeting_spec("d" * 32, hours=1))
    provider.delete_meeting(mapped, details.external_id)
    unmapped = InMemoryAccount(organisation.credentials, external_user_id=users[2].id)
    with pytest.raises(PermanentFailure, match="application access policy"):
        provider.create_meeting(unmapped, meeting_spec("e" * 32))

    counts = check_all(fake, probes)

    assert counts["graph"] >= 20 and counts["users"] == 4 and counts["identity"] >= 10
    statuses = {reply.status for reply in fake.replies if reply.path.startswith("/v1.0/")}
    assert {200, 201, 204, 400, 401, 403, 404, 429} <= statuses


def test_the_checks_catch_what_breaks_the_contract(fake):
    """The validators are not blind: bodies that break the subset are caught."""
    reply = type(
        "R",
        (),
        {
            "method": "POST",
            "path": "/v1.0/me/onlineMeetings/createOrGet",
            "status": 201,
            "headers": {"Content-Type": "application/json"},
            "json": lambda self: {"id": "1", "joinWebUrl": 5, "startDateTime": "tomorrow"},
            "body": b"{}",
        },
    )()
    with pytest.raises(AssertionError) as caught:
        check_graph_reply(reply)
    assert "joinWebUrl" in str(caught.value) and "startDateTime" in str(caught.value)

    for wrong in (
        {"error": {"code": "X"}},  # no message
        {"error": {"code": 401, "message": "m"}},  # code must be a string
    ):
        with pytest.raises(AssertionError):
            validate(wrong, {"$ref": "#/components/schemas/odata.error"})
    with pytest.raises(AssertionError):
        validate(
            {"lobbyBypassSettings": {"scope": "anyone"}},
            {"$ref": "#/components/schemas/microsoft.graph.onlineMeeting"},
        )
    validate(
        {"lobbyBypassSettings": None},
        {"$ref": "#/components/schemas/microsoft.graph.onlineMeeting"},
    )
    with pytest.raises(AssertionError, match="not an operation"):
        operation("PUT", "/v1.0/me/onlineMeetings/1")
    assert action_parameters("createOrGet") == {
        "chatInfo",
        "endDateTime",
        "externalId",
        "participants",
        "startDateTime",
        "subject",
    }
    assert {"lobbyBypassSettings", "allowedPresenters", "startDateTime", "subject"} <= (
        entity_properties("onlineMeeting")
    )
    assert "joinUrl" not in entity_properties("onlineMeeting")
