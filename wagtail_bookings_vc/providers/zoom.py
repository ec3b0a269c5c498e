"""Zoom: real Zoom meetings made through the Zoom Meeting API, for a user or a whole account.

Two kinds of account connect to Zoom:

* **A user's own Zoom** (the site's default account, or a staff member's): a user-managed
  OAuth app, connected through Zoom's consent page with the authorization-code flow and
  PKCE (:meth:`ZoomProvider.start_authorization`, :meth:`ZoomProvider.finish_authorization`).
  Access tokens live an hour; refresh tokens **rotate**, so every refresh of one account
  runs under :func:`~.base.credentials_lock` and the new pair is saved at once.
* **An organisation** (R5): a Server-to-Server OAuth app of a Zoom account
  (:meth:`ZoomProvider.connect_organisation`). Its tokens are minted from the account id and
  the app's client id and secret (there is no refresh token) and cached in the
  credentials. Each staff member is mapped to one Zoom user of the account.

Zoom has no idempotency key for creating meetings. Every meeting's agenda ends with the
booking's reference marker, and a create whose earlier attempt may have reached Zoom
(``MeetingSpec.may_exist``) first looks for that marker among the host's upcoming meetings.

Zoom allows 100 meeting create and update calls per host user per UTC day
(:attr:`ZoomProvider.daily_call_limit`); the app counts its calls and spreads meetings
far ahead over the days before them (:attr:`ZoomProvider.create_ahead_days`). A refusal
for the daily limit raises :class:`~.base.RateLimited` with the time until 00:00 UTC.

The host's ``start_url`` expires after two hours: it is never stored, and is fetched when
the host clicks their join link (:meth:`ZoomProvider.participant_url`).

API reference: https://developers.zoom.us/docs/api/meetings/ ; OAuth:
https://developers.zoom.us/docs/integrations/oauth/ ; Server-to-Server OAuth:
https://developers.zoom.us/docs/internal-apps/s2s-oauth/ ; webhooks:
https://developers.zoom.us/docs/api/webhooks/ .
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import secrets
import string
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
from django.core.checks import CheckMessage
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from oauthlib.oauth2 import OAuth2Error, WebApplicationClient
from requests.auth import HTTPBasicAuth
from requests.structures import CaseInsensitiveDict
from requests_oauthlib import OAuth2Session

from .base import (
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
    RateLimited,
    StrOrPromise,
    TemporaryFailure,
    WebhookEvent,
    WebhookRejected,
    WebhookReply,
    credentials_lock,
    interpolate_lazy,
)
from .http import error_from_response, provider_error_details

__all__ = ["ZoomProvider", "seconds_until_next_utc_day", "webhook_signature"]

logger = logging.getLogger(__name__)


class _DropDebugRecords(logging.Filter):
    """Drop a library's DEBUG records: requests-oauthlib logs tokens, codes and bodies there.

    Every call it makes is logged by the provider's HTTP adapter instead, redacted.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger("requests_oauthlib.oauth2_session").addFilter(_DropDebugRecords())

#: ``credentials["kind"]`` of a user's own Zoom (user-managed OAuth app).
USER = "user"
#: ``credentials["kind"]`` of an organisation (Server-to-Server OAuth app).
ORGANISATION = "s2s"
# What a token call is for, for its error messages.
CODE = "code"
REFRESH = "refresh"

#: Zoom's ``type`` of a user on the free plan, whose meetings end after 40 minutes.
BASIC_PLAN = 1
BASIC_PLAN_MAX_MINUTES = 40

# Zoom's field limits (https://developers.zoom.us/docs/api/meetings/#tag/meetings/POST/users/{userId}/meetings).
_TOPIC_MAX = 200
_AGENDA_MAX = 2000
_PASSCODE_LENGTH = 10
_PASSCODE_SPECIALS = "@-_*"
# Zoom cuts the agenda in meeting lists to 250 characters: a longer agenda may hide the
# reference marker at its end, and the meeting has to be read in full.
_LIST_AGENDA_MAX = 250
_PAGE_SIZE = 300
# Error codes in Zoom's {"code", "message"} bodies (https://developers.zoom.us/docs/api/errors/).
_USER_NOT_FOUND = "1001"
_MEETING_NOT_FOUND = "3001"
_HOSTING_NOT_ALLOWED = "3161"
_INVALID_FIELD = "300"
# After 00:00 UTC, with a minute to spare for clocks that differ.
_DAILY_RESET_SLACK = 60


