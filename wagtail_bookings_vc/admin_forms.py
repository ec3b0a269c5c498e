"""Forms of the admin screens that are not plain model forms."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _
from wagtail.admin.widgets import AdminDateTimeInput


class SessionSeriesForm(forms.Form):
    """Plans a course: a first session and how often it repeats."""

    first_start = forms.DateTimeField(
        label=_("First session"),
        widget=AdminDateTimeInput,
        help_text=_("In your time zone as set in your account preferences."),
    )
    count = forms.IntegerField(label=_("Number of sessions"), min_value=1, max_value=200, initial=8)
    every_days = forms.IntegerField(
        label=_("Repeat every (days)"),
        min_value=1,
        max_value=365,
        initial=7,
        help_text=_("7 for weekly. The clock time stays the same across daylight-saving changes."),
    )
    location = forms.CharField(
        label=_("Location"),
        required=False,
        help_text=_("Empty: the class's location."),
    )
