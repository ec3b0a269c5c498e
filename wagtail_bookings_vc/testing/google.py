"""A fake Google (OAuth 2.0 and Calendar v3 events) for tests and local demos.

:class:`FakeGoogle` plays the three parts of Google the Google Meet provider talks to:

* the consent screen (``/o/oauth2/v2/auth``), which consents at once and redirects back
  with ``code`` and ``state`` like Google does after the user clicks *Allow*;
* the token endpoint (``/token``): ``authorization_code`` gives an access token, a refresh
  token and an ``id_token``; ``refresh_token`` gives a new access token and, like Google,
  **no** new refresh token; a revoked or unknown grant gives ``400 invalid_grant``;
  and the revocation endpoint (``/revoke``);
* Calendar v3 events under ``/calendar/v3`` (the discovery document's paths), with
  ``insert``, ``get``, ``patch`` and ``delete``. Conference data is read only with
  ``conferenceDataVersion=1`` (also on patch); ``createRequest.requestId`` and client
  event ids are deduplicated (409 ``duplicate``, also for an id of a deleted event); a new
  conference can stay ``pending`` for a number of answers; a calendar can refuse Meet;
  deleted events answer 410; errors use Google's envelope.

Point the provider at it with :meth:`FakeGoogle.provider_options`::

    with FakeGoogle() as google:
        provider = GoogleMeetProvider(google.provider_options(), provider_id="google_meet")
        account = InMemoryAccount(google.connect())
        details = provider.create_meeting(account, spec)
        assert google.live_events()[0]["id"] == details.external_id

Fault knobs, besides :class:`~.server.FakeServer`'s: :attr:`pending_answers`,
:attr:`conference_outcome`, :attr:`meet_allowed`, :meth:`quota_error_next`,
:meth:`lose_answer_next`, :meth:`revoke_all`; :meth:`expire_tokens` also invalidates every
access token handed out so far.
"""

from __future__ import annotations

import base64
import collections
import copy
import dataclasses
import hashlib
import json
import re
import secrets
import string
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import jwt

from .server import FakeServer, RecordedRequest, Reply, json_reply, route

__all__ = ["CALENDAR_PREFIX", "FakeGoogle", "RecordedReply", "google_error"]

#: Where the fake serves Calendar v3 (Google's ``rootUrl`` + ``servicePath``).
CALENDAR_PREFIX = "/calendar/v3"
_EVENTS = CALENDAR_PREFIX + "/calendars/{calendarId}/events"
_EVENT = _EVENTS + "/{eventId}"
_CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
_EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
_EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
_SEND_UPDATES = ("all", "externalOnly", "none")
_STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
# Fields a patch may change (the rest are Google's own, or not used here).
_PATCHABLE = (
    "summary",
    "description",
    "location",
    "start",
    "end",
    "attendees",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "reminders",
    "transparency",
    "visibility",
    "colorId",
)
_MEET_ICON = (
    "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/"
    "logo_meet_2020q4_color_2x_web_512dp.png"
)


def google_error(
    status: int,
    reason: str,
    message: str,
    *,
    domain: str = "global",
    headers: Mapping[str, str] | None = None,
    location: str | None = None,
) -> Reply:
    """Return Google's JSON error envelope.

    ``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}],
    "status"}}``; ``status`` is left out where Google's classic APIs leave it out (410).
    """
    item: dict[str, Any] = {"domain": domain, "reason": reason, "message": message}
    if location:
        item.update({"locationType": "header", "location": location})
    error: dict[str, Any] = {"code": status, "message": message, "errors": [item]}
    if status in _STATUS_TEXT:
        error["status"] = _STATUS_TEXT[status]
    return json_reply({"error": error}, status, headers)


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return json_reply({"error": error, "error_description": description}, status)


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Mapping[str, Any] | None) -> datetime | None:
    if not isinstance(value, Mapping):
        return None
    text = value.get("dateTime") or value.get("date")
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _random_code(length: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(length))


