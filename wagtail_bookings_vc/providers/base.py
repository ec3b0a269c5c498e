"""The provider interface: what every video-meeting provider implements and returns.

A provider is one small class that turns a :class:`MeetingSpec` (what the booking needs)
into a :class:`MeetingDetails` (what the provider made), and raises one of four errors
that say what to do next. Providers know nothing about models: the caller hands them plain
values and an *account* object that follows :class:`ProviderAccount`.

Writing your own provider is described in ``docs/providers.md``.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
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

    The app refreshes the token once and tries again; if that fails too, the account is
    marked *needs reconnecting* and an administrator is told.
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

    The app marks the meeting *failed*, shows the message in the online-meetings report
    and tells an administrator; a retry from the report starts afresh.
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
            id, Microsoft object id, Google email). Set by ``finish_authorization``.
    """

    credentials: dict[str, Any]
    external_user_id: str


# --------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------


class Provider(abc.ABC):
    """Base class of every video-meeting provider.

    Subclasses set the class attributes and implement :meth:`create_meeting`,
    :meth:`update_meeting` and :meth:`delete_meeting`; providers that connect accounts
    through OAuth also implement :meth:`authorization_url`, :meth:`finish_authorization`
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
        default_options: Option defaults, overridden by the site's settings.
        options: The merged options (read-only).
    """

    id: str = ""
    name: StrOrPromise = ""
    needs_oauth: ClassVar[bool] = False
    needs_account: ClassVar[bool] = True
    shared_link: ClassVar[bool] = False
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

    # OAuth ---------------------------------------------------------------------------

    def authorization_url(self, account: ProviderAccount, redirect_uri: str, state: str) -> str:
        """Return the provider's consent URL the user is sent to when connecting.

        Only for ``needs_oauth`` providers; the default raises ``NotImplementedError``.

        Args:
            account: The account being connected.
            redirect_uri: The app's callback URL (must be registered at the provider).
            state: The opaque value the callback checks against the session.
        """
        raise NotImplementedError(f"{self!r} does not connect accounts through OAuth.")

    def finish_authorization(self, account: ProviderAccount, code: str, redirect_uri: str) -> None:
        """Exchange the callback's ``code`` for tokens and store them on ``account``.

        Sets ``account.credentials`` and ``account.external_user_id``. Only for
        ``needs_oauth`` providers; the default raises ``NotImplementedError``.

        Raises:
            AuthorizationExpired: The code was refused (expired, used, or consent denied).
            PermanentFailure: The account cannot be used (for example, a personal Microsoft
                account for Teams).
        """
        raise NotImplementedError(f"{self!r} does not connect accounts through OAuth.")

    def disconnect(self, account: ProviderAccount) -> None:  # noqa: B027  (optional hook)
        """Revoke the account's credentials at the provider, where its API allows.

        The caller removes the stored credentials afterwards whatever happens here. The
        default does nothing, which is right for providers that hold no credentials.
        """

    # Meetings ------------------------------------------------------------------------

    @abc.abstractmethod
    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        """Create a meeting and return its details.

        Args:
            account: The account that applies, or ``None`` for ``needs_account=False``.
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
