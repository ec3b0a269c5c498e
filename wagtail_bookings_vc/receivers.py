"""Model signals that keep meetings in step with edits made outside ``bookings.py``."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import ClassSession


@receiver(post_save, sender=ClassSession, dispatch_uid="bvc_class_session_saved")
def class_session_saved(sender: Any, instance: ClassSession, created: bool, **kwargs: Any) -> None:
    # A session moved, cancelled or switched online/in person in the class editor (R12, R13).
    if not created and not kwargs.get("raw"):
        from .meetings import session_changed

        session_changed(instance)
