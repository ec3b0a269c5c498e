"""A fake Microsoft identity platform and Microsoft Graph on the loopback interface.

:class:`FakeMicrosoft` plays the parts the Teams provider uses, with Microsoft's status
codes and error bodies (OAuth-style ``{"error", "error_description", "error_codes", …}`` on
the identity side, ``{"error": {"code", "message", "innerError"}}`` on Graph):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (https endpoints on the
  authority host, as MSAL insists on https);
* ``GET /{tenant}/oauth2/v2.0/authorize``: consents at once as the user chosen with
  :meth:`FakeMicrosoft.sign_in_as` (or ``login_hint``) and redirects back with ``code`` and
  ``state``. A personal account can sign in through ``common`` or ``consumers`` only, as
  at Microsoft; through ``organizations`` the page refuses it;
* ``POST /{tenant}/oauth2/v2.0/token``: ``authorization_code`` (PKCE checked),
  ``refresh_token`` and ``client_credentials``; id tokens carry ``tid``, ``oid``,
  ``preferred_username`` and the nonce, signed with a key of the fake's own (MSAL decodes
  id tokens from the token endpoint without checking their signature);
* ``GET /v1.0/me``, ``GET /v1.0/users`` (paged by ``@odata.nextLink``);
* ``/v1.0/me/onlineMeetings`` and ``/v1.0/users/{id}/onlineMeetings``: ``POST``,
  ``POST …/createOrGet`` (one meeting per organiser and ``externalId``), ``GET``,
  ``PATCH`` (start and end together), ``DELETE`` (204, then 404);
* app-only calls need admin consent (:meth:`FakeMicrosoft.grant_admin_consent`) and, for
  meetings, a Teams application access policy for the user
  (:meth:`FakeMicrosoft.grant_access_policy`), or answer 403 as Graph does;
* expired and revoked tokens (401 ``InvalidAuthenticationToken``; ``invalid_grant`` at the
  token endpoint), throttling (429 with ``Retry-After``) and the fault knobs of
  :class:`FakeServer`.

MSAL refuses an authority that is not https. The fake therefore advertises
``https://{authority_host}/…`` (``login.fake.test`` by default) and
:meth:`FakeMicrosoft.mount` mounts a transport adapter on a session that sends those URLs
to the fake's plain-http port; :meth:`FakeMicrosoft.route_sessions` does it for every
session the Teams provider makes. Only for tests and local demos.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import jwt
import requests

from ..providers.http import ProviderHTTPAdapter
from .server import FakeServer, RecordedRequest, Reply, empty_reply, json_reply, route, text_reply

__all__ = [
    "MSA_TENANT",
    "WORK_TENANT",
    "FakeMicrosoft",
    "FakeUser",
    "RecordedReply",
    "RoutingAdapter",
]

#: The tenant of every personal Microsoft account.
MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
#: The fake's work directory ("Contoso").
WORK_TENANT = "5f3e1b2a-7c4d-4e8f-9a0b-1c2d3e4f5a6b"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
APP_ROLES = ("OnlineMeetings.ReadWrite.All", "User.Read.All")
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
# What createOrGet takes (the CSDL action's parameters): an action is not an open type.
_CREATE_OR_GET_PARAMETERS = frozenset(
    {"chatInfo", "endDateTime", "externalId", "participants", "startDateTime", "subject"}
)
_WRITABLE = frozenset(
    {
        "startDateTime",
        "endDateTime",
        "subject",
        "participants",
        "lobbyBypassSettings",
        "allowedPresenters",
        "allowAttendeeToEnableCamera",
        "allowAttendeeToEnableMic",
        "allowMeetingChat",
        "allowTeamworkReactions",
        "isEntryExitAnnounced",
        "recordAutomatically",
        "joinMeetingIdSettings",
        "chatRestrictions",
        "watermarkProtection",
    }
)
_LOBBY_SCOPES = frozenset(
    {
        "organizer",
        "organization",
        "organizationAndFederated",
        "everyone",
        "invited",
        "organizationExcludingGuests",
    }
)
_PRESENTERS = frozenset({"everyone", "organization", "roleIsPresenter", "organizer"})


@dataclasses.dataclass
class FakeUser:
    """A user of a directory (or a personal Microsoft account).

    Attributes:
        id: The object id (``oid``).
        tenant_id: The directory; :data:`MSA_TENANT` for personal accounts.
        user_principal_name: The sign-in name (``preferred_username``).
        display_name: The name.
        mail: The mail address, if any.
        access_policy: A Teams application access policy lets the app make meetings for
            this user with app-only tokens.
    """

    id: str
    tenant_id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    access_policy: bool = False

    @property
    def personal(self) -> bool:
        return self.tenant_id == MSA_TENANT

    def as_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "mail": self.mail,
            "userPrincipalName": self.user_principal_name,
        }


@dataclasses.dataclass
class _Token:
    value: str
    client_id: str
    tenant_id: str
    expires_at: float
    user_id: str | None = None  # None: an app-only token
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    revoked: bool = False


@dataclasses.dataclass
class _Code:
    user_id: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str
    method: str
    nonce: str
    tenant_path: str
    expires_at: float
    used: bool = False


@dataclasses.dataclass(frozen=True)
class RecordedReply:
    """One answer the fake sent, with the request line it answered."""

    method: str
    path: str
    query: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class RoutingAdapter(ProviderHTTPAdapter):
    """Sends ``https://{host}/…`` to a plain-http fake, keeping the app's adapter behaviour."""

    def __init__(self, target: str, provider_name: str = "", **kwargs: Any) -> None:
        super().__init__(provider_name, **kwargs)
        self.target = urlsplit(target)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(
            (self.target.scheme, self.target.netloc, parts.path, parts.query, parts.fragment)
        )
        return super().send(request, *args, **kwargs)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _graph_time(value: datetime) -> str:
    # Graph writes seven fractional digits.
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


