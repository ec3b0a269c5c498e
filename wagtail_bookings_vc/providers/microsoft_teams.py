"""Microsoft Teams: online meetings made through Microsoft Graph, tokens through MSAL.

Two ways to connect (see ``docs/microsoft-teams.md``):

* **Delegated**: the site's account or a staff member's own work or school account is
  connected through Microsoft's consent screen (auth-code flow with PKCE, driven by MSAL).
  Meetings are made as that user, at ``/me/onlineMeetings``.
* **Organisation** (R5): an administrator gives the directory (tenant) id; the app signs
  in as itself (client credentials) and makes meetings for the tenant's users that staff
  members are mapped to, at ``/users/{id}/onlineMeetings``. Teams then also needs an
  *application access policy* granted to those users.

Why ``onlineMeetings`` and not calendar events: a calendar event with
``isOnlineMeeting`` sends every attendee an invitation with the raw Teams link, which
walks round the site's join links (payment, join window). A standalone online meeting
sends nothing to anyone, so members only ever reach it through their personal join link.
``createOrGet`` with ``externalId`` makes creation idempotent: a retried create finds the
meeting the lost attempt made.

Tokens live in an MSAL :class:`msal.SerializableTokenCache`, serialised into the account's
credentials (which the app encrypts at rest). Every change MSAL makes to the cache is
saved at once, under :func:`~.base.credentials_lock`, with the stored cache read again
inside the lock so that two workers never refresh with a stale refresh token.

Personal Microsoft accounts cannot have Teams meetings made through Graph ("Delegated
(personal Microsoft account): Not supported"); they are refused at connect time (R6).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import msal
import requests
from django.core.checks import CheckMessage
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

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
    TemporaryFailure,
    credentials_lock,
    interpolate_lazy,
)
from .http import error_from_response, parse_retry_after, provider_error_details, scrub_text

__all__ = ["MicrosoftTeamsProvider", "PERSONAL_ACCOUNT_TENANTS"]

logger = logging.getLogger(__name__)

#: Delegated permissions asked for at connect time (MSAL adds openid, profile and
#: offline_access itself).
DELEGATED_SCOPES: tuple[str, ...] = ("OnlineMeetings.ReadWrite", "User.Read")
#: App-only: whatever application permissions an administrator granted to the app.
APP_SCOPES: tuple[str, ...] = ("https://graph.microsoft.com/.default",)
#: The tenant of personal Microsoft accounts, and the authority path that means them.
PERSONAL_ACCOUNT_TENANTS = frozenset({"9188040d-6c67-4c5b-b112-36a304b66dad", "consumers"})
#: Authority paths that are not one directory (no app-only tokens for them).
_MULTI_TENANT_PATHS = frozenset({"common", "organizations", "consumers"})

DELEGATED = "delegated"
ORGANISATION = "organisation"

_GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_DOMAIN_RE = re.compile(
    r"^(?=.{4,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"
)
# Graph writes up to seven fractional digits; Python reads six.
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")
_SUBJECT_MAX = 255
_USER_PAGES_MAX = 100
# Token-endpoint errors that mean the user's grant is gone: reconnecting fixes them.
_GRANT_GONE = frozenset(
    {"invalid_grant", "interaction_required", "consent_required", "login_required"}
)
_ACCESS_POLICY_RE = re.compile(
    r"application access policy|not authorized to .* on behalf of user", re.IGNORECASE
)

NAME = _("Microsoft Teams")

# MSAL logs every token response at DEBUG level, with the request's form data: that holds
# the authorization code and the PKCE verifier, which must never reach a log.
_MSAL_EVENT_LOGGER = "msal.token_cache"


class _DropTokenEvents(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("event=")


logging.getLogger(_MSAL_EVENT_LOGGER).addFilter(_DropTokenEvents())


def _graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_graph_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclasses.dataclass
class _LastAnswer:
    """The status and ``Retry-After`` of the last answer a session received.

    MSAL turns token-endpoint answers into dicts and drops the status; this keeps it, so
    that a throttled sign-in becomes :class:`RateLimited` rather than a refusal.
    """

    status: int = 0
    retry_after: float | None = None

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.status = response.status_code
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))

    def reset(self) -> None:
        self.status = 0
        self.retry_after = None


@dataclasses.dataclass(eq=False)  # hashable: credentials_lock keys a lock on it
class _Scratch:
    """An account that lives only while a connection is checked."""

    credentials: dict[str, Any] = dataclasses.field(default_factory=dict)
    external_user_id: str = ""
    external_email: str = ""


@dataclasses.dataclass
class _Connection:
    """One operation's HTTP session and MSAL application, for one account's tokens."""

    provider: MicrosoftTeamsProvider
    account: ProviderAccount
    session: requests.Session
    app: msal.ConfidentialClientApplication
    cache: msal.SerializableTokenCache
    last: _LastAnswer
    kind: str

    @property
    def app_only(self) -> bool:
        return self.kind == ORGANISATION

    def token(self, *, force_refresh: bool = False) -> str:
        """Return an access token for Graph, refreshing through MSAL when needed."""
        with credentials_lock(self.account):
            # Read again under the lock: another worker may have refreshed a moment ago.
            stored = dict(self.account.credentials or {})
            self.cache.deserialize(stored.get("token_cache") or None)
            self.last.reset()
            try:
                result = self._acquire(stored, force_refresh=force_refresh)
            finally:
                if self.cache.has_state_changed:
                    self.account.credentials = {**stored, "token_cache": self.cache.serialize()}
        if not result:
            raise AuthorizationExpired(
                _(
                    "The connection to Microsoft holds no usable sign-in any more. "
                    "Reconnect the account."
                )
            )
        if "access_token" not in result:
            raise self.provider.token_error(result, self.last)
        return str(result["access_token"])

    def _acquire(self, stored: Mapping[str, Any], *, force_refresh: bool) -> dict[str, Any] | None:
        try:
            if self.app_only:
                if force_refresh:
                    # App-only tokens have no refresh token: drop the cached one instead.
                    self.app.remove_tokens_for_client()
                return self.app.acquire_token_for_client(list(APP_SCOPES))
            home = stored.get("home_account_id")
            accounts = [a for a in self.app.get_accounts() if a.get("home_account_id") == home]
            if not home or not accounts:
                return None
            return self.app.acquire_token_silent_with_error(
                list(DELEGATED_SCOPES), accounts[0], force_refresh=force_refresh
            )
        except msal.exceptions.MsalServiceError:
            raise self.provider.identity_unavailable(self.last) from None
        except ValueError:
            # MSAL could not read the token endpoint's answer (not JSON).
            raise self.provider.identity_unavailable(self.last) from None

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> requests.Response:
        """Call Graph; on a 401 get a fresh token once and try again (the cache may be stale)."""
        url = path_or_url if "://" in path_or_url else self.provider.graph_base + path_or_url
        response = self._send(method, url, self.token(), json, params)
        if response.status_code == 401:
            response = self._send(method, url, self.token(force_refresh=True), json, params)
        if response.status_code < 400 or response.status_code in accept:
            return response
        raise self.provider.graph_error(response, app_only=self.app_only)

    def _send(
        self,
        method: str,
        url: str,
        token: str,
        json: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
    ) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "client-request-id": str(uuid.uuid4()),
        }
        return self.session.request(method, url, json=json, params=params, headers=headers)


class MicrosoftTeamsProvider(Provider):
    """Teams meetings through Microsoft Graph ``onlineMeetings``.

    Options (``WAGTAIL_BOOKINGS_VC["PROVIDERS"]["microsoft_teams"]``):

    ``CLIENT_ID``, ``CLIENT_SECRET``
        The application (client) id and a client secret of the app registered in
        Microsoft Entra. Required.
    ``AUTHORITY``
        The sign-in authority, ``https://login.microsoftonline.com/organizations`` by
        default: work and school accounts of any directory. A directory's own id keeps
        sign-ins to that directory. ``.../consumers`` is refused (personal accounts cannot
        have Teams meetings made through Graph); with ``.../common`` they are refused when
        they connect.
    ``GRAPH_BASE_URL``
        ``https://graph.microsoft.com/v1.0`` by default.

    ``spec.options`` read: ``waiting_room`` (default on). On: everyone but the organiser
    waits in the Teams lobby until let in. Off: everyone with the link joins at once.
    Only the organiser presents. Customers join in the browser with just a name (R25).

    Credentials (a dict, encrypted at rest by the app): ``kind`` (``delegated`` or
    ``organisation``), ``token_cache`` (MSAL's serialised cache), ``tenant_id`` (the
    directory) and, for delegated accounts, ``home_account_id`` (MSAL's id of the user).
    """

    id = "microsoft_teams"
    name = NAME
    needs_oauth = True
    needs_account = True
    shared_link = False
    organisation_fields = (
        OrganisationField(
            "tenant_id",
            _("Directory (tenant) ID"),
            help_text=_(
                "From Microsoft Entra admin center → Overview, or your directory's domain "
                "(contoso.onmicrosoft.com). An administrator of that directory must have "
                "granted admin consent to the app."
            ),
        ),
    )
    default_options: Mapping[str, Any] = {
        "CLIENT_ID": "",
        "CLIENT_SECRET": "",
        "AUTHORITY": "https://login.microsoftonline.com/organizations",
        "GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0",
    }

    # Settings ------------------------------------------------------------------------

    def check_options(self) -> None:
        self.client_id = str(self.options.get("CLIENT_ID") or "").strip()
        self.client_secret = str(self.options.get("CLIENT_SECRET") or "")
        if not self.client_id or not self.client_secret:
            raise ImproperlyConfigured(
                f"The {self.id} provider needs CLIENT_ID and CLIENT_SECRET: the application "
                "(client) ID and a client secret of the app registered in Microsoft Entra."
            )
        authority = str(self.options.get("AUTHORITY") or "").strip().rstrip("/")
        parts = urlsplit(authority)
        segments = [segment for segment in parts.path.split("/") if segment]
        if parts.scheme != "https" or not parts.hostname or len(segments) != 1:
            raise ImproperlyConfigured(
                f"The {self.id} provider's AUTHORITY must be an https URL with one tenant "
                "segment, such as https://login.microsoftonline.com/organizations, "
                f"not {authority!r}."
            )
        if segments[0].lower() in PERSONAL_ACCOUNT_TENANTS:
            raise ImproperlyConfigured(
                f"The {self.id} provider's AUTHORITY points at personal Microsoft accounts, "
                "which cannot have Teams meetings made for them. Use .../organizations."
            )
        self.authority_host = parts.netloc
        self.authority_tenant = segments[0]
        graph = str(self.options.get("GRAPH_BASE_URL") or "").strip().rstrip("/")
        graph_parts = urlsplit(graph)
        if graph_parts.scheme not in ("https", "http") or not graph_parts.hostname:
            raise ImproperlyConfigured(
                f"The {self.id} provider's GRAPH_BASE_URL must be a URL such as "
                f"https://graph.microsoft.com/v1.0, not {graph!r}."
            )
        self.graph_base = graph

    def checks(self) -> list[CheckMessage]:
        if self.authority_tenant.lower() == "common":
            return [
                CheckWarning(
                    f"The {self.id} provider signs in through .../common, which also offers "
                    "personal Microsoft accounts: they are refused when they connect.",
                    hint="Use https://login.microsoftonline.com/organizations as AUTHORITY.",
                    id="wagtail_bookings_vc.W401",
                )
            ]
        return []

    # MSAL plumbing -------------------------------------------------------------------

    def _build_app(
        self,
        session: requests.Session,
        cache: msal.SerializableTokenCache,
        last: _LastAnswer,
        tenant: str | None = None,
    ) -> msal.ConfidentialClientApplication:
        """Return an MSAL application using ``session`` for every call it makes.

        Built per operation, as MSAL's own web-app samples do: it holds the cache of one
        account, and its constructor reads the authority's OpenID metadata.
        """
        authority = f"https://{self.authority_host}/{tenant or self.authority_tenant}"
        last.reset()
        try:
            return msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self.client_secret,
                authority=authority,
                token_cache=cache,
                http_client=session,
                # Instance discovery asks a fixed Microsoft host about the authority;
                # the authority is configured, so there is nothing to discover.
                instance_discovery=False,
            )
        except msal.exceptions.MsalServiceError:
            raise self.identity_unavailable(last) from None
        except ValueError as error:
            if last.status == 429 or last.status >= 500:
                raise self.identity_unavailable(last) from None
            # The metadata was refused: an unknown directory, or a wrong AUTHORITY.
            raise PermanentFailure(
                interpolate_lazy(
                    _(
                        "Microsoft does not know the directory “%(tenant)s”. Check the "
                        "directory (tenant) ID, or the AUTHORITY setting."
                    ),
                    {"tenant": tenant or self.authority_tenant},
                ),
                provider_message=scrub_text(str(error).split(". Error:")[0]),
            ) from None

    @contextlib.contextmanager
    def _connect(self, account: ProviderAccount) -> Iterator[_Connection]:
        stored = account.credentials or {}
        kind = stored.get("kind") or DELEGATED
        if not stored.get("token_cache") and kind == DELEGATED:
            raise AuthorizationExpired(
                _("The account has no connection to Microsoft. Connect the account.")
            )
        tenant = stored.get("tenant_id") if kind == ORGANISATION else None
        if kind == ORGANISATION and not tenant:
            raise PermanentFailure(_("The organisation account has no directory (tenant) ID."))
        with self.session() as session:
            last = _LastAnswer()
            session.hooks["response"].append(last.hook)
            cache = msal.SerializableTokenCache()
            app = self._build_app(session, cache, last, tenant)
            yield _Connection(self, account, session, app, cache, last, kind)

    def identity_unavailable(self, last: _LastAnswer) -> ProviderError:
        """The error for a sign-in service that is busy or down (by its last answer)."""
        if last.status == 429 or (last.status == 503 and last.retry_after is not None):
            return RateLimited(
                last.retry_after,
                _("Microsoft's sign-in service asked us to slow down. It will be tried again."),
                provider_code=last.status,
            )
        return TemporaryFailure(
            _("Microsoft's sign-in service had a temporary problem. It will be tried again."),
            provider_code=last.status or "",
        )

    def token_error(self, result: Mapping[str, Any], last: _LastAnswer) -> ProviderError:
        """Map a token-endpoint error (MSAL's result dict) to the error tree."""
        error = str(result.get("error") or "")
        description = str(result.get("error_description") or "").split("\n")[0]
        details = {"provider_code": error, "provider_message": scrub_text(description)}
        if last.status == 429 or last.status >= 500:
            return self.identity_unavailable(last)
        if error in ("temporarily_unavailable", "server_error"):
            return TemporaryFailure(
                _("Microsoft's sign-in service had a temporary problem. It will be tried again."),
                **details,
            )
        if error in _GRANT_GONE:
            return AuthorizationExpired(
                _(
                    "Microsoft no longer accepts the connection to this account (it was "
                    "revoked, or has expired). Reconnect the account."
                ),
                **details,
            )
        if error == "invalid_client":
            return PermanentFailure(
                _(
                    "Microsoft refused the app's own credentials: check CLIENT_ID and "
                    "CLIENT_SECRET in the settings (client secrets expire)."
                ),
                **details,
            )
        return PermanentFailure(
            _("Microsoft refused to give the app a token for this account."), **details
        )

    def graph_error(self, response: requests.Response, *, app_only: bool) -> ProviderError:
        """Map a Graph error answer to the error tree, with advice for permission errors."""
        if response.status_code != 403:
            error = error_from_response(response, str(NAME))
            return error or PermanentFailure(provider_code=response.status_code)
        code, message = provider_error_details(response)
        details = {"provider_code": code, "provider_message": message}
        if app_only and _ACCESS_POLICY_RE.search(message):
            return PermanentFailure(
                _(
                    "Teams does not let the app make meetings for this user: a Teams "
                    "administrator must grant the app an application access policy "
                    "(New-CsApplicationAccessPolicy, then Grant-CsApplicationAccessPolicy "
                    "for this user or -Global). It can take up to 30 minutes to apply."
                ),
                **details,
            )
        if app_only:
            return PermanentFailure(
                _(
                    "Microsoft refused the app: an administrator must grant admin consent "
                    "to its application permissions OnlineMeetings.ReadWrite.All and "
                    "User.Read.All."
                ),
                **details,
            )
        return PermanentFailure(
            _(
                "Microsoft refused to make Teams meetings for this account: it needs a "
                "Teams licence, and the OnlineMeetings.ReadWrite permission must be granted."
            ),
            **details,
        )

    # Connecting accounts -------------------------------------------------------------

    def start_authorization(self, redirect_uri: str, state: str) -> AuthorizationRequest:
        with self.session() as session:
            last = _LastAnswer()
            session.hooks["response"].append(last.hook)
            app = self._build_app(session, msal.SerializableTokenCache(), last)
            # select_account: the admin may be signed in to Microsoft as someone else
            # than the staff member whose account is being connected.
            flow = app.initiate_auth_code_flow(
                list(DELEGATED_SCOPES),
                redirect_uri=redirect_uri,
                state=state,
                prompt="select_account",
            )
        return AuthorizationRequest(url=flow["auth_uri"], flow=flow)

    def finish_authorization(
        self,
        account: ProviderAccount,
        callback: Mapping[str, str],
        redirect_uri: str,
        flow: Mapping[str, Any],
    ) -> None:
        if callback.get("error"):
            raise AuthorizationExpired(
                _("Microsoft did not give access: connect again and accept the permissions."),
                provider_code=str(callback.get("error")),
                provider_message=scrub_text(str(callback.get("error_description") or "")),
            )
        cache = msal.SerializableTokenCache()
        with self.session() as session:
            last = _LastAnswer()
            session.hooks["response"].append(last.hook)
            app = self._build_app(session, cache, last)
            last.reset()
            try:
                # A copy: MSAL changes the flow it is given.
                result = app.acquire_token_by_auth_code_flow(dict(flow), dict(callback))
            except ValueError:
                # The state does not match, or the flow is not from this connection.
                raise AuthorizationExpired(
                    _(
                        "The answer from Microsoft does not belong to this connection. "
                        "Connect again."
                    )
                ) from None
            except msal.exceptions.MsalServiceError:
                raise self.identity_unavailable(last) from None
            except RuntimeError:
                # The id token's nonce does not match the one MSAL sent.
                raise AuthorizationExpired(
                    _("The answer from Microsoft could not be verified. Connect again.")
                ) from None
        if "error" in result:
            if result.get("error") == "invalid_grant":
                raise AuthorizationExpired(
                    _("The sign-in from Microsoft has expired or was already used. Connect again."),
                    provider_code="invalid_grant",
                    provider_message=scrub_text(str(result.get("error_description") or "")),
                )
            raise self.token_error(result, last)
        claims = result.get("id_token_claims") or {}
        tenant_id = str(claims.get("tid") or "")
        if tenant_id.lower() in PERSONAL_ACCOUNT_TENANTS:
            raise PermanentFailure(
                _(
                    "Teams meetings need a work or school Microsoft account. The account you "
                    "signed in with is a personal Microsoft account: sign in with the account "
                    "your organisation gave you."
                )
            )
        accounts = app.get_accounts()
        if not accounts or not claims.get("oid"):
            raise PermanentFailure(
                _("Microsoft did not say which account signed in. Connect again.")
            )
        with credentials_lock(account):
            account.credentials = {
                "kind": DELEGATED,
                "token_cache": cache.serialize(),
                "home_account_id": accounts[0]["home_account_id"],
                "tenant_id": tenant_id,
            }
        account.external_user_id = str(claims["oid"])
        account.external_email = str(
            claims.get("preferred_username") or claims.get("email") or accounts[0].get("username")
        )

    def connect_organisation(self, account: ProviderAccount, values: Mapping[str, str]) -> None:
        """Check app-only access to one directory, and store its token cache.

        Asks for an app-only token (client credentials) in that directory, then reads one
        user to check that admin consent covers the application permissions.
        """
        tenant = str(values.get("tenant_id") or "").strip().lower()
        if (
            not (_GUID_RE.match(tenant) or _DOMAIN_RE.match(tenant))
            or tenant in _MULTI_TENANT_PATHS
            or tenant in PERSONAL_ACCOUNT_TENANTS
        ):
            raise PermanentFailure(
                _(
                    "Enter the directory (tenant) ID of your organisation (a GUID) or its "
                    "domain, such as contoso.onmicrosoft.com."
                )
            )
        with self.session() as session:
            last = _LastAnswer()
            session.hooks["response"].append(last.hook)
            cache = msal.SerializableTokenCache()
            # An unknown directory is refused here, with its own message.
            app = self._build_app(session, cache, last, tenant)
            last.reset()
            try:
                result = app.acquire_token_for_client(list(APP_SCOPES))
            except (msal.exceptions.MsalServiceError, ValueError):
                raise self.identity_unavailable(last) from None
            if "access_token" not in result:
                if (
                    result.get("error") == "invalid_client"
                    or last.status in (0, 429)
                    or (last.status >= 500)
                ):
                    raise self.token_error(result, last)
                # Typically AADSTS700016: the app was never consented to in the directory.
                raise PermanentFailure(
                    _(
                        "Microsoft did not let the app into this directory. An administrator "
                        "of the directory must grant admin consent to the app's application "
                        "permissions (OnlineMeetings.ReadWrite.All and User.Read.All)."
                    ),
                    provider_code=str(result.get("error") or ""),
                    provider_message=scrub_text(
                        str(result.get("error_description") or "").split("\n")[0]
                    ),
                )
            scratch = _Scratch(
                {"kind": ORGANISATION, "tenant_id": tenant, "token_cache": cache.serialize()}
            )
            connection = _Connection(self, scratch, session, app, cache, last, ORGANISATION)
            # A token comes without admin consent too, only without permissions: reading
            # one user shows whether they were granted (a 403 explains what to grant).
            connection.request("GET", "/users", params={"$top": "1", "$select": "id"})
        account.credentials = dict(scratch.credentials)

    def list_users(self, account: ProviderAccount) -> list[ProviderUser]:
        """Return the directory's users, following Graph's pages."""
        if (account.credentials or {}).get("kind") != ORGANISATION:
            raise PermanentFailure(_("Only organisation accounts have users to map."))
        users: list[ProviderUser] = []
        with self._connect(account) as connection:
            url: str | None = "/users"
            params: dict[str, str] | None = {
                "$select": "id,displayName,mail,userPrincipalName",
                "$top": "999",
            }
            for _page in range(_USER_PAGES_MAX):
                if url is None:
                    break
                page = connection.request("GET", url, params=params).json()
                for item in page.get("value") or []:
                    users.append(
                        ProviderUser(
                            id=str(item.get("id") or ""),
                            email=str(item.get("mail") or item.get("userPrincipalName") or ""),
                            name=str(item.get("displayName") or ""),
                        )
                    )
                next_link = page.get("@odata.nextLink")
                # The next page carries its own query; never send the token elsewhere.
                url = next_link if next_link and next_link.startswith(self.graph_base) else None
                params = None
        return sorted((u for u in users if u.id), key=lambda u: (u.name.lower(), u.email))

    def disconnect(self, account: ProviderAccount) -> None:
        """Remove the account's tokens from its MSAL cache.

        Microsoft has no endpoint through which an app revokes a user's delegated refresh
        token (revoking every sign-in session of the user would sign them out of
        everything), so nothing is called at Microsoft for that: the app then deletes the
        credentials. Users and administrators remove the app's access in their Microsoft
        account or Entra settings.
        """
        with credentials_lock(account):
            stored = dict(account.credentials or {})
            if not stored.get("token_cache"):
                return
            cache = msal.SerializableTokenCache()
            cache.deserialize(stored["token_cache"])
            kind = stored.get("kind") or DELEGATED
            try:
                with self.session() as session:
                    last = _LastAnswer()
                    tenant = stored.get("tenant_id") if kind == ORGANISATION else None
                    app = self._build_app(session, cache, last, tenant)
                    if kind == ORGANISATION:
                        app.remove_tokens_for_client()
                    else:
                        for each in app.get_accounts():
                            app.remove_account(each)
                    remaining = cache.serialize()
            except ProviderError as error:
                # Microsoft is out of reach: forget everything here all the same.
                logger.info("Teams disconnect without Microsoft's metadata: %s", error)
                remaining = ""
            account.credentials = {**stored, "token_cache": remaining}

    # Meetings ------------------------------------------------------------------------

    def _meetings_path(self, connection: _Connection) -> str:
        if not connection.app_only:
            return "/me/onlineMeetings"
        user_id = connection.account.external_user_id
        if not user_id:
            raise PermanentFailure(
                _(
                    "This Teams organisation account is not mapped to a user: map the staff "
                    "member to a user of the directory."
                )
            )
        return f"/users/{quote(user_id, safe='')}/onlineMeetings"

    @staticmethod
    def _settings(spec: MeetingSpec) -> dict[str, Any]:
        waiting_room = bool(spec.options.get("waiting_room", True))
        return {
            "lobbyBypassSettings": {
                "scope": "organizer" if waiting_room else "everyone",
                "isDialInBypassEnabled": not waiting_room,
            },
            "allowedPresenters": "organizer",
        }

    @staticmethod
    def _times(spec: MeetingSpec) -> dict[str, str]:
        return {"startDateTime": _graph_time(spec.start), "endDateTime": _graph_time(spec.end)}

    def _details(self, meeting: Mapping[str, Any], connection: _Connection) -> MeetingDetails:
        join_url = str(meeting.get("joinWebUrl") or "")
        if not meeting.get("id") or urlsplit(join_url).scheme != "https":
            raise PermanentFailure(_("Microsoft made the meeting without a Teams join link."))
        organizer = "me" if not connection.app_only else connection.account.external_user_id
        # No passcode or meeting id: they let people in through the Teams app, round the
        # site's join links. The join URL alone is enough in a browser.
        return MeetingDetails(
            external_id=str(meeting["id"]),
            join_url=join_url,
            extra={"organizer": organizer},
        )

    def _read_back(
        self, connection: _Connection, url: str, response: requests.Response
    ) -> dict[str, Any]:
        if response.status_code != 204 and response.content:
            return response.json()
        return connection.request("GET", url).json()

    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        """Create (or find again) the meeting, with ``externalId`` = ``spec.request_id``.

        ``createOrGet`` takes only times, subject and participants; the lobby and
        presenter settings follow in a PATCH when the meeting does not have them yet.
        Without a request id every call makes a new meeting.
        """
        if account is None:
            raise PermanentFailure(_("Teams meetings need a connected Microsoft account."))
        with self._connect(account) as connection:
            base = self._meetings_path(connection)
            body = {
                "externalId": spec.request_id or uuid.uuid4().hex,
                **self._times(spec),
                "subject": spec.topic[:_SUBJECT_MAX],
            }
            meeting = connection.request("POST", f"{base}/createOrGet", json=body).json()
            changes = self._missing(meeting, spec)
            if changes:
                url = f"{base}/{quote(str(meeting.get('id') or ''), safe='')}"
                response = connection.request("PATCH", url, json=changes)
                meeting = self._read_back(connection, url, response)
            return self._details(meeting, connection)

    def _missing(self, meeting: Mapping[str, Any], spec: MeetingSpec) -> dict[str, Any]:
        """What an existing (or just made) meeting lacks of what ``spec`` asks for."""
        changes: dict[str, Any] = {}
        settings = self._settings(spec)
        lobby = meeting.get("lobbyBypassSettings") or {}
        if lobby.get("scope") != settings["lobbyBypassSettings"]["scope"] or bool(
            lobby.get("isDialInBypassEnabled")
        ) != bool(settings["lobbyBypassSettings"]["isDialInBypassEnabled"]):
            changes["lobbyBypassSettings"] = settings["lobbyBypassSettings"]
        if meeting.get("allowedPresenters") != settings["allowedPresenters"]:
            changes["allowedPresenters"] = settings["allowedPresenters"]
        # A meeting found again (an earlier attempt made it) may have older times.
        start = _parse_graph_time(meeting.get("startDateTime"))
        end = _parse_graph_time(meeting.get("endDateTime"))
        if start != spec.start or end != spec.end:
            changes.update(self._times(spec))
        return changes

    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        """Move the meeting (start and end together) and bring its settings in line.

        A meeting deleted in Teams meanwhile (404) is made again: the returned details
        then carry the new meeting's id and join URL.
        """
        if account is None:
            raise PermanentFailure(_("Teams meetings need a connected Microsoft account."))
        with self._connect(account) as connection:
            url = f"{self._meetings_path(connection)}/{quote(external_id, safe='')}"
            body = {
                **self._times(spec),
                "subject": spec.topic[:_SUBJECT_MAX],
                **self._settings(spec),
            }
            response = connection.request("PATCH", url, json=body, accept=(404,))
            if response.status_code != 404:
                return self._details(self._read_back(connection, url, response), connection)
        logger.info("Teams meeting %s was gone when it was moved: making it again", external_id)
        return self.create_meeting(account, spec)

    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        """Delete the meeting (Teams really deletes it); one already gone counts as deleted."""
        if account is None:
            raise PermanentFailure(_("Teams meetings need a connected Microsoft account."))
        with self._connect(account) as connection:
            url = f"{self._meetings_path(connection)}/{quote(external_id, safe='')}"
            connection.request("DELETE", url, accept=(404,))
