"""Model signals that keep meetings in step with edits made outside ``bookings.py``."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import ClassSession, GroupClass, Service


@receiver(post_save, sender=ClassSession, dispatch_uid="bvc_class_session_saved")
def class_session_saved(sender: Any, instance: ClassSession, created: bool, **kwargs: Any) -> None:
    # A session moved, cancelled or switched online/in person in the class editor (R12, R13).
    if not created and not kwargs.get("raw"):
        from .meetings import session_changed

        session_changed(instance)


@receiver(post_save, sender=Service, dispatch_uid="bvc_service_saved")
@receiver(post_save, sender=GroupClass, dispatch_uid="bvc_group_class_saved")
def bookable_saved(
    sender: Any, instance: Service | GroupClass, created: bool, **kwargs: Any
) -> None:
    # Online meetings turned on or off, or the link mode changed, for bookings already made.
    if not created and not kwargs.get("raw"):
        from .meetings import bookable_changed

        bookable_changed(instance)
