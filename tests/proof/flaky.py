"""A meetings API that fails a share of its calls at random, and a provider that uses it.

:class:`FlakyMeetingsServer` is a real HTTP server (a :class:`FakeServer`) with bearer
tokens, a refresh-token endpoint and idempotent look-ups. It answers a chosen share of
calls with one of four faults, picked at random:

* ``error``: a 500, 502, 503 or 504 without doing anything;
* ``rate_limit``: 429 with a ``Retry-After`` of 1 to 30 seconds;
* ``timeout``: the call is carried out, then the answer is held past the client's read
  timeout (the provider did it, the app never heard);
* ``expired``: the access token presented is dropped and the call answered 401, as when
  a token expires early. The provider refreshes it with its refresh token and retries.
  Only tokens older than ``TOKEN_MIN_AGE`` expire: a token does not die the moment it is
  issued (a 401 on a brand-new token means the grant itself was revoked).

:class:`FlakyProvider` is a provider written the way the built-in ones are: every call
through ``self.session()``, errors through ``raise_for_status``, a refresh under
``credentials_lock``, and a look-up by ``request_id`` before creating a meeting whose
earlier attempt may have reached the provider.

Enable it with ``"CLASS": "tests.proof.flaky.FlakyProvider"`` and ``API_BASE_URL``.
"""

from __future__ import annotations

import collections
import itertools
import random
import secrets
import threading
import time
from typing import Any

from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    MeetingDetails,
    MeetingSpec,
    Provider,
    ProviderAccount,
    credentials_lock,
)
from wagtail_bookings_vc.providers.http import raise_for_status
from wagtail_bookings_vc.testing import FakeServer, RecordedRequest, Reply, json_reply, route

MEETING_HOST = "meet.flaky.test"
FAULT_KINDS = ("error", "rate_limit", "timeout", "expired")
TOKEN_PATH = "/oauth/token"
#: Seconds a new access token lives at least.
TOKEN_MIN_AGE = 2.0


