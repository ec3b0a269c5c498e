"""What can be booked and who delivers it: staff, services and classes."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from modelcluster.fields import ParentalManyToManyField
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, MultiFieldPanel
from wagtail.search import index

from .conferencing import OnlineMeetingFields


@cache
def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def default_time_zone() -> str:
    return settings.TIME_ZONE or "UTC"


class PricedMixin(models.Model):
    price = models.DecimalField(
        _("price"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Leave empty for a free booking."),
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        blank=True,
        help_text=_("Three-letter code such as EUR; empty uses the site's default currency."),
    )

    class Meta:
        abstract = True

    @property
    def is_priced(self) -> bool:
        return self.price is not None and self.price > 0


class Staff(index.Indexed, ClusterableModel):
    """A person who delivers services and classes."""

    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("email"))
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("Wagtail user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bookings_staff",
        help_text=_("Lets this person sign in to the admin and see their own bookings."),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        choices=timezone_choices,
        default=default_time_zone,
        help_text=_("Working hours are read in this time zone."),
    )
    bio = models.TextField(_("about"), blank=True)
    active = models.BooleanField(_("active"), default=True)

    panels = [
        FieldPanel("name"),
        FieldPanel("email"),
        FieldPanel("user"),
        FieldPanel("time_zone"),
        FieldPanel("bio"),
        FieldPanel("active"),
        InlinePanel("working_hours", heading=_("Weekly working hours"), label=_("Hours")),
        InlinePanel("time_off", heading=_("Time off"), label=_("Time off")),
    ]
    search_fields = [
        index.SearchField("name"),
        index.SearchField("email"),
        index.AutocompleteField("name"),
    ]

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Service(index.Indexed, PricedMixin, OnlineMeetingFields, ClusterableModel):
    """A one-to-one appointment that members book with one staff member."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(
        pgettext_lazy("part of a web address", "slug"), max_length=200, unique=True
    )
    description = models.TextField(_("description"), blank=True)
    duration_minutes = models.PositiveIntegerField(
        _("duration (minutes)"), default=30, validators=[MinValueValidator(5)]
    )
    buffer_before_minutes = models.PositiveIntegerField(
        _("buffer before (minutes)"),
        default=0,
        help_text=_("Free time kept before each appointment."),
    )
    buffer_after_minutes = models.PositiveIntegerField(
        _("buffer after (minutes)"),
        default=0,
        help_text=_("Free time kept after each appointment."),
    )
    slot_interval_minutes = models.PositiveIntegerField(
        _("offer a start time every (minutes)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(5)],
        help_text=_("Empty: every 30 minutes."),
    )
    staff = ParentalManyToManyField(
        Staff, verbose_name=_("staff"), related_name="services", blank=True
    )
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"),
        default=60,
        help_text=_("How long before the start a booking must be made."),
    )
    max_days_ahead = models.PositiveIntegerField(
        _("bookable up to (days ahead)"), default=60, validators=[MinValueValidator(1)]
    )
    cancellation_cutoff_hours = models.PositiveIntegerField(
        _("cancel or reschedule up to (hours before)"),
        default=24,
        help_text=_("Members cannot cancel or reschedule later than this."),
    )
    online = models.BooleanField(
        _("online"),
        default=False,
        help_text=_("Bookings of this service take place in a video meeting."),
    )
    active = models.BooleanField(_("bookable"), default=True)

    panels = [
        FieldPanel("name"),
        FieldPanel("slug"),
        FieldPanel("description"),
        FieldRowPanel(
            [
                FieldPanel("duration_minutes"),
                FieldPanel("buffer_before_minutes"),
                FieldPanel("buffer_after_minutes"),
            ],
            heading=_("Timing"),
        ),
        FieldPanel("slot_interval_minutes"),
        FieldPanel("staff", widget=forms.CheckboxSelectMultiple),
        MultiFieldPanel(
            [
                FieldPanel("min_notice_minutes"),
                FieldPanel("max_days_ahead"),
                FieldPanel("cancellation_cutoff_hours"),
            ],
            heading=_("Booking rules"),
        ),
        FieldRowPanel([FieldPanel("price"), FieldPanel("currency")], heading=_("Price")),
        MultiFieldPanel(OnlineMeetingFields.meeting_panels, heading=_("Online meetings")),
        FieldPanel("active"),
    ]
    search_fields = [
        index.SearchField("name"),
        index.SearchField("description"),
        index.AutocompleteField("name"),
    ]

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GroupClass(index.Indexed, PricedMixin, OnlineMeetingFields, ClusterableModel):
    """A class with a capacity, held in sessions that members sign up for."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(
        pgettext_lazy("part of a web address", "slug"), max_length=200, unique=True
    )
    description = models.TextField(_("description"), blank=True)
    capacity = models.PositiveIntegerField(
        _("capacity"), default=10, validators=[MinValueValidator(1)]
    )
    duration_minutes = models.PositiveIntegerField(
        _("duration (minutes)"), default=60, validators=[MinValueValidator(5)]
    )
    staff = models.ForeignKey(
        Staff,
        verbose_name=_("instructor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="classes",
    )
    location = models.CharField(_("location"), max_length=255, blank=True)
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"),
        default=0,
        help_text=_("How long before the start members can still sign up."),
    )
    cancellation_cutoff_hours = models.PositiveIntegerField(
        _("cancel up to (hours before)"), default=24
    )
    online = models.BooleanField(
        _("online"),
        default=False,
        help_text=_("Sessions of this class take place in a video meeting."),
    )
    active = models.BooleanField(_("bookable"), default=True)

    panels = [
        FieldPanel("name"),
        FieldPanel("slug"),
        FieldPanel("description"),
        FieldRowPanel(
            [FieldPanel("capacity"), FieldPanel("duration_minutes")], heading=_("Size and length")
        ),
        FieldPanel("staff"),
        FieldPanel("location"),
        MultiFieldPanel(
            [FieldPanel("min_notice_minutes"), FieldPanel("cancellation_cutoff_hours")],
            heading=_("Booking rules"),
        ),
        FieldRowPanel([FieldPanel("price"), FieldPanel("currency")], heading=_("Price")),
        MultiFieldPanel(OnlineMeetingFields.meeting_panels, heading=_("Online meetings")),
        FieldPanel("active"),
        InlinePanel(
            "sessions",
            heading=pgettext_lazy("class sessions", "Sessions"),
            label=pgettext_lazy("class session", "Session"),
            help_text=_(
                "To hold one session in person or change its link at the last minute, use "
                "“Session links” in the Classes listing: its attendees are emailed."
            ),
        ),
    ]
    search_fields = [
        index.SearchField("name"),
        index.SearchField("description"),
        index.AutocompleteField("name"),
    ]

    class Meta:
        verbose_name = _("class")
        verbose_name_plural = _("classes")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