@dataclasses.dataclass(frozen=True)
class RecordedReply:
    """One answer the fake sent (faults included), for checking against the spec."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (``None`` if empty)."""
        return json.loads(self.body) if self.body else None


@dataclasses.dataclass
class _Conference:
    request_id: str
    conference_id: str
    outcome: str  # "success" or "failure"
    pending_left: int


@dataclasses.dataclass
class _Grant:
    email: str
    scope: str
    revoked: bool = False


@dataclasses.dataclass
class _AccessToken:
    grant: _Grant
    expires_at: float
    refresh_token: str


class FakeGoogle(FakeServer):
    """Google's OAuth endpoints and Calendar v3 events, on a loopback port.

    Attributes:
        client_id, client_secret: The OAuth client the fake accepts.
        email: The Google account that consents on the consent screen.
        granted_scope: The scopes consent grants (``None``: what was asked for).
        consent_error: Consent answers with this ``error`` (``"access_denied"``).
        registered_redirect_uris: Redirect URIs the client has registered (``None``: any).
        pending_answers: How many answers about a new conference (the insert's own
            included) say ``pending`` before it is ``success``. 0: ready at once.
        conference_outcome: What a conference ends as: ``"success"`` or ``"failure"``.
        meet_allowed: ``False``: the calendar does not allow Google Meet, and an insert
            asking for a Meet conference is refused like Google does (400 ``invalid``).
        deleted_get_status: What a GET of a deleted event answers: 200 with ``status:
            "cancelled"`` (Google: "The get method always returns them"), or 410.
        access_token_lifetime: Seconds an access token lives (Google: 3599).
        replies: Every answer sent, in order (see :class:`RecordedReply`).
        revoked_tokens: The tokens sent to the revocation endpoint.
    """

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id.apps.googleusercontent.com",
        client_secret: str = "fake-client-secret",  # noqa: S107  (a fake's own test value)
        email: str = "host@example.com",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.client_id = client_id
        self.client_secret = client_secret
        self.email = email
        self.granted_scope: str | None = None
        self.consent_error: str | None = None
        self.registered_redirect_uris: set[str] | None = None
        self.pending_answers = 0
        self.conference_outcome = "success"
        self.meet_allowed = True
        self.deleted_get_status = 200
        self.access_token_lifetime = 3599
        self.replies: list[RecordedReply] = []
        self.revoked_tokens: list[str] = []
        self._signing_key = secrets.token_bytes(32)
        self._codes: dict[str, dict[str, Any]] = {}
        self._grants: dict[str, _Grant] = {}  # by refresh token
        self._access: dict[str, _AccessToken] = {}
        # Per calendar (the owner's email): event id -> event, and ids of deleted events.
        self._events: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
        self._deleted: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
        self._conferences: dict[tuple[str, str], _Conference] = {}  # (calendar, event id)
        self._by_request_id: dict[tuple[str, str], _Conference] = {}  # (calendar, request id)
        self._lose: collections.deque[list[Any]] = collections.deque()

    # Where things are ----------------------------------------------------------------

    @property
    def auth_uri(self) -> str:
        """The consent screen's URL."""
        return self.url_for("/o/oauth2/v2/auth")

    @property
    def token_uri(self) -> str:
        """The token endpoint's URL."""
        return self.url_for("/token")

    @property
    def revoke_uri(self) -> str:
        """The revocation endpoint's URL."""
        return self.url_for("/revoke")

    @property
    def api_base_url(self) -> str:
        """Calendar v3's base URL (``rootUrl`` + ``servicePath``)."""
        return self.url_for(CALENDAR_PREFIX)

    def provider_options(self, **changes: Any) -> dict[str, Any]:
        """Options for ``GoogleMeetProvider`` that point every URL at this fake.

        Polls do not wait, and calls time out after two seconds.
        """
        return {
            "CLIENT_ID": self.client_id,
            "CLIENT_SECRET": self.client_secret,
            "API_BASE_URL": self.api_base_url,
            "AUTH_URI": self.auth_uri,
            "TOKEN_URI": self.token_uri,
            "REVOKE_URI": self.revoke_uri,
            "POLL_DELAY": 0,
            "HTTP_TIMEOUT": (2.0, 2.0),
            "HTTP_TRUST_ENV": False,
            **changes,
        }

    # Test helpers --------------------------------------------------------------------

    def connect(self, email: str | None = None, scope: str | None = None) -> dict[str, Any]:
        """Grant access without the consent round trip; return stored-style credentials."""
        grant = _Grant(email or self.email, scope or self._default_scope())
        refresh_token = "1//" + secrets.token_urlsafe(32)
        with self._lock:
            self._grants[refresh_token] = grant
        access = self._issue_access(grant, refresh_token)
        expiry = datetime.fromtimestamp(time.time() + self.access_token_lifetime, UTC)
        return {"token": access, "refresh_token": refresh_token, "expiry": expiry.isoformat()}

    def live_events(self, calendar: str | None = None) -> list[dict[str, Any]]:
        """Events not deleted, as Google would answer them (oldest first)."""
        with self._lock:
            owners = [calendar] if calendar else list(self._events)
            return [
                self._render(owner, event, count=False)
                for owner in owners
                for event in self._events.get(owner, {}).values()
            ]

    def event(self, event_id: str, calendar: str | None = None) -> dict[str, Any] | None:
        """One live event as Google would answer it, or ``None``."""
        return next((e for e in self.live_events(calendar) if e["id"] == event_id), None)

    def deleted_ids(self, calendar: str | None = None) -> list[str]:
        """Ids of deleted events."""
        with self._lock:
            owners = [calendar] if calendar else list(self._deleted)
            return [event_id for owner in owners for event_id in self._deleted.get(owner, {})]

    def delete_event(self, event_id: str, calendar: str | None = None) -> None:
        """Delete an event as someone would in Google Calendar."""
        with self._lock:
            owner = calendar or self.email
            event = self._events[owner].pop(event_id)
            self._deleted[owner][event_id] = event

    def drop_conference(self, event_id: str, calendar: str | None = None) -> None:
        """Remove an event's Meet call as someone would in Google Calendar."""
        with self._lock:
            owner = calendar or self.email
            self._conferences.pop((owner, event_id), None)

    def revoke_all(self) -> None:
        """Revoke every grant, as when the user removes the app's access at Google."""
        with self._lock:
            for grant in self._grants.values():
                grant.revoked = True

    def quota_error_next(
        self,
        n: int = 1,
        *,
        reason: str = "userRateLimitExceeded",
        status: int = 403,
        retry_after: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``n`` calls with a usage-limit error of ``reason``."""
        messages = {
            "rateLimitExceeded": "Rate Limit Exceeded",
            "userRateLimitExceeded": "User Rate Limit Exceeded",
            "quotaExceeded": "Calendar usage limits exceeded.",
        }
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        reply = google_error(
            status, reason, messages.get(reason, reason), domain="usageLimits", headers=headers
        )
        self.fail_next(n, status, path=path, reply=reply)

    def lose_answer_next(self, n: int = 1, *, path: str | None = None) -> None:
        """Handle the next ``n`` calls (their effect happens) and close the connection
        without answering, as when the network drops the reply."""
        if n < 1:
            raise ValueError("A fault applies to at least one call.")
        with self._lock:
            self._lose.append([n, path])

    def expire_tokens(self, n: int = 1, *, path: str | None = None) -> None:
        """Invalidate every access token so far, and answer the next ``n`` API calls 401."""
        with self._lock:
            for token in self._access.values():
                token.expires_at = 0.0
        super().expire_tokens(n, path=path or CALENDAR_PREFIX)

    # Replies in Google's shape ---------------------------------------------------------

    def error_reply(self, status: int) -> Reply:
        if status == 503:
            return google_error(503, "backendError", "The service is currently unavailable.")
        if status >= 500:
            return google_error(status, "backendError", "Backend Error")
        return google_error(status, "invalid", "Injected failure.")

    def rate_limited_reply(self, status: int, retry_after: str | None) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        return google_error(
            status,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
            domain="usageLimits",
            headers=headers,
        )

    def unauthorized_reply(self) -> Reply:
        reply = google_error(
            401,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            location="Authorization",
        )
        reply.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
        return reply

    def not_found_reply(self, request: RecordedRequest) -> Reply:
        return google_error(404, "notFound", "Not Found")

    # Recording answers and losing them ---------------------------------------------------

    def dispatch(self, request: RecordedRequest) -> Reply:
        reply = super().dispatch(request)
        with self._lock:
            for fault in self._lose:
                if fault[1] is None or request.path.startswith(fault[1]):
                    fault[0] -= 1
                    if fault[0] == 0:
                        self._lose.remove(fault)
                    # Done, and no answer: the server closes the connection.
                    return None  # type: ignore[return-value]
        return reply

    def _write(self, http: Any, reply: Reply) -> None:  # type: ignore[override]
        # Every answer passes here, those of fault knobs included.
        parts = urlsplit(http.path)
        with self._lock:
            self.replies.append(
                RecordedReply(
                    method=http.command.upper(),
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    status=reply.status,
                    headers=dict(reply.headers),
                    body=reply.body,
                )
            )
        FakeServer._write(http, reply)

    # OAuth -------------------------------------------------------------------------------

    def _default_scope(self) -> str:
        return f"{_CALENDAR_SCOPE} openid {_EMAIL_SCOPE}"

    def _issue_access(self, grant: _Grant, refresh_token: str) -> str:
        token = "ya29." + secrets.token_urlsafe(40)
        with self._lock:
            self._access[token] = _AccessToken(
                grant, time.time() + self.access_token_lifetime, refresh_token
            )
        return token

    def _id_token(self, email: str) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "azp": self.client_id,
            "aud": self.client_id,
            "sub": str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16)),
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode(claims, self._signing_key, algorithm="HS256")

    @route("GET", "/o/oauth2/v2/auth")
    def authorize(self, request: RecordedRequest) -> Reply:
        """The consent screen: consents at once and redirects back."""
        query = {key: values[0] for key, values in request.query.items()}
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id:
            return Reply(401, b"Error 401: invalid_client", {"Content-Type": "text/html"})
        registered = self.registered_redirect_uris
        if not redirect_uri or (registered is not None and redirect_uri not in registered):
            return Reply(400, b"Error 400: redirect_uri_mismatch", {"Content-Type": "text/html"})
        if query.get("response_type") != "code" or not query.get("scope"):
            return Reply(400, b"Error 400: invalid_request", {"Content-Type": "text/html"})
        back: dict[str, str] = {}
        if query.get("state") is not None:
            back["state"] = query["state"]
        if self.consent_error:
            back["error"] = self.consent_error
        else:
            code = "4/" + secrets.token_urlsafe(30)
            asked = query["scope"].split()
            scope = self.granted_scope or " ".join(
                _EMAIL_SCOPE if item == "email" else item for item in asked
            )
            with self._lock:
                self._codes[code] = {
                    "redirect_uri": redirect_uri,
                    "scope": scope,
                    "email": self.email,
                    "challenge": query.get("code_challenge"),
                }
            back.update({"code": code, "scope": scope})
        parts = urlsplit(redirect_uri)
        joined = f"{parts.query}&{urlencode(back)}" if parts.query else urlencode(back)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))
        return Reply(302, b"", {"Location": location})

    @route("POST", "/token")
    def token(self, request: RecordedRequest) -> Reply:
        """The token endpoint: ``authorization_code`` and ``refresh_token`` grants."""
        form = request.form()
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return _oauth_error(401, "invalid_client", "Unauthorized")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            with self._lock:
                grant = self._grants.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked:
                return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            access = self._issue_access(grant, form["refresh_token"])
            # Google answers a refresh without a new refresh token.
            return json_reply(
                {
                    "access_token": access,
                    "expires_in": self.access_token_lifetime,
                    "scope": grant.scope,
                    "token_type": "Bearer",
                }
            )
        return _oauth_error(400, "unsupported_grant_type", "Invalid grant_type: " + str(grant_type))

    def _exchange_code(self, form: Mapping[str, str]) -> Reply:
        with self._lock:
            issued = self._codes.pop(form.get("code", ""), None)
        if issued is None:
            return _oauth_error(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != issued["redirect_uri"]:
            return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if issued["challenge"]:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            expected = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
            if not verifier or expected != issued["challenge"]:
                return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
        grant = _Grant(issued["email"], issued["scope"])
        refresh_token = "1//" + secrets.token_urlsafe(32)
        with self._lock:
            self._grants[refresh_token] = grant
        body: dict[str, Any] = {
            "access_token": self._issue_access(grant, refresh_token),
            "expires_in": self.access_token_lifetime,
            "refresh_token": refresh_token,
            "scope": grant.scope,
            "token_type": "Bearer",
        }
        if "openid" in grant.scope.split():
            body["id_token"] = self._id_token(grant.email)
        return json_reply(body)

    @route("POST", "/revoke")
    def revoke(self, request: RecordedRequest) -> Reply:
        """Revoke a refresh token (and its access tokens) or an access token's grant."""
        token = request.form().get("token") or request.query_value("token") or ""
        with self._lock:
            self.revoked_tokens.append(token)
            grant = self._grants.get(token)
            if grant is None and token in self._access:
                grant = self._access[token].grant
            if grant is None or grant.revoked:
                return _oauth_error(400, "invalid_token", "Token expired or revoked")
            grant.revoked = True
        return json_reply({})

    # Calendar ----------------------------------------------------------------------------

    def _caller(self, request: RecordedRequest, calendar_id: str) -> str | Reply:
        """Return the calendar's owner for an authorised caller, or the error reply."""
        header = request.header("Authorization")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            access = self._access.get(token)
            if access is not None and (access.grant.revoked or access.expires_at <= time.time()):
                access = None
        if access is None:
            return self.unauthorized_reply()
        if _CALENDAR_SCOPE not in access.grant.scope.split():
            return google_error(
                403,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
            )
        calendar = unquote(calendar_id)
        if calendar not in ("primary", access.grant.email):
            return google_error(404, "notFound", "Not Found")
        return access.grant.email

    @staticmethod
    def _flag(request: RecordedRequest, name: str) -> tuple[int | None, Reply | None]:
        value = request.query_value(name, "0") or "0"
        if not value.isdigit() or int(value) > 1:
            return None, google_error(400, "invalid", f"Invalid value for: {name}")
        return int(value), None

    @staticmethod
    def _check_send_updates(request: RecordedRequest) -> Reply | None:
        value = request.query_value("sendUpdates")
        if value is not None and value not in _SEND_UPDATES:
            return google_error(400, "invalid", "Invalid value for: sendUpdates")
        return None

    @staticmethod
    def _body(request: RecordedRequest) -> dict[str, Any] | Reply:
        try:
            body = request.json()
        except ValueError:
            return google_error(400, "parseError", "Parse Error")
        if not isinstance(body, dict):
            return google_error(400, "parseError", "Parse Error")
        return body

    @staticmethod
    def _check_times(event: Mapping[str, Any]) -> Reply | None:
        if not event.get("start"):
            return google_error(400, "required", "Missing start time.")
        if not event.get("end"):
            return google_error(400, "required", "Missing end time.")
        start, end = _parse_time(event["start"]), _parse_time(event["end"])
        if start is None or end is None:
            return google_error(400, "invalid", "Invalid start or end time.")
        if end <= start:
            return google_error(400, "timeRangeEmpty", "The specified time range is empty.")
        return None

    def _conference_for(self, owner: str, event_id: str, create: Any) -> _Conference | Reply | None:
        """Make (or find, for a repeated requestId) the conference a createRequest asks for.

        Call with the lock held.
        """
        if not isinstance(create, Mapping):
            return None
        request_id = create.get("requestId")
        kind = (create.get("conferenceSolutionKey") or {}).get("type")
        if not request_id:
            return google_error(400, "required", "Missing conference request id.")
        if kind != "hangoutsMeet" or not self.meet_allowed:
            return google_error(400, "invalid", "Invalid conference type value.")
        current = self._conferences.get((owner, event_id))
        if current is not None and current.request_id == request_id:
            return current  # the same request again is ignored
        known = self._by_request_id.get((owner, request_id))
        if known is not None:
            return known
        conference = _Conference(
            request_id=request_id,
            conference_id=f"{_random_code(3)}-{_random_code(4)}-{_random_code(3)}",
            outcome=self.conference_outcome,
            pending_left=self.pending_answers,
        )
        self._by_request_id[(owner, request_id)] = conference
        return conference

    def _render(self, owner: str, event: Mapping[str, Any], *, count: bool = True) -> dict:
        """The event as Google answers it; ``count`` uses up one pending answer."""
        data = copy.deepcopy(dict(event))
        conference = self._conferences.get((owner, data["id"]))
        if conference is None:
            return data
        request = {
            "requestId": conference.request_id,
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
        }
        if conference.pending_left > 0:
            if count:
                conference.pending_left -= 1
            data["conferenceData"] = {
                "createRequest": {**request, "status": {"statusCode": "pending"}}
            }
            return data
        if conference.outcome == "failure":
            data["conferenceData"] = {
                "createRequest": {**request, "status": {"statusCode": "failure"}}
            }
            return data
        code = conference.conference_id
        meet_url = f"https://meet.google.com/{code}"
        data["hangoutLink"] = meet_url
        data["conferenceData"] = {
            "createRequest": {**request, "status": {"statusCode": "success"}},
            "entryPoints": [
                {"entryPointType": "video", "uri": meet_url, "label": f"meet.google.com/{code}"},
                {
                    "entryPointType": "more",
                    "uri": f"https://tel.meet/{code}?pin=1234567890123",
                    "pin": "1234567890123",
                },
            ],
            "conferenceSolution": {
                "key": {"type": "hangoutsMeet"},
                "name": "Google Meet",
                "iconUri": _MEET_ICON,
            },
            "conferenceId": code,
        }
        return data

    def _find(self, owner: str, event_id: str) -> dict[str, Any] | Reply:
        """Call with the lock held."""
        event_id = unquote(event_id)
        if event_id in self._deleted[owner]:
            return google_error(410, "deleted", "Resource has been deleted")
        event = self._events[owner].get(event_id)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        return event

    @route("POST", _EVENTS)
    def insert_event(self, request: RecordedRequest, calendarId: str) -> Reply:  # noqa: N803
        """``events.insert``."""
        owner = self._caller(request, calendarId)
        if isinstance(owner, Reply):
            return owner
        version, problem = self._flag(request, "conferenceDataVersion")
        problem = problem or self._check_send_updates(request)
        body = self._body(request)
        if problem or isinstance(body, Reply):
            return problem or body  # type: ignore[return-value]
        problem = self._check_times(body)
        if problem:
            return problem
        event_id = body.get("id") or "".join(
            secrets.choice("abcdefghijklmnopqrstuv0123456789") for _ in range(26)
        )
        if not isinstance(event_id, str) or not _EVENT_ID_RE.match(event_id):
            return google_error(400, "invalid", "Invalid resource id value.")
        with self._lock:
            if event_id in self._events[owner] or event_id in self._deleted[owner]:
                return google_error(409, "duplicate", "The requested identifier already exists.")
            conference = None
            if version:
                create = (body.get("conferenceData") or {}).get("createRequest")
                conference = self._conference_for(owner, event_id, create)
                if isinstance(conference, Reply):
                    return conference
            now = _now_text()
            eid = base64.b64encode(f"{event_id} {owner}".encode()).decode().rstrip("=")
            event: dict[str, Any] = {
                "kind": "calendar#event",
                "etag": f'"{int(time.time() * 1000)}000"',
                "id": event_id,
                "status": "confirmed",
                "htmlLink": f"https://www.google.com/calendar/event?eid={eid}",
                "created": now,
                "updated": now,
                "creator": {"email": owner, "self": True},
                "organizer": {"email": owner, "self": True},
                "iCalUID": f"{event_id}@google.com",
                "sequence": 0,
                "reminders": {"useDefault": True},
                "eventType": "default",
            }
            for key in (*_PATCHABLE, "extendedProperties"):
                if key in body:
                    event[key] = copy.deepcopy(body[key])
            for attendee in event.get("attendees") or []:
                attendee.setdefault("responseStatus", "needsAction")
            self._events[owner][event_id] = event
            if conference is not None:
                self._conferences[(owner, event_id)] = conference
            return json_reply(self._render(owner, event))

    @route("GET", _EVENT)
    def get_event(self, request: RecordedRequest, calendarId: str, eventId: str) -> Reply:  # noqa: N803
        """``events.get``."""
        owner = self._caller(request, calendarId)
        if isinstance(owner, Reply):
            return owner
        with self._lock:
            deleted = self._deleted[owner].get(unquote(eventId))
            if deleted is not None and self.deleted_get_status == 200:
                gone = {
                    key: copy.deepcopy(value)
                    for key, value in deleted.items()
                    if key not in ("conferenceData", "hangoutLink")
                }
                gone["status"] = "cancelled"
                return json_reply(gone)
            event = self._find(owner, eventId)
            if isinstance(event, Reply):
                return event
            return json_reply(self._render(owner, event))

    @route("PATCH", _EVENT)
    def patch_event(self, request: RecordedRequest, calendarId: str, eventId: str) -> Reply:  # noqa: N803
        """``events.patch``: conference data only counts with ``conferenceDataVersion=1``."""
        owner = self._caller(request, calendarId)
        if isinstance(owner, Reply):
            return owner
        version, problem = self._flag(request, "conferenceDataVersion")
        problem = problem or self._check_send_updates(request)
        body = self._body(request)
        if problem or isinstance(body, Reply):
            return problem or body  # type: ignore[return-value]
        with self._lock:
            event = self._find(owner, eventId)
            if isinstance(event, Reply):
                return event
            changed = copy.deepcopy(event)
            for key in _PATCHABLE:
                if key in body:
                    changed[key] = copy.deepcopy(body[key])
            if isinstance(body.get("extendedProperties"), Mapping):
                properties = changed.setdefault("extendedProperties", {})
                for scope_name, values in body["extendedProperties"].items():
                    properties.setdefault(scope_name, {}).update(values or {})
            problem = self._check_times(changed)
            if problem:
                return problem
            conference = None
            if version:
                create = (body.get("conferenceData") or {}).get("createRequest")
                conference = self._conference_for(owner, changed["id"], create)
                if isinstance(conference, Reply):
                    return conference
            for attendee in changed.get("attendees") or []:
                attendee.setdefault("responseStatus", "needsAction")
            if changed.get("start") != event.get("start") or changed.get("end") != event.get("end"):
                changed["sequence"] = int(event.get("sequence", 0)) + 1
            changed["updated"] = _now_text()
            changed["etag"] = f'"{int(time.time() * 1000)}001"'
            self._events[owner][changed["id"]] = changed
            if conference is not None:
                self._conferences[(owner, changed["id"])] = conference
            return json_reply(self._render(owner, changed))

    @route("DELETE", _EVENT)
    def delete_event_route(self, request: RecordedRequest, calendarId: str, eventId: str) -> Reply:  # noqa: N803
        """``events.delete``: 204; an event deleted before answers 410."""
        owner = self._caller(request, calendarId)
        if isinstance(owner, Reply):
            return owner
        problem = self._check_send_updates(request)
        if problem:
            return problem
        with self._lock:
            event = self._find(owner, eventId)
            if isinstance(event, Reply):
                return event
            del self._events[owner][event["id"]]
            self._deleted[owner][event["id"]] = event
        return Reply(204, b"", {})
