"""Manual links: a meeting URL typed in by an editor or staff member.

For every service no provider is built in for (Whereby, Skype, GoToMeeting, Webex, ...),
and for personal meeting rooms such as a Zoom Personal Meeting ID (PMI). The link is the
same for every booking made with the same settings (``shared_link``), and nothing is
created, changed or deleted anywhere: when a booking moves, the link stays as it is. That
is also why changes made on the site never reach a personal room at its provider (R14).

The link is shown to members, so only ``https://`` links are accepted: no ``javascript:``
or ``data:`` links that would run in the member's browser, no plain ``http:`` that could be
read or changed on the way, and no user names or passwords inside the link.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

from .base import MeetingDetails, MeetingSpec, PermanentFailure, Provider, ProviderAccount

__all__ = [
    "DESCRIPTION_MAX_LENGTH",
    "PASSCODE_MAX_LENGTH",
    "URL_MAX_LENGTH",
    "ManualLinkForm",
    "ManualLinkProvider",
    "MeetingURLValidator",
    "clean_meeting_url",
]

#: Teams join links run to several hundred characters; browsers cope with far more.
URL_MAX_LENGTH = 2048
PASSCODE_MAX_LENGTH = 64
DESCRIPTION_MAX_LENGTH = 500

_MESSAGE_SCHEME = _("Enter a link that starts with https://")
_MESSAGE_INVALID = _("Enter a valid link that starts with https://")
_URL_VALIDATOR = URLValidator(schemes=["https"])


def _has_hidden_characters(value: str) -> bool:
    # Spaces, control characters and invisible format characters (zero-width space,
    # right-to-left override) can make a link look like another one.
    return any(char.isspace() or unicodedata.category(char) in {"Cc", "Cf"} for char in value)


def clean_meeting_url(value: Any) -> str:
    """Return ``value`` as a safe meeting link, or raise ``ValidationError``.

    Surrounding spaces are removed and the scheme is written in lower case; anything but
    an absolute ``https://`` URL with a valid host is refused, as are links with spaces,
    control or invisible characters, backslashes, or a user name and password.

    Raises:
        ValidationError: With one of the codes ``required``, ``max_length``,
            ``whitespace``, ``scheme``, ``credentials`` or ``invalid``.
    """
    if not isinstance(value, str):
        raise ValidationError(_MESSAGE_INVALID, code="invalid")
    value = value.strip()
    if not value:
        raise ValidationError(_("Enter a meeting link."), code="required")
    if len(value) > URL_MAX_LENGTH:
        raise ValidationError(
            _("The link is too long (at most %(limit)d characters)."),
            code="max_length",
            params={"limit": URL_MAX_LENGTH},
        )
    if _has_hidden_characters(value):
        raise ValidationError(
            _("Remove the spaces and invisible characters from the link."), code="whitespace"
        )
    if not value[:8].lower() == "https://":
        raise ValidationError(_MESSAGE_SCHEME, code="scheme")
    value = "https://" + value[8:]
    if "\\" in value:
        # Browsers read "\" as "/", so "https://good.example\@evil.example" goes elsewhere.
        raise ValidationError(_MESSAGE_INVALID, code="invalid")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValidationError(_MESSAGE_INVALID, code="invalid") from None
    if "@" in parts.netloc:
        raise ValidationError(
            _("Remove the user name and password from the link."), code="credentials"
        )
    if not parts.hostname:
        raise ValidationError(_MESSAGE_INVALID, code="invalid")
    try:
        _URL_VALIDATOR(value)
    except ValidationError:
        raise ValidationError(_MESSAGE_INVALID, code="invalid") from None
    return value


@deconstructible(path="wagtail_bookings_vc.providers.manual.MeetingURLValidator")
class MeetingURLValidator:
    """A validator for model and form fields that hold a manual meeting link.

    Usable in ``validators=[MeetingURLValidator()]``; see :func:`clean_meeting_url`.
    """

    def __call__(self, value: Any) -> None:
        clean_meeting_url(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MeetingURLValidator)

    def __hash__(self) -> int:
        return hash(MeetingURLValidator)


def _clean_plain_text(value: str) -> str:
    if any(unicodedata.category(char) == "Cc" and char not in "\n\t" for char in value):
        raise ValidationError(_("Remove the control characters."), code="control")
    return value


class ManualLinkForm(forms.Form):
    """The link, passcode and description of a manual meeting link.

    Used wherever a link is entered by hand: on a service, a class, or a single session.
    :meth:`to_options` gives the dict that goes into :attr:`MeetingSpec.options`.
    """

    url = forms.CharField(
        label=_("Meeting link"),
        max_length=URL_MAX_LENGTH,
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
        help_text=_(
            "The https:// link attendees open, for example a Whereby room or a personal "
            "meeting room. The same link is given for every booking."
        ),
    )
    passcode = forms.CharField(
        label=_("Passcode"),
        max_length=PASSCODE_MAX_LENGTH,
        required=False,
        help_text=_("Optional. Shown to attendees beside the link."),
    )
    description = forms.CharField(
        label=_("Instructions"),
        max_length=DESCRIPTION_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Optional. For example, how to dial in by phone."),
    )

    def clean_url(self) -> str:
        return clean_meeting_url(self.cleaned_data["url"])

    def clean_passcode(self) -> str:
        return _clean_plain_text(self.cleaned_data["passcode"])

    def clean_description(self) -> str:
        return _clean_plain_text(self.cleaned_data["description"])

    def to_options(self) -> dict[str, str]:
        """Return the cleaned values as ``{"url", "passcode", "description"}``."""
        return {key: self.cleaned_data.get(key, "") for key in ("url", "passcode", "description")}


class ManualLinkProvider(Provider):
    """A link entered by hand; the same for every booking made with the same settings.

    Reads ``spec.options``: ``url`` (required), ``passcode`` and ``description``
    (optional), as produced by :meth:`ManualLinkForm.to_options`.

    Nothing is sent anywhere. :meth:`update_meeting` returns the link as it is configured
    now and :meth:`delete_meeting` does nothing; a personal meeting room entered here (a
    Zoom PMI) keeps its own time and settings at its provider whatever changes on the site.
    """

    id = "manual"
    name = _("Manual link")
    needs_oauth = False
    needs_account = False
    shared_link = True

    def details_for(self, options: Mapping[str, Any]) -> MeetingDetails:
        """Return the details of the link in ``options``.

        Raises:
            PermanentFailure: No link was entered, or it is not a valid ``https://`` link
                (possible for values stored before validation or set in code).
        """
        raw = options.get("url")
        if not raw:
            raise PermanentFailure(_("No meeting link has been entered for this booking."))
        try:
            url = clean_meeting_url(raw)
        except ValidationError:
            raise PermanentFailure(
                _("The meeting link entered for this booking is not a valid https:// link.")
            ) from None
        passcode = str(options.get("passcode") or "")[:PASSCODE_MAX_LENGTH]
        description = str(options.get("description") or "")[:DESCRIPTION_MAX_LENGTH]
        return MeetingDetails(
            # Derived from the link, so a changed link shows as a changed meeting.
            external_id="manual-" + hashlib.sha256(url.encode()).hexdigest()[:24],
            join_url=url,
            host_url="",
            passcode=passcode,
            extra={"description": description},
        )

    def create_meeting(self, account: ProviderAccount | None, spec: MeetingSpec) -> MeetingDetails:
        """Return the configured link; nothing is sent anywhere."""
        return self.details_for(spec.options)

    def update_meeting(
        self, account: ProviderAccount | None, external_id: str, spec: MeetingSpec
    ) -> MeetingDetails:
        """Return the link as configured now (a changed link gets a new ``external_id``)."""
        return self.details_for(spec.options)

    def delete_meeting(self, account: ProviderAccount | None, external_id: str) -> None:
        """Do nothing: the link belongs to whoever made it."""
