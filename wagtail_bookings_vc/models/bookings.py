"""Bookings: one member's appointment with a staff member, or seat in a class session."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

# Crockford-style alphabet: no 0/O or 1/I/L confusion when a member reads it out.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_reference() -> str:
    """An unguessable booking reference (12 characters, about 59 bits)."""
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(12))


class BookingStatus(models.TextChoices):
    CONFIRMED = "confirmed", pgettext_lazy("booking status", "Confirmed")
    CANCELLED = "cancelled", pgettext_lazy("booking status", "Cancelled")


class PaymentStatus(models.TextChoices):
    NOT_REQUIRED = "not_required", pgettext_lazy("payment status", "Not required")
    PENDING = "pending", pgettext_lazy("payment status", "Pending")
    PAID = "paid", pgettext_lazy("payment status", "Paid")
    REFUNDED = "refunded", pgettext_lazy("payment status", "Refunded")


class BookingQuerySet(models.QuerySet):
    def confirmed(self) -> BookingQuerySet:
        return self.filter(status=BookingStatus.CONFIRMED)

    def upcoming(self, now) -> BookingQuerySet:  # noqa: ANN001
        return self.filter(end__gt=now)

    def past(self, now) -> BookingQuerySet:  # noqa: ANN001
        return self.filter(end__lte=now)


class Booking(models.Model):
    """A member's booking. Written only through ``wagtail_bookings_vc.bookings``."""

    reference = models.CharField(
        _("reference"), max_length=16, unique=True, default=new_reference, editable=False
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("member"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="bookings",
    )
    member_name = models.CharField(_("member name"), max_length=255, blank=True)
    member_email = models.EmailField(_("member email"), blank=True)
    service = models.ForeignKey(
        "wagtail_bookings_vc.Service",
        verbose_name=_("service"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bookings",
    )
    session = models.ForeignKey(
        "wagtail_bookings_vc.ClassSession",
        verbose_name=_("class session"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bookings",
    )
    staff = models.ForeignKey(
        "wagtail_bookings_vc.Staff",
        verbose_name=_("staff member"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bookings",
    )
    start = models.DateTimeField(_("start"), db_index=True)
    end = models.DateTimeField(_("end"))
    status = models.CharField(
        _("status"), max_length=20, choices=BookingStatus.choices, default=BookingStatus.CONFIRMED
    )
    payment_status = models.CharField(
        _("payment"),
        max_length=20,
        choices=PaymentStatus.choices,
        default=PaymentStatus.NOT_REQUIRED,
    )
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    time_zone = models.CharField(
        _("member's time zone"),
        max_length=64,
        default="UTC",
    )
    language = models.CharField(_("member's language"), max_length=16, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # Bumped on every change so that calendar clients replace their copy (.ics SEQUENCE).
    sequence = models.PositiveIntegerField(_("revision"), default=0, editable=False)
    reminder_sent_at = models.DateTimeField(_("reminder sent"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = BookingQuerySet.as_manager()

    # A booking request writes the booking and nothing for Wagtail's "usage" screens;
    # deleting what bookings protect is refused by a hook (viewsets.refuse_deleting_booked).
    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        ordering = ["-start"]
        permissions = [("manage_own_bookings", _("Can see and manage their own bookings as staff"))]
        indexes = [
            models.Index(fields=["staff", "start"]),
            models.Index(fields=["session", "status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(service__isnull=False, session__isnull=True)
                    | Q(service__isnull=True, session__isnull=False)
                ),
                name="bvc_booking_service_xor_session",
            ),
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")), name="bvc_booking_ends_after_start"
            ),
            models.UniqueConstraint(
                fields=["session", "member"],
                condition=Q(status="confirmed", session__isnull=False),
                name="bvc_one_confirmed_seat_per_member",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} – {self.title}"

    @property
    def title(self) -> str:
        if self.session_id:
            return str(self.session.group_class)
        return str(self.service) if self.service_id else ""

    @property
    def is_class(self) -> bool:
        return self.session_id is not None

    @property
    def is_cancelled(self) -> bool:
        return self.status == BookingStatus.CANCELLED

    @property
    def bookable(self):  # noqa: ANN201 - the Service or GroupClass booked
        return self.session.group_class if self.session_id else self.service

    @property
    def online(self) -> bool:
        if self.session_id:
            return self.session.online
        return bool(self.service_id and self.service.online)