class FlakyMeetingsServer(FakeServer):
    """A meetings API behind bearer tokens that fails ``fault_rate`` of its calls.

    Args:
        fault_rate: The share of calls answered with a fault (0 to 1).
        seed: Seed of the random faults, so that a run can be repeated.
        hold_seconds: How long a ``timeout`` fault holds its answer; longer than the
            provider's read timeout.
        fault_kinds: The faults to pick from.

    Attributes:
        meetings: The meetings that exist, by id.
        faults: How many calls got each fault.
        served: How many calls reached the API, by ``"METHOD path-kind"``.
        refreshes: How many access tokens were refreshed.
    """

    def __init__(
        self,
        *,
        fault_rate: float = 0.2,
        seed: int | None = None,
        hold_seconds: float = 0.3,
        fault_kinds: tuple[str, ...] = FAULT_KINDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fault_rate = fault_rate
        self.hold_seconds = hold_seconds
        self.fault_kinds = fault_kinds
        self.meetings: dict[str, dict[str, Any]] = {}
        self.faults: collections.Counter[str] = collections.Counter()
        self.served: collections.Counter[str] = collections.Counter()
        self.refreshes = 0
        self._random = random.Random(seed)  # noqa: S311 - faults, not secrets
        self._ids = itertools.count(1)
        self._state = threading.Lock()
        # Access token -> when it was issued (monotonic seconds).
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()

    # Accounts ---------------------------------------------------------------------

    def issue_credentials(self) -> dict[str, Any]:
        """Tokens for a new account, as a provider's consent flow would hand them out."""
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        with self._state:
            self._access[access] = time.monotonic()
            self._refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer"}

    def _authorised(self, request: RecordedRequest) -> bool:
        header = request.header("Authorization")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._state:
            return token in self._access

    def _drop_token(self, request: RecordedRequest) -> None:
        header = request.header("Authorization")
        with self._state:
            self._access.pop(header[7:], None)

    def _token_age(self, request: RecordedRequest) -> float:
        header = request.header("Authorization")
        issued = self._access.get(header[7:] if header.startswith("Bearer ") else "")
        return float("inf") if issued is None else time.monotonic() - issued

    # Faults -----------------------------------------------------------------------

    def _pick_fault(self, request: RecordedRequest) -> str | None:
        with self._state:
            if self._random.random() >= self.fault_rate:
                return None
            kind = self._random.choice(self.fault_kinds)
            if kind == "expired" and (
                request.path == TOKEN_PATH or self._token_age(request) < TOKEN_MIN_AGE
            ):
                # The token endpoint takes no bearer token, and a new token does not expire
                # yet: fail the call another way.
                kind = "error"
            self.faults[kind] += 1
            return kind

    def _random_int(self, low: int, high: int) -> int:
        with self._state:
            return self._random.randint(low, high)

    def dispatch(self, request: RecordedRequest) -> Reply:
        kind = self._pick_fault(request)
        if kind == "error":
            return self.error_reply(self._random_int(500, 504))
        if kind == "rate_limit":
            return self.rate_limited_reply(429, str(self._random_int(1, 30)))
        if kind == "expired":
            self._drop_token(request)
            return self.unauthorized_reply()
        reply = super().dispatch(request)
        with self._state:
            self.served[f"{request.method} {request.path.split('/')[1]}"] += 1
        if kind == "timeout":
            # Done, but the answer comes after the client has stopped waiting.
            time.sleep(self.hold_seconds)
        return reply

    # The API ----------------------------------------------------------------------

    @route("POST", TOKEN_PATH)
    def token(self, request: RecordedRequest) -> Reply:
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return json_reply({"error": "unsupported_grant_type"}, 400)
        with self._state:
            if form.get("refresh_token") not in self._refresh:
                return json_reply({"error": "invalid_grant"}, 400)
            # Refresh tokens stay valid (as Google's do): only access tokens are new.
            access = secrets.token_urlsafe(24)
            self._access[access] = time.monotonic()
            self.refreshes += 1
        return json_reply({"access_token": access, "token_type": "Bearer", "expires_in": 3600})

    def _answer(self, meeting_id: str) -> dict[str, Any]:
        return {
            "id": meeting_id,
            "join_url": f"https://{MEETING_HOST}/j/{meeting_id}",
            "start_url": f"https://{MEETING_HOST}/s/{meeting_id}",
            **self.meetings[meeting_id],
        }

    @route("POST", "/meetings")
    def create(self, request: RecordedRequest) -> Any:
        if not self._authorised(request):
            return self.unauthorized_reply()
        body = request.json()
        with self._state:
            meeting_id = f"m{next(self._ids)}"
            self.meetings[meeting_id] = {
                key: body.get(key) for key in ("request_id", "reference", "topic", "start", "end")
            }
            return json_reply(self._answer(meeting_id), status=201)

    @route("GET", "/meetings")
    def find(self, request: RecordedRequest) -> Any:
        if not self._authorised(request):
            return self.unauthorized_reply()
        wanted = request.query_value("request_id")
        with self._state:
            found = [
                self._answer(meeting_id)
                for meeting_id, meeting in self.meetings.items()
                if meeting["request_id"] == wanted
            ]
        return {"meetings": found}

    @route("PATCH", "/meetings/{meeting_id}")
    def update(self, request: RecordedRequest, meeting_id: str) -> Any:
        if not self._authorised(request):
            return self.unauthorized_reply()
        body = request.json()
        with self._state:
            if meeting_id not in self.meetings:
                return json_reply({"error": {"code": 404, "message": "No such meeting."}}, 404)
            self.meetings[meeting_id].update(
                {key: body[key] for key in ("topic", "start", "end") if key in body}
            )
            return self._answer(meeting_id)

    @route("DELETE", "/meetings/{meeting_id}")
    def delete(self, request: RecordedRequest, meeting_id: str) -> Any:
        if not self._authorised(request):
            return self.unauthorized_reply()
        with self._state:
            self.meetings.pop(meeting_id, None)
        return None

    # What the tests read ----------------------------------------------------------

    def meetings_by_request(self) -> dict[str, list[str]]:
        """Meeting ids grouped by the ``request_id`` they were made for."""
        grouped: dict[str, list[str]] = collections.defaultdict(list)
        with self._state:
            for meeting_id, meeting in self.meetings.items():
                grouped[meeting["request_id"]].append(meeting_id)
        return dict(grouped)


class FlakyProvider(Provider):
    """A provider for :class:`FlakyMeetingsServer` at its ``API_BASE_URL`` option."""

    id = "flaky"
    name = "Flaky"
    needs_account = True

    def _url(self, path: str) -> str:
        return str(self.options["API_BASE_URL"]).rstrip("/") + path

    def _refresh(self, session: Any, account: ProviderAccount, used: str) -> None:
        with credentials_lock(account):
            credentials = account.credentials
            if credentials.get("access_token") != used:
                return  # Another worker refreshed it meanwhile.
            response = session.post(
                self._url(TOKEN_PATH),
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": credentials.get("refresh_token", ""),
                },
            )
            data = raise_for_status(response, str(self.name)).json()
            account.credentials = {**credentials, "access_token": data["access_token"]}

    def _send(self, account: ProviderAccount | None, method: str, path: str, **kwargs: Any) -> Any:
        """Make one API call with the account's access token, refreshed once on a 401."""
        if account is None:
            raise AuthorizationExpired()
        with self.session() as session:
            token = account.credentials.get("access_token", "")
            response = session.request(
                method, self._url(path), headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
            if response.status_code != 401:
                return response
            self._refresh(session, account, token)
            token = account.credentials.get("access_token", "")
            return session.request(
                method, self._url(path), headers={"Authorization": f"Bearer {token}"}, **kwargs
            )

    def _call(self, account: ProviderAccount | None, method: str, path: str, **kwargs: Any) -> Any:
        return raise_for_status(self._send(account, method, path, **kwargs), str(self.name))

    @staticmethod
    def _details(data: dict[str, Any]) -> MeetingDetails:
        return MeetingDetails(
            external_id=data["id"], join_url=data["join_url"], host_url=data["start_url"]
        )

    @staticmethod
    def _body(spec: MeetingSpec) -> dict[str, Any]:
        return {
            "request_id": spec.request_id,
            "reference": spec.reference,
            "topic": spec.topic,
            "start": spec.start.isoformat(),
            "end": spec.end.isoformat(),
        }

    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        if spec.may_exist:
            # An earlier attempt may have got through: never make a second meeting.
            found = self._call(
                account, "GET", "/meetings", params={"request_id": spec.request_id}
            ).json()["meetings"]
            if found:
                return self.update_meeting(account, found[0]["id"], spec)
        response = self._call(account, "POST", "/meetings", json=self._body(spec))
        return self._details(response.json())

    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        response = self._call(account, "PATCH", f"/meetings/{external_id}", json=self._body(spec))
        return self._details(response.json())

    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        response = self._send(account, "DELETE", f"/meetings/{external_id}")
        if response.status_code != 404:  # Already gone counts as deleted.
            raise_for_status(response, str(self.name))
