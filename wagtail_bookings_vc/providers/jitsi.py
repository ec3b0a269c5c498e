"""Jitsi Meet: rooms on meet.jit.si, a self-hosted server or 8x8's JaaS, no account needed.

A Jitsi meeting is only a URL, ``https://{DOMAIN}/{TENANT/}{room}``: nothing is created at
the provider, so creating, updating and deleting make no network call. The room name is
the only thing that keeps strangers out of a meeting without token authentication, so it
carries 160 random bits.

When the deployment checks tokens (self-hosted with ``jitsi-meet-tokens``, or JaaS), set
``APP_ID`` and ``APP_SECRET`` (HS256) or ``APP_ID``, ``PRIVATE_KEY`` and ``KEY_ID`` (RS256,
JaaS). Each person then gets their own JWT at click time, in :meth:`participant_url`;
the host's makes them moderator. Stored URLs never carry a token.

Claims: https://github.com/jitsi/lib-jitsi-meet/blob/master/doc/tokens.md (self-hosted)
and https://developer.8x8.com/jaas/docs/api-keys-jwt (JaaS).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import jwt
from django.core.checks import CheckMessage
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from .base import MeetingDetails, MeetingSpec, Provider, ProviderAccount

__all__ = ["JitsiProvider"]

_DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$")
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ROOM_BYTES = 20  # 160 bits: far beyond guessing, and 32 characters in base32.
_ROOM_PREFIX_MAX = 40
# Tokens become valid a little before they are issued, for servers whose clock is behind.
_CLOCK_SKEW = timedelta(seconds=60)


class JitsiProvider(Provider):
    """Jitsi Meet rooms, with an optional per-participant JWT.

    Options (``WAGTAIL_BOOKINGS_VC["PROVIDERS"]["jitsi"]``):

    ``DOMAIN``
        Host (and port) of the Jitsi server, without ``https://``. Default ``meet.jit.si``;
        ``8x8.vc`` for JaaS.
    ``TENANT``
        A path segment before the room: the JaaS app id (``vpaas-magic-cookie-…``) or a
        self-hosted tenant. Default: none.
    ``ROOM_PREFIX``
        A readable start for room names (``riverside`` gives ``riverside-k3x…``). It is
        slugified; keep it free of anything private.
    ``APP_ID``, ``APP_SECRET``
        Turn on HS256 tokens for a self-hosted server (Prosody ``app_id``/``app_secret``).
    ``PRIVATE_KEY``, ``KEY_ID``
        Turn on RS256 tokens instead (JaaS): the PEM private key and the ``kid`` header
        (``vpaas-magic-cookie-…/keyid``).
    ``AUDIENCE``
        The ``aud`` claim. Default ``jitsi`` (JaaS requires it; list it in Prosody's
        ``asap_accepted_audiences`` when self-hosted).
    ``ISSUER``
        The ``iss`` claim. Default: ``APP_ID`` (JaaS wants ``chat``).
    ``SUBJECT``
        The ``sub`` claim. Default: ``TENANT`` if set, else ``DOMAIN``.
    ``TOKEN_GRACE_MINUTES``
        How long after the booked end a token still works. Default 30.
    ``PREFILL_DISPLAY_NAME``
        Without tokens, put the person's name in the URL fragment so that Jitsi's
        pre-join screen shows it (the fragment never reaches the server). Default ``True``.

    ``spec.options`` is not read: Jitsi's lobby and the like are set on the server.
    """

    id = "jitsi"
    name = _("Jitsi Meet")
    needs_oauth = False
    needs_account = False
    shared_link = False
    default_options: Mapping[str, Any] = {
        "DOMAIN": "meet.jit.si",
        "TENANT": "",
        "ROOM_PREFIX": "",
        "APP_ID": "",
        "APP_SECRET": "",
        "PRIVATE_KEY": "",
        "KEY_ID": "",
        "AUDIENCE": "jitsi",
        "ISSUER": "",
        "SUBJECT": "",
        "TOKEN_GRACE_MINUTES": 30,
        "PREFILL_DISPLAY_NAME": True,
    }

    # Settings ------------------------------------------------------------------------

    def check_options(self) -> None:
        domain = str(self.options.get("DOMAIN") or "").strip().lower()
        if not _DOMAIN_RE.match(domain):
            raise ImproperlyConfigured(
                f"The {self.id} provider's DOMAIN must be a host name such as "
                f"'meet.example.com' (without https:// or a path), not {domain!r}."
            )
        self.domain = domain
        tenant = str(self.options.get("TENANT") or "").strip().strip("/")
        if tenant and not _TENANT_RE.match(tenant):
            raise ImproperlyConfigured(
                f"The {self.id} provider's TENANT may hold letters, digits, '.', '_' and '-'."
            )
        self.tenant = tenant
        prefix = slugify(str(self.options.get("ROOM_PREFIX") or ""))[:_ROOM_PREFIX_MAX]
        self.room_prefix = f"{prefix.rstrip('-')}-" if prefix else ""
        try:
            self.token_grace = timedelta(minutes=float(self.options["TOKEN_GRACE_MINUTES"]))
        except (TypeError, ValueError):
            raise ImproperlyConfigured(
                f"The {self.id} provider's TOKEN_GRACE_MINUTES must be a number."
            ) from None

        app_id = str(self.options.get("APP_ID") or "")
        secret = self.options.get("APP_SECRET") or ""
        private_key = self.options.get("PRIVATE_KEY") or ""
        self.signing_key: Any = None
        self.algorithm = ""
        if (secret or private_key) and not app_id:
            raise ImproperlyConfigured(
                f"The {self.id} provider has a signing key but no APP_ID: set both, or neither."
            )
        if app_id and secret and private_key:
            raise ImproperlyConfigured(
                f"The {self.id} provider has both APP_SECRET and PRIVATE_KEY: keep one."
            )
        if app_id and not (secret or private_key):
            raise ImproperlyConfigured(
                f"The {self.id} provider has an APP_ID but no APP_SECRET (HS256) or "
                "PRIVATE_KEY (RS256)."
            )
        if secret:
            self.signing_key = secret.encode() if isinstance(secret, str) else bytes(secret)
            self.algorithm = "HS256"
        elif private_key:
            if not self.options.get("KEY_ID"):
                raise ImproperlyConfigured(
                    f"The {self.id} provider's PRIVATE_KEY needs a KEY_ID (the JWT 'kid')."
                )
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            pem = private_key.encode() if isinstance(private_key, str) else private_key
            try:
                self.signing_key = load_pem_private_key(pem, password=None)
            except (TypeError, ValueError):
                raise ImproperlyConfigured(
                    f"The {self.id} provider's PRIVATE_KEY is not an unencrypted PEM private key."
                ) from None
            self.algorithm = "RS256"

    def checks(self) -> list[CheckMessage]:
        messages: list[CheckMessage] = []
        if self.algorithm == "HS256" and len(self.signing_key) < 32:
            messages.append(
                CheckWarning(
                    f"The {self.id} provider's APP_SECRET is shorter than 32 bytes.",
                    hint='Use a long random secret, e.g. `python -c "import secrets; '
                    'print(secrets.token_urlsafe(48))"`, on the site and the Jitsi server.',
                    id="wagtail_bookings_vc.W103",
                )
            )
        return messages

    @property
    def uses_tokens(self) -> bool:
        """Whether each participant gets a JWT."""
        return bool(self.algorithm)

    # Rooms ---------------------------------------------------------------------------

    def new_room_name(self) -> str:
        """Return a fresh, unguessable room name: the prefix and 160 random bits.

        Lower-case base32, because Jitsi lower-cases room names (a mixed-case name would
        lose bits) and its URLs and ``room`` claim must match.
        """
        token = base64.b32encode(secrets.token_bytes(_ROOM_BYTES)).decode("ascii")
        return f"{self.room_prefix}{token.rstrip('=').lower()}"

    def room_url(self, room: str) -> str:
        """Return the room's URL, without any token."""
        path = f"{self.tenant}/{room}" if self.tenant else room
        return f"https://{self.domain}/{path}"

    def _details(self, room: str, spec: MeetingSpec) -> MeetingDetails:
        return MeetingDetails(
            external_id=room,
            join_url=self.room_url(room),
            # Hosts get a moderator token at click time instead of a second URL.
            host_url="",
            passcode="",
            extra={"room": room, "domain": self.domain, "ends_at": spec.end.isoformat()},
        )

    # Meetings ------------------------------------------------------------------------

    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        """Return a new room; nothing is sent anywhere."""
        return self._details(self.new_room_name(), spec)

    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        """Keep the same room (the link attendees have stays valid); nothing is sent."""
        return self._details(external_id, spec)

    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        """Do nothing: a Jitsi room exists only while people are in it."""

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
        """Return the room URL with a fresh personal JWT, or with the name pre-filled.

        With tokens the URL is ``https://{domain}/{room}?jwt=…``, the token valid until
        ``expires_at`` (else the stored end) plus ``TOKEN_GRACE_MINUTES``, and a moderator
        token for the host. Without tokens everyone gets the room URL, with the display
        name in the fragment when ``PREFILL_DISPLAY_NAME`` is on.
        """
        url = details.join_url
        if not self.uses_tokens:
            if name and self.options.get("PREFILL_DISPLAY_NAME"):
                value = quote(json.dumps(name, ensure_ascii=False), safe="")
                url = f"{url}#userInfo.displayName={value}"
            return url
        room = str(details.extra.get("room") or details.external_id)
        token = self.make_token(
            room=room,
            name=name,
            email=email,
            is_host=is_host,
            expires_at=expires_at or _stored_end(details),
        )
        parts = urlsplit(url)
        query = f"{parts.query}&jwt={token}" if parts.query else f"jwt={token}"
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    def make_token(
        self,
        *,
        room: str,
        name: str,
        email: str,
        is_host: bool,
        expires_at: datetime | None,
        now: datetime | None = None,
    ) -> str:
        """Return a signed JWT that lets one person into ``room``.

        Claims follow jitsi/lib-jitsi-meet ``doc/tokens.md`` and 8x8's JaaS page:
        ``aud``, ``iss``, ``sub``, ``room``, ``exp``, ``nbf`` and ``context.user`` with
        string values only (Prosody fails on numbers and nulls). The host is marked as
        moderator three ways, because servers read different ones: ``context.user.moderator``
        (JaaS, and the ``token_affiliation`` plugin), ``context.user.affiliation`` = ``owner``
        (``token_affiliation``) and a top-level ``moderator`` (``token_moderation``).
        """
        if not self.uses_tokens:
            raise ImproperlyConfigured(f"The {self.id} provider has no APP_ID and signing key.")
        now = now or timezone.now()
        if expires_at is None:
            expires_at = now
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be an aware datetime.")
        app_id = str(self.options["APP_ID"])
        claims: dict[str, Any] = {
            "aud": str(self.options.get("AUDIENCE") or "jitsi"),
            "iss": str(self.options.get("ISSUER") or app_id),
            "sub": str(self.options.get("SUBJECT") or self.tenant or self.domain),
            "room": room,
            "nbf": int((now - _CLOCK_SKEW).timestamp()),
            "exp": int((expires_at + self.token_grace).timestamp()),
            "moderator": bool(is_host),
            "context": {
                "user": {
                    "id": _participant_id(email, name),
                    "name": str(name or ""),
                    "email": str(email or ""),
                    "moderator": "true" if is_host else "false",
                    "affiliation": "owner" if is_host else "member",
                }
            },
        }
        headers = {"kid": str(self.options["KEY_ID"])} if self.algorithm == "RS256" else None
        return jwt.encode(claims, self.signing_key, algorithm=self.algorithm, headers=headers)


def _stored_end(details: MeetingDetails) -> datetime | None:
    value = details.extra.get("ends_at")
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _participant_id(email: str, name: str) -> str:
    # Stable per person, without putting the address itself in a second claim.
    source = (email or name or "").strip().lower()
    if not source:
        return "guest"
    return hashlib.sha256(source.encode()).hexdigest()[:32]
