"""Test providers that record what the app asks of them.

:class:`RecordingProvider` answers in-process: every create, update and delete is kept
in :data:`calls`, and :func:`fail_next` makes the next calls raise a chosen error.
:class:`LoopbackProvider` talks HTTP to a :class:`FakeMeetingsServer` on 127.0.0.1, so
the same lifecycle also runs through the real HTTP helper and the error mapping of
``providers/http.py``.

Enable them with ``override_settings`` (the ``recorder`` fixture in ``conftest.py`` does)::

    WAGTAIL_BOOKINGS_VC = {
        ...,
        "PROVIDERS": {
            "recorder": {"CLASS": "tests.recording_provider.RecordingProvider"},
            "loopback": {"CLASS": "tests.recording_provider.LoopbackProvider",
                         "API_BASE_URL": server.url},
        },
    }
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import secrets
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    AuthorizationRequest,
    MeetingDetails,
    MeetingSpec,
    OrganisationField,
    PermanentFailure,
    Provider,
    ProviderAccount,
    ProviderError,
    ProviderUser,
    WebhookEvent,
    WebhookRejected,
    WebhookReply,
)
from wagtail_bookings_vc.providers.http import raise_for_status
from wagtail_bookings_vc.testing import FakeServer, json_reply, route

MEETING_HOST = "meet.example.test"


@dataclasses.dataclass(frozen=True)
class Call:
    """One call the app made.

    Attributes:
        action: ``"create"``, ``"update"`` or ``"delete"``.
        external_id: The meeting's id (the new one for a create that succeeded).
        spec: What the meeting was made or changed for (``None`` for a delete).
        account_id: The primary key of the account the call was made with.
        error: The error raised instead of an answer, if any.
    """

    action: str
    external_id: str
    spec: MeetingSpec | None
    account_id: Any
    error: ProviderError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


#: Every call, failed ones included, oldest first.
calls: list[Call] = []
_failures: collections.deque[ProviderError] = collections.deque()
_lock = threading.Lock()
_numbers = itertools.count(1)
_hold: dict[str, threading.Event] = {}


def reset() -> None:
    """Forget the calls, the planned failures and any hold."""
    with _lock:
        calls.clear()
        _failures.clear()
        _hold.clear()


def fail_next(n: int, error: ProviderError) -> None:
    """Make the next ``n`` calls (of any kind) raise ``error``."""
    with _lock:
        _failures.extend([error] * n)


def hold_creates() -> tuple[threading.Event, threading.Event]:
    """Make the next create wait until released, as a slow provider would.

    Returns:
        ``(entered, release)``: ``entered`` is set once a create has started; set
        ``release`` to let it finish.
    """
    entered, release = threading.Event(), threading.Event()
    with _lock:
        _hold["entered"] = entered
        _hold["release"] = release
    return entered, release


def succeeded(action: str) -> list[Call]:
    """The calls of one kind that succeeded."""
    with _lock:
        return [call for call in calls if call.action == action and call.ok]


def attempted(action: str) -> list[Call]:
    """Every call of one kind, failed ones included."""
    with _lock:
        return [call for call in calls if call.action == action]


def _account_id(account: ProviderAccount | None) -> Any:
    return getattr(account, "pk", None)


class RecordingProvider(Provider):
    """A provider that makes nothing anywhere and remembers every call."""

    id = "recorder"
    name = "Recorder"
    needs_account = True

    def _start(self, action: str, external_id: str, spec: MeetingSpec | None, account: Any) -> None:
        with _lock:
            error = _failures.popleft() if _failures else None
            entered = _hold.pop("entered", None) if action == "create" else None
            release = _hold.pop("release", None) if action == "create" else None
        if entered is not None and release is not None:
            entered.set()
            release.wait(timeout=30)
        if error is not None:
            with _lock:
                calls.append(Call(action, external_id, spec, _account_id(account), error))
            raise error

    def _details(self, external_id: str, secret: str) -> MeetingDetails:
        return MeetingDetails(
            external_id=external_id,
            join_url=f"https://{MEETING_HOST}/j/{external_id}?pwd={secret}",
            host_url=f"https://{MEETING_HOST}/s/{external_id}?zak={secret}",
            passcode="246810",
            extra={"secret": secret},
        )

    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        self._start("create", "", spec, account)
        external_id = f"rec-{next(_numbers)}"
        with _lock:
            calls.append(Call("create", external_id, spec, _account_id(account)))
        return self._details(external_id, secrets.token_hex(8))

    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        self._start("update", external_id, spec, account)
        with _lock:
            calls.append(Call("update", external_id, spec, _account_id(account)))
        return self._details(external_id, secrets.token_hex(8))

    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        self._start("delete", external_id, None, account)
        with _lock:
            calls.append(Call("delete", external_id, None, _account_id(account)))


# --------------------------------------------------------------------------------------
# The same over HTTP
# --------------------------------------------------------------------------------------


class FakeMeetingsServer(FakeServer):
    """A small meetings API: ``POST /meetings``, ``PATCH`` and ``DELETE /meetings/{id}``.

    Attributes:
        meetings: The meetings that exist now, by id.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.meetings: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def _answer(self, meeting_id: str) -> dict[str, Any]:
        return {
            "id": meeting_id,
            "join_url": f"https://{MEETING_HOST}/http/{meeting_id}",
            "start_url": f"https://{MEETING_HOST}/http/{meeting_id}?host=1",
            **self.meetings[meeting_id],
        }

    @route("POST", "/meetings")
    def create(self, request: Any) -> Any:
        meeting_id = f"http-{next(self._ids)}"
        self.meetings[meeting_id] = dict(request.json())
        return json_reply(self._answer(meeting_id), status=201)

    @route("PATCH", "/meetings/{meeting_id}")
    def update(self, request: Any, meeting_id: str) -> Any:
        if meeting_id not in self.meetings:
            return json_reply({"code": 3001, "message": "Meeting not found."}, status=404)
        self.meetings[meeting_id].update(request.json())
        return self._answer(meeting_id)

    @route("DELETE", "/meetings/{meeting_id}")
    def delete(self, request: Any, meeting_id: str) -> None:
        self.meetings.pop(meeting_id, None)


