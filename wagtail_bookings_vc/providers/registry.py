"""The providers a site has enabled, built explicitly from settings.

``settings.WAGTAIL_BOOKINGS_VC["PROVIDERS"]`` maps a provider id to its options::

    WAGTAIL_BOOKINGS_VC = {
        "PROVIDERS": {
            "zoom": {"CLIENT_ID": "...", "CLIENT_SECRET": "..."},
            "jitsi": {"DOMAIN": "meet.example.com"},
            "whereby": {"CLASS": "mysite.meetings.WherebyProvider", "API_KEY": "..."},
            "manual": None,  # turned off
        },
    }

Jitsi Meet and manual links are enabled even when they are not listed (with their default
options); every other provider only when it is listed. A listed id either names a built-in
provider (:data:`BUILTIN_PROVIDERS`) or gives its own ``"CLASS"``. Nothing is found by
importing modules or scanning: what is not in settings does not exist.

A provider that cannot be built (a module that is not there, bad options) is left out and
reported by the system check, so one broken entry never takes down the others.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from ..conf import get_settings
from .base import Provider, StrOrPromise

__all__ = [
    "BUILTIN_PROVIDERS",
    "ENABLED_BY_DEFAULT",
    "BuiltinProvider",
    "ProviderNotAvailable",
    "ProviderRegistry",
    "UnknownProvider",
    "check_providers",
    "enabled_providers",
    "get_provider",
    "get_registry",
    "provider_choices",
    "reset_registry",
    "shared_link_provider",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BuiltinProvider:
    """Where a built-in provider's class lives, and its default options."""

    path: str
    default_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


#: Built-in provider ids. Every base URL is an option with the real provider's URL as its
#: default, so that tests, the example site and staging can point at a loopback fake.
BUILTIN_PROVIDERS: Mapping[str, BuiltinProvider] = {
    "jitsi": BuiltinProvider(
        "wagtail_bookings_vc.providers.jitsi.JitsiProvider",
        {"DOMAIN": "meet.jit.si"},
    ),
    "manual": BuiltinProvider("wagtail_bookings_vc.providers.manual.ManualLinkProvider"),
    "zoom": BuiltinProvider(
        "wagtail_bookings_vc.providers.zoom.ZoomProvider",
        {"API_BASE_URL": "https://api.zoom.us/v2", "OAUTH_BASE_URL": "https://zoom.us"},
    ),
    "google_meet": BuiltinProvider(
        "wagtail_bookings_vc.providers.google_meet.GoogleMeetProvider",
        {
            "API_BASE_URL": "https://www.googleapis.com/calendar/v3",
            "AUTH_URI": "https://accounts.google.com/o/oauth2/v2/auth",
            "TOKEN_URI": "https://oauth2.googleapis.com/token",
            "REVOKE_URI": "https://oauth2.googleapis.com/revoke",
        },
    ),
    "microsoft_teams": BuiltinProvider(
        "wagtail_bookings_vc.providers.microsoft_teams.MicrosoftTeamsProvider",
        {
            # "organizations": work and school accounts only; Teams meetings cannot be
            # made for personal Microsoft accounts.
            "AUTHORITY": "https://login.microsoftonline.com/organizations",
            "GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0",
        },
    ),
}

#: Enabled unless the site turns them off with ``None``: neither needs an account.
ENABLED_BY_DEFAULT: tuple[str, ...] = ("jitsi", "manual")

# Ids end up in database columns and URLs.
_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class UnknownProvider(ImproperlyConfigured, KeyError):
    """No provider is enabled under this id (never configured, or turned off)."""

    def __init__(self, provider_id: str) -> None:
        self.provider_id = provider_id
        super().__init__(
            f"No video-meeting provider {provider_id!r} is enabled. Enabled providers are set "
            'in settings.WAGTAIL_BOOKINGS_VC["PROVIDERS"].'
        )

    def __str__(self) -> str:
        # KeyError would print the message in quotes.
        return str(self.args[0])


class ProviderNotAvailable(ImproperlyConfigured):
    """The provider is configured, but could not be built (see the message)."""


