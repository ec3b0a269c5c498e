"""A fake Zoom on the loopback interface: OAuth, users, meetings and signed webhooks.

:class:`FakeZoom` plays the parts of Zoom the Zoom provider uses, with Zoom's status codes
and error bodies (``{"code", "message"}``; OAuth-style ``{"reason", "error"}`` at the token
endpoint):

* ``GET /oauth/authorize`` consents at once and redirects back with ``code`` and ``state``;
* ``POST /oauth/token`` with the ``authorization_code`` (PKCE checked),
  ``refresh_token`` (rotating: the old refresh token stops working) and
  ``account_credentials`` grants, HTTP Basic client authentication enforced;
* ``POST /oauth/revoke``;
* ``GET /v2/users``, ``GET /v2/users/{userId}``, ``GET|POST /v2/users/{userId}/meetings``,
  ``GET|PATCH|DELETE /v2/meetings/{meetingId}``;
* the per-user limit of 100 meeting create/update calls per UTC day, with Zoom's answer;
* access-token expiry (:meth:`FakeZoom.expire_tokens`), a lost answer
  (:meth:`FakeZoom.lose_answer_next`), and the fault knobs of :class:`FakeServer`.

:meth:`FakeZoom.send_webhook` posts a webhook signed the way Zoom signs them (or signed
wrongly, for tests). Point the provider at the fake with :meth:`FakeZoom.provider_options`.
Only for tests and local demos.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import itertools
import json
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from ..providers.zoom import webhook_signature
from .server import FakeServer, RecordedRequest, Reply, empty_reply, json_reply, route

__all__ = ["FakeZoom", "webhook_request"]

# Zoom's own answer for the per-user daily limit of meeting create/update calls.
DAILY_LIMIT_MESSAGE = (
    "You have exceeded the daily rate limit ({limit}) of Meeting Create/Update API requests "
    "permitted for this particular user. You may resume these requests at GMT 00:00:00."
)
_PASSWORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@-_*")
_LIST_AGENDA_MAX = 250


def webhook_request(
    event: str,
    payload: Mapping[str, Any],
    secret: str,
    timestamp: str | int | None = None,
    *,
    signature: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Return the raw body and headers of a Zoom webhook call.

    The body is compact JSON, as Zoom sends it. ``signature`` replaces the correct one.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    body = json.dumps(
        {"event": event, "payload": dict(payload), "event_ts": int(time.time() * 1000)},
        separators=(",", ":"),
    ).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "x-zm-request-timestamp": stamp,
        "x-zm-signature": webhook_signature(secret, stamp, body)
        if signature is None
        else signature,
    }
    return body, headers


@dataclasses.dataclass
class _Token:
    value: str
    client_id: str
    expires_at: float
    user_id: str = ""  # a user's token; "" for a Server-to-Server token
    account_id: str = ""
    refresh_token: str = ""


@dataclasses.dataclass
class _Lose:
    remaining: int
    method: str | None
    path: str | None
    wait: float

    def matches(self, request: RecordedRequest) -> bool:
        return (self.method is None or request.method == self.method) and (
            self.path is None or request.path.startswith(self.path)
        )


class FakeZoom(FakeServer):
    """A fake Zoom (OAuth and API on one loopback server; the API under ``/v2``).

    Attributes:
        users: Zoom users by id (see :meth:`add_user`); the first two exist from the start:
            ``owner`` (licensed) and ``basic`` (Basic plan).
        meetings: Meetings by id, as stored (with their passcodes).
        consenting_user: The user who consents on the authorize page.
        deny_consent: The authorize page answers ``error=access_denied`` instead.
        grants: The grant types of every token issued, in order.
        revoked: The tokens revoked through ``/oauth/revoke``.
        daily_limit: Meeting create/update calls allowed per user per UTC day.
        token_latency: Seconds the token endpoint waits before answering.
        exchanges: Every routed request with the reply sent (lost answers left out),
            for checking against the published API spec.
    """

    CLIENT_ID = "fake-zoom-client-id"
    CLIENT_SECRET = "fake-zoom-client-secret"  # noqa: S105  (a fake's, for tests)
    S2S_ACCOUNT_ID = "fake-zoom-account"
    S2S_CLIENT_ID = "fake-zoom-s2s-client-id"
    S2S_CLIENT_SECRET = "fake-zoom-s2s-client-secret"  # noqa: S105
    JOIN_HOST = "meetings.fakezoom.example"
    TOKEN_LIFETIME = 3599

    def __init__(self, *, daily_limit: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state_lock = threading.RLock()
        self.apps: dict[str, dict[str, str]] = {
            self.CLIENT_ID: {"secret": self.CLIENT_SECRET, "kind": "user"},
            self.S2S_CLIENT_ID: {
                "secret": self.S2S_CLIENT_SECRET,
                "kind": "s2s",
                "account_id": self.S2S_ACCOUNT_ID,
            },
        }
        self.users: dict[str, dict[str, Any]] = {}
        self.meetings: dict[int, dict[str, Any]] = {}
        self.deleted: list[int] = []
        self.grants: list[str] = []
        self.revoked: list[str] = []
        self.exchanges: list[tuple[RecordedRequest, Reply]] = []
        self.daily_limit = daily_limit
        self.token_latency = 0.0
        self.deny_consent = False
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._calls: collections.Counter[tuple[str, date]] = collections.Counter()
        self._page_tokens: dict[str, int] = {}
        self._lose: collections.deque[_Lose] = collections.deque()
        self._ids = itertools.count(85_000_000_001)  # beyond 32 bits, as Zoom's are
        self.add_user(
            "owner", email="owner@example.com", first_name="Olive", last_name="Owner", type=2
        )
        self.add_user("basic", email="basic@example.com", first_name="Bea", last_name="Basic")
        self.consenting_user = "owner"

    # Set-up helpers ------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The API base URL (``API_BASE_URL``)."""
        return f"{self.url}/v2"

    def provider_options(self, **options: Any) -> dict[str, Any]:
        """Options that point a Zoom provider at this fake (with the fake's OAuth app)."""
        return {
            "CLIENT_ID": self.CLIENT_ID,
            "CLIENT_SECRET": self.CLIENT_SECRET,
            "API_BASE_URL": self.api_url,
            "OAUTH_BASE_URL": self.url,
            **options,
        }

    def organisation_values(self) -> dict[str, str]:
        """The Server-to-Server app's values, as an administrator types them in."""
        return {
            "account_id": self.S2S_ACCOUNT_ID,
            "client_id": self.S2S_CLIENT_ID,
            "client_secret": self.S2S_CLIENT_SECRET,
        }

    def add_user(
        self,
        user_id: str | None = None,
        *,
        email: str = "",
        first_name: str = "",
        last_name: str = "",
        type: int = 1,  # noqa: A002  (Zoom's field name)
    ) -> dict[str, Any]:
        """Add a user to the fake's Zoom account (``type`` 1 is Basic, 2 Licensed)."""
        user_id = user_id or secrets.token_urlsafe(16)
        user = {
            "id": user_id,
            "first_name": first_name,
            "last_name": last_name,
            "display_name": f"{first_name} {last_name}".strip(),
            "email": email or f"{user_id.lower()}@example.com",
            "type": type,
            "pmi": 3_000_000_000 + len(self.users),
            "timezone": "Europe/Rome",
            "verified": 1,
            "status": "active",
            "language": "en-US",
            "role_name": "Member",
            "account_id": self.S2S_ACCOUNT_ID,
            "created_at": "2024-01-01T00:00:00Z",
        }
        with self.state_lock:
            self.users[user_id] = user
        return user

    def issue_user_tokens(self, user_id: str = "owner", *, expires_in: float | None = None) -> dict:
        """Issue a token pair to ``user_id`` as a consent would; returns stored-credential keys."""
        lifetime = self.TOKEN_LIFETIME if expires_in is None else expires_in
        with self.state_lock:
            access, refresh = self._issue_pair(self.CLIENT_ID, user_id, lifetime)
        return {
            "kind": "user",
            "access_token": access.value,
            "refresh_token": refresh.value,
            "expires_at": access.expires_at,
            "plan_type": self.users[user_id]["type"],
        }

    def meetings_of(self, user_id: str) -> list[dict[str, Any]]:
        """The meetings ``user_id`` hosts, oldest first."""
        with self.state_lock:
            return [dict(m) for m in self.meetings.values() if m["host_id"] == user_id]

    def set_calls_today(self, user_id: str, calls: int) -> None:
        """Pretend ``user_id`` made ``calls`` create/update calls today (UTC)."""
        with self.state_lock:
            self._calls[(user_id, self.today())] = calls

    def calls_today(self, user_id: str) -> int:
        """The create/update calls ``user_id`` made today (UTC)."""
        with self.state_lock:
            return self._calls[(user_id, self.today())]

    @staticmethod
    def now() -> datetime:
        """The fake's clock (follows time-machine)."""
        return datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()

    # Fault knobs ---------------------------------------------------------------------

    def expire_tokens(self, n: int | None = None, *, path: str | None = None) -> None:
        """Expire every access token issued so far, as their hour running out would.

        Calls with them then get 401, code 124, "Access token is expired."; clients still
        believe the tokens valid. With ``n`` or ``path``, answer the next ``n`` matching
        calls with that 401 instead (the base class's fault).
        """
        if n is not None or path is not None:
            super().expire_tokens(n or 1, path=path)
            return
        with self.state_lock:
            for token in self._access.values():
                token.expires_at = 0.0

    def revoke_refresh_tokens(self) -> None:
        """Forget every refresh token, as when a user removes the app in Zoom."""
        with self.state_lock:
            self._refresh.clear()

    def lose_answer_next(
        self,
        n: int = 1,
        *,
        method: str | None = "POST",
        path: str | None = None,
        wait: float = 0.0,
    ) -> None:
        """Handle the next ``n`` matching calls, then drop the connection without answering.

        The call's effect happens (the meeting is made) before the client can try again.
        With ``wait`` longer than the client's read timeout the client sees a timeout;
        with 0 it sees the connection closed.
        """
        with self.state_lock:
            self._lose.append(_Lose(n, method, path, wait))

    def _take_lose(self, request: RecordedRequest) -> _Lose | None:
        with self.state_lock:
            for lose in self._lose:
                if lose.matches(request):
                    lose.remaining -= 1
                    if lose.remaining == 0:
                        self._lose.remove(lose)
                    return lose
        return None

    # Replies in Zoom's shape -----------------------------------------------------------

    def error_reply(self, status: int) -> Reply:
        return json_reply({"code": status, "message": "Internal Error."}, status)

    def rate_limited_reply(self, status: int, retry_after: str | None) -> Reply:
        headers = {"X-RateLimit-Type": "QPS", "X-RateLimit-Category": "Light"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return json_reply(
            {
                "code": 429,
                "message": "You have reached the maximum per-second rate limit for this API. "
                "Try again later.",
            },
            status,
            headers,
        )

    def unauthorized_reply(self) -> Reply:
        return json_reply({"code": 124, "message": "Access token is expired."}, 401)

    def not_found_reply(self, request: RecordedRequest) -> Reply:
        return json_reply({"code": 404, "message": "Not found."}, 404)

    def clear(self) -> None:
        """Forget recorded requests, exchanges and handler errors (not Zoom's state)."""
        super().clear()
        with self.state_lock:
            self.exchanges.clear()

    def dispatch(self, request: RecordedRequest) -> Reply:
        lose = self._take_lose(request)
        reply = super().dispatch(request)
        if lose is not None:
            # Done, but the answer never leaves: the connection drops (or times out first).
            self._stopping.wait(lose.wait)
            return None  # type: ignore[return-value]
        with self.state_lock:
            self.exchanges.append((request, reply))
        return reply

    # OAuth ---------------------------------------------------------------------------

    @staticmethod
    def _oauth_error(error: str, reason: str, status: int = 400) -> Reply:
        return json_reply({"reason": reason, "error": error}, status)

    def _client(self, request: RecordedRequest) -> tuple[str, dict[str, str]] | None:
        header = request.header("Authorization")
        if not header.lower().startswith("basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        app = self.apps.get(client_id)
        if app is None or not secrets.compare_digest(app["secret"], secret):
            return None
        return client_id, app

    def _issue_pair(self, client_id: str, user_id: str, lifetime: float) -> tuple[_Token, _Token]:
        expires_at = time.time() + lifetime
        refresh = _Token(f"rt-{secrets.token_urlsafe(24)}", client_id, 0.0, user_id=user_id)
        access = _Token(
            f"at-{secrets.token_urlsafe(24)}",
            client_id,
            expires_at,
            user_id=user_id,
            refresh_token=refresh.value,
        )
        self._access[access.value] = access
        self._refresh[refresh.value] = refresh
        return access, refresh

    def _token_reply(self, grant: str, access: _Token, refresh: _Token | None) -> Reply:
        self.grants.append(grant)
        data: dict[str, Any] = {
            "access_token": access.value,
            "token_type": "bearer",
            "expires_in": self.TOKEN_LIFETIME,
            "scope": "meeting:read:meeting meeting:write:meeting meeting:delete:meeting "
            "user:read:user",
        }
        if refresh is not None:
            data["refresh_token"] = refresh.value
        else:
            data["api_url"] = self.url
        return json_reply(data)

    @route("GET", "/oauth/authorize")
    def authorize(self, request: RecordedRequest) -> Reply:
        client_id = request.query_value("client_id", "")
        redirect_uri = request.query_value("redirect_uri", "")
        if request.query_value("response_type") != "code" or not redirect_uri:
            return json_reply({"code": 4700, "message": "Invalid request."}, 400)
        app = self.apps.get(client_id or "")
        if app is None or app["kind"] != "user":
            return json_reply({"code": 4700, "message": "Invalid client_id."}, 400)
        params: dict[str, str] = {}
        if self.deny_consent:
            params["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            with self.state_lock:
                self._codes[code] = {
                    "client_id": client_id,
                    "redirect_uri": redirect_uri,
                    "user_id": self.consenting_user,
                    "challenge": request.query_value("code_challenge"),
                    "method": request.query_value("code_challenge_method", "plain"),
                    "expires_at": time.time() + 300,
                }
            params["code"] = code
        state = request.query_value("state")
        if state is not None:
            params["state"] = state
        joiner = "&" if "?" in redirect_uri else "?"
        return Reply(302, b"", {"Location": f"{redirect_uri}{joiner}{urlencode(params)}"})

    @route("POST", "/oauth/token")
    def token(self, request: RecordedRequest) -> Reply:
        if self.token_latency:
            self._stopping.wait(self.token_latency)
        client = self._client(request)
        if client is None:
            return self._oauth_error("invalid_client", "Invalid client_id or client_secret", 401)
        client_id, app = client
        form = {**{k: v[0] for k, v in request.query.items()}, **request.form()}
        grant = form.get("grant_type", "")
        with self.state_lock:
            if grant == "authorization_code" and app["kind"] == "user":
                return self._grant_code(client_id, form)
            if grant == "refresh_token" and app["kind"] == "user":
                return self._grant_refresh(client_id, form)
            if grant == "account_credentials" and app["kind"] == "s2s":
                if form.get("account_id") != app["account_id"]:
                    return self._oauth_error(
                        "invalid_request", "Account does not enabled REST API."
                    )
                access = _Token(
                    f"s2s-{secrets.token_urlsafe(24)}",
                    client_id,
                    time.time() + self.TOKEN_LIFETIME,
                    account_id=app["account_id"],
                )
                self._access[access.value] = access
                return self._token_reply(grant, access, None)
        return self._oauth_error("unsupported_grant_type", "Unsupported grant type")

    def _grant_code(self, client_id: str, form: Mapping[str, str]) -> Reply:
        issued = self._codes.pop(form.get("code", ""), None)  # one use only
        if (
            issued is None
            or issued["client_id"] != client_id
            or issued["expires_at"] < time.time()
            or issued["redirect_uri"] != form.get("redirect_uri")
        ):
            return self._oauth_error("invalid_grant", "Invalid authorization code")
        challenge = issued["challenge"]
        if challenge:
            verifier = form.get("code_verifier", "")
            if issued["method"] == "S256":
                digest = hashlib.sha256(verifier.encode("ascii")).digest()
                computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            else:
                computed = verifier
            if not verifier or not secrets.compare_digest(computed, challenge):
                return self._oauth_error("invalid_grant", "Invalid code_verifier")
        access, refresh = self._issue_pair(client_id, issued["user_id"], self.TOKEN_LIFETIME)
        return self._token_reply("authorization_code", access, refresh)

    def _grant_refresh(self, client_id: str, form: Mapping[str, str]) -> Reply:
        old = self._refresh.get(form.get("refresh_token", ""))
        if old is None or old.client_id != client_id:
            return self._oauth_error("invalid_grant", "Invalid Token!")
        # Rotation: the refresh token just used stops working.
        del self._refresh[old.value]
        access, refresh = self._issue_pair(client_id, old.user_id, self.TOKEN_LIFETIME)
        return self._token_reply("refresh_token", access, refresh)

    @route("POST", "/oauth/revoke")
    def revoke(self, request: RecordedRequest) -> Reply:
        client = self._client(request)
        if client is None:
            return self._oauth_error("invalid_client", "Invalid client_id or client_secret", 401)
        token = request.query_value("token") or request.form().get("token", "")
        with self.state_lock:
            access = self._access.get(token)
            refresh = self._refresh.get(token)
            if access is None and refresh is None:
                return self._oauth_error("invalid_request", "Invalid Token")
            self.revoked.append(token)
            pair = {token}
            if access is not None:
                pair.add(access.refresh_token)
            for value, other in list(self._access.items()):
                if other.refresh_token in pair or value in pair:
                    del self._access[value]
            for value in pair:
                self._refresh.pop(value, None)
        return json_reply({"status": "success"})

    # API: users ----------------------------------------------------------------------

    def _bearer(self, request: RecordedRequest) -> _Token | Reply:
        header = request.header("Authorization")
        value = header[7:] if header.lower().startswith("bearer ") else ""
        with self.state_lock:
            token = self._access.get(value)
        if token is None:
            return json_reply({"code": 124, "message": "Invalid access token."}, 401)
        if token.expires_at <= time.time():
            return json_reply({"code": 124, "message": "Access token is expired."}, 401)
        return token

    def _user(self, token: _Token, ref: str) -> dict[str, Any] | Reply:
        with self.state_lock:
            if token.user_id:
                own = self.users.get(token.user_id)
                if own is not None and ref in ("me", own["id"], own["email"]):
                    return own
            else:
                for user in self.users.values():
                    if ref in (user["id"], user["email"]):
                        return user
        return json_reply({"code": 1001, "message": f"User does not exist: {ref}."}, 404)

    @route("GET", "/v2/users/{user_id}")
    def get_user(self, request: RecordedRequest, user_id: str) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        user = self._user(token, user_id)
        return user if isinstance(user, Reply) else json_reply(user)

    @route("GET", "/v2/users")
    def list_users(self, request: RecordedRequest) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        if token.user_id:
            return json_reply(
                {
                    "code": 4711,
                    "message": "Invalid access token, does not contain scopes:[user:read:admin].",
                },
                400,
            )
        status = request.query_value("status", "active")
        with self.state_lock:
            users = [dict(u) for u in self.users.values() if u["status"] == status]
        page, data = self._page(request, users)
        return json_reply({**data, "users": page})

    def _page(
        self, request: RecordedRequest, items: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        try:
            size = min(max(int(request.query_value("page_size", "30") or 30), 1), 300)
        except ValueError:
            size = 30
        token = request.query_value("next_page_token", "")
        with self.state_lock:
            offset = self._page_tokens.get(token or "", 0) if token else 0
            end = offset + size
            next_token = ""
            if end < len(items):
                next_token = secrets.token_urlsafe(16)
                self._page_tokens[next_token] = end
        pages = max(-(-len(items) // size), 1)
        return items[offset:end], {
            "page_count": pages,
            "page_number": offset // size + 1,
            "page_size": size,
            "total_records": len(items),
            "next_page_token": next_token,
        }

    # API: meetings -------------------------------------------------------------------

    def _count_call(self, user_id: str) -> Reply | None:
        """Count one create/update call of ``user_id``, or answer Zoom's daily-limit 429."""
        key = (user_id, self.today())
        with self.state_lock:
            if self._calls[key] >= self.daily_limit:
                return json_reply(
                    {"code": 429, "message": DAILY_LIMIT_MESSAGE.format(limit=self.daily_limit)},
                    429,
                    {
                        "X-RateLimit-Type": "Daily-limit",
                        "X-RateLimit-Category": "Medium",
                        "X-RateLimit-Limit": str(self.daily_limit),
                        "X-RateLimit-Remaining": "0",
                    },
                )
            self._calls[key] += 1
        return None

    @staticmethod
    def _invalid(field: str, message: str) -> Reply:
        return json_reply(
            {
                "code": 300,
                "message": "Validation Failed.",
                "errors": [{"field": field, "message": message}],
            },
            400,
        )

    def _check_body(self, request: RecordedRequest) -> dict[str, Any] | Reply:
        try:
            body = request.json()
        except ValueError:
            return json_reply({"code": 300, "message": "Request Body should be a valid JSON."}, 400)
        if not isinstance(body, dict):
            return json_reply({"code": 300, "message": "Request Body should be a valid JSON."}, 400)
        if "type" in body and body["type"] not in (1, 2, 3, 8):
            return self._invalid("type", "Invalid meeting type.")
        if "start_time" in body and _start(body["start_time"], body.get("timezone")) is None:
            return self._invalid("start_time", "Invalid start_time.")
        if "duration" in body and not isinstance(body["duration"], int):
            return self._invalid("duration", "Invalid duration.")
        if len(str(body.get("agenda", ""))) > 2000:
            return self._invalid("agenda", "The agenda can be at most 2000 characters.")
        password = body.get("password")
        if password is not None and (
            not isinstance(password, str)
            or len(password) > 10
            or not set(password) <= _PASSWORD_CHARS
        ):
            return self._invalid(
                "password",
                "Passcode can only contain the following characters: [a-zA-Z0-9@-_*] and can "
                "have a maximum of 10 characters.",
            )
        return body

    def _visible(self, token: _Token, meeting_id: str) -> dict[str, Any] | Reply:
        with self.state_lock:
            try:
                meeting = self.meetings.get(int(meeting_id))
            except ValueError:
                meeting = None
            if meeting is not None and (not token.user_id or meeting["host_id"] == token.user_id):
                return meeting
        return json_reply(
            {"code": 3001, "message": f"Meeting {meeting_id} is not found or has expired."}, 404
        )

    def _public(self, meeting: Mapping[str, Any], *, start_url: bool = True) -> dict[str, Any]:
        data = {k: v for k, v in meeting.items() if not k.startswith("_")}
        if start_url:
            # A new one at each read, as Zoom's expire.
            data["start_url"] = (
                f"https://{self.JOIN_HOST}/s/{meeting['id']}?zak={secrets.token_urlsafe(24)}"
            )
        return data

    @route("POST", "/v2/users/{user_id}/meetings")
    def create_meeting(self, request: RecordedRequest, user_id: str) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        user = self._user(token, user_id)
        if isinstance(user, Reply):
            return user
        body = self._check_body(request)
        if isinstance(body, Reply):
            return body
        limited = self._count_call(user["id"])
        if limited is not None:
            return limited
        with self.state_lock:
            meeting_id = next(self._ids)
            password = str(body.get("password") or "")
            encrypted = secrets.token_urlsafe(24) if password else ""
            join_url = f"https://{self.JOIN_HOST}/j/{meeting_id}"
            if encrypted:
                join_url += f"?pwd={encrypted}"
            start = _start(body.get("start_time"), body.get("timezone")) or self.now()
            meeting: dict[str, Any] = {
                "uuid": base64.b64encode(secrets.token_bytes(16)).decode(),
                "id": meeting_id,
                "host_id": user["id"],
                "host_email": user["email"],
                "topic": str(body.get("topic") or "Zoom Meeting"),
                "type": int(body.get("type", 2)),
                "status": "waiting",
                "start_time": _zoom_time(start),
                "duration": int(body.get("duration", 60)),
                "timezone": str(body.get("timezone") or user["timezone"]),
                "agenda": str(body.get("agenda") or ""),
                "created_at": _zoom_time(self.now()),
                "join_url": join_url,
                "password": password,
                "h323_password": "".join(secrets.choice("0123456789") for _ in range(6))
                if password
                else "",
                "encrypted_password": encrypted,
                "pre_schedule": False,
                "settings": {
                    "host_video": False,
                    "participant_video": False,
                    "join_before_host": False,
                    "mute_upon_entry": False,
                    "approval_type": 2,
                    "audio": "voip",
                    "auto_recording": "none",
                    "waiting_room": False,
                    **(body.get("settings") or {}),
                },
            }
            self.meetings[meeting_id] = meeting
            return json_reply(self._public(meeting), 201)

    @route("GET", "/v2/users/{user_id}/meetings")
    def list_meetings(self, request: RecordedRequest, user_id: str) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        user = self._user(token, user_id)
        if isinstance(user, Reply):
            return user
        kind = request.query_value("type", "scheduled")
        now = self.now()
        items = []
        with self.state_lock:
            mine = sorted(
                (m for m in self.meetings.values() if m["host_id"] == user["id"]),
                key=lambda m: (m["start_time"], m["id"]),
            )
            for meeting in mine:
                start = _start(meeting["start_time"], None) or now
                end = start + timedelta(minutes=meeting["duration"])
                if kind in ("upcoming", "upcoming_meetings") and end <= now:
                    continue
                item = {
                    key: meeting[key]
                    for key in (
                        "uuid",
                        "id",
                        "host_id",
                        "topic",
                        "type",
                        "start_time",
                        "duration",
                        "timezone",
                        "created_at",
                        "join_url",
                    )
                }
                if meeting["agenda"]:
                    item["agenda"] = meeting["agenda"][:_LIST_AGENDA_MAX]
                items.append(item)
        page, data = self._page(request, items)
        return json_reply({**data, "meetings": page})

    @route("GET", "/v2/meetings/{meeting_id}")
    def get_meeting(self, request: RecordedRequest, meeting_id: str) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        meeting = self._visible(token, meeting_id)
        if isinstance(meeting, Reply):
            return meeting
        with self.state_lock:
            return json_reply(self._public(meeting))

    @route("PATCH", "/v2/meetings/{meeting_id}")
    def update_meeting(self, request: RecordedRequest, meeting_id: str) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        meeting = self._visible(token, meeting_id)
        if isinstance(meeting, Reply):
            return meeting
        body = self._check_body(request)
        if isinstance(body, Reply):
            return body
        limited = self._count_call(meeting["host_id"])
        if limited is not None:
            return limited
        with self.state_lock:
            for key in ("topic", "agenda", "duration", "timezone", "type"):
                if key in body:
                    meeting[key] = body[key]
            if "start_time" in body:
                start = _start(body["start_time"], body.get("timezone", meeting["timezone"]))
                meeting["start_time"] = _zoom_time(start or self.now())
            if "password" in body:
                meeting["password"] = body["password"]
            meeting["settings"] = {**meeting["settings"], **(body.get("settings") or {})}
        return empty_reply(204)

    @route("DELETE", "/v2/meetings/{meeting_id}")
    def delete_meeting(self, request: RecordedRequest, meeting_id: str) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        meeting = self._visible(token, meeting_id)
        if isinstance(meeting, Reply):
            return meeting
        with self.state_lock:
            self.meetings.pop(meeting["id"], None)
            self.deleted.append(meeting["id"])
        return empty_reply(204)

    # Webhooks ------------------------------------------------------------------------

    def send_webhook(
        self,
        url: str,
        event: str,
        payload: Mapping[str, Any],
        secret: str,
        timestamp: str | int | None = None,
        *,
        signature: str | None = None,
        drop_headers: tuple[str, ...] = (),
        client: Any = None,
    ) -> Any:
        """Post a webhook to ``url``, signed with ``secret`` as Zoom signs it.

        Args:
            url: Where to post: an absolute URL, or a path when ``client`` is given.
            event: The event name (``meeting.deleted``, ``endpoint.url_validation``…).
            payload: The event's ``payload``.
            secret: The secret token to sign with (a wrong one signs wrongly).
            timestamp: ``x-zm-request-timestamp`` in seconds (default now; old = stale).
            signature: Sent instead of the correct signature.
            drop_headers: Headers to leave out (``"x-zm-signature"``…).
            client: A Django test client to post through instead of HTTP.

        Returns:
            The ``requests`` response, or the test client's response.
        """
        body, headers = webhook_request(event, payload, secret, timestamp, signature=signature)
        for name in drop_headers:
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        if client is not None:
            content_type = headers.pop("Content-Type")
            return client.post(url, data=body, content_type=content_type, headers=headers)
        with requests.Session() as session:
            session.trust_env = False  # a loopback URL must not go through a proxy
            return session.post(url, data=body, headers=headers, timeout=5)


def _zoom_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _start(value: Any, zone: Any) -> datetime | None:
    """Read a start time: UTC with ``Z``, or local time in ``zone`` (both are Zoom's)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        try:
            parsed = parsed.replace(tzinfo=ZoneInfo(str(zone or "UTC")))
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return parsed.astimezone(UTC)
