"""System checks: configuration mistakes are reported at start-up, not at booking time."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    messages: list[Error | Warning] = []
    if not settings.USE_TZ:
        messages.append(
            Error(
                "wagtail_bookings_vc stores booking times in UTC and needs USE_TZ = True.",
                id="wagtail_bookings_vc.E001",
            )
        )
    value = getattr(settings, "WAGTAIL_BOOKINGS_VC", {})
    if not isinstance(value, dict):
        messages.append(Error("WAGTAIL_BOOKINGS_VC must be a dict.", id="wagtail_bookings_vc.E002"))
    if "django_q" not in settings.INSTALLED_APPS:
        messages.append(
            Error(
                "wagtail_bookings_vc sends emails and reminders through django-q2: "
                "add 'django_q' to INSTALLED_APPS and configure Q_CLUSTER.",
                id="wagtail_bookings_vc.E003",
            )
        )
    return messages


# Registered where they are defined; imported here so that every check is active.
from .crypto import check_encryption_keys  # noqa: E402, F401
from .providers.registry import check_providers  # noqa: E402, F401
