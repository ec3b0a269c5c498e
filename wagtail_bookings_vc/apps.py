from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class WagtailBookingsVCConfig(AppConfig):
    name = "wagtail_bookings_vc"
    label = "wagtail_bookings_vc"
    verbose_name = _("Bookings")
    # Explicit, so migrations made on Django 6 stay valid on Django 5.2.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            receivers,  # noqa: F401  (keeps meetings in step with sessions)
        )
        from .notifications import handlers  # noqa: F401  (connects the email signals)

        post_migrate.connect(_ensure_schedules_after_migrate, sender=self)


def _ensure_schedules_after_migrate(sender: AppConfig, **kwargs: object) -> None:
    from django.apps import apps

    if apps.is_installed("django_q"):
        from .jobs import ensure_schedules

        ensure_schedules()