class ProviderRegistry:
    """The providers built from one ``PROVIDERS`` setting.

    Attributes:
        errors: Provider id -> why it could not be built, for every configured provider
            that was left out.
    """

    def __init__(self, config: Mapping[str, Any] | None) -> None:
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise ImproperlyConfigured('WAGTAIL_BOOKINGS_VC["PROVIDERS"] must be a dict.')
        self._providers: dict[str, Provider] = {}
        self.errors: dict[str, str] = {}
        for provider_id, options in self._entries(config).items():
            try:
                self._providers[provider_id] = self._build(provider_id, options)
            except ImproperlyConfigured as exc:
                self.errors[provider_id] = str(exc)
                logger.error("Video-meeting provider %r is left out: %s", provider_id, exc)

    @staticmethod
    def _entries(config: Mapping[str, Any]) -> dict[str, Any]:
        entries: dict[str, Any] = {provider_id: {} for provider_id in ENABLED_BY_DEFAULT}
        for provider_id, options in config.items():
            if options is None or options is False:
                entries.pop(provider_id, None)
            else:
                entries[provider_id] = {} if options is True else options
        return entries

    @staticmethod
    def _build(provider_id: Any, options: Any) -> Provider:
        if not isinstance(provider_id, str) or not _ID_RE.match(provider_id):
            raise ImproperlyConfigured(
                f"Provider id {provider_id!r} must be lower-case letters, digits and "
                "underscores, starting with a letter (at most 32 characters)."
            )
        if not isinstance(options, Mapping):
            raise ImproperlyConfigured(
                f"The options of provider {provider_id!r} must be a dict (or None to turn it off)."
            )
        builtin = BUILTIN_PROVIDERS.get(provider_id)
        path = options.get("CLASS") or (builtin.path if builtin else None)
        if not path:
            raise ImproperlyConfigured(
                f"Provider {provider_id!r} is not built in: give its class as "
                '"CLASS": "dotted.path.to.ProviderClass".'
            )
        try:
            cls = import_string(path) if isinstance(path, str) else path
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Provider {provider_id!r}: cannot import {path!r} ({exc})."
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise ImproperlyConfigured(
                f"Provider {provider_id!r}: {path!r} is not a subclass of "
                "wagtail_bookings_vc.providers.base.Provider."
            )
        # A built-in id keeps its real base URLs, also when a site swaps in its own class.
        defaults = builtin.default_options if builtin else {}
        try:
            return cls({**defaults, **options}, provider_id=provider_id)
        except (TypeError, ValueError) as exc:
            # An abstract method left out, an __init__ with another signature, bad values.
            raise ImproperlyConfigured(f"Provider {provider_id!r}: {exc}") from exc

    def get(self, provider_id: str) -> Provider:
        """Return the provider enabled under ``provider_id``.

        Raises:
            ProviderNotAvailable: It is configured but could not be built.
            UnknownProvider: It is not enabled.
        """
        try:
            return self._providers[provider_id]
        except KeyError:
            pass
        if provider_id in self.errors:
            raise ProviderNotAvailable(self.errors[provider_id])
        raise UnknownProvider(provider_id)

    def enabled(self) -> list[Provider]:
        """Return the providers that were built, in settings order."""
        return list(self._providers.values())

    def __contains__(self, provider_id: object) -> bool:
        return provider_id in self._providers


_lock = threading.Lock()
_registry: ProviderRegistry | None = None


def get_registry() -> ProviderRegistry:
    """Return the registry for the current settings, built on first use and cached."""
    global _registry
    registry = _registry
    if registry is None:
        with _lock:
            if _registry is None:
                _registry = ProviderRegistry(get_settings().PROVIDERS)
            registry = _registry
    return registry


def reset_registry() -> None:
    """Forget the cached registry; the next call builds it from settings again."""
    global _registry
    with _lock:
        _registry = None


@receiver(setting_changed, dispatch_uid="wagtail_bookings_vc.providers.registry.reset")
def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # override_settings and pytest-django's ``settings`` fixture send this signal.
    if setting == "WAGTAIL_BOOKINGS_VC":
        reset_registry()


def get_provider(provider_id: str) -> Provider:
    """Return the enabled provider with this id.

    Raises:
        UnknownProvider: No provider is enabled under this id (a ``KeyError`` and an
            ``ImproperlyConfigured``).
        ProviderNotAvailable: It is configured but could not be built.
    """
    return get_registry().get(provider_id)


def enabled_providers() -> list[Provider]:
    """Return every enabled provider, in settings order."""
    return get_registry().enabled()


def provider_choices(
    *, needs_account: bool | None = None, shared_link: bool | None = None
) -> list[tuple[str, StrOrPromise]]:
    """Return ``(id, name)`` pairs of enabled providers, for form fields.

    Args:
        needs_account: Only providers that need (``True``) or do not need (``False``) a
            connected account; ``None`` for all.
        shared_link: Likewise for providers whose link is typed in and shared.
    """
    return [
        (provider.id, provider.name)
        for provider in enabled_providers()
        if (needs_account is None or provider.needs_account == needs_account)
        and (shared_link is None or provider.shared_link == shared_link)
    ]


def shared_link_provider() -> Provider | None:
    """Return the enabled provider for links typed in by hand, if any.

    Lets the rest of the app find it by what it does rather than by its id.
    """
    return next((p for p in enabled_providers() if p.shared_link), None)


@register(Tags.compatibility)
def check_providers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """System check: every configured provider can be built, and its options are sound."""
    try:
        registry = ProviderRegistry(get_settings().PROVIDERS)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="wagtail_bookings_vc.E103")]
    messages: list[CheckMessage] = [
        Error(
            message,
            hint='Fix or remove this entry of WAGTAIL_BOOKINGS_VC["PROVIDERS"].',
            id="wagtail_bookings_vc.E102",
        )
        for message in registry.errors.values()
    ]
    for provider in registry.enabled():
        messages.extend(provider.checks())
    return messages