class FakeMicrosoft(FakeServer):
    """Microsoft's identity platform and the onlineMeetings part of Graph, in one server.

    Attributes:
        client_id, client_secret: The registered app's credentials.
        authority_host: The https host the fake stands for (MSAL needs https).
        users: Users by object id.
        tenants: Directory id → the app roles an administrator consented to for the app
            there (``None``: the app was never consented to in that directory).
        meetings: Online meetings by id (each with a private ``_organizer`` key).
        replies: Every answer sent, in order (:class:`RecordedReply`).
    """

    def __init__(
        self,
        *,
        client_id: str = "0b7e4c3a-2f1d-4a6b-8c9d-0e1f2a3b4c5d",
        client_secret: str = "fake-client-secret-Q8~x",  # noqa: S107
        authority_host: str = "login.fake.test",
        join_host: str = "teams.fake.test",
        redirect_uris: tuple[str, ...] = (),
        access_token_lifetime: int = 3599,
        max_page_size: int = 999,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.client_id = client_id
        self.client_secret = client_secret
        self.authority_host = authority_host
        self.join_host = join_host
        self.redirect_uris = tuple(redirect_uris)
        self.access_token_lifetime = access_token_lifetime
        # Graph may return fewer items per page than $top asks for.
        self.max_page_size = max_page_size
        self.state_lock = threading.Lock()
        self.tenants: dict[str, set[str] | None] = {WORK_TENANT: None, MSA_TENANT: None}
        self.tenant_domains: dict[str, str] = {"contoso.example": WORK_TENANT}
        self.users: dict[str, FakeUser] = {}
        self.meetings: dict[str, dict[str, Any]] = {}
        self.replies: list[RecordedReply] = []
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._signing_key = secrets.token_bytes(32)
        self._deny_next = False
        self.add_user(
            "ada@contoso.example", "Ada Lovelace", user_id="a1d4c0de-0000-4000-8000-00000000ada1"
        )
        self.add_user(
            "ben@contoso.example", "Ben Okafor", user_id="b3e70000-0000-4000-8000-00000000be01"
        )
        self.add_user(
            "pat@outlook.example",
            "Pat Personal",
            tenant_id=MSA_TENANT,
            user_id="00000000-0000-0000-5a7e-00000000000a",
        )
        self.signed_in = self.user("ada@contoso.example").id

    # Setting the scene -----------------------------------------------------------------

    def provider_options(self, **options: Any) -> dict[str, Any]:
        """Options that point the Teams provider at this fake."""
        return {
            "CLIENT_ID": self.client_id,
            "CLIENT_SECRET": self.client_secret,
            "AUTHORITY": f"https://{self.authority_host}/organizations",
            "GRAPH_BASE_URL": f"{self.url}/v1.0",
            "HTTP_TIMEOUT": (2.0, 5.0),
            "HTTP_TRUST_ENV": False,
            **options,
        }

    def organisation_values(self, tenant_id: str = WORK_TENANT) -> dict[str, str]:
        """The values an administrator types in to connect the work directory."""
        return {"tenant_id": tenant_id}

    def add_user(
        self,
        user_principal_name: str,
        display_name: str,
        *,
        tenant_id: str = WORK_TENANT,
        user_id: str | None = None,
        mail: str | None = None,
        access_policy: bool = False,
    ) -> FakeUser:
        """Add a user to a directory (``MSA_TENANT``: a personal account)."""
        user = FakeUser(
            id=user_id or str(uuid.uuid4()),
            tenant_id=tenant_id,
            user_principal_name=user_principal_name,
            display_name=display_name,
            mail=mail if mail is not None else user_principal_name,
            access_policy=access_policy,
        )
        with self.state_lock:
            self.users[user.id] = user
            self.tenants.setdefault(tenant_id, None)
        return user

    def user(self, ref: str | FakeUser) -> FakeUser:
        """Return a user by object id or sign-in name."""
        if isinstance(ref, FakeUser):
            return ref
        with self.state_lock:
            found = self.users.get(ref) or next(
                (u for u in self.users.values() if u.user_principal_name.lower() == ref.lower()),
                None,
            )
        if found is None:
            raise KeyError(ref)
        return found

    @property
    def personal_user(self) -> FakeUser:
        """The personal Microsoft account the fake starts with."""
        return self.user("pat@outlook.example")

    def sign_in_as(self, ref: str | FakeUser) -> FakeUser:
        """Choose who signs in and consents on the next visits to the authorize page."""
        user = self.user(ref)
        self.signed_in = user.id
        return user

    def deny_consent_next(self) -> None:
        """The next visit to the authorize page declines consent (``access_denied``)."""
        self._deny_next = True

    def grant_admin_consent(
        self, tenant_id: str = WORK_TENANT, roles: tuple[str, ...] = APP_ROLES
    ) -> None:
        """An administrator of ``tenant_id`` consents to the app's application permissions."""
        with self.state_lock:
            self.tenants[tenant_id] = set(roles)

    def grant_access_policy(self, ref: str | FakeUser) -> None:
        """A Teams administrator grants the app's access policy to a user."""
        self.user(ref).access_policy = True

    def revoke_refresh_tokens(self, ref: str | FakeUser | None = None) -> None:
        """Revoke the refresh tokens of one user (or everyone): ``invalid_grant`` from now."""
        user_id = None if ref is None else self.user(ref).id
        with self.state_lock:
            for token in self._refresh.values():
                if user_id is None or token.user_id == user_id:
                    token.revoked = True

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far stops working (401), whatever caches think."""
        with self.state_lock:
            for token in self._tokens.values():
                token.revoked = True

    def meetings_of(self, ref: str | FakeUser) -> list[dict[str, Any]]:
        """The meetings a user organises, oldest first."""
        user_id = self.user(ref).id
        with self.state_lock:
            return [dict(m) for m in self.meetings.values() if m["_organizer"] == user_id]

    def token_requests(self, grant_type: str | None = None) -> list[dict[str, str]]:
        """The forms posted to the token endpoint (optionally of one grant type)."""
        return [
            request.form()
            for request in list(self.requests)
            if request.method == "POST"
            and request.path.endswith("/oauth2/v2.0/token")
            and (grant_type is None or request.form().get("grant_type") == grant_type)
        ]

    def graph_requests(self, method: str | None = None) -> list[RecordedRequest]:
        """The requests made to Graph (optionally with one method)."""
        return [
            request
            for request in list(self.requests)
            if request.path.startswith("/v1.0/") and (method is None or request.method == method)
        ]

    # Reaching the fake ---------------------------------------------------------------

    def mount(self, session: requests.Session) -> requests.Session:
        """Send ``session``'s requests for the authority host to this fake."""
        current = session.get_adapter(f"https://{self.authority_host}/")
        timeout = getattr(current, "timeout", None)
        extra = {"timeout": timeout} if timeout else {}
        name = getattr(current, "provider_name", "")
        session.mount(f"https://{self.authority_host}/", RoutingAdapter(self.url, name, **extra))
        return session

    def route_sessions(self, monkeypatch: Any) -> None:
        """Route every session the Teams provider makes (``monkeypatch``: pytest's)."""
        from ..providers.microsoft_teams import MicrosoftTeamsProvider

        original = MicrosoftTeamsProvider.session
        fake = self

        def session(provider: MicrosoftTeamsProvider) -> requests.Session:
            return fake.mount(original(provider))

        monkeypatch.setattr(MicrosoftTeamsProvider, "session", session)

    def visit(self, url: str) -> requests.Response:
        """Open a page of the fake as a browser would, without following redirects."""
        with requests.Session() as session:
            session.trust_env = False
            self.mount(session)
            return session.get(url, allow_redirects=False, timeout=5)

    def consent(self, auth_uri: str, as_user: str | FakeUser | None = None) -> str:
        """Open the consent page and return where it sends the browser back to.

        Raises ``AssertionError`` with the page's text when the page refuses.
        """
        if as_user is not None:
            self.sign_in_as(as_user)
        response = self.visit(auth_uri)
        if response.status_code != 302:
            raise AssertionError(
                f"The sign-in page refused: {response.status_code} {response.text}"
            )
        return response.headers["Location"]

    # Recording every answer ----------------------------------------------------------

    def _write(self, http: Any, reply: Reply) -> None:  # type: ignore[override]
        parts = urlsplit(http.path)
        with self.state_lock:
            self.replies.append(
                RecordedReply(
                    method=http.command.upper(),
                    path=parts.path,
                    query=parts.query,
                    status=reply.status,
                    headers=dict(reply.headers),
                    body=reply.body,
                )
            )
        FakeServer._write(http, reply)

    # Errors in Microsoft's shapes ----------------------------------------------------

    @staticmethod
    def _now() -> float:
        return time.time()

    def graph_error(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """A Graph error answer."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return json_reply(
            {
                "error": {
                    "code": code,
                    "message": message,
                    "innerError": {
                        "date": now,
                        "request-id": str(uuid.uuid4()),
                        "client-request-id": str(uuid.uuid4()),
                    },
                }
            },
            status,
            headers,
        )

    def oauth_error(
        self,
        error: str,
        aadsts: int,
        description: str,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An identity-platform error answer."""
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return json_reply(
            {
                "error": error,
                "error_description": f"AADSTS{aadsts}: {description} Trace ID: {trace} "
                f"Correlation ID: {correlation} Timestamp: {stamp}",
                "error_codes": [aadsts],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
            },
            status,
            headers,
        )

    def token_throttled_reply(self, retry_after: int = 5) -> Reply:
        """What the token endpoint answers when it throttles (for ``fail_next(reply=…)``)."""
        return self.oauth_error(
            "temporarily_unavailable",
            50196,
            "The server terminated an operation because it encountered a client request loop.",
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    def error_reply(self, status: int) -> Reply:
        codes = {
            500: "InternalServerError",
            502: "BadGateway",
            503: "ServiceNotAvailable",
            504: "GatewayTimeout",
        }
        return self.graph_error(status, codes.get(status, "generalException"), "Injected failure.")

    def rate_limited_reply(self, status: int, retry_after: str | None) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        code = "TooManyRequests" if status == 429 else "ServiceNotAvailable"
        return self.graph_error(
            status, code, "Too many requests. Please try again later.", headers=headers
        )

    def unauthorized_reply(self) -> Reply:
        return self.graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
            headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
        )

    def not_found_reply(self, request: RecordedRequest) -> Reply:
        if request.path.startswith("/v1.0/"):
            return self.graph_error(
                400, "BadRequest", f"Resource not found for the segment '{request.path}'."
            )
        return text_reply("Not found.", 404)

    # Identity ------------------------------------------------------------------------

    def _tenant_of(self, path_tenant: str) -> str | None:
        """The directory a path segment names (``None`` for common/organizations/consumers)."""
        lowered = path_tenant.lower()
        if lowered in ("common", "organizations"):
            return None
        if lowered == "consumers":
            return MSA_TENANT
        if lowered in self.tenants:
            return lowered
        return self.tenant_domains.get(lowered, "")

    def _unknown_tenant(self, path_tenant: str) -> Reply:
        return self.oauth_error(
            "invalid_tenant",
            90002,
            f"Tenant '{path_tenant}' not found. Check to make sure you have the correct tenant "
            "ID and are signing into the correct cloud.",
        )

    @route("GET", "/{tenant}/v2.0/.well-known/openid-configuration")
    def openid_configuration(self, request: RecordedRequest, tenant: str) -> Reply:
        directory = self._tenant_of(tenant)
        if directory == "":
            return self._unknown_tenant(tenant)
        segment = directory or tenant.lower()
        base = f"https://{self.authority_host}/{segment}"
        issuer_tenant = directory or "{tenantid}"
        return json_reply(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"https://{self.authority_host}/{segment}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"https://{self.authority_host}/{issuer_tenant}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "oid"],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    @route("GET", "/{tenant}/oauth2/v2.0/authorize")
    def authorize(self, request: RecordedRequest, tenant: str) -> Reply:
        q = {key: values[0] for key, values in request.query.items()}
        directory = self._tenant_of(tenant)
        if directory == "":
            return text_reply(f"AADSTS90002: Tenant '{tenant}' not found.", 400)
        if q.get("client_id") != self.client_id:
            return text_reply(
                f"AADSTS700016: Application with identifier '{q.get('client_id')}' was not "
                "found in the directory.",
                400,
            )
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri or (self.redirect_uris and redirect_uri not in self.redirect_uris):
            return text_reply(
                "AADSTS50011: The redirect URI specified in the request does not match the "
                "redirect URIs configured for the application.",
                400,
            )
        if q.get("response_type") != "code":
            return text_reply("AADSTS700054: response_type 'id_token' is not enabled.", 400)
        challenge, method = q.get("code_challenge", ""), q.get("code_challenge_method", "plain")
        if challenge and method != "S256":
            return text_reply("AADSTS501491: Invalid code_challenge_method.", 400)
        hint = q.get("login_hint")
        try:
            user = self.user(hint) if hint else self.users[self.signed_in]
        except KeyError:
            user = self.users[self.signed_in]
        if user.personal and (directory not in (None, MSA_TENANT) or tenant == "organizations"):
            # What the sign-in page says; it does not send the browser back.
            return text_reply(
                "You can't sign in here with a personal account. Use your work or school "
                "account instead.",
                400,
                "text/html; charset=utf-8",
            )
        if directory is not None and not user.personal and user.tenant_id != directory:
            return text_reply(
                f"AADSTS50020: User account '{user.user_principal_name}' from identity provider "
                "does not exist in tenant and cannot access the application.",
                400,
            )
        back = {"state": q.get("state", "")}
        if self._deny_next:
            self._deny_next = False
            back.update(
                error="access_denied",
                error_description="AADSTS65004: User declined to consent to access the app.",
            )
        else:
            code = secrets.token_urlsafe(48)
            with self.state_lock:
                self._codes[code] = _Code(
                    user_id=user.id,
                    client_id=self.client_id,
                    redirect_uri=redirect_uri,
                    scopes=tuple(q.get("scope", "").split()),
                    challenge=challenge,
                    method=method,
                    nonce=q.get("nonce", ""),
                    tenant_path=tenant.lower(),
                    expires_at=self._now() + 600,
                )
            back = {"code": code, **back, "session_state": str(uuid.uuid4())}
        separator = "&" if "?" in redirect_uri else "?"
        return Reply(302, b"", {"Location": f"{redirect_uri}{separator}{urlencode(back)}"})

    def _client_auth(self, request: RecordedRequest, form: Mapping[str, str]) -> str | None:
        """The client id when the app authenticated itself, else ``None``."""
        header = request.header("Authorization")
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                return None
            from urllib.parse import unquote_plus

            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = unquote_plus(basic_id), unquote_plus(basic_secret)
        if client_id == self.client_id and secrets.compare_digest(secret, self.client_secret):
            return client_id
        return None

    @route("POST", "/{tenant}/oauth2/v2.0/token")
    def token(self, request: RecordedRequest, tenant: str) -> Reply:
        form = request.form()
        directory = self._tenant_of(tenant)
        if directory == "":
            return self._unknown_tenant(tenant)
        if self._client_auth(request, form) is None:
            return self.oauth_error(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID.",
                status=401,
            )
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            return self._grant_code(form, tenant.lower())
        if grant == "refresh_token":
            return self._grant_refresh(form)
        if grant == "client_credentials":
            return self._grant_client(form, tenant, directory)
        return self.oauth_error(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )

    def _issue(
        self,
        user: FakeUser | None,
        tenant_id: str,
        scopes: tuple[str, ...],
        *,
        nonce: str = "",
        client_info: bool = False,
        roles: frozenset[str] = frozenset(),
    ) -> Reply:
        now = self._now()
        resource = tuple(s for s in scopes if s not in _RESERVED_SCOPES)
        access = _Token(
            value=f"fake-at.{secrets.token_urlsafe(32)}",
            client_id=self.client_id,
            tenant_id=tenant_id,
            expires_at=now + self.access_token_lifetime,
            user_id=user.id if user else None,
            scopes=frozenset(resource),
            roles=roles,
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access.value,
        }
        with self.state_lock:
            self._tokens[access.value] = access
        if user is None:
            return json_reply(body)
        body["scope"] = " ".join([*resource, *(s for s in ("openid", "profile") if s in scopes)])
        if "offline_access" in scopes:
            refresh = dataclasses.replace(
                access, value=f"fake-rt.{secrets.token_urlsafe(48)}", expires_at=now + 90 * 86400
            )
            with self.state_lock:
                self._refresh[refresh.value] = refresh
            body["refresh_token"] = refresh.value
        if "openid" in scopes:
            body["id_token"] = self._id_token(user, nonce)
        if client_info:
            body["client_info"] = _b64url(
                json.dumps({"uid": user.id, "utid": user.tenant_id}).encode()
            )
        return json_reply(body)

    def _id_token(self, user: FakeUser, nonce: str) -> str:
        now = int(self._now())
        claims = {
            "aud": self.client_id,
            "iss": f"https://{self.authority_host}/{user.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.user_principal_name,
            "sub": _b64url(hashlib.sha256(f"{user.id}{self.client_id}".encode()).digest()),
            "tid": user.tenant_id,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(claims, self._signing_key, algorithm="HS256", headers={"kid": "fake"})

    def _grant_code(self, form: Mapping[str, str], tenant_path: str) -> Reply:
        with self.state_lock:
            code = self._codes.get(form.get("code", ""))
            already_used = code is not None and code.used
            if code is not None:
                code.used = True
        if code is None or code.expires_at < self._now():
            return self.oauth_error(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired.",
            )
        if already_used:
            return self.oauth_error(
                "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed."
            )
        if form.get("redirect_uri") != code.redirect_uri or code.tenant_path != tenant_path:
            return self.oauth_error(
                "invalid_grant",
                50148,
                "The redirect_uri or authority does not match the authorization request.",
            )
        verifier = form.get("code_verifier", "")
        if code.challenge:
            expected = _b64url(hashlib.sha256(verifier.encode()).digest())
            if code.method != "S256" or expected != code.challenge:
                return self.oauth_error(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
        user = self.users[code.user_id]
        scopes = tuple(form.get("scope", "").split()) or code.scopes
        return self._issue(
            user,
            user.tenant_id,
            scopes,
            nonce=code.nonce,
            client_info=form.get("client_info") == "1",
        )

    def _grant_refresh(self, form: Mapping[str, str]) -> Reply:
        with self.state_lock:
            refresh = self._refresh.get(form.get("refresh_token", ""))
        if refresh is None or refresh.revoked or refresh.expires_at < self._now():
            return self.oauth_error(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token "
                "is needed. The user might have changed or reset their password.",
            )
        user = self.users[refresh.user_id or ""]
        scopes = tuple(form.get("scope", "").split())
        unknown = [s for s in scopes if s not in _RESERVED_SCOPES and s not in refresh.scopes]
        if unknown:
            return self.oauth_error(
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application: {unknown}.",
            )
        return self._issue(user, user.tenant_id, scopes, client_info=form.get("client_info") == "1")

    def _grant_client(self, form: Mapping[str, str], tenant: str, directory: str | None) -> Reply:
        if directory is None or directory == MSA_TENANT:
            return self.oauth_error(
                "invalid_request",
                900023,
                f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a "
                "valid external domain.",
            )
        if form.get("scope") != GRAPH_SCOPE:
            return self.oauth_error(
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier.",
            )
        with self.state_lock:
            roles = self.tenants.get(directory)
        if roles is None:
            return self.oauth_error(
                "unauthorized_client",
                700016,
                f"Application with identifier '{self.client_id}' was not found in the directory "
                f"'{directory}'. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant.",
            )
        return self._issue(None, directory, (GRAPH_SCOPE,), roles=frozenset(roles))

    # Graph: who is calling -----------------------------------------------------------

    def _bearer(self, request: RecordedRequest) -> _Token | Reply:
        header = request.header("Authorization")
        if not header.startswith("Bearer "):
            return self.graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self.state_lock:
            token = self._tokens.get(header[7:])
        if token is None or token.revoked or token.expires_at <= self._now():
            return self.unauthorized_reply()
        return token

    def _forbidden(self) -> Reply:
        return self.graph_error(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )

    @route("GET", "/v1.0/me")
    def me(self, request: RecordedRequest) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        if token.user_id is None:
            return self.graph_error(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        user = self.users[token.user_id]
        return json_reply(
            {"@odata.context": f"{self.url}/v1.0/$metadata#users/$entity", **user.as_graph()}
        )

    @route("GET", "/v1.0/users")
    def list_users(self, request: RecordedRequest) -> Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        if token.user_id is not None or "User.Read.All" not in token.roles:
            return self._forbidden()
        try:
            top = int(request.query_value("$top") or 100)
            skip = int(request.query_value("$skiptoken") or 0)
        except ValueError:
            return self.graph_error(400, "BadRequest", "Invalid paging parameter.")
        if not 1 <= top <= 999:
            return self.graph_error(
                400, "Request_UnsupportedQuery", "Invalid page size specified: it must be 1-999."
            )
        select = [f for f in (request.query_value("$select") or "").split(",") if f]
        with self.state_lock:
            users = sorted(
                (u for u in self.users.values() if u.tenant_id == token.tenant_id),
                key=lambda u: u.user_principal_name,
            )
        top = min(top, self.max_page_size)
        page = users[skip : skip + top]
        items = [{k: v for k, v in u.as_graph().items() if not select or k in select} for u in page]
        body: dict[str, Any] = {
            "@odata.context": f"{self.url}/v1.0/$metadata#users",
            "value": items,
        }
        if skip + top < len(users):
            query = {"$top": str(top), "$skiptoken": str(skip + top)}
            if select:
                query["$select"] = ",".join(select)
            body["@odata.nextLink"] = f"{self.url}/v1.0/users?{urlencode(query, safe='$,')}"
        return json_reply(body)

    def _organizer(self, token: _Token, user_ref: str | None, operation: str) -> FakeUser | Reply:
        """The user whose meetings a call touches, or Graph's refusal."""
        if user_ref is None:
            if token.user_id is None:
                return self.graph_error(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
            user = self.users[token.user_id]
        else:
            with self.state_lock:
                user = self.users.get(user_ref)
            if user is None or user.tenant_id != token.tenant_id:
                return self.graph_error(404, "NotFound", f"User '{user_ref}' was not found.")
        if token.user_id is not None:
            if user.id != token.user_id:
                return self._forbidden()
            if "OnlineMeetings.ReadWrite" not in token.scopes:
                return self.graph_error(
                    403, "Forbidden", "Missing scope permissions on the request."
                )
            if user.personal:
                return self.graph_error(
                    403,
                    "Forbidden",
                    "Online meetings are not supported for personal Microsoft accounts.",
                )
            return user
        if "OnlineMeetings.ReadWrite.All" not in token.roles:
            return self.graph_error(
                403, "Forbidden", "Application does not have permission to access online meetings."
            )
        if not user.access_policy:
            return self.graph_error(
                403,
                "Unauthorized",
                f"App {token.client_id} is not authorized to {operation} meeting on behalf of "
                f"user {user.id}. No application access policy found for this app.",
            )
        return user

    def _caller(
        self, request: RecordedRequest, user_id: str | None, operation: str
    ) -> FakeUser | Reply:
        token = self._bearer(request)
        if isinstance(token, Reply):
            return token
        return self._organizer(token, user_id, operation)

    # Graph: online meetings ----------------------------------------------------------

    def _public(self, meeting: Mapping[str, Any], user_ref: str | None) -> dict[str, Any]:
        owner = "me" if user_ref is None else f"users('{meeting['_organizer']}')"
        return {
            "@odata.context": f"{self.url}/v1.0/$metadata#{owner}/onlineMeetings/$entity",
            **{k: v for k, v in meeting.items() if not k.startswith("_")},
        }

    def _body(self, request: RecordedRequest) -> dict[str, Any] | Reply:
        try:
            body = request.json()
        except ValueError:
            return self.graph_error(400, "BadRequest", "Unable to read JSON request payload.")
        if not isinstance(body, dict):
            return self.graph_error(400, "BadRequest", "The request payload must be an object.")
        return body

    def _check(self, body: Mapping[str, Any], current: Mapping[str, Any] | None) -> Reply | None:
        for name in ("startDateTime", "endDateTime"):
            if name in body and _parse_time(body[name]) is None:
                return self.graph_error(
                    400,
                    "BadRequest",
                    f"Cannot convert the literal '{body[name]}' to DateTimeOffset.",
                )
        start = _parse_time(body.get("startDateTime") or (current or {}).get("startDateTime"))
        end = _parse_time(body.get("endDateTime") or (current or {}).get("endDateTime"))
        if start and end and end <= start:
            return self.graph_error(400, "BadRequest", "The end time must be after the start time.")
        lobby = body.get("lobbyBypassSettings")
        if lobby is not None and (
            not isinstance(lobby, dict) or lobby.get("scope", "organizer") not in _LOBBY_SCOPES
        ):
            return self.graph_error(400, "BadRequest", "Invalid lobbyBypassSettings.")
        if "allowedPresenters" in body and body["allowedPresenters"] not in _PRESENTERS:
            return self.graph_error(400, "BadRequest", "Invalid allowedPresenters value.")
        return None

    def _new_meeting(self, user: FakeUser, body: Mapping[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        start = _parse_time(body.get("startDateTime")) or now
        end = _parse_time(body.get("endDateTime")) or start + timedelta(hours=1)
        thread = f"19:meeting_{_b64url(secrets.token_bytes(27))}@thread.v2"
        meeting_id = _b64url(f"1*{user.id}*0**{thread}".encode())
        context = json.dumps({"Tid": user.tenant_id, "Oid": user.id}, separators=(",", ":"))
        join = (
            f"https://{self.join_host}/l/meetup-join/{quote(thread, safe='')}/0"
            f"?context={quote(context, safe='')}"
        )
        meeting = {
            "id": meeting_id,
            "creationDateTime": _graph_time(now),
            "startDateTime": _graph_time(start),
            "endDateTime": _graph_time(end),
            "joinWebUrl": join,
            "subject": body.get("subject"),
            "externalId": body.get("externalId"),
            "isBroadcast": False,
            "allowedPresenters": "everyone",
            "allowMeetingChat": "enabled",
            "allowTeamworkReactions": True,
            "allowAttendeeToEnableCamera": True,
            "allowAttendeeToEnableMic": True,
            "isEntryExitAnnounced": True,
            "recordAutomatically": False,
            "videoTeleconferenceId": None,
            "audioConferencing": None,
            "broadcastSettings": None,
            "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
            "joinMeetingIdSettings": {
                "isPasscodeRequired": True,
                "joinMeetingId": str(secrets.randbelow(10**12)).zfill(12),
                "passcode": _b64url(secrets.token_bytes(4))[:6],
            },
            "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
            "participants": {
                "organizer": {
                    "upn": user.user_principal_name,
                    "role": "presenter",
                    "identity": {
                        "user": {
                            "id": user.id,
                            "displayName": None,
                            "tenantId": user.tenant_id,
                            "identityProvider": "AAD",
                        }
                    },
                },
                "attendees": [],
            },
            "_organizer": user.id,
        }
        for name in ("participants", "chatInfo"):
            if isinstance(body.get(name), dict):
                meeting[name] = {**meeting[name], **body[name]}
        return meeting

    def _create_or_get(self, request: RecordedRequest, user_id: str | None) -> Reply:
        user = self._caller(request, user_id, "Create")
        if isinstance(user, Reply):
            return user
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        for name in body:
            if name not in _CREATE_OR_GET_PARAMETERS:
                return self.graph_error(
                    400,
                    "BadRequest",
                    f"The parameter '{name}' in the request payload is not a valid parameter "
                    "for the operation 'createOrGet'.",
                )
        if not isinstance(body.get("externalId"), str) or not body["externalId"]:
            return self.graph_error(400, "BadRequest", "The externalId parameter is required.")
        problem = self._check(body, None)
        if problem is not None:
            return problem
        with self.state_lock:
            for meeting in self.meetings.values():
                if meeting["_organizer"] == user.id and meeting["externalId"] == body["externalId"]:
                    return json_reply(self._public(meeting, user_id), 200)
            meeting = self._new_meeting(user, body)
            self.meetings[meeting["id"]] = meeting
        return json_reply(self._public(meeting, user_id), 201)

    def _create(self, request: RecordedRequest, user_id: str | None) -> Reply:
        user = self._caller(request, user_id, "Create")
        if isinstance(user, Reply):
            return user
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        readonly = [n for n in body if n not in _WRITABLE]
        if readonly:
            return self.graph_error(400, "BadRequest", f"Property '{readonly[0]}' is read-only.")
        problem = self._check(body, None)
        if problem is not None:
            return problem
        meeting = self._new_meeting(user, body)
        for name in ("lobbyBypassSettings", "allowedPresenters"):
            if name in body:
                meeting[name] = body[name]
        with self.state_lock:
            self.meetings[meeting["id"]] = meeting
        return json_reply(self._public(meeting, user_id), 201)

    def _find(self, user: FakeUser, meeting_id: str) -> dict[str, Any] | Reply:
        with self.state_lock:
            meeting = self.meetings.get(meeting_id)
        if meeting is None or meeting["_organizer"] != user.id:
            return self.graph_error(404, "NotFound", "The online meeting was not found.")
        return meeting

    def _get(self, request: RecordedRequest, user_id: str | None, meeting_id: str) -> Reply:
        user = self._caller(request, user_id, "Get")
        if isinstance(user, Reply):
            return user
        meeting = self._find(user, meeting_id)
        if isinstance(meeting, Reply):
            return meeting
        return json_reply(self._public(meeting, user_id))

    def _list(self, request: RecordedRequest, user_id: str | None) -> Reply:
        user = self._caller(request, user_id, "Get")
        if isinstance(user, Reply):
            return user
        wanted = request.query_value("$filter") or ""
        prefix = "JoinWebUrl eq '"
        if not (wanted.startswith(prefix) and wanted.endswith("'")):
            return self.graph_error(
                400, "BadRequest", "Filter by JoinWebUrl or joinMeetingIdSettings/joinMeetingId."
            )
        url = wanted[len(prefix) : -1]
        with self.state_lock:
            found = [
                self._public(m, user_id)
                for m in self.meetings.values()
                if m["_organizer"] == user.id and m["joinWebUrl"] == url
            ]
        return json_reply(
            {"@odata.context": f"{self.url}/v1.0/$metadata#onlineMeetings", "value": found}
        )

    def _update(self, request: RecordedRequest, user_id: str | None, meeting_id: str) -> Reply:
        user = self._caller(request, user_id, "Update")
        if isinstance(user, Reply):
            return user
        meeting = self._find(user, meeting_id)
        if isinstance(meeting, Reply):
            return meeting
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        readonly = [n for n in body if n not in _WRITABLE]
        if readonly:
            return self.graph_error(400, "BadRequest", f"Property '{readonly[0]}' is read-only.")
        if ("startDateTime" in body) != ("endDateTime" in body):
            return self.graph_error(
                400, "BadRequest", "startDateTime and endDateTime must be updated together."
            )
        problem = self._check(body, meeting)
        if problem is not None:
            return problem
        with self.state_lock:
            for name, value in body.items():
                if name in ("startDateTime", "endDateTime"):
                    meeting[name] = _graph_time(_parse_time(value))  # type: ignore[arg-type]
                elif name == "participants":
                    # The attendee list is replaced; the organiser stays.
                    meeting[name] = {**value, "organizer": meeting[name]["organizer"]}
                else:
                    meeting[name] = value
        return json_reply(self._public(meeting, user_id))

    def _delete(self, request: RecordedRequest, user_id: str | None, meeting_id: str) -> Reply:
        user = self._caller(request, user_id, "Delete")
        if isinstance(user, Reply):
            return user
        meeting = self._find(user, meeting_id)
        if isinstance(meeting, Reply):
            return meeting
        with self.state_lock:
            self.meetings.pop(meeting_id, None)
        return empty_reply(204)

    @route("POST", "/v1.0/me/onlineMeetings/createOrGet")
    def me_create_or_get(self, request: RecordedRequest) -> Reply:
        return self._create_or_get(request, None)

    @route("POST", "/v1.0/users/{user_id}/onlineMeetings/createOrGet")
    def user_create_or_get(self, request: RecordedRequest, user_id: str) -> Reply:
        return self._create_or_get(request, user_id)

    @route("POST", "/v1.0/me/onlineMeetings")
    def me_create(self, request: RecordedRequest) -> Reply:
        return self._create(request, None)

    @route("POST", "/v1.0/users/{user_id}/onlineMeetings")
    def user_create(self, request: RecordedRequest, user_id: str) -> Reply:
        return self._create(request, user_id)

    @route("GET", "/v1.0/me/onlineMeetings")
    def me_list(self, request: RecordedRequest) -> Reply:
        return self._list(request, None)

    @route("GET", "/v1.0/users/{user_id}/onlineMeetings")
    def user_list(self, request: RecordedRequest, user_id: str) -> Reply:
        return self._list(request, user_id)

    @route("GET", "/v1.0/me/onlineMeetings/{meeting_id}")
    def me_get(self, request: RecordedRequest, meeting_id: str) -> Reply:
        return self._get(request, None, meeting_id)

    @route("GET", "/v1.0/users/{user_id}/onlineMeetings/{meeting_id}")
    def user_get(self, request: RecordedRequest, user_id: str, meeting_id: str) -> Reply:
        return self._get(request, user_id, meeting_id)

    @route("PATCH", "/v1.0/me/onlineMeetings/{meeting_id}")
    def me_update(self, request: RecordedRequest, meeting_id: str) -> Reply:
        return self._update(request, None, meeting_id)

    @route("PATCH", "/v1.0/users/{user_id}/onlineMeetings/{meeting_id}")
    def user_update(self, request: RecordedRequest, user_id: str, meeting_id: str) -> Reply:
        return self._update(request, user_id, meeting_id)

    @route("DELETE", "/v1.0/me/onlineMeetings/{meeting_id}")
    def me_delete(self, request: RecordedRequest, meeting_id: str) -> Reply:
        return self._delete(request, None, meeting_id)

    @route("DELETE", "/v1.0/users/{user_id}/onlineMeetings/{meeting_id}")
    def user_delete(self, request: RecordedRequest, user_id: str, meeting_id: str) -> Reply:
        return self._delete(request, user_id, meeting_id)