def seconds_until_next_utc_day(now: datetime | None = None) -> float:
    """Return the seconds from ``now`` until 00:00 UTC of the next day, plus a minute.

    Zoom's per-user daily limit of meeting create and update calls resets then.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds() + _DAILY_RESET_SLACK


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return Zoom's ``x-zm-signature`` for a webhook body: ``v0=`` + hex HMAC-SHA256.

    The message is ``v0:{timestamp}:{raw body}``: the body's bytes as sent, never the JSON
    parsed and written again.
    """
    message = b"v0:" + timestamp.encode("ascii") + b":" + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def _zoom_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_zoom_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ZoomProvider(Provider):
    """Zoom meetings, through a user's own Zoom or a Zoom account's Server-to-Server app.

    Options (``WAGTAIL_BOOKINGS_VC["PROVIDERS"]["zoom"]``):

    ``CLIENT_ID``, ``CLIENT_SECRET``
        The user-managed (General) OAuth app's credentials. Required.
    ``WEBHOOK_SECRET_TOKEN``
        The app's webhook *Secret Token*. Without it webhook calls are refused, and
        meetings deleted or moved in Zoom go unnoticed (a system check warns).
    ``PASSCODE``
        ``True`` (default): every meeting gets a 10-character passcode of letters, digits
        and one of ``@-_*``; ``"numeric"``: 10 digits, for accounts whose passcode rules
        allow digits only; ``False``: none is sent (the account's settings decide).
    ``API_BASE_URL``, ``OAUTH_BASE_URL``
        ``https://api.zoom.us/v2`` and ``https://zoom.us``; changed only for tests.
    ``SCOPES``
        Scopes to ask for on the consent page; default none (the app's configured scopes).
    ``TOKEN_REFRESH_MARGIN``
        Seconds before an access token expires that it is renewed. Default 120.
    ``WEBHOOK_MAX_AGE``
        Seconds a webhook's timestamp may differ from now. Default 300.
    ``DAILY_CALL_LIMIT``, ``CREATE_AHEAD_DAYS``
        Override :attr:`daily_call_limit` (100) and :attr:`create_ahead_days` (14).

    ``spec.options`` read: ``waiting_room`` (default ``True``): the waiting room is on and
    people cannot join before the host; off, people join as soon as they open the link.
    """

    id = "zoom"
    name = _("Zoom")
    needs_oauth = True
    daily_call_limit = 100
    create_ahead_days = 14
    organisation_fields = (
        OrganisationField(
            "account_id",
            _("Account ID"),
            help_text=_("From the Server-to-Server OAuth app's App Credentials page in Zoom."),
        ),
        OrganisationField("client_id", _("Client ID")),
        OrganisationField("client_secret", _("Client secret"), secret=True),
    )
    default_options: Mapping[str, Any] = {
        "API_BASE_URL": "https://api.zoom.us/v2",
        "OAUTH_BASE_URL": "https://zoom.us",
        "CLIENT_ID": "",
        "CLIENT_SECRET": "",
        "WEBHOOK_SECRET_TOKEN": "",
        "PASSCODE": True,
        "SCOPES": (),
        "TOKEN_REFRESH_MARGIN": 120,
        "WEBHOOK_MAX_AGE": 300,
    }

    # Settings ------------------------------------------------------------------------

    def check_options(self) -> None:
        missing = [key for key in ("CLIENT_ID", "CLIENT_SECRET") if not self.options.get(key)]
        if missing:
            raise ImproperlyConfigured(
                f"The {self.id} provider needs {' and '.join(missing)}: the credentials of "
                "the Zoom OAuth app (Zoom App Marketplace → Develop → your app → App "
                "Credentials). See docs/zoom.md."
            )
        for key in ("API_BASE_URL", "OAUTH_BASE_URL"):
            value = str(self.options.get(key) or "")
            if not value.startswith(("https://", "http://")):
                raise ImproperlyConfigured(f"The {self.id} provider's {key} must be a URL.")
        passcode = self.options.get("PASSCODE")
        if passcode not in (True, False, "numeric"):
            raise ImproperlyConfigured(
                f"The {self.id} provider's PASSCODE must be True, False or 'numeric'."
            )
        for key in ("TOKEN_REFRESH_MARGIN", "WEBHOOK_MAX_AGE"):
            try:
                float(self.options[key])
            except (TypeError, ValueError):
                raise ImproperlyConfigured(
                    f"The {self.id} provider's {key} must be a number of seconds."
                ) from None
        self.api_base = str(self.options["API_BASE_URL"]).rstrip("/")
        self.oauth_base = str(self.options["OAUTH_BASE_URL"]).rstrip("/")
        self.client_id = str(self.options["CLIENT_ID"])
        self.client_secret = str(self.options["CLIENT_SECRET"])
        self.refresh_margin = float(self.options["TOKEN_REFRESH_MARGIN"])
        self.webhook_max_age = float(self.options["WEBHOOK_MAX_AGE"])

    def checks(self) -> list[CheckMessage]:
        if self.options.get("WEBHOOK_SECRET_TOKEN"):
            return []
        return [
            CheckWarning(
                f"The {self.id} provider has no WEBHOOK_SECRET_TOKEN: meetings deleted or "
                "moved in Zoom, and the app removed from a Zoom account, go unnoticed.",
                hint="Add an event subscription to the Zoom app and set WEBHOOK_SECRET_TOKEN "
                "to its Secret Token (docs/zoom.md).",
                id="wagtail_bookings_vc.W201",
            )
        ]

    @property
    def token_url(self) -> str:
        """Zoom's OAuth token endpoint."""
        return f"{self.oauth_base}/oauth/token"

    # HTTP ----------------------------------------------------------------------------

    def _oauth_session(self, purpose: str = REFRESH, **kwargs: Any) -> OAuth2Session:
        """Return an ``OAuth2Session`` sending through :meth:`session`'s adapter.

        Token answers are checked before oauthlib parses them, so that a refusal or a
        server error becomes the error it stands for (``purpose``: :data:`CODE` or
        :data:`REFRESH`, for the message).
        """
        oauth = OAuth2Session(**kwargs)
        base = self.session()
        for prefix, adapter in base.adapters.items():
            oauth.mount(prefix, adapter)
        oauth.trust_env = base.trust_env
        oauth.headers.update(base.headers)
        check = functools.partial(self._check_token_response, purpose=purpose)
        for hook in ("access_token_response", "refresh_token_response"):
            oauth.register_compliance_hook(hook, check)
        return oauth

    def _check_token_response(
        self, response: requests.Response, *, purpose: str
    ) -> requests.Response:
        if response.status_code < 400:
            return response
        raise self._token_error(response, purpose)

    def _token_error(self, response: requests.Response, purpose: str) -> ProviderError:
        """Return the error a refused or failed call to the token endpoint stands for."""
        code, message = provider_error_details(response)
        details = {"provider_code": code, "provider_message": message}
        if response.status_code >= 500 or response.status_code in (408, 429):
            return error_from_response(response, "Zoom") or TemporaryFailure(**details)
        if purpose == ORGANISATION:
            return PermanentFailure(
                _(
                    "Zoom refused the Server-to-Server OAuth app's credentials. Check the "
                    "account ID, client ID and client secret on the app's App Credentials "
                    "page in Zoom, and that the app is activated."
                ),
                **details,
            )
        if code == "invalid_client":
            return PermanentFailure(
                _(
                    "Zoom refused the site's Zoom app (client ID or secret). An administrator "
                    "must check the CLIENT_ID and CLIENT_SECRET settings."
                ),
                **details,
            )
        if purpose == CODE:
            if code == "invalid_grant":
                return AuthorizationExpired(
                    _(
                        "Zoom refused the authorization: it expired or was used already. "
                        "Start connecting the account again."
                    ),
                    **details,
                )
            return PermanentFailure(_("Zoom refused to connect the account."), **details)
        return AuthorizationExpired(
            _(
                "Zoom no longer accepts the connection to this account (it was removed in "
                "Zoom, or has expired). Reconnect the account."
            ),
            **details,
        )

    def _meeting_error(self, response: requests.Response) -> ProviderError:
        """Return the error a failed API answer stands for, in plain words."""
        status = response.status_code
        code, message = provider_error_details(response)
        details = {"provider_code": code, "provider_message": message}
        rate_type = response.headers.get("X-RateLimit-Type", "").lower()
        lowered = message.lower()
        daily = rate_type == "daily-limit" or ("daily" in lowered and "limit" in lowered)
        if daily and (status == 429 or code in ("429", _INVALID_FIELD)):
            return RateLimited(
                seconds_until_next_utc_day(),
                _(
                    "Zoom's daily limit of meeting creations and changes for this host is used "
                    "up. The request will be tried again after 00:00 UTC."
                ),
                **details,
            )
        text: StrOrPromise | None = None
        if status == 404 and code == _USER_NOT_FOUND:
            text = _(
                "The Zoom user this account makes meetings for was not found in Zoom (removed, "
                "or not in the Zoom account). Reconnect the account, or map the staff member "
                "to another Zoom user."
            )
        elif code == _MEETING_NOT_FOUND:
            text = _("The meeting was not found in Zoom: it was deleted there, or has ended.")
        elif code == _HOSTING_NOT_ALLOWED:
            text = _(
                "This Zoom user is not allowed to host or schedule meetings. Check the user's "
                "licence and meeting settings in Zoom."
            )
        elif status == 400 and code == _INVALID_FIELD:
            text = _(
                "Zoom refused a value of the meeting. Check the service's settings and the "
                "Zoom account's passcode rules (the PASSCODE option)."
            )
        elif status == 400:
            text = _("Zoom refused the request for this meeting.")
        if text is not None:
            return PermanentFailure(text, **details)
        return error_from_response(response, "Zoom") or PermanentFailure(**details)

    # Tokens --------------------------------------------------------------------------

    def _usable(self, credentials: Mapping[str, Any]) -> bool:
        if not credentials.get("access_token"):
            return False
        expires_at = credentials.get("expires_at")
        if expires_at is None:
            return True  # Zoom says when a token expired with a 401.
        return float(expires_at) - self.refresh_margin > time.time()

    def _access_token(self, account: ProviderAccount, *, rejected: str = "") -> str:
        """Return an access token for ``account``, renewing it when it expires or was refused.

        Renewal runs under the account's credentials lock, and the credentials are read
        again inside it: another worker may have renewed them a moment ago, and a second
        refresh would burn the rotated refresh token that worker just saved.
        """
        credentials = account.credentials or {}
        if not credentials:
            raise AuthorizationExpired(
                _("The Zoom account is not connected. Connect it again in the admin.")
            )
        if not rejected and self._usable(credentials):
            return str(credentials["access_token"])
        with credentials_lock(account):
            credentials = dict(account.credentials or {})
            token = str(credentials.get("access_token") or "")
            if token and token != rejected and self._usable(credentials):
                return token
            if credentials.get("kind") == ORGANISATION:
                renewed = self._mint(credentials)
            else:
                renewed = self._refresh(credentials)
            # A new dict, saved at once: a rotated refresh token must not be lost.
            account.credentials = renewed
            return str(renewed["access_token"])

    def _refresh(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Exchange the refresh token for a new pair (Zoom rotates the refresh token)."""
        refresh_token = credentials.get("refresh_token")
        if not refresh_token:
            raise AuthorizationExpired(
                _("The Zoom connection has no refresh token. Reconnect the account.")
            )
        with self._oauth_session(client_id=self.client_id) as oauth:
            try:
                token = oauth.refresh_token(
                    self.token_url,
                    refresh_token=refresh_token,
                    auth=HTTPBasicAuth(self.client_id, self.client_secret),
                )
            except OAuth2Error as error:
                raise PermanentFailure(
                    _("Zoom answered the token refresh in an unexpected way."),
                    provider_code=error.error,
                ) from None
        logger.info("Zoom access token refreshed.")
        return {
            **credentials,
            "kind": USER,
            "access_token": token["access_token"],
            "refresh_token": token.get("refresh_token") or refresh_token,
            "expires_at": token.get("expires_at"),
            "scope": _scope_text(token.get("scope", credentials.get("scope", ""))),
        }

    def _mint(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Get a Server-to-Server token (``grant_type=account_credentials``)."""
        account_id = str(credentials.get("account_id") or "")
        client_id = str(credentials.get("client_id") or "")
        client_secret = str(credentials.get("client_secret") or "")
        with self.session() as session:
            # Zoom's own examples put the grant in the query string.
            response = session.post(
                self.token_url,
                params={"grant_type": "account_credentials", "account_id": account_id},
                auth=HTTPBasicAuth(client_id, client_secret),
                headers={"Accept": "application/json"},
            )
        if response.status_code >= 400:
            raise self._token_error(response, ORGANISATION)
        try:
            token = response.json()
            access_token = str(token["access_token"])
            expires_in = float(token.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise TemporaryFailure(
                _("Zoom answered the token request in an unexpected way.")
            ) from None
        logger.info("Zoom Server-to-Server token minted for account %s.", account_id)
        return {
            **credentials,
            "kind": ORGANISATION,
            "access_token": access_token,
            "expires_at": time.time() + expires_in,
            "scope": _scope_text(token.get("scope", "")),
        }

    # Connecting accounts -------------------------------------------------------------

    def start_authorization(self, redirect_uri: str, state: str) -> AuthorizationRequest:
        """Return Zoom's consent URL, with a PKCE challenge; the verifier is kept in ``flow``."""
        client = WebApplicationClient(self.client_id)
        verifier = client.create_code_verifier(64)
        challenge = client.create_code_challenge(verifier, "S256")
        scopes = list(self.options.get("SCOPES") or ()) or None
        with self._oauth_session(
            CODE, client=client, redirect_uri=redirect_uri, scope=scopes
        ) as oauth:
            url, _state = oauth.authorization_url(
                f"{self.oauth_base}/oauth/authorize",
                state=state,
                code_challenge=challenge,
                code_challenge_method="S256",
            )
        return AuthorizationRequest(url=url, flow={"code_verifier": verifier})

    def finish_authorization(
        self,
        account: ProviderAccount,
        callback: Mapping[str, str],
        redirect_uri: str,
        flow: Mapping[str, Any],
    ) -> None:
        """Exchange the code for tokens, read the Zoom user, and store both on ``account``.

        Stores the user's id and email and the plan type (``type``: 1 is Basic, whose
        meetings end after 40 minutes) next to the tokens, for :meth:`usage`.
        """
        if callback.get("error"):
            raise AuthorizationExpired(
                _("Zoom did not connect the account: access was not allowed on Zoom's page."),
                provider_code=str(callback.get("error", "")),
            )
        code = callback.get("code")
        verifier = flow.get("code_verifier")
        if not code or not verifier:
            raise PermanentFailure(
                _("Zoom's answer was incomplete. Start connecting the account again.")
            )
        with self._oauth_session(
            CODE, client_id=self.client_id, redirect_uri=redirect_uri
        ) as oauth:
            try:
                token = oauth.fetch_token(
                    self.token_url,
                    code=code,
                    client_secret=self.client_secret,
                    code_verifier=verifier,
                )
            except OAuth2Error as error:
                raise PermanentFailure(
                    _("Zoom answered the token request in an unexpected way."),
                    provider_code=error.error,
                ) from None
        with self.session() as session:
            response = session.get(
                f"{self.api_base}/users/me",
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
        if response.status_code != 200:
            raise self._meeting_error(response)
        user = response.json()
        account.credentials = {
            "kind": USER,
            "access_token": token["access_token"],
            "refresh_token": token.get("refresh_token", ""),
            "expires_at": token.get("expires_at"),
            "scope": _scope_text(token.get("scope", "")),
            "plan_type": user.get("type"),
        }
        account.external_user_id = str(user.get("id") or "")
        account.external_email = str(user.get("email") or "")
        logger.info("Zoom user %s connected.", account.external_user_id)

    def connect_organisation(self, account: ProviderAccount, values: Mapping[str, str]) -> None:
        """Check a Server-to-Server OAuth app's credentials by minting a token, then store them."""
        cleaned = {
            field.name: str(values.get(field.name) or "").strip()
            for field in self.organisation_fields
        }
        missing = [
            str(field.label) for field in self.organisation_fields if not cleaned[field.name]
        ]
        if missing:
            raise PermanentFailure(
                interpolate_lazy(
                    _("Enter the Server-to-Server OAuth app's %(fields)s."),
                    {"fields": ", ".join(missing)},
                )
            )
        account.credentials = self._mint({"kind": ORGANISATION, **cleaned})

    def list_users(self, account: ProviderAccount) -> list[ProviderUser]:
        """Return the active users of the Zoom account, every page of them.

        Each user's plan type is kept with the organisation's credentials, so that
        :meth:`usage` can warn about Basic users among them without asking Zoom again.
        """
        users: list[ProviderUser] = []
        plans: dict[str, Any] = {}
        with _Api(self, account) as api:
            for page in api.pages("/users", "users", {"status": "active"}):
                for user in page:
                    user_id = str(user.get("id") or "")
                    name = " ".join(
                        part for part in (user.get("first_name"), user.get("last_name")) if part
                    )
                    users.append(
                        ProviderUser(
                            id=user_id,
                            email=str(user.get("email") or ""),
                            name=name or str(user.get("display_name") or ""),
                        )
                    )
                    plans[user_id] = user.get("type")
        with credentials_lock(account):
            current = dict(account.credentials or {})
            if current.get("user_plans") != plans:
                account.credentials = {**current, "user_plans": plans}
        return users

    def disconnect(self, account: ProviderAccount) -> None:
        """Revoke a user's token at Zoom; failures are logged only (the site forgets it anyway).

        Organisation accounts have nothing to revoke (no refresh token; the app is
        deactivated in Zoom), and neither has a staff member mapped to one.
        """
        credentials = account.credentials or {}
        if credentials.get("kind") == ORGANISATION:
            return
        # Revoking either token of the pair ends the app's access to the user.
        token = credentials.get("refresh_token") or credentials.get("access_token")
        if not token:
            return
        try:
            with self.session() as session:
                response = session.post(
                    f"{self.oauth_base}/oauth/revoke",
                    params={"token": token},
                    auth=HTTPBasicAuth(self.client_id, self.client_secret),
                )
        except ProviderError as error:
            logger.warning("Could not revoke the Zoom token of %r: %s", account, error)
            return
        if response.status_code >= 400:
            code, message = provider_error_details(response)
            logger.warning(
                "Zoom refused to revoke the token of %r: HTTP %s %s %s",
                account,
                response.status_code,
                code,
                message,
            )
        else:
            logger.info("Zoom token of %r revoked.", account)

    def usage(self, account: ProviderAccount) -> Mapping[str, Any]:
        """Return the plan's meeting length limit (40 minutes on Basic) and the daily limit.

        The plan is the connected user's, or for a staff member mapped to a user of an
        organisation account, that user's as last listed.
        """
        credentials = account.credentials or {}
        plan = credentials.get("plan_type")
        if credentials.get("kind") == ORGANISATION:
            plan = (credentials.get("user_plans") or {}).get(account.external_user_id)
        return {
            "max_meeting_minutes": BASIC_PLAN_MAX_MINUTES if plan == BASIC_PLAN else None,
            "daily_call_limit": self.daily_call_limit,
        }

    # Meetings ------------------------------------------------------------------------

    def _user_path(self, account: ProviderAccount, spec: MeetingSpec | None = None) -> str:
        credentials = account.credentials or {}
        if credentials.get("kind") != ORGANISATION:
            return "me"  # A user-level app acts for its own user.
        user = account.external_user_id or (spec.host_email if spec else "")
        if not user:
            raise PermanentFailure(
                _(
                    "The Zoom organisation account does not know which Zoom user hosts this "
                    "meeting. Map the staff member to a Zoom user of the account."
                )
            )
        return quote(user, safe="@")

    def _passcode(self) -> str:
        style = self.options.get("PASSCODE")
        if style == "numeric":
            return "".join(secrets.choice(string.digits) for _ in range(_PASSCODE_LENGTH))
        # One of each kind, so that the accounts' usual passcode rules are met.
        letters = string.ascii_letters + string.digits
        chars = [
            secrets.choice(string.ascii_lowercase),
            secrets.choice(string.ascii_uppercase),
            secrets.choice(string.digits),
            secrets.choice(_PASSCODE_SPECIALS),
        ]
        chars += [secrets.choice(letters) for _ in range(_PASSCODE_LENGTH - len(chars))]
        secrets.SystemRandom().shuffle(chars)
        return "".join(chars)

    def meeting_body(self, spec: MeetingSpec, *, new: bool = True) -> dict[str, Any]:
        """Return the JSON body of a create (``new``) or update call.

        https://developers.zoom.us/docs/api/meetings/#tag/meetings/POST/users/{userId}/meetings
        An update sends no passcode: the one attendees have keeps working.
        """
        waiting_room = bool(spec.options.get("waiting_room", True))
        body: dict[str, Any] = {
            "type": 2,  # scheduled
            "topic": spec.topic[:_TOPIC_MAX],
            "agenda": spec.agenda_with_reference(_AGENDA_MAX),
            "start_time": _zoom_time(spec.start),
            "duration": spec.duration_minutes,
            "timezone": spec.time_zone,
            "settings": {"waiting_room": waiting_room, "join_before_host": not waiting_room},
        }
        if new and self.options.get("PASSCODE"):
            body["password"] = self._passcode()
        return body

    @staticmethod
    def _details(meeting: Mapping[str, Any]) -> MeetingDetails:
        # Never the start_url: it logs the host in and expires in two hours.
        return MeetingDetails(
            external_id=str(meeting["id"]),
            join_url=str(meeting.get("join_url") or ""),
            host_url="",
            passcode=str(meeting.get("password") or ""),
            extra={
                key: meeting[key]
                for key in ("uuid", "host_id", "host_email", "start_time", "duration", "timezone")
                if meeting.get(key) is not None
            },
        )

    def _get_meeting(self, api: _Api, meeting_id: str) -> dict[str, Any] | None:
        response = api.request("GET", f"/meetings/{quote(meeting_id, safe='')}")
        if response.status_code == 200:
            return dict(response.json())
        if response.status_code == 404:
            return None
        raise self._meeting_error(response)

    def find_meeting(self, api: _Api, user: str, spec: MeetingSpec) -> dict[str, Any] | None:
        """Return the host's upcoming meeting whose agenda carries the booking's reference.

        Meeting lists cut agendas to 250 characters (and may leave them out), so meetings
        whose agenda may hide the marker are read in full, the likeliest first (same start,
        then same topic).
        """
        marker = spec.reference_marker
        unclear: list[Mapping[str, Any]] = []
        for page in api.pages(f"/users/{user}/meetings", "meetings", {"type": "upcoming"}):
            for meeting in page:
                agenda = meeting.get("agenda")
                if isinstance(agenda, str) and marker in agenda:
                    return self._get_meeting(api, str(meeting["id"]))
                if not isinstance(agenda, str) or len(agenda) >= _LIST_AGENDA_MAX:
                    unclear.append(meeting)
        start = _zoom_time(spec.start)
        unclear.sort(key=lambda m: (m.get("start_time") != start, m.get("topic") != spec.topic))
        for candidate in unclear:
            meeting = self._get_meeting(api, str(candidate["id"]))
            if meeting is not None and marker in str(meeting.get("agenda") or ""):
                return meeting
        return None

    def _create(self, api: _Api, account: ProviderAccount, spec: MeetingSpec) -> MeetingDetails:
        user = self._user_path(account, spec)
        if spec.may_exist:
            found = self.find_meeting(api, user, spec)
            if found is not None:
                logger.info(
                    "Zoom meeting %s for %s already existed; not made again.",
                    found.get("id"),
                    spec.reference,
                )
                return self._details(found)
        response = api.request("POST", f"/users/{user}/meetings", json=self.meeting_body(spec))
        if response.status_code not in (200, 201):
            raise self._meeting_error(response)
        return self._details(response.json())

    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        """Create a scheduled meeting for the account's Zoom user (or find the one made before).

        ``POST /users/{userId}/meetings`` (201). With ``spec.may_exist`` the host's upcoming
        meetings are searched for the reference marker first.
        """
        account = _require(account)
        with _Api(self, account) as api:
            return self._create(api, account, spec)

    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        """Move or rename the meeting: ``PATCH /meetings/{id}`` (204, no body), then read it.

        A meeting that no longer exists in Zoom (deleted there: 404, code 3001) is made
        again for the same booking, after looking for one an earlier attempt may have made;
        the returned details then carry the new meeting's id and join URL. Members keep
        their personal join links, which lead to whatever meeting the booking has now.
        """
        account = _require(account)
        path = f"/meetings/{quote(external_id, safe='')}"
        with _Api(self, account) as api:
            response = api.request("PATCH", path, json=self.meeting_body(spec, new=False))
            if response.status_code in (200, 204):
                meeting = self._get_meeting(api, external_id)
                if meeting is not None:
                    return self._details(meeting)
            elif not _meeting_gone(response):
                raise self._meeting_error(response)
            logger.warning(
                "Zoom meeting %s of %s is gone in Zoom; making it again.",
                external_id,
                spec.reference,
            )
            return self._create(api, account, dataclasses.replace(spec, may_exist=True))

    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        """``DELETE /meetings/{id}`` (204); a meeting already gone (404, 3001) counts as deleted."""
        account = _require(account)
        with _Api(self, account) as api:
            response = api.request("DELETE", f"/meetings/{quote(external_id, safe='')}")
        if response.status_code in (200, 204):
            return
        if _meeting_gone(response) or response.status_code == 404:
            logger.info("Zoom meeting %s was already gone.", external_id)
            return
        raise self._meeting_error(response)

    # Joining -------------------------------------------------------------------------

    def participant_url(
        self,
        details: MeetingDetails,
        *,
        name: str,
        email: str,
        is_host: bool,
        expires_at: datetime | None = None,
        account: ProviderAccount | None = None,
    ) -> str:
        """Return the join URL, or for the host a fresh ``start_url`` read from Zoom now.

        The start URL signs the host in and expires after two hours, so it is fetched at
        each click and never stored, logged or emailed. Without an account the host gets
        the join URL and signs in to Zoom themselves.
        """
        if not is_host or account is None or not account.credentials:
            return details.join_url
        with _Api(self, account) as api:
            meeting = self._get_meeting(api, details.external_id)
        if meeting is None:
            raise PermanentFailure(
                _("The meeting was not found in Zoom: it was deleted there, or has ended.")
            )
        return str(meeting.get("start_url") or details.join_url)

    # Webhooks ------------------------------------------------------------------------

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookReply:
        """Verify a Zoom webhook call and turn it into events.

        Every call, ``endpoint.url_validation`` included, must carry ``x-zm-signature`` =
        ``v0=`` + hex HMAC-SHA256(secret token, ``v0:{x-zm-request-timestamp}:{raw body}``)
        and a timestamp within ``WEBHOOK_MAX_AGE`` seconds of now. (Answering an unsigned
        URL validation would let anyone have the site sign a text of their choosing.)

        ``meeting.deleted`` and ``meeting.updated`` become meeting events (the latter with
        the new start, if the time changed); ``app_deauthorized`` revokes the account.
        """
        secret = str(self.options.get("WEBHOOK_SECRET_TOKEN") or "")
        if not secret:
            logger.error(
                "A Zoom webhook call came in, but the %s provider has no WEBHOOK_SECRET_TOKEN: "
                "refused.",
                self.id,
            )
            raise WebhookRejected("No WEBHOOK_SECRET_TOKEN is set for Zoom webhooks.", status=404)
        headers = CaseInsensitiveDict(dict(headers.items()))
        timestamp = str(headers.get("x-zm-request-timestamp") or "").strip()
        signature = str(headers.get("x-zm-signature") or "").strip()
        if not timestamp or not signature:
            raise WebhookRejected("The Zoom signature headers are missing.")
        try:
            sent_at = float(timestamp)
        except ValueError:
            raise WebhookRejected("The Zoom webhook timestamp is not a number.") from None
        if sent_at > 1e11:
            sent_at /= 1000  # milliseconds
        if abs(time.time() - sent_at) > self.webhook_max_age:
            raise WebhookRejected("The Zoom webhook timestamp is too old or in the future.")
        expected = webhook_signature(secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise WebhookRejected("The Zoom webhook signature does not match.")
        try:
            data = json.loads(body)
        except ValueError:
            raise WebhookRejected("The Zoom webhook body is not JSON.", status=400) from None
        if not isinstance(data, dict):
            raise WebhookRejected("The Zoom webhook body is not a JSON object.", status=400)
        event = str(data.get("event") or "")
        payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
        if event == "endpoint.url_validation":
            plain = str(payload.get("plainToken") or "")
            if not plain:
                raise WebhookRejected("The URL validation has no plainToken.", status=400)
            encrypted = hmac.new(secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
            return WebhookReply(data={"plainToken": plain, "encryptedToken": encrypted})
        return WebhookReply(events=tuple(_events(event, payload)))


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


class _Api:
    """The API calls of one operation for one account: a fresh token, one retry on 401."""

    def __init__(self, provider: ZoomProvider, account: ProviderAccount) -> None:
        self.provider = provider
        self.account = account
        self.http = provider._oauth_session()

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def _send(self, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        # No expires_at in this dict: expiry is handled by _access_token, not oauthlib.
        self.http.token = {"access_token": token, "token_type": "Bearer"}
        return self.http.request(method, f"{self.provider.api_base}{path}", **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one call; on a 401 (code 124) renew the token once and send it again."""
        token = self.provider._access_token(self.account)
        response = self._send(token, method, path, **kwargs)
        if response.status_code != 401:
            return response
        logger.info("Zoom refused the access token (%s %s); renewing it.", method, path)
        token = self.provider._access_token(self.account, rejected=token)
        response = self._send(token, method, path, **kwargs)
        if response.status_code == 401:
            code, message = provider_error_details(response)
            raise AuthorizationExpired(
                _(
                    "Zoom refused the account's access even after renewing it. Reconnect the "
                    "account."
                ),
                provider_code=code,
                provider_message=message,
            )
        return response

    def pages(
        self, path: str, key: str, params: Mapping[str, Any]
    ) -> Iterator[list[Mapping[str, Any]]]:
        """Yield the items of every page of a list call (``next_page_token`` paging)."""
        query = {**params, "page_size": _PAGE_SIZE}
        while True:
            response = self.request("GET", path, params=query)
            if response.status_code != 200:
                raise self.provider._meeting_error(response)
            data = response.json()
            yield list(data.get(key) or [])
            next_token = data.get("next_page_token")
            if not next_token:
                return
            query = {**query, "next_page_token": next_token}


def _require(account: ProviderAccount | None) -> ProviderAccount:
    if account is None:
        raise PermanentFailure(_("Zoom meetings need a connected Zoom account."))
    return account


def _meeting_gone(response: requests.Response) -> bool:
    code, _message = provider_error_details(response)
    return code == _MEETING_NOT_FOUND or (response.status_code == 404 and code != _USER_NOT_FOUND)


def _scope_text(scope: Any) -> str:
    if isinstance(scope, list | tuple):
        return " ".join(str(item) for item in scope)
    return str(scope or "")


def _events(event: str, payload: Mapping[str, Any]) -> Iterator[WebhookEvent]:
    if event == "app_deauthorized":
        user_id = str(payload.get("user_id") or "")
        if user_id:
            yield WebhookEvent(WebhookEvent.ACCOUNT_REVOKED, external_user_id=user_id)
        return
    if event not in ("meeting.deleted", "meeting.updated"):
        return
    meeting = payload.get("object")
    if not isinstance(meeting, Mapping) or meeting.get("id") in (None, ""):
        return
    external_id = str(meeting["id"])
    if event == "meeting.deleted":
        yield WebhookEvent(WebhookEvent.MEETING_DELETED, external_id=external_id)
    else:
        start = _parse_zoom_time(meeting.get("start_time"))
        yield WebhookEvent(WebhookEvent.MEETING_CHANGED, external_id=external_id, start=start)
