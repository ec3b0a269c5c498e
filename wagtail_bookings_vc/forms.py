"""Forms members fill in on the public booking pages, and the time zones they pick from."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

NOTES_MAX_LENGTH = 2000


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA time zone name this system knows, sorted (read once per process)."""
    return tuple(sorted(zoneinfo.available_timezones()))


@cache
def _zone_set() -> frozenset[str]:
    return frozenset(zone_names())


def valid_zone_name(value: str | None) -> str:
    """``value`` when it is a known IANA zone name, else ``""``."""
    if not value:
        return ""
    value = value.strip()
    return value if value in _zone_set() else ""


def current_time_zone_name() -> str:
    """The active time zone's IANA name, or ``"UTC"`` when it is not a named zone."""
    return valid_zone_name(timezone.get_current_timezone_name()) or "UTC"


@cache
def _zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in zone_names()]


class TimeZoneField(forms.ChoiceField):
    """A choice of IANA time zone.

    The six hundred choices are listed only when the field is shown; a submitted value
    is checked against a set (walking the list on every booking request cost more
    than the rest of the form).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=_zone_choices, **kwargs)

    def valid_value(self, value: str) -> bool:
        return value in _zone_set()


class BookingForm(forms.Form):
    """What a member adds when confirming a booking: their time zone and a note.

    The zone is preselected from ``initial`` (the zone the member picked the time
    in) and otherwise from the site's; the page's script then offers the zone the
    visitor's browser reports when none was given.
    """

    time_zone = TimeZoneField(
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

    def __init__(self, *args: Any, zone_given: bool = False, **kwargs: Any) -> None:
        kwargs["initial"] = {"time_zone": current_time_zone_name(), **kwargs.get("initial", {})}
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].widget.attrs["autocomplete"] = "off"
        if not zone_given and not self.is_bound:
            # bookings.js picks the browser's zone in this select.
            self.fields["time_zone"].widget.attrs["data-bvc-detect-zone"] = ""

    def full_clean(self) -> None:
        """Validate, then tie each field's errors to it for screen readers.

        Django 6.1 does this by itself; older versions describe a field by its help
        text only.
        """
        super().full_clean()
        for name in self.errors:
            if name not in self.fields:
                continue
            bound = self[name]
            described = [f"{bound.auto_id}_helptext"] if bound.help_text else []
            described.append(f"{bound.auto_id}_error")
            self.fields[name].widget.attrs["aria-describedby"] = " ".join(described)
