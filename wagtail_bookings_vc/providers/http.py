"""One HTTP helper for every call to a provider's API.

Every outbound call goes through a session from :func:`make_session`, which

* applies an explicit (connect, read) timeout to every request, so a provider that stops
  answering holds a worker for seconds, not forever;
* turns timeouts and connection errors into :class:`~.base.TemporaryFailure`;
* logs method, URL, status and duration with secrets taken out (:func:`redact_url`,
  :func:`redact_headers`, :func:`redact`): tokens, ``client_secret``, ``code``,
  passcodes and Jitsi's ``jwt`` never reach a log.

:func:`raise_for_status` maps an answer's status to the error tree, with the provider's own
error code and message when the body has them.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from django.utils.translation import gettext_lazy as _
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from .. import __version__
from ..conf import get_settings
from .base import (
    AuthorizationExpired,
    PermanentFailure,
    ProviderError,
    RateLimited,
    StrOrPromise,
    TemporaryFailure,
    interpolate_lazy,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "REDACTED",
    "ProviderHTTPAdapter",
    "error_from_response",
    "make_session",
    "parse_retry_after",
    "raise_for_status",
    "redact",
    "redact_headers",
    "redact_url",
]

logger = logging.getLogger(__name__)

#: (connect, read) seconds, used when the ``HTTP_TIMEOUT`` setting is missing.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)

#: What a secret is replaced with in logs.
REDACTED = "[redacted]"

# Names (query parameters, form and JSON keys, headers) whose values are secrets. Exact
# names catch short ones that would be too broad as parts ("code", "pwd", "zak", "jwt").
_SECRET_NAMES = frozenset(
    {
        "code",
        "jwt",
        "pwd",
        "zak",
        "key",
        "api_key",
        "apikey",
        "assertion",
        "client_assertion",
        "code_verifier",
        "start_url",
        "cookie",
        "set-cookie",
    }
)
_SECRET_PARTS = (
    "token",
    "secret",
    "password",
    "passcode",
    "passwd",
    "authorization",
    "signature",
    "credential",
)
# Tokens that may turn up inside free text (a provider's error message).
_TOKEN_PATTERNS = (
    re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"),  # a JWT
    re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"),
)
_PROVIDER_MESSAGE_MAX = 200


def is_secret_name(name: str) -> bool:
    """Return whether a parameter, key or header called ``name`` holds a secret."""
    lowered = name.strip().lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def _redact_pairs(text: str) -> str:
    pairs = parse_qsl(text, keep_blank_values=True)
    if not pairs:
        return text
    cleaned = [(key, REDACTED if is_secret_name(key) else value) for key, value in pairs]
    return urlencode(cleaned, safe="[]/:")


def redact_url(url: str) -> str:
    """Return ``url`` with secret query values and any user name or password replaced.

    >>> redact_url("https://zoom.us/oauth/token?code=abc&grant_type=authorization_code")
    'https://zoom.us/oauth/token?code=[redacted]&grant_type=authorization_code'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = _redact_pairs(parts.query) if parts.query else ""
    fragment = _redact_pairs(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``headers`` with ``Authorization``, cookies and the like replaced."""
    return {name: REDACTED if is_secret_name(name) else value for name, value in headers.items()}


def redact(data: Any) -> Any:
    """Return a copy of a JSON-like value with every secret replaced, at any depth.

    Mappings have the values of secret keys replaced; strings that are URLs go through
    :func:`redact_url`; lists and tuples are walked.
    """
    if isinstance(data, Mapping):
        return {
            key: REDACTED if is_secret_name(str(key)) else redact(value)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact(item) for item in data]
    if isinstance(data, str) and data.startswith(("http://", "https://")):
        return redact_url(data)
    return data


def scrub_text(text: str) -> str:
    """Remove anything that looks like a token from free text, and shorten it."""
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = " ".join(text.split())
    if len(text) > _PROVIDER_MESSAGE_MAX:
        text = text[: _PROVIDER_MESSAGE_MAX - 1] + "…"
    return text


def _describe_body(body: bytes | str | None, content_type: str) -> str:
    if not body:
        return ""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(body)} bytes>"
    if "json" in content_type:
        try:
            return json.dumps(redact(json.loads(body)), ensure_ascii=False)
        except ValueError:
            return f"<{len(body)} characters>"
    if "x-www-form-urlencoded" in content_type:
        return _redact_pairs(body)
    return f"<{len(body)} characters>"


# --------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------


def _provider_label(provider_name: str) -> StrOrPromise:
    return provider_name or _("the video-meeting provider")


def _normalise_timeout(value: Any) -> tuple[float, float]:
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, int | float):
        return (float(value), float(value))
    connect, read = value
    return (float(connect), float(read))


class ProviderHTTPAdapter(HTTPAdapter):
    """A transport adapter that adds the default timeout, error mapping and safe logging.

    It works for any ``requests.Session`` (also requests-oauthlib's ``OAuth2Session`` and
    the session given to MSAL), because the session hands every request to its adapter.
    urllib3 does not retry here: retries belong to the app, which knows whether a call
    that may have reached the provider can be repeated.
    """

    def __init__(
        self, provider_name: str = "", timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ) -> None:
        self.provider_name = provider_name
        self.timeout = timeout
        super().__init__(max_retries=0)

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if timeout is None:
            timeout = self.timeout
        url = redact_url(request.url or "")
        if logger.isEnabledFor(logging.DEBUG):
            headers = CaseInsensitiveDict(request.headers)
            logger.debug(
                "%s request: %s %s headers=%s body=%s",
                self.provider_name,
                request.method,
                url,
                redact_headers(headers),
                _describe_body(request.body, headers.get("Content-Type", "")),  # type: ignore[arg-type]
            )
        started = time.monotonic()
        label = _provider_label(self.provider_name)
        try:
            response = super().send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
            if not stream:
                # Read the body here, so a timeout while reading is mapped like the others.
                response.content  # noqa: B018
        except requests.Timeout as exc:
            logger.warning(
                "%s %s %s: no answer within %s s (%s)",
                self.provider_name,
                request.method,
                url,
                timeout,
                type(exc).__name__,
            )
            # "from None": requests' message can quote the full URL, query string included.
            raise TemporaryFailure(
                interpolate_lazy(
                    _("No answer from %(provider)s in time. The request will be tried again."),
                    {"provider": label},
                ),
                provider_message=type(exc).__name__,
            ) from None
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            logger.warning(
                "%s %s %s: answer cut off (%s)",
                self.provider_name,
                request.method,
                url,
                type(exc).__name__,
            )
            raise TemporaryFailure(
                interpolate_lazy(
                    _("The answer from %(provider)s was cut off. The request will be tried again."),
                    {"provider": label},
                ),
                provider_message=type(exc).__name__,
            ) from None
        except requests.ConnectionError as exc:
            logger.warning(
                "%s %s %s: connection failed (%s)",
                self.provider_name,
                request.method,
                url,
                type(exc).__name__,
            )
            raise TemporaryFailure(
                interpolate_lazy(
                    _("Could not reach %(provider)s. The request will be tried again."),
                    {"provider": label},
                ),
                provider_message=type(exc).__name__,
            ) from None
        elapsed_ms = (time.monotonic() - started) * 1000
        level = logging.INFO if response.status_code >= 400 else logging.DEBUG
        logger.log(
            level,
            "%s %s %s -> %s in %.0f ms",
            self.provider_name,
            request.method,
            url,
            response.status_code,
            elapsed_ms,
        )
        return response


def make_session(
    provider_name: str = "",
    *,
    timeout: float | tuple[float, float] | None = None,
    trust_env: bool | None = None,
    session: requests.Session | None = None,
) -> requests.Session:
    """Return a session whose every request has a timeout, mapped errors and safe logs.

    Args:
        provider_name: Shown in error messages and logs ("Zoom").
        timeout: Seconds, or (connect, read) seconds. Default: the ``HTTP_TIMEOUT`` setting.
            A timeout passed to a single request still wins.
        trust_env: Whether proxies, ``REQUESTS_CA_BUNDLE`` and ``.netrc`` from the environment
            apply. Default: the ``HTTP_TRUST_ENV`` setting. Tests against loopback fakes pass
            ``False``, because an environment's CA bundle overrides ``session.verify``.
        session: A session to configure instead of a new one (for example an
            ``OAuth2Session``).
    """
    app_settings = get_settings()
    if timeout is None:
        timeout = app_settings.values.get("HTTP_TIMEOUT")
    if trust_env is None:
        trust_env = bool(app_settings.values.get("HTTP_TRUST_ENV", True))
    session = session if session is not None else requests.Session()
    adapter = ProviderHTTPAdapter(provider_name, _normalise_timeout(timeout))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = trust_env
    session.headers["User-Agent"] = (
        f"wagtail-bookings-vc/{__version__} {requests.utils.default_user_agent()}"
    )
    return session


# --------------------------------------------------------------------------------------
# Answers to errors
# --------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for, or ``None``.

    Accepts delay-seconds ("120", also "1.5") and an HTTP date; a date in the past gives 0.
    Anything else (missing, negative, infinite, unreadable) gives ``None``.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max((when - now).total_seconds(), 0.0)


def provider_error_details(response: requests.Response) -> tuple[str, str]:
    """Return the provider's own (error code, error message) from an error answer's body.

    Reads the shapes the built-in providers use: Zoom ``{code, message}``, Google
    ``{error: {code, message, errors: [{reason}]}}``, Microsoft Graph
    ``{error: {code, message}}`` and OAuth ``{error, error_description}``. The message is
    shortened and scrubbed of anything that looks like a token.
    """
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, Mapping):
        return "", ""
    code: Any = ""
    message: Any = ""
    error = body.get("error")
    if isinstance(error, Mapping):
        errors = error.get("errors")
        reason = errors[0].get("reason") if isinstance(errors, list) and errors else None
        if isinstance(reason, str) and reason:
            code = reason  # Google: the reason says more than the repeated HTTP status.
        else:
            code = error.get("code") or error.get("status") or ""
        message = error.get("message", "")
    elif isinstance(error, str):
        code = error
        message = body.get("error_description") or body.get("reason") or ""
    else:
        code = body.get("code", "")
        message = body.get("message", "")
    return scrub_text(str(code)) if code != "" else "", scrub_text(str(message or ""))


def error_from_response(
    response: requests.Response, provider_name: str = ""
) -> ProviderError | None:
    """Return the error an answer stands for, or ``None`` for a success (below 400).

    ========================================  =========================
    answer                                    error
    ========================================  =========================
    401, or 400 with OAuth ``invalid_grant``  :class:`AuthorizationExpired`
    429; 503 with ``Retry-After``             :class:`RateLimited`
    408, other 5xx                            :class:`TemporaryFailure`
    other 4xx                                 :class:`PermanentFailure`
    ========================================  =========================
    """
    status = response.status_code
    if status < 400:
        return None
    code, message = provider_error_details(response)
    params = {"provider": _provider_label(provider_name), "status": status}
    details = {"provider_code": code, "provider_message": message}
    if status == 401 or (status == 400 and code == "invalid_grant"):
        # invalid_grant from a token endpoint: the refresh token was revoked or expired.
        return AuthorizationExpired(
            interpolate_lazy(
                _(
                    "The connection to %(provider)s has expired or was removed. "
                    "Reconnect the account."
                ),
                params,
            ),
            **details,
        )
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429 or (status == 503 and retry_after is not None):
        return RateLimited(
            retry_after,
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
    if status == 403:
        text = _("The account is not allowed to do this at %(provider)s (HTTP %(status)s).")
    elif status == 404:
        text = _(
            "Not found at %(provider)s (HTTP %(status)s): the meeting or user may have been "
            "removed."
        )
    else:
        text = _("The request was refused by %(provider)s (HTTP %(status)s).")
    return PermanentFailure(interpolate_lazy(text, params), **details)


def raise_for_status(response: requests.Response, provider_name: str = "") -> requests.Response:
    """Return ``response`` if it succeeded, else raise the error it stands for.

    See :func:`error_from_response` for the mapping. Providers that treat some errors as
    success (a 404 when deleting a meeting that is already gone) check the status first.
    """
    error = error_from_response(response, provider_name)
    if error is not None:
        raise error
    return response
