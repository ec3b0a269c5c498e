"""The provider interface: what every video-meeting provider implements and returns.

A provider is one small class that turns a :class:`MeetingSpec` (what the booking needs)
into a :class:`MeetingDetails` (what the provider made), and raises one of four errors
that say what to do next. Providers know nothing about models: the caller hands them plain
values and an *account* object that follows :class:`ProviderAccount`.

Writing your own provider is described in ``docs/provider-interface.md``.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import threading
import weakref
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    import requests
    from django.core.checks import CheckMessage

#: A plain string or a lazy translation.
type StrOrPromise = str | Promise

__all__ = [
    "AuthorizationExpired",
    "AuthorizationRequest",
    "OrganisationField",
    "ProviderUser",
    "WebhookEvent",
    "WebhookRejected",
    "WebhookReply",
    "credentials_lock",
    "MeetingDetails",
    "MeetingSpec",
    "PermanentFailure",
    "Provider",
    "ProviderAccount",
    "ProviderError",
    "RateLimited",
    "TemporaryFailure",
]

EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})


def _interpolate(message: Any, params: Mapping[str, Any]) -> str:
    return str(message) % params


#: ``gettext_lazy`` with ``%(name)s`` placeholders that stays lazy: the text is translated
#: when it is shown (the admin report, in the reader's language), not when it is raised.
interpolate_lazy = lazy(_interpolate, str)


# --------------------------------------------------------------------------------------
# What goes in, what comes out
# --------------------------------------------------------------------------------------


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # A copy, so that the caller changing its dict later cannot change a frozen value.
    return MappingProxyType(dict(value or {}))


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeetingSpec:
    """Everything a provider needs to create or update one meeting.

    Attributes:
        reference: The booking's or class session's reference. Providers put it into the
            agenda (see :meth:`agenda_with_reference`) so that a meeting whose creation
            answer was lost can be found again instead of being created twice.
        topic: The meeting's title, shown to attendees.
        start: Start, an aware datetime (the app passes UTC).
        end: End, an aware datetime after ``start``.
        time_zone: IANA name of the zone the meeting is shown in (staff's or site's).
        agenda: Free text for the meeting's description.
        host_email: The staff member's email address (the provider user who hosts).
        host_name: The staff member's name.
        attendee_emails: Addresses of the people booked, for providers that invite them.
        options: Per-service or per-class settings (for example ``waiting_room``, or the
            manual link's ``url``). Each provider documents the keys it reads.
        request_id: A key that stays the same for every attempt to create this one meeting
            and changes when a deleted meeting is made again. Providers with idempotent
            creation use it (Google's ``requestId`` and event id, Graph's ``externalId``).
            Lower-case hex digits only, so it fits every provider's id alphabet.
        may_exist: An earlier attempt to create this meeting may have reached the provider
            (its answer was lost: a timeout, a crash). Providers without idempotent
            creation look for a meeting carrying :attr:`reference_marker` first.
    """

    reference: str
    topic: str
    start: datetime
    end: datetime
    time_zone: str = "UTC"
    agenda: str = ""
    host_email: str = ""
    host_name: str = ""
    attendee_emails: tuple[str, ...] = ()
    options: Mapping[str, Any] = dataclasses.field(default=EMPTY_MAPPING, hash=False)
    request_id: str = ""
    may_exist: bool = False

    REFERENCE_MARKER: ClassVar[str] = "[booking-ref:%s]"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("MeetingSpec.start and .end must be aware datetimes.")
        if self.end <= self.start:
            raise ValueError("MeetingSpec.end must be after .start.")
        object.__setattr__(self, "attendee_emails", tuple(self.attendee_emails))
        object.__setattr__(self, "options", _frozen_mapping(self.options))

    @property
    def duration(self) -> timedelta:
        """How long the meeting lasts."""
        return self.end - self.start

    @property
    def duration_minutes(self) -> int:
        """The duration in whole minutes, rounded up (providers count in minutes)."""
        seconds = int(self.duration.total_seconds())
        return -(-seconds // 60)

    @property
    def reference_marker(self) -> str:
        """The text that identifies this booking inside a provider's agenda field."""
        return self.REFERENCE_MARKER % self.reference

    def agenda_with_reference(self, max_length: int | None = None) -> str:
        """Return the agenda followed by the reference marker.

        Args:
            max_length: The provider's limit for the field; the agenda is shortened so that
                the marker always fits in full.
        """
        marker = self.reference_marker
        agenda = self.agenda.strip()
        if max_length is not None:
            room = max_length - len(marker) - 2
            agenda = agenda[: max(room, 0)].rstrip()
        return f"{agenda}\n\n{marker}" if agenda else marker


@dataclasses.dataclass(frozen=True)
class MeetingDetails:
    """What a provider made: the one result type of create and update.

    Every value is JSON-serialisable, so the caller can store it as it is.

    Attributes:
        external_id: The provider's id for the meeting, always a string (Zoom's meeting
            number is a 64-bit integer and would lose digits in some JSON readers).
        join_url: The URL attendees open. Never carries a per-person secret: it is stored.
        host_url: The URL the host opens, when the provider has a separate one ("" if not).
            Providers whose host link expires (Zoom's ``start_url``) leave it empty and
            build it at click time in :meth:`Provider.participant_url`.
        passcode: The meeting's passcode, if any.
        extra: Anything else the provider wants back later (dial-in numbers, ids).
    """

    external_id: str
    join_url: str
    host_url: str = ""
    passcode: str = ""
    extra: Mapping[str, Any] = dataclasses.field(default=EMPTY_MAPPING, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "external_id", str(self.external_id))
        object.__setattr__(self, "extra", _frozen_mapping(self.extra))

    def to_dict(self) -> dict[str, Any]:
        """Return the details as a plain dict, for storing."""
        return {
            "external_id": self.external_id,
            "join_url": self.join_url,
            "host_url": self.host_url,
            "passcode": self.passcode,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeetingDetails:
        """Build details back from :meth:`to_dict`'s output (unknown keys are ignored)."""
        return cls(
            external_id=data.get("external_id", ""),
            join_url=data.get("join_url", ""),
            host_url=data.get("host_url", "") or "",
            passcode=data.get("passcode", "") or "",
            extra=data.get("extra") or {},
        )


# --------------------------------------------------------------------------------------
# Errors: few, and each says what to do next
# --------------------------------------------------------------------------------------


class ProviderError(Exception):
    """A provider call failed. Catch the subclasses; each says what to do next.

    Attributes:
        message: Short, translatable, plain-words text for the admin report. Never holds a
            secret (no tokens, no URLs with passcodes).
        provider_code: The provider's own error code, as a string ("" if none).
        provider_message: The provider's own error text, shortened ("" if none).
    """

    default_message: ClassVar[StrOrPromise] = _(
        "The video-meeting provider could not complete the request."
    )

    def __init__(
        self,
        message: StrOrPromise | None = None,
        *,
        provider_code: str | int = "",
        provider_message: str = "",
    ) -> None:
        self.message = message if message is not None else self.default_message
        self.provider_code = "" if provider_code is None else str(provider_code)
        self.provider_message = provider_message or ""
        super().__init__(str(self.message))

    def __str__(self) -> str:
        text = str(self.message)
        said = ": ".join(part for part in (self.provider_code, self.provider_message) if part)
        return f"{text} ({said})" if said else text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments are lost by Exception's default pickling, and the task
        # queue pickles exceptions that end a job.
        return (_rebuild_error, (type(self), self.__dict__.copy()))


def _rebuild_error(cls: type[ProviderError], state: dict[str, Any]) -> ProviderError:
    error = cls.__new__(cls)
    Exception.__init__(error, str(state.get("message", "")))
    error.__dict__.update(state)
    return error


class AuthorizationExpired(ProviderError):
    """The provider no longer accepts the account's credentials.

    Raise it once the provider's own refresh (where it has one) has been refused too: the
    app then marks the meeting *failed* and the account *needs reconnecting*, and tells
    the administrators by email.
    """

    default_message = _(
        "The provider no longer accepts the connection to this account. Reconnect the account."
    )


class RateLimited(ProviderError):
    """The provider asked us to slow down.

    The app tries again after ``retry_after`` seconds, or with a growing pause when the
    provider did not say.

    Attributes:
        retry_after: Seconds to wait before the next call, or ``None`` if not known.
    """

    default_message = _("The provider asked us to slow down. The request will be tried again.")

    def __init__(
        self,
        retry_after: float | None = None,
        message: StrOrPromise | None = None,
        *,
        provider_code: str | int = "",
        provider_message: str = "",
    ) -> None:
        self.retry_after = None if retry_after is None else max(float(retry_after), 0.0)
        super().__init__(message, provider_code=provider_code, provider_message=provider_message)


class TemporaryFailure(ProviderError):
    """A failure that may go away by itself (server error, timeout, lost connection).

    The app tries again with exponential backoff and jitter.
    """

    default_message = _("The provider had a temporary problem. The request will be tried again.")


class PermanentFailure(ProviderError):
    """A failure that trying again will not fix (a refused request, bad settings).

    The app marks the meeting *failed* and shows the message in the online-meetings
    report; a retry from the report starts afresh.
    """

    default_message = _("The provider refused the request.")


# --------------------------------------------------------------------------------------
# The account a provider may read and write
# --------------------------------------------------------------------------------------


@runtime_checkable
class ProviderAccount(Protocol):
    """The part of a conferencing account that providers may touch.

    Attributes:
        credentials: The provider's secrets for this account (tokens, expiry times), a
            JSON-serialisable dict. Providers read it, and hand back changed tokens by
            *assigning a new dict* (never by changing the old one in place): the account
            stores the new value at once, encrypted, because some providers (Zoom) rotate
            refresh tokens and a lost one means a reconnect.
        external_user_id: The provider's id for the user the account acts as (Zoom user
            id, Microsoft object id, Google email). Set by ``finish_authorization``; for a
            staff member mapped to a user of an organisation account (R5), that user's id,
            while ``credentials`` are the organisation's.
        external_email: The email address of that user, where the provider says it.

    Accounts stored by the app also have ``credentials_lock()``: see
    :func:`credentials_lock`, which providers use to refresh tokens one at a time.
    """

    credentials: dict[str, Any]
    external_user_id: str
    external_email: str


_fallback_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_fallback_locks_guard = threading.Lock()


@contextlib.contextmanager
def credentials_lock(account: ProviderAccount) -> Iterator[None]:
    """Hold the account's credentials for this caller alone while the block runs.

    Refresh tokens rotate (Zoom, Microsoft): two workers refreshing the same account at
    once would each burn the token the other one holds. Providers refresh like this::

        with credentials_lock(account):
            # account.credentials was read again under the lock: another worker may
            # have refreshed it a moment ago.
            if token_expired(account.credentials):
                account.credentials = refreshed(account.credentials)  # saved at once

    The app's accounts lock their database row (and the credentials are read again
    inside it); other objects get a lock for this process.
    """
    lock = getattr(account, "credentials_lock", None)
    if lock is not None:
        with lock():
            yield
        return
    with _fallback_locks_guard:
        fallback = _fallback_locks.setdefault(account, threading.Lock())
    with fallback:
        yield


@dataclasses.dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send someone who connects an account, and what to keep until they return.

    Attributes:
        url: The provider's consent page.
        flow: JSON-serialisable values the callback needs (a PKCE verifier, MSAL's flow
            dict). The app keeps them in the admin's session, never in the URL.
    """

    url: str
    flow: Mapping[str, Any] = dataclasses.field(default=EMPTY_MAPPING, hash=False)


@dataclasses.dataclass(frozen=True)
class OrganisationField:
    """One value an administrator types in to connect an organisation account (R5).

    Attributes:
        name: The key in the values handed to :meth:`Provider.connect_organisation`.
        label: The form label (translatable).
        secret: Shown as a password field and never shown again.
        help_text: Where to find the value, for the form.
    """

    name: str
    label: StrOrPromise
    secret: bool = False
    help_text: StrOrPromise = ""


@dataclasses.dataclass(frozen=True)
class ProviderUser:
    """A user of an organisation account that a staff member can be mapped to (R5)."""

    id: str
    email: str = ""
    name: str = ""


# --------------------------------------------------------------------------------------
# Webhooks: what the provider tells us about changes made on its side
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WebhookEvent:
    """One change made at the provider, outside the site.

    Attributes:
        kind: :attr:`MEETING_DELETED`, :attr:`MEETING_CHANGED` or :attr:`ACCOUNT_REVOKED`.
        external_id: The provider's meeting id (meeting events).
        external_user_id: The provider's user id (account events).
        start: The meeting's new start, for :attr:`MEETING_CHANGED` (an aware datetime);
            ``None`` when the change left the time alone (a new topic), which the app
            ignores. The site's own changes come back as events too: they carry the time
            the site set, and are ignored.
    """

    kind: str
    external_id: str = ""
    external_user_id: str = ""
    start: datetime | None = None

    #: The meeting was deleted at the provider; the app makes it again.
    MEETING_DELETED: ClassVar[str] = "meeting_deleted"
    #: The meeting's time was changed at the provider; the app puts the booked time back.
    MEETING_CHANGED: ClassVar[str] = "meeting_changed"
    #: The user removed the app at the provider (R7): the account shows *disconnected*.
    ACCOUNT_REVOKED: ClassVar[str] = "account_revoked"


@dataclasses.dataclass(frozen=True)
class WebhookReply:
    """What to answer a provider's webhook call, and the events it carried.

    Attributes:
        status: The HTTP status to answer with.
        data: A JSON body to answer with (``None``: an empty body).
        events: The changes the app should apply.
    """

    status: int = 200
    data: Mapping[str, Any] | None = None
    events: tuple[WebhookEvent, ...] = ()


class WebhookRejected(Exception):
    """A webhook call that is not from the provider (bad, missing or stale signature).

    Attributes:
        status: The HTTP status to answer with (401 unless said otherwise).
    """

    def __init__(self, message: str = "", status: int = 401) -> None:
        self.status = status
        super().__init__(message)


# --------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------


class Provider(abc.ABC):
    """Base class of every video-meeting provider.

    Subclasses set the class attributes and implement :meth:`create_meeting`,
    :meth:`update_meeting` and :meth:`delete_meeting`; providers that connect accounts
    through OAuth also implement :meth:`start_authorization`, :meth:`finish_authorization`
    and usually :meth:`disconnect`.

    One instance serves every request of the process (the registry caches it), from
    several threads: keep no per-call state on ``self``.

    Attributes:
        id: The id the provider is stored and configured under. The registry sets the
            configured id, so one class can serve two ids (two Jitsi deployments).
        name: The name shown to editors and in the report (translatable). The ``NAME``
            option overrides it.
        needs_oauth: Accounts are connected through the provider's consent screen.
        needs_account: Meetings need a connected account (Jitsi and manual links do not).
        shared_link: Every meeting made from the same settings has the same link (manual
            links), so there is nothing per booking to create, change or delete.
        daily_call_limit: How many meeting create and update calls the provider allows per
            host user per UTC day (Zoom: 100), or ``None``. The app counts its calls and
            moves the ones over the limit to the next day instead of having them refused.
            The ``DAILY_CALL_LIMIT`` option overrides it.
        create_ahead_days: Meetings are made at most this many days before they start
            (``None``: at once), so that bookings far ahead do not use up a day's calls.
            The ``CREATE_AHEAD_DAYS`` option overrides it.
        organisation_fields: What an administrator types in to connect an organisation
            account (app-only credentials for a whole Zoom account or Microsoft tenant);
            empty when the provider has no organisation accounts. Providers that have them
            implement :meth:`connect_organisation` and :meth:`list_users`.
        default_options: Option defaults, overridden by the site's settings.
        options: The merged options (read-only).
    """

    id: str = ""
    name: StrOrPromise = ""
    needs_oauth: ClassVar[bool] = False
    needs_account: ClassVar[bool] = True
    shared_link: ClassVar[bool] = False
    organisation_fields: ClassVar[tuple[OrganisationField, ...]] = ()
    daily_call_limit: int | None = None
    create_ahead_days: int | None = None
    default_options: ClassVar[Mapping[str, Any]] = EMPTY_MAPPING

    def __init__(
        self, options: Mapping[str, Any] | None = None, *, provider_id: str | None = None
    ) -> None:
        merged = {**self.default_options, **(options or {})}
        merged.pop("CLASS", None)
        self.options: Mapping[str, Any] = MappingProxyType(merged)
        if provider_id:
            self.id = provider_id
        if merged.get("NAME"):
            self.name = merged["NAME"]
        if "DAILY_CALL_LIMIT" in merged:
            self.daily_call_limit = merged["DAILY_CALL_LIMIT"]
        if "CREATE_AHEAD_DAYS" in merged:
            self.create_ahead_days = merged["CREATE_AHEAD_DAYS"]
        if not self.id:
            raise ImproperlyConfigured(f"{type(self).__qualname__} has no provider id.")
        self.check_options()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r}>"

    def check_options(self) -> None:  # noqa: B027  (optional hook; accepting all is right)
        """Validate ``self.options``; raise ``ImproperlyConfigured`` with a clear message.

        Called once when the provider is built, so a bad setting shows up at start-up (the
        registry's system check) rather than at the first booking. The default accepts all.
        """

    def checks(self) -> list[CheckMessage]:
        """Return system-check messages about options that work but are unwise (none here)."""
        return []

    def session(self) -> requests.Session:
        """Return a new HTTP session for this provider's calls.

        It applies the app's timeouts, maps transport errors to :class:`TemporaryFailure`
        and logs without secrets (see :mod:`wagtail_bookings_vc.providers.http`). The
        ``HTTP_TIMEOUT`` and ``HTTP_TRUST_ENV`` options override the app-wide settings.
        """
        from .http import make_session

        return make_session(
            str(self.name or self.id),
            timeout=self.options.get("HTTP_TIMEOUT"),
            trust_env=self.options.get("HTTP_TRUST_ENV"),
        )

    # Connecting accounts -------------------------------------------------------------

    def start_authorization(self, redirect_uri: str, state: str) -> AuthorizationRequest:
        """Return the consent URL someone connecting an account is sent to.

        Only for ``needs_oauth`` providers; the default raises ``NotImplementedError``.

        Args:
            redirect_uri: The app's callback URL (must be registered at the provider).
            state: An unguessable value bound to the admin's session; the provider puts it
                into the URL as it is, and the app checks it when the user comes back.
        """
        raise NotImplementedError(f"{self!r} does not connect accounts through OAuth.")

    def finish_authorization(
        self,
        account: ProviderAccount,
        callback: Mapping[str, str],
        redirect_uri: str,
        flow: Mapping[str, Any],
    ) -> None:
        """Exchange the callback for tokens and store them on ``account``.

        Sets ``account.credentials``, ``account.external_user_id`` and
        ``account.external_email``. The app has already checked ``state``.

        Args:
            account: The account being connected.
            callback: The callback's query parameters (``code``, ``state``, ``error``…).
            redirect_uri: The same callback URL given to :meth:`start_authorization`.
            flow: What :meth:`start_authorization` asked to keep.

        Raises:
            AuthorizationExpired: The code was refused (expired, used, or consent denied).
            PermanentFailure: The account cannot be used (for example, a personal Microsoft
                account for Teams); its message is shown to the admin.
        """
        raise NotImplementedError(f"{self!r} does not connect accounts through OAuth.")

    def connect_organisation(self, account: ProviderAccount, values: Mapping[str, str]) -> None:
        """Check an organisation's app-only credentials and store them on ``account``.

        ``values`` holds one entry per :attr:`organisation_fields` item. Implementations
        get a token with them (so a typo shows at once) and set ``account.credentials``.

        Raises:
            PermanentFailure: The values were refused; the message says what to fix.
        """
        raise NotImplementedError(f"{self!r} has no organisation accounts.")

    def list_users(self, account: ProviderAccount) -> list[ProviderUser]:
        """Return the users of an organisation account, for mapping staff members to them."""
        raise NotImplementedError(f"{self!r} has no organisation accounts.")

    def disconnect(self, account: ProviderAccount) -> None:  # noqa: B027  (optional hook)
        """Revoke the account's credentials at the provider, where its API allows.

        The caller removes the stored credentials afterwards whatever happens here. The
        default does nothing, which is right for providers that hold no credentials.
        """

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookReply:
        """Check and read a webhook call the provider sent to ``/webhooks/<provider id>/``.

        Args:
            headers: The request's headers (case-insensitive mapping).
            body: The raw body, byte for byte (signatures are over the raw bytes).

        Raises:
            WebhookRejected: The call is not signed by the provider, or is stale.
            NotImplementedError: The provider takes no webhooks (the default): 404.
        """
        raise NotImplementedError(f"{self!r} takes no webhooks.")

    def usage(self, account: ProviderAccount) -> Mapping[str, Any]:
        """Return what the admin should know about the account's limits (may be empty).

        For example Zoom's meetings created today against its daily limit. Never calls
        out to the provider when the answer can be counted from what the app stored.
        """
        return {}

    # Meetings ------------------------------------------------------------------------

    @abc.abstractmethod
    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        """Create a meeting and return its details.

        Args:
            account: The account that applies (``None`` when the meeting has none, which
                only providers with ``needs_account=False`` must accept).
            spec: What the meeting is for.

        Raises:
            ProviderError: One of its subclasses.
        """

    @abc.abstractmethod
    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        """Change an existing meeting (new time, topic) and return its details now.

        Returns the details the caller should store: usually the same ``external_id``;
        a provider that has to make a new meeting says so in its docstring.
        """

    @abc.abstractmethod
    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        """Delete the meeting. A meeting that is already gone counts as deleted."""

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
        """Return the URL one person is sent to when they click their join link.

        Called at click time, after the app has checked that the person may join, so the
        result may carry a short-lived personal secret (Jitsi's JWT) that is never stored.
        The default returns ``host_url`` for the host when there is one, else ``join_url``.

        Args:
            details: The stored meeting details.
            name: The person's display name.
            email: The person's email address.
            is_host: The person hosts the meeting (staff).
            expires_at: When the booked time ends; personal secrets expire after it.
            account: The account that made the meeting, for providers whose host link must
                be fetched fresh (Zoom's ``start_url`` expires after two hours).
        """
        if is_host and details.host_url:
            return details.host_url
        return details.join_url
