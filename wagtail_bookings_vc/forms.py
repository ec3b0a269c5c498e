"""Forms members fill in on the public booking pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models.catalog import timezone_choices

NOTES_MAX_LENGTH = 2000


def current_time_zone_name() -> str:
    """The active time zone's IANA name, or ``"UTC"`` when it is not a named zone."""
    name = timezone.get_current_timezone_name()
    return name if name in dict(timezone_choices()) else "UTC"


class BookingForm(forms.Form):
    """What a member adds when confirming a booking: their time zone and a note."""

    time_zone = forms.ChoiceField(
        label=_("Your time zone"),
        help_text=_("Your confirmation and reminders show the time in this zone."),
    )
    notes = forms.CharField(
        label=_("Notes (optional)"),
        required=False,
        max_length=NOTES_MAX_LENGTH,
        help_text=_("Anything we should know before we meet."),
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["initial"] = {"time_zone": current_time_zone_name(), **kwargs.get("initial", {})}
        super().__init__(*args, **kwargs)
        # Set per form, not at import: the zone list needs the zoneinfo database loaded.
        self.fields["time_zone"].choices = timezone_choices()
