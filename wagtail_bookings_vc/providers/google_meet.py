"""Google Meet through Google Calendar: each booking becomes an event with a Meet link.

Google has no API that makes a bare Meet link for a given time: the link belongs to a
Calendar event. So the booking becomes an event on the connected account's calendar
(the staff member's, or the site's default account), which doubles as the staff
member's calendar sync. Calls go through the official client, google-api-python-client
(``build("calendar", "v3", static_discovery=True)``), with google-auth credentials.

Creating is idempotent twice over: the event's id is chosen here (``spec.request_id``, in
Google's base32hex alphabet), so a retried insert gets ``409 duplicate`` and the event is
read back instead of made twice; and the conference's ``createRequest.requestId`` is the
same on every attempt. Google makes the Meet conference asynchronously: an answer may say
``pending``, and the event is read again a few times until it says ``success``.

References: https://developers.google.com/identity/protocols/oauth2/web-server (consent,
tokens, revocation) and the Calendar v3 discovery document (``events.insert``, ``get``,
``patch``, ``delete``; ``Event.conferenceData``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import google.auth.exceptions
import google.oauth2.credentials
import google_auth_httplib2
import httplib2
import jwt
import requests
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from .base import (
    AuthorizationExpired,
    AuthorizationRequest,
    MeetingDetails,
    MeetingSpec,
    PermanentFailure,
    Provider,
    ProviderAccount,
    ProviderError,
    RateLimited,
    TemporaryFailure,
    credentials_lock,
    interpolate_lazy,
)
from .http import error_from_response, parse_retry_after, redact_url, scrub_text

__all__ = ["CALENDAR_SCOPE", "SCOPES", "GoogleMeetProvider", "event_id_for"]

logger = logging.getLogger(__name__)

#: Insert, change and delete events on the user's calendars; nothing else.
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
#: What the consent screen asks for: the calendar scope, and who the user is (the
#: ``id_token``'s ``email`` claim names the connected account).
SCOPES: tuple[str, ...] = (CALENDAR_SCOPE, "openid", "email")

# Google's id alphabet for events: base32hex digits, 5 to 1024 of them.
_EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
# How many event ids one meeting may go through when earlier ones were deleted at Google
# (an id of a deleted event cannot be used again).
_MAX_GENERATIONS = 6
# Rate-limit reasons Google gives with 403 or 429 ("usageLimits" domain).
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
# 403 reasons for a token without the calendar scope (unticked on the consent screen).
_SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
_POLL_DELAY_MAX = 8.0
_EXPIRY_MARGIN = timedelta(minutes=4)


def event_id_for(request_id: str, generation: int = 0) -> str:
    """Return the event id of one meeting's ``generation``-th event.

    ``request_id`` is lower-case hex in the app, which is already valid base32hex; any
    other value is hashed into that alphabet. Generation 0 is the meeting's first event;
    later generations are for an event made again after the earlier one was deleted at
    Google, whose id Google keeps reserved (a new insert with it gets ``409``).
    """
    base = request_id.lower()
    if not _EVENT_ID_RE.match(base) or len(base) > 1000:
        digest = hashlib.sha256(request_id.encode("utf-8")).digest()
        base = base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()[:32]
    return base if generation == 0 else f"{base}g{generation}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _expiry_to_text(expiry: datetime | None) -> str:
    """google-auth keeps expiry as naive UTC; store it with an explicit zone."""
    if expiry is None:
        return ""
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return expiry.astimezone(UTC).isoformat()


def _expiry_from_text(value: Any) -> datetime | None:
    """Parse a stored expiry into the naive UTC datetime google-auth expects."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


# --------------------------------------------------------------------------------------
# Transport: google-api-python-client over the app's requests session
# --------------------------------------------------------------------------------------