class LoopbackProvider(Provider):
    """A provider that calls :class:`FakeMeetingsServer` at its ``API_BASE_URL`` option."""

    id = "loopback"
    name = "Loopback"
    needs_account = True

    def _url(self, path: str) -> str:
        return str(self.options["API_BASE_URL"]).rstrip("/") + path

    def _body(self, spec: MeetingSpec) -> dict[str, Any]:
        return {
            "topic": spec.topic,
            "start": spec.start.isoformat(),
            "end": spec.end.isoformat(),
            "agenda": spec.agenda_with_reference(),
        }

    @staticmethod
    def _details(data: dict[str, Any]) -> MeetingDetails:
        return MeetingDetails(
            external_id=data["id"], join_url=data["join_url"], host_url=data["start_url"]
        )

    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        with self.session() as session:
            response = session.post(self._url("/meetings"), json=self._body(spec))
            return self._details(raise_for_status(response, "Loopback").json())

    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        with self.session() as session:
            response = session.patch(self._url(f"/meetings/{external_id}"), json=self._body(spec))
            return self._details(raise_for_status(response, "Loopback").json())

    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        with self.session() as session:
            response = session.delete(self._url(f"/meetings/{external_id}"))
            if response.status_code != 404:
                raise_for_status(response, "Loopback")


# --------------------------------------------------------------------------------------
# An account that connects through a consent screen
# --------------------------------------------------------------------------------------

#: What the consenting "provider" knows: the codes it issued, and who revoked what.
oauth_log: dict[str, list[Any]] = {"revoked": [], "finished": []}


class OAuthRecordingProvider(RecordingProvider):
    """The recording provider, connected through a pretend consent screen.

    ``start_authorization`` points at ``https://consent.invalid/authorize``; a callback
    with ``code=good-<user>`` connects as that user, any other code is refused. It has
    organisation accounts (one field, ``org_key``; ``bad`` is refused) with two users, a
    daily call limit from the ``DAILY_CALL_LIMIT`` option, and webhooks whose body is the
    JSON of one event, signed with the header ``X-Test-Signature: ok``.
    """

    id = "oauthrec"
    name = "Consenting recorder"
    needs_oauth = True
    organisation_fields = (OrganisationField("org_key", "Organisation key", secret=True),)

    def start_authorization(self, redirect_uri: str, state: str) -> AuthorizationRequest:
        query = urlencode({"state": state, "redirect_uri": redirect_uri})
        return AuthorizationRequest(
            url=f"https://consent.invalid/authorize?{query}", flow={"verifier": "v-" + state[:6]}
        )

    def finish_authorization(
        self,
        account: ProviderAccount,
        callback: Mapping[str, str],
        redirect_uri: str,
        flow: Mapping[str, Any],
    ) -> None:
        code = callback.get("code", "")
        if not code.startswith("good-"):
            raise AuthorizationExpired("The consent code was refused.")
        oauth_log["finished"].append({"code": code, "flow": dict(flow)})
        user = code.removeprefix("good-")
        account.credentials = {"access_token": f"token-{user}", "refresh_token": f"r-{user}"}
        account.external_user_id = user
        account.external_email = f"{user}@provider.example"

    def connect_organisation(self, account: ProviderAccount, values: Mapping[str, str]) -> None:
        if values.get("org_key") == "bad":
            raise PermanentFailure("The organisation key was refused.")
        account.credentials = {"org_token": "org-" + values["org_key"]}

    def list_users(self, account: ProviderAccount) -> list[ProviderUser]:
        return [
            ProviderUser("u-1", "one@org.example", "User One"),
            ProviderUser("u-2", "two@org.example", "User Two"),
        ]

    def disconnect(self, account: ProviderAccount) -> None:
        oauth_log["revoked"].append(dict(account.credentials))

    def usage(self, account: ProviderAccount) -> Mapping[str, Any]:
        if account.credentials.get("plan") == "basic":
            return {"max_meeting_minutes": 40}
        return {}

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookReply:
        if headers.get("X-Test-Signature") != "ok":
            raise WebhookRejected("bad signature")
        data = json.loads(body)
        start = data.get("start")
        event = WebhookEvent(
            kind=data["kind"],
            external_id=data.get("external_id", ""),
            external_user_id=data.get("external_user_id", ""),
            start=datetime.fromisoformat(start) if start else None,
        )
        return WebhookReply(data={"ok": True}, events=(event,))


def reset_oauth() -> None:
    oauth_log["revoked"].clear()
    oauth_log["finished"].clear()
