"""Who may see and manage which bookings in the admin (R4, R23).

Booking managers (Django's ``view_booking`` / ``change_booking`` permissions) see every
booking. A staff member linked to a Wagtail user, with ``manage_own_bookings``, sees and
manages only the bookings they are the staff of: their appointments and the sessions of
the classes they teach. Opening a meeting as its host (R23), cancelling and moving a
booking need management rights over it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from .models import Booking, ClassSession, Staff

VIEW_ALL = "wagtail_bookings_vc.view_booking"
MANAGE_ALL = "wagtail_bookings_vc.change_booking"
MANAGE_OWN = "wagtail_bookings_vc.manage_own_bookings"


def staff_of_user(user: Any) -> Staff | None:
    """The staff member a Wagtail user is, if any (cached on the user for the request)."""
    if not getattr(user, "is_authenticated", False):
        return None
    if not hasattr(user, "_bvc_staff"):
        user._bvc_staff = Staff.objects.filter(user=user).first()
    return user._bvc_staff


def sees_all_bookings(user: Any) -> bool:
    return bool(user.is_active and (user.has_perm(VIEW_ALL) or user.has_perm(MANAGE_ALL)))


def manages_all_bookings(user: Any) -> bool:
    return bool(user.is_active and user.has_perm(MANAGE_ALL))


def own_staff(user: Any) -> Staff | None:
    """The staff member whose bookings ``user`` manages as their own, if any."""
    if not (user.is_active and user.has_perm(MANAGE_OWN)):
        return None
    return staff_of_user(user)


def can_see_bookings(user: Any) -> bool:
    """Whether ``user`` sees any bookings in the admin at all."""
    return sees_all_bookings(user) or own_staff(user) is not None


def visible_bookings(user: Any, queryset: QuerySet[Booking] | None = None) -> QuerySet[Booking]:
    """The bookings ``user`` may see."""
    queryset = Booking.objects.all() if queryset is None else queryset
    if sees_all_bookings(user):
        return queryset
    staff = own_staff(user)
    if staff is None:
        return queryset.none()
    return queryset.filter(Q(staff=staff) | Q(session__group_class__staff=staff))


def visible_sessions(
    user: Any, queryset: QuerySet[ClassSession] | None = None
) -> QuerySet[ClassSession]:
    """The class sessions ``user`` may see."""
    queryset = ClassSession.objects.all() if queryset is None else queryset
    if sees_all_bookings(user):
        return queryset
    staff = own_staff(user)
    if staff is None:
        return queryset.none()
    return queryset.filter(group_class__staff=staff)


def booking_staff(booking: Booking) -> Staff | None:
    if booking.session_id:
        return booking.session.group_class.staff
    return booking.staff


def can_manage_booking(user: Any, booking: Booking) -> bool:
    """Whether ``user`` may open the booking's meeting as host, cancel or move it."""
    if manages_all_bookings(user):
        return True
    staff = own_staff(user)
    return staff is not None and booking_staff(booking) == staff


def can_manage_session(user: Any, session: ClassSession) -> bool:
    """Whether ``user`` may open a class session's meeting as host and change its link."""
    if manages_all_bookings(user):
        return True
    staff = own_staff(user)
    return staff is not None and session.group_class.staff_id == staff.pk
