"""Model signals that keep meetings, seats and attendees in step with edits made outside
``bookings.py``: a class session or a class changed in the admin (R11, R12, R13).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from .models import Booking, BookingStatus, ClassSession, GroupClass, Service

# Where the state before an edit waits between pre_save and post_save.
_SESSION_BEFORE = "_bvc_link_state_before"
_CLASS_BEFORE = "_bvc_class_before"


@receiver(pre_save, sender=ClassSession, dispatch_uid="bvc_class_session_saving")
def class_session_saving(sender: Any, instance: ClassSession, **kwargs: Any) -> None:
    # What attendees knew of the session before this save, to tell them what changed.
    if kwargs.get("raw") or instance.pk is None:
        return
    from .notifications.session_changes import link_state

    old = ClassSession.objects.select_related("group_class").filter(pk=instance.pk).first()
    if old is not None:
        setattr(instance, _SESSION_BEFORE, link_state(old))


@receiver(post_save, sender=ClassSession, dispatch_uid="bvc_class_session_saved")
def class_session_saved(sender: Any, instance: ClassSession, created: bool, **kwargs: Any) -> None:
    # A session moved, cancelled or switched online/in person in the class editor (R12, R13).
    if created or kwargs.get("raw"):
        return
    from .meetings import session_changed
    from .notifications.session_changes import remember

    seats_follow(instance)
    session_changed(instance)
    before = instance.__dict__.pop(_SESSION_BEFORE, None)
    if before is not None:
        remember(instance.pk, before, using=kwargs.get("using") or "default")


@receiver(pre_save, sender=GroupClass, dispatch_uid="bvc_group_class_saving")
def group_class_saving(sender: Any, instance: GroupClass, **kwargs: Any) -> None:
    if kwargs.get("raw") or instance.pk is None:
        return
    old = GroupClass.objects.filter(pk=instance.pk).first()
    if old is not None:
        setattr(instance, _CLASS_BEFORE, old)


@receiver(post_save, sender=Service, dispatch_uid="bvc_service_saved")
@receiver(post_save, sender=GroupClass, dispatch_uid="bvc_group_class_saved")
def bookable_saved(
    sender: Any, instance: Service | GroupClass, created: bool, **kwargs: Any
) -> None:
    # Online meetings turned on or off, or the link mode changed, for bookings already made.
    if created or kwargs.get("raw"):
        return
    from .meetings import bookable_changed

    if isinstance(instance, GroupClass):
        old = instance.__dict__.pop(_CLASS_BEFORE, None)
        if old is not None:
            _class_changed(instance, old, using=kwargs.get("using") or "default")
    bookable_changed(instance)


def _class_changed(group_class: GroupClass, old: GroupClass, using: str) -> None:
    """Record each upcoming session's state under the class as it was (R11)."""
    from .notifications.session_changes import link_state, remember

    # A session's end depends on its class's duration; none lasts a day.
    upcoming = ClassSession.objects.filter(
        group_class_id=group_class.pk, start__gt=timezone.now() - timedelta(days=1)
    )
    for session in upcoming:
        before = link_state(session, old)
        session.group_class = group_class
        if old.duration_minutes != group_class.duration_minutes:
            seats_follow(session)
        remember(session.pk, before, using=using)


def seats_follow(session: ClassSession) -> int:
    """Give the confirmed seats of ``session`` its current start and end.

    A seat copies its session's times when it is booked; a session moved in the admin
    (or a class given another duration) takes its seats along, so that reminders,
    calendar files and the members area show the new time. A seat that starts at
    another time is reminded again.

    Returns:
        How many seats changed.
    """
    start, end = session.start, session.end
    seats = Booking.objects.filter(session_id=session.pk, status=BookingStatus.CONFIRMED)
    moved = seats.exclude(start=start).update(start=start, end=end, reminder_sent_at=None)
    return moved + seats.filter(start=start).exclude(end=end).update(end=end)
