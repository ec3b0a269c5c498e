"""Video-meeting providers: the interface, the registry built from settings, the built-ins.

The rest of the app talks to providers only through this package::

    from wagtail_bookings_vc.providers import MeetingSpec, get_provider

    details = get_provider(meeting.provider_id).create_meeting(account, spec)

See ``docs/providers.md`` for settings and ``docs/provider-interface.md`` for writing your
own provider.
"""

from __future__ import annotations

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
    WebhookEvent,
    WebhookRejected,
    WebhookReply,
    credentials_lock,
)
from .registry import (
    ProviderNotAvailable,
    UnknownProvider,
    enabled_providers,
    get_provider,
    provider_choices,
    reset_registry,
    shared_link_provider,
)

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
    "ProviderNotAvailable",
    "RateLimited",
    "TemporaryFailure",
    "UnknownProvider",
    "enabled_providers",
    "get_provider",
    "provider_choices",
    "reset_registry",
    "shared_link_provider",
]