class _SessionHttp:
    """An ``httplib2.Http`` look-alike that sends through the provider's requests session.

    Why not ``httplib2.Http`` (what the client library uses by default): it has one
    socket timeout instead of the app's (connect, read) pair, reads proxies from the
    environment unless told not to, and re-sends a POST whose connection dropped, which
    hides a lost answer. The provider's session (:meth:`Provider.session`) already applies
    ``HTTP_TIMEOUT`` and ``HTTP_TRUST_ENV`` (off in tests, so a loopback fake is never
    reached through a proxy), maps timeouts and dropped connections to
    :class:`TemporaryFailure` and logs without secrets, like every other provider's calls.
    googleapiclient and google-auth only need ``request()`` returning
    ``(httplib2.Response, bytes)``.
    """

    def __init__(self, session: requests.Session, provider_name: str, token_uri: str) -> None:
        self.session = session
        self.provider_name = provider_name
        self.token_uri = token_uri.split("?", 1)[0]

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        redirections: int = 0,
        connection_type: Any = None,
        **kwargs: Any,
    ) -> tuple[httplib2.Response, bytes]:
        if isinstance(body, str):
            body = body.encode("utf-8")
        response = self.session.request(
            method, uri, data=body, headers=dict(headers or {}), allow_redirects=False
        )
        if uri.split("?", 1)[0] == self.token_uri and (
            response.status_code >= 500 or response.status_code == 429
        ):
            # google-auth would retry the token endpoint itself, sleeping in the worker;
            # retries belong to the app's job queue.
            error = error_from_response(response, self.provider_name)
            if error is not None:
                raise error
        info = {
            name.lower(): value
            for name, value in response.headers.items()
            # requests has already undone the transfer and content encodings.
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        }
        info["status"] = str(response.status_code)
        reply = httplib2.Response(info)
        reply.reason = response.reason or ""
        return reply, response.content

    def close(self) -> None:
        self.session.close()


