"""When things happen: weekly working hours, time off and class sessions."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from modelcluster.fields import ParentalKey
from wagtail.admin.panels import FieldPanel, FieldRowPanel
from wagtail.models import Orderable

from .conferencing import validate_meeting_url

WEEKDAYS = [
    (0, pgettext_lazy("weekday", "Monday")),
    (1, pgettext_lazy("weekday", "Tuesday")),
    (2, pgettext_lazy("weekday", "Wednesday")),
    (3, pgettext_lazy("weekday", "Thursday")),
    (4, pgettext_lazy("weekday", "Friday")),
    (5, pgettext_lazy("weekday", "Saturday")),
    (6, pgettext_lazy("weekday", "Sunday")),
]


class WorkingHours(Orderable):
    """One stretch of working time on a weekday, in the staff member's time zone."""

    staff = ParentalKey(
        "wagtail_bookings_vc.Staff", on_delete=models.CASCADE, related_name="working_hours"
    )
    weekday = models.PositiveSmallIntegerField(_("day"), choices=WEEKDAYS)
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("until"))

    panels = [
        FieldRowPanel([FieldPanel("weekday"), FieldPanel("start_time"), FieldPanel("end_time")])
    ]

    class Meta(Orderable.Meta):
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")

    def clean(self) -> None:
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            raise ValidationError({"end_time": _("The end must be after the start.")})

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}–{self.end_time:%H:%M}"


class TimeOff(Orderable):
    """A period in which a staff member takes no bookings."""

    staff = ParentalKey(
        "wagtail_bookings_vc.Staff", on_delete=models.CASCADE, related_name="time_off"
    )
    start = models.DateTimeField(_("from"))
    end = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    panels = [FieldRowPanel([FieldPanel("start"), FieldPanel("end")]), FieldPanel("reason")]

    class Meta(Orderable.Meta):
        verbose_name = _("time off")
        verbose_name_plural = _("time off")

    def clean(self) -> None:
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": _("The end must be after the start.")})

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M}"


class SessionFormat(models.TextChoices):
    ONLINE = "online", _("Online")
    IN_PERSON = "in_person", _("In person")


class SessionLink(models.TextChoices):
    MANUAL = "manual", _("Use the link below")
    NONE = "none", _("No link")


class ClassSession(Orderable):
    """One meeting of a class, with its own time, capacity and location if they differ."""

    group_class = ParentalKey(
        "wagtail_bookings_vc.GroupClass", on_delete=models.CASCADE, related_name="sessions"
    )
    start = models.DateTimeField(_("start"), db_index=True)
    duration_minutes = models.PositiveIntegerField(
        _("duration (minutes)"),
        null=True,
        blank=True,
        help_text=_("Empty: the class's duration."),
    )
    capacity = models.PositiveIntegerField(
        _("capacity"), null=True, blank=True, help_text=_("Empty: the class's capacity.")
    )
    location = models.CharField(
        _("location"), max_length=255, blank=True, help_text=_("Empty: the class's location.")
    )
    cancelled = models.BooleanField(_("cancelled"), default=False)
    # Last-minute changes to one session (R12): online or in person, and its own link.
    format_override = models.CharField(
        _("format"),
        max_length=20,
        choices=SessionFormat.choices,
        blank=True,
        help_text=_("Empty: as the class."),
    )
    meeting_link_override = models.CharField(
        _("meeting link"),
        max_length=20,
        choices=SessionLink.choices,
        blank=True,
        help_text=_("Empty: as the class."),
    )
    meeting_url = models.CharField(
        _("meeting link for this session"),
        max_length=2048,
        blank=True,
        validators=[validate_meeting_url],
    )
    meeting_passcode = models.CharField(_("passcode"), max_length=64, blank=True)

    panels = [
        FieldRowPanel(
            [FieldPanel("start"), FieldPanel("duration_minutes"), FieldPanel("capacity")]
        ),
        FieldRowPanel([FieldPanel("location"), FieldPanel("cancelled")]),
        FieldRowPanel([FieldPanel("format_override"), FieldPanel("meeting_link_override")]),
        FieldRowPanel([FieldPanel("meeting_url"), FieldPanel("meeting_passcode")]),
    ]

    class Meta(Orderable.Meta):
        verbose_name = _("class session")
        verbose_name_plural = _("class sessions")
        ordering = ["start"]

    def __str__(self) -> str:
        return f"{self.group_class} – {self.start:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes or self.group_class.duration_minutes)

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    @property
    def effective_capacity(self) -> int:
        return self.capacity if self.capacity is not None else self.group_class.capacity

    @property
    def effective_location(self) -> str:
        return self.location or self.group_class.location

    @property
    def online(self) -> bool:
        if self.format_override:
            return self.format_override == SessionFormat.ONLINE
        return self.group_class.online

    def clean(self) -> None:
        super().clean()
        if self.meeting_link_override == SessionLink.MANUAL and not self.meeting_url:
            raise ValidationError({"meeting_url": _("Enter the link for this session.")})

    @property
    def staff(self):  # noqa: ANN201 - Staff or None
        return self.group_class.staff
