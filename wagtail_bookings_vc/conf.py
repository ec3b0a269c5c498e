"""Typed access to the ``WAGTAIL_BOOKINGS_VC`` setting, with defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Currency used when a service or class has a price but names no currency.
    "DEFAULT_CURRENCY": "EUR",
    # Step between two offered appointment start times when a service sets none.
    "DEFAULT_SLOT_INTERVAL_MINUTES": 30,
    # How many days the booking widget shows at once.
    "WIDGET_DAYS": 7,
    # Minutes between two runs of the periodic sweep (reminders and, later, meetings).
    "SWEEP_INTERVAL_MINUTES": 1,
    # Name of the django-q2 queue/cluster group for the app's jobs (None: the default).
    "QUEUE_GROUP": "wagtail_bookings_vc",
    # Video-meeting providers, id -> options. Jitsi Meet and manual links are on even when
    # this is empty; give an id the value None to turn it off. See docs/providers.md.
    "PROVIDERS": {},
    # Fernet keys for secrets at rest, newest first. Empty: one key derived from SECRET_KEY
    # (a system check warns). See docs/security.md, "Secrets at rest".
    "ENCRYPTION_KEYS": [],
    # (connect, read) timeout in seconds for every call to a provider's API.
    "HTTP_TIMEOUT": (5.0, 30.0),
    # Whether calls to providers honour HTTP(S)_PROXY, REQUESTS_CA_BUNDLE and .netrc.
    "HTTP_TRUST_ENV": True,
}


@dataclass(frozen=True)
class BookingsSettings:
    """A read-only view of ``settings.WAGTAIL_BOOKINGS_VC`` merged with the defaults."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def get_settings() -> BookingsSettings:
    """Return the app's settings, read afresh so that ``override_settings`` works."""
    user = getattr(settings, "WAGTAIL_BOOKINGS_VC", {}) or {}
    return BookingsSettings({**DEFAULTS, **user})