class _AccountCredentials(google.oauth2.credentials.Credentials):
    """google-auth user credentials that refresh one caller at a time and save the result.

    google-auth refreshes before a call when the access token has expired, and once more
    when Google answers 401. Both go through :meth:`refresh`, which holds the account's
    credentials lock, uses a token another worker refreshed meanwhile, and otherwise
    refreshes and assigns the new credentials to the account (saved at once). Google's
    refresh answers carry no new refresh token, so the stored one is kept.
    """

    def __init__(self, account: ProviderAccount, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bvc_account = account

    def refresh(self, request: Any) -> None:
        refused_token = self.token
        with credentials_lock(self._bvc_account):
            stored = dict(self._bvc_account.credentials or {})
            if stored.get("refresh_token"):
                self._refresh_token = stored["refresh_token"]
            expiry = _expiry_from_text(stored.get("expiry"))
            fresh = expiry is None or expiry - _EXPIRY_MARGIN > _utcnow().replace(tzinfo=None)
            if stored.get("token") and stored["token"] != refused_token and fresh:
                # Another worker refreshed while this one waited for the lock.
                self.token = stored["token"]
                self.expiry = expiry
                return
            super().refresh(request)
            self._bvc_account.credentials = {
                **stored,
                "token": self.token,
                "refresh_token": self.refresh_token or stored.get("refresh_token", ""),
                "expiry": _expiry_to_text(self.expiry),
            }


# --------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------


class GoogleMeetProvider(Provider):
    """Google Meet links on events of the connected Google Calendar.

    Options (``WAGTAIL_BOOKINGS_VC["PROVIDERS"]["google_meet"]``):

    ``CLIENT_ID``, ``CLIENT_SECRET``
        The site's OAuth client ("Web application") from the Google Cloud console.
        Required.
    ``CALENDAR_ID``
        The calendar events go on. Default ``primary``: the connected user's own calendar.
    ``API_BASE_URL``, ``AUTH_URI``, ``TOKEN_URI``, ``REVOKE_URI``
        Google's endpoints (defaults from the registry); tests point them at a fake.
    ``POLL_ATTEMPTS``, ``POLL_DELAY``
        How often, and after how many seconds (doubling each time), an event whose Meet
        conference is still ``pending`` is read again before the job gives up for now and
        tries later. Default 4 times from 0.5 s.

    ``spec.options`` read: ``invite_attendees`` (off by default). When on, the people
    booked are added as attendees and Google emails them the invitation, with the Meet
    link itself, which bypasses the site's payment and join-window checks. When off, the
    event has no attendees and no email is sent by Google.
    """

    id = "google_meet"
    name = _("Google Meet")
    needs_oauth = True
    needs_account = True
    shared_link = False
    default_options: Mapping[str, Any] = {
        "CLIENT_ID": "",
        "CLIENT_SECRET": "",
        "CALENDAR_ID": "primary",
        "API_BASE_URL": "https://www.googleapis.com/calendar/v3",
        "AUTH_URI": "https://accounts.google.com/o/oauth2/v2/auth",
        "TOKEN_URI": "https://oauth2.googleapis.com/token",
        "REVOKE_URI": "https://oauth2.googleapis.com/revoke",
        "POLL_ATTEMPTS": 4,
        "POLL_DELAY": 0.5,
    }

    # Settings ------------------------------------------------------------------------

    def check_options(self) -> None:
        missing = [key for key in ("CLIENT_ID", "CLIENT_SECRET") if not self.options.get(key)]
        if missing:
            raise ImproperlyConfigured(
                f"The {self.id} provider needs {' and '.join(missing)}: the OAuth client "
                "(type 'Web application') made in the Google Cloud console. See "
                "docs/google-meet.md."
            )
        for key in ("API_BASE_URL", "AUTH_URI", "TOKEN_URI", "REVOKE_URI"):
            value = str(self.options.get(key) or "")
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ImproperlyConfigured(
                    f"The {self.id} provider's {key} must be an absolute URL, not {value!r}."
                )
        if not str(self.options.get("CALENDAR_ID") or "").strip():
            raise ImproperlyConfigured(
                f"The {self.id} provider's CALENDAR_ID must not be empty (use 'primary')."
            )
        try:
            attempts = int(self.options["POLL_ATTEMPTS"])
            delay = float(self.options["POLL_DELAY"])
        except (TypeError, ValueError):
            raise ImproperlyConfigured(
                f"The {self.id} provider's POLL_ATTEMPTS and POLL_DELAY must be numbers."
            ) from None
        if attempts < 0 or delay < 0:
            raise ImproperlyConfigured(
                f"The {self.id} provider's POLL_ATTEMPTS and POLL_DELAY must not be negative."
            )
        self.poll_attempts = attempts
        self.poll_delay = delay
        self.calendar_id = str(self.options["CALENDAR_ID"]).strip()

    @property
    def _label(self) -> str:
        return str(self.name or self.id)

    # Connecting accounts -------------------------------------------------------------

    def start_authorization(self, redirect_uri: str, state: str) -> AuthorizationRequest:
        """Return Google's consent URL: offline access, the consent prompt, and PKCE.

        ``prompt=consent`` makes Google hand out a refresh token on every connect (it does
        so only when the consent screen was shown). The PKCE verifier stays in the flow.
        """
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
            .decode("ascii")
            .rstrip("=")
        )
        query = {
            "response_type": "code",
            "client_id": self.options["CLIENT_ID"],
            "redirect_uri": redirect_uri,
            "scope": " ".join(SCOPES),
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return AuthorizationRequest(
            url=f"{self.options['AUTH_URI']}?{urlencode(query)}",
            flow={"code_verifier": verifier},
        )

    def finish_authorization(
        self,
        account: ProviderAccount,
        callback: Mapping[str, str],
        redirect_uri: str,
        flow: Mapping[str, Any],
    ) -> None:
        """Exchange the code for tokens; the connected account is the ``id_token``'s email.

        The ``id_token`` comes straight from Google's token endpoint over TLS, so its
        claims are read without checking the signature (OpenID Connect Core 3.1.3.7), but
        its audience must be this client.
        """
        if callback.get("error"):
            error = scrub_text(str(callback.get("error")))[:60]
            raise AuthorizationExpired(
                interpolate_lazy(
                    _("Google did not grant access (%(error)s). Connect again and allow access."),
                    {"error": error},
                ),
                provider_code=error,
            )
        code = callback.get("code")
        if not code:
            raise AuthorizationExpired(_("Google sent no authorisation code. Connect again."))
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self.options["CLIENT_ID"],
            "client_secret": self.options["CLIENT_SECRET"],
            "redirect_uri": redirect_uri,
        }
        if flow.get("code_verifier"):
            form["code_verifier"] = flow["code_verifier"]
        with contextlib.closing(self.session()) as session:
            response = session.post(
                self.options["TOKEN_URI"], data=form, headers={"Accept": "application/json"}
            )
        self._raise_for_token_error(response)
        try:
            token = response.json()
        except ValueError:
            raise TemporaryFailure(
                _("Google's token answer could not be read. Connect again.")
            ) from None
        granted = set(str(token.get("scope") or "").split())
        if CALENDAR_SCOPE not in granted:
            # Google's consent screen lets people untick single permissions. The grant
            # is of no use to the site: hand it back rather than leave it behind.
            self._revoke(token.get("refresh_token") or token.get("access_token") or "")
            raise PermanentFailure(
                _(
                    "Google did not grant access to the calendar's events. Connect again and "
                    "allow the site to see and edit events on the calendar."
                ),
                provider_code="scope",
            )
        if not token.get("access_token") or not token.get("refresh_token"):
            raise PermanentFailure(
                _(
                    "Google sent no refresh token. Remove the site's access in the Google "
                    "account's security settings, then connect again."
                ),
                provider_code="refresh_token",
            )
        email = self._email_from_id_token(token.get("id_token"))
        expires_in = token.get("expires_in")
        expiry = _utcnow() + timedelta(seconds=float(expires_in)) if expires_in else None
        account.credentials = {
            "token": token["access_token"],
            "refresh_token": token["refresh_token"],
            "expiry": _expiry_to_text(expiry),
            "scopes": sorted(granted),
        }
        account.external_user_id = email
        account.external_email = email

    def _raise_for_token_error(self, response: requests.Response) -> None:
        if response.status_code < 400:
            return
        error = error_from_response(response, self._label)
        if error is None:
            return
        if error.provider_code in ("invalid_client", "unauthorized_client"):
            raise PermanentFailure(
                _(
                    "Google refused the site's OAuth client: check CLIENT_ID, CLIENT_SECRET and "
                    "the redirect URL registered in the Google Cloud console."
                ),
                provider_code=error.provider_code,
                provider_message=error.provider_message,
            )
        if error.provider_code == "redirect_uri_mismatch":
            raise PermanentFailure(
                _(
                    "Google refused the redirect URL: register this site's callback URL with "
                    "the OAuth client in the Google Cloud console."
                ),
                provider_code=error.provider_code,
                provider_message=error.provider_message,
            )
        if isinstance(error, AuthorizationExpired):
            raise AuthorizationExpired(
                _("Google refused the sign-in code (it expired or was used). Connect again."),
                provider_code=error.provider_code,
                provider_message=error.provider_message,
            )
        raise error

    def _email_from_id_token(self, id_token: Any) -> str:
        if not id_token:
            raise PermanentFailure(
                _("Google did not say which account was connected. Connect again."),
                provider_code="id_token",
            )
        try:
            claims = jwt.decode(
                str(id_token),
                options={"verify_signature": False, "verify_exp": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            raise PermanentFailure(
                _("Google's answer about the connected account could not be read."),
                provider_code="id_token",
            ) from None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.options["CLIENT_ID"] not in audiences or not claims.get("email"):
            raise PermanentFailure(
                _("Google's answer about the connected account was not meant for this site."),
                provider_code="id_token",
            )
        return str(claims["email"]).lower()

    def disconnect(self, account: ProviderAccount) -> None:
        """Revoke the grant at Google; the refresh token revokes the access tokens too.

        Failures are logged, not raised: the app forgets the credentials whatever Google
        answers, and the admin can remove the site's access in the Google account.
        """
        stored = account.credentials or {}
        token = stored.get("refresh_token") or stored.get("token")
        if token:
            self._revoke(token)

    def _revoke(self, token: str) -> None:
        try:
            with contextlib.closing(self.session()) as session:
                response = session.post(
                    self.options["REVOKE_URI"],
                    data={"token": token},
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
        except ProviderError as exc:
            logger.warning("%s: revoking the grant failed: %s", self._label, exc)
            return
        if response.status_code >= 400:
            error = error_from_response(response, self._label)
            logger.warning(
                "%s: revoking the grant answered HTTP %s (%s)",
                self._label,
                response.status_code,
                error.provider_code if error else "",
            )

    # The Calendar client -------------------------------------------------------------

    @contextlib.contextmanager
    def _calendar(self, account: ProviderAccount | None) -> Iterator[Any]:
        """Yield a Calendar v3 service acting with ``account``'s credentials."""
        if account is None:
            raise PermanentFailure(_("Google Meet needs a connected Google account."))
        stored = account.credentials or {}
        if not stored.get("refresh_token") and not stored.get("token"):
            raise AuthorizationExpired(
                _("The Google account is not connected. Connect it again in the admin.")
            )
        credentials = _AccountCredentials(
            account,
            token=stored.get("token") or None,
            refresh_token=stored.get("refresh_token") or None,
            token_uri=self.options["TOKEN_URI"],
            client_id=self.options["CLIENT_ID"],
            client_secret=self.options["CLIENT_SECRET"],
            expiry=_expiry_from_text(stored.get("expiry")),
        )
        transport = _SessionHttp(self.session(), self._label, self.options["TOKEN_URI"])
        # ``http`` and ``credentials`` are exclusive in build(): the authorised transport
        # carries the credentials. One refresh on a 401, then the 401 is an answer.
        http = google_auth_httplib2.AuthorizedHttp(
            credentials, http=transport, max_refresh_attempts=1
        )
        try:
            yield build(
                "calendar",
                "v3",
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": self.options["API_BASE_URL"]},
            )
        finally:
            transport.close()

    def _execute(self, request: Any) -> Any:
        """Run one API request, mapping every failure to the provider error tree."""
        try:
            return request.execute(num_retries=0)
        except HttpError as exc:
            raise self._error_for(exc) from None
        except google.auth.exceptions.RefreshError as exc:
            raise self._refresh_error(exc) from None
        except google.auth.exceptions.TransportError as exc:
            raise TemporaryFailure(
                interpolate_lazy(
                    _("Could not reach %(provider)s. The request will be tried again."),
                    {"provider": self._label},
                ),
                provider_message=type(exc).__name__,
            ) from None
        except (TimeoutError, OSError, httplib2.HttpLib2Error) as exc:
            raise TemporaryFailure(
                interpolate_lazy(
                    _("Could not reach %(provider)s. The request will be tried again."),
                    {"provider": self._label},
                ),
                provider_message=type(exc).__name__,
            ) from None

    def _refresh_error(self, exc: google.auth.exceptions.RefreshError) -> ProviderError:
        data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
        code = str(data.get("error") or "")
        description = scrub_text(str(data.get("error_description") or ""))
        if code == "invalid_grant" or (not code and "invalid_grant" in str(exc)):
            return AuthorizationExpired(
                _(
                    "Google no longer accepts the connection to this account (the access was "
                    "removed or has expired). Reconnect the account."
                ),
                provider_code="invalid_grant",
                provider_message=description,
            )
        if code in ("invalid_client", "unauthorized_client"):
            return PermanentFailure(
                _("Google refused the site's OAuth client: check CLIENT_ID and CLIENT_SECRET."),
                provider_code=code,
                provider_message=description,
            )
        if code == "":
            # google-auth's own refusals (no refresh token stored, for example).
            return AuthorizationExpired(
                _("The Google account's access cannot be renewed. Reconnect the account."),
                provider_message=scrub_text(str(exc.args[0]) if exc.args else ""),
            )
        return PermanentFailure(
            _("Google refused to renew the account's access."),
            provider_code=code,
            provider_message=description,
        )

    def _error_for(self, exc: HttpError) -> ProviderError:
        status = int(exc.resp.status)
        reason, message = _google_error(exc.content)
        details = {"provider_code": reason or str(status), "provider_message": message}
        params = {"provider": self._label, "status": status}
        if status == 401:
            return AuthorizationExpired(
                _(
                    "Google refused the account's access token, also after renewing it. "
                    "Reconnect the account."
                ),
                **details,
            )
        if status == 429 or (status == 403 and reason in _RATE_LIMIT_REASONS):
            return RateLimited(
                parse_retry_after(exc.resp.get("retry-after")),
                interpolate_lazy(
                    _(
                        "Too many requests to %(provider)s for now. "
                        "The request will be tried again later."
                    ),
                    params,
                ),
                **details,
            )
        if status >= 500 or status == 408:
            return TemporaryFailure(
                interpolate_lazy(
                    _(
                        "A temporary problem at %(provider)s (HTTP %(status)s). "
                        "The request will be tried again."
                    ),
                    params,
                ),
                **details,
            )
        if "conference" in message.lower() and status in (400, 403):
            return PermanentFailure(
                _(
                    "Google Calendar does not allow Google Meet on this calendar: Meet may be "
                    "turned off for the Google Workspace organisation, or the calendar cannot "
                    "have video calls. Turn Meet on or connect another Google account."
                ),
                **details,
            )
        if status == 403 and reason in (
            "insufficientPermissions",
            "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        ):
            return AuthorizationExpired(
                _(
                    "The Google account did not allow the site to edit calendar events. "
                    "Reconnect it and allow access to the calendar."
                ),
                **details,
            )
        if status == 403:
            return PermanentFailure(
                interpolate_lazy(
                    _(
                        "Google does not let the connected account change events on calendar "
                        "“%(calendar)s”. Check CALENDAR_ID and the calendar's sharing settings."
                    ),
                    {"calendar": self.calendar_id},
                ),
                **details,
            )
        if status == 404:
            return PermanentFailure(
                interpolate_lazy(
                    _(
                        "Google found no calendar “%(calendar)s” (or no such event) for the "
                        "connected account. Check CALENDAR_ID."
                    ),
                    {"calendar": self.calendar_id},
                ),
                **details,
            )
        return PermanentFailure(
            interpolate_lazy(
                _("The request was refused by %(provider)s (HTTP %(status)s)."), params
            ),
            **details,
        )

    # Meetings ------------------------------------------------------------------------

    def _event_body(self, spec: MeetingSpec, *, times_only: bool = False) -> dict[str, Any]:
        zone_name = spec.time_zone or "UTC"
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone_name, zone = "UTC", ZoneInfo("UTC")
        body: dict[str, Any] = {
            "summary": spec.topic[:1000],
            "start": {"dateTime": spec.start.astimezone(zone).isoformat(), "timeZone": zone_name},
            "end": {"dateTime": spec.end.astimezone(zone).isoformat(), "timeZone": zone_name},
        }
        if times_only:
            return body
        body["description"] = spec.agenda_with_reference(8000)
        body["guestsCanSeeOtherGuests"] = False
        body["guestsCanInviteOthers"] = False
        body["extendedProperties"] = {"private": {"bookingReference": spec.reference}}
        return body

    @staticmethod
    def _invites(spec: MeetingSpec) -> bool:
        return bool(spec.options.get("invite_attendees")) and bool(spec.attendee_emails)

    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        """Insert the event with a Meet conference and return its link once Google has it.

        Raises:
            TemporaryFailure: Google is still preparing the conference after the polls
                (the next attempt finds the event by its id and reads it again).
            PermanentFailure: Google could not add Meet to the event, or refused the call.
        """
        with self._calendar(account) as calendar:
            event, made_now = self._insert(calendar, spec)
            if not made_now:
                event = self._ensure_conference(calendar, event)
            return self._details(self._wait_ready(calendar, event), spec)

    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        """Move the event (and rename it); the Meet conference and link stay.

        ``conferenceDataVersion=1`` goes with the patch: Google ignores conference data on
        changes made without it. If the event was deleted at Google (404 or 410), a new
        event is made instead and its details are returned: the external id and Meet link
        change, while members keep their join links on the site. The new event's id is the
        meeting's next free id (:func:`event_id_for`), because Google never lets an id of
        a deleted event be used again; a retry lands on the same id and is read back.
        """
        body = self._event_body(spec, times_only=True)
        query: dict[str, Any] = {"sendUpdates": "none"}
        if self._invites(spec):
            body["attendees"] = [{"email": email} for email in spec.attendee_emails]
            query["sendUpdates"] = "all"
        with self._calendar(account) as calendar:
            try:
                event = self._execute(
                    calendar.events().patch(
                        calendarId=self.calendar_id,
                        eventId=external_id,
                        conferenceDataVersion=1,
                        body=body,
                        **query,
                    )
                )
            except PermanentFailure as exc:
                if exc.provider_code not in ("notFound", "deleted", "404", "410"):
                    raise
                logger.info(
                    "%s: event %s is gone at Google; making a new one", self._label, external_id
                )
                event = self._insert(calendar, spec)[0]
            if event.get("status") == "cancelled":
                event = self._insert(calendar, spec)[0]
            event = self._ensure_conference(calendar, event)
            return self._details(self._wait_ready(calendar, event), spec)

    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        """Delete the event; an event that is already gone (404, 410) counts as deleted.

        Google sends cancellations only when the event has invited attendees.
        """
        with self._calendar(account) as calendar:
            event = self._get(calendar, external_id)
            if event is None:
                return
            invited = any(not attendee.get("self") for attendee in event.get("attendees") or [])
            try:
                self._execute(
                    calendar.events().delete(
                        calendarId=self.calendar_id,
                        eventId=external_id,
                        sendUpdates="all" if invited else "none",
                    )
                )
            except PermanentFailure as exc:
                if exc.provider_code not in ("notFound", "deleted", "404", "410"):
                    raise

    # Steps ---------------------------------------------------------------------------

    def _get(self, calendar: Any, event_id: str) -> dict[str, Any] | None:
        """Return the event, or ``None`` if it was deleted or never existed."""
        try:
            event = self._execute(
                calendar.events().get(calendarId=self.calendar_id, eventId=event_id)
            )
        except PermanentFailure as exc:
            if exc.provider_code in ("notFound", "deleted", "404", "410"):
                return None
            raise
        if event.get("status") == "cancelled":
            return None
        return event

    def _insert(self, calendar: Any, spec: MeetingSpec) -> tuple[dict[str, Any], bool]:
        """Insert the meeting's event, or read it back when an earlier attempt made it.

        Returns the event and whether this call made it.
        """
        invites = self._invites(spec)
        for generation in range(_MAX_GENERATIONS):
            event_id = event_id_for(spec.request_id or spec.reference, generation)
            body = self._event_body(spec)
            body["id"] = event_id
            body["conferenceData"] = {
                "createRequest": {
                    # The same on every attempt: Google ignores a repeated request.
                    "requestId": event_id,
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            }
            if invites:
                body["attendees"] = [{"email": email} for email in spec.attendee_emails]
            try:
                made = self._execute(
                    calendar.events().insert(
                        calendarId=self.calendar_id,
                        conferenceDataVersion=1,
                        sendUpdates="all" if invites else "none",
                        body=body,
                    )
                )
                return made, True
            except PermanentFailure as exc:
                if exc.provider_code != "duplicate":
                    raise
            # 409: an earlier attempt made this event and its answer was lost, or the id
            # belongs to an event deleted since (then the next id is used).
            existing = self._get(calendar, event_id)
            if existing is not None:
                return existing, False
        raise PermanentFailure(
            _("Google refused every event id for this meeting. Retry it from the report."),
            provider_code="duplicate",
        )

    def _ensure_conference(self, calendar: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Ask again for a Meet conference on an event that has none or whose one failed.

        An event made by an earlier attempt may have lost its conference (removed in
        Calendar) or Google may have failed to make it; a retry then asks for a new one.
        """
        if event.get("conferenceData") and _conference_status(event) != "failure":
            return event
        return self._execute(
            calendar.events().patch(
                calendarId=self.calendar_id,
                eventId=event["id"],
                conferenceDataVersion=1,
                sendUpdates="none",
                body={
                    "conferenceData": {
                        "createRequest": {
                            # A new id: Google ignores a request id it has seen before.
                            "requestId": secrets.token_hex(16),
                            "conferenceSolutionKey": {"type": "hangoutsMeet"},
                        }
                    }
                },
            )
        )

    def _wait_ready(self, calendar: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Read the event again while its conference is ``pending``, with a growing pause."""
        for attempt in range(self.poll_attempts + 1):
            status = _conference_status(event)
            if status == "success" or (status == "" and _join_url(event)):
                return event
            if status == "failure":
                raise PermanentFailure(
                    _(
                        "Google could not add a Google Meet call to the calendar event. Check "
                        "that Google Meet is turned on for the Google account (and its "
                        "Workspace organisation), then retry from the report."
                    ),
                    provider_code="failure",
                )
            if status == "" and not event.get("conferenceData"):
                raise PermanentFailure(
                    _(
                        "Google made the calendar event without a Google Meet call. Google "
                        "Meet may be turned off for this account."
                    ),
                    provider_code="noConference",
                )
            if attempt == self.poll_attempts:
                break
            time.sleep(min(self.poll_delay * (2**attempt), _POLL_DELAY_MAX))
            refreshed = self._get(calendar, event["id"])
            if refreshed is None:
                raise TemporaryFailure(
                    _("The calendar event went away while its Meet link was being prepared."),
                    provider_code="deleted",
                )
            event = refreshed
        raise TemporaryFailure(
            _("The Meet link is being prepared by Google. It will be checked again shortly."),
            provider_code="pending",
        )

    def _details(self, event: dict[str, Any], spec: MeetingSpec) -> MeetingDetails:
        join_url = _join_url(event)
        if not join_url.startswith("https://"):
            raise TemporaryFailure(
                _("Google has not given the Meet link yet. It will be checked again."),
                provider_code="noLink",
            )
        conference = event.get("conferenceData") or {}
        return MeetingDetails(
            external_id=str(event["id"]),
            join_url=join_url,
            host_url="",
            passcode="",
            extra={
                "conference_id": str(conference.get("conferenceId") or ""),
                "calendar_id": self.calendar_id,
                "html_link": redact_url(str(event.get("htmlLink") or "")),
                "attendees_invited": self._invites(spec),
            },
        )


def _conference_status(event: Mapping[str, Any]) -> str:
    conference = event.get("conferenceData") or {}
    request = conference.get("createRequest") or {}
    return str((request.get("status") or {}).get("statusCode") or "")


def _join_url(event: Mapping[str, Any]) -> str:
    """The ``video`` entry point's URI, else the read-only ``hangoutLink``."""
    conference = event.get("conferenceData") or {}
    for entry in conference.get("entryPoints") or []:
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    return str(event.get("hangoutLink") or "")


def _google_error(content: bytes | str | None) -> tuple[str, str]:
    """Return (reason, message) from Google's error envelope, scrubbed and shortened."""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        data = json.loads(content or "")
    except ValueError:
        return "", ""
    error = data.get("error") if isinstance(data, Mapping) else None
    if not isinstance(error, Mapping):
        return "", ""
    errors = error.get("errors")
    reason = ""
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        reason = str(errors[0].get("reason") or "")
    return scrub_text(reason), scrub_text(str(error.get("message") or ""))
