"""Site settings editors change in the admin: the emails members and staff receive."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from wagtail.admin.panels import FieldPanel, MultiFieldPanel, ObjectList, TabbedInterface
from wagtail.contrib.settings.models import BaseSiteSetting

# The emails the app sends. Each has an editable subject and body; blank means the built-in text.
EMAIL_KINDS = [
    ("member_confirmation", _("Confirmation to the member")),
    ("member_reschedule", _("New time, to the member")),
    ("member_cancellation", _("Cancellation, to the member")),
    ("member_reminder", _("Reminder, to the member")),
    ("staff_confirmation", _("New booking, to the staff member")),
    ("staff_reschedule", _("New time, to the staff member")),
    ("staff_cancellation", _("Cancellation, to the staff member")),
]

SUBJECT_HELP = _("Leave empty for the built-in subject.")
BODY_HELP = _(
    "Leave empty for the built-in text. Variables are listed in the documentation, for "
    "example {{ member_name }}, {{ title }}, {{ start }}, {{ staff_name }}, {{ manage_url }}."
)


class BookingEmailSettings(BaseSiteSetting):
    """Who sends the booking emails, when reminders go out, and what the emails say."""

    from_email = models.EmailField(
        _("sender address"), blank=True, help_text=_("Empty: the site's DEFAULT_FROM_EMAIL.")
    )
    reminder_hours_before = models.PositiveIntegerField(
        _("send reminders (hours before)"), default=24, help_text=_("0 turns reminders off.")
    )
    notify_staff = models.BooleanField(_("email staff about their bookings"), default=True)

    member_confirmation_subject = models.CharField(
        pgettext_lazy("email", "subject"), max_length=255, blank=True, help_text=SUBJECT_HELP
    )
    member_confirmation_body = models.TextField(_("body"), blank=True, help_text=BODY_HELP)
    member_reschedule_subject = models.CharField(
        pgettext_lazy("email", "subject"), max_length=255, blank=True, help_text=SUBJECT_HELP
    )
    member_reschedule_body = models.TextField(_("body"), blank=True, help_text=BODY_HELP)
    member_cancellation_subject = models.CharField(
        pgettext_lazy("email", "subject"), max_length=255, blank=True, help_text=SUBJECT_HELP
    )
    member_cancellation_body = models.TextField(_("body"), blank=True, help_text=BODY_HELP)
    member_reminder_subject = models.CharField(
        pgettext_lazy("email", "subject"), max_length=255, blank=True, help_text=SUBJECT_HELP
    )
    member_reminder_body = models.TextField(_("body"), blank=True, help_text=BODY_HELP)
    staff_confirmation_subject = models.CharField(
        pgettext_lazy("email", "subject"), max_length=255, blank=True, help_text=SUBJECT_HELP
    )
    staff_confirmation_body = models.TextField(_("body"), blank=True, help_text=BODY_HELP)
    staff_reschedule_subject = models.CharField(
        pgettext_lazy("email", "subject"), max_length=255, blank=True, help_text=SUBJECT_HELP
    )
    staff_reschedule_body = models.TextField(_("body"), blank=True, help_text=BODY_HELP)
    staff_cancellation_subject = models.CharField(
        pgettext_lazy("email", "subject"), max_length=255, blank=True, help_text=SUBJECT_HELP
    )
    staff_cancellation_body = models.TextField(_("body"), blank=True, help_text=BODY_HELP)

    edit_handler = TabbedInterface(
        [
            ObjectList(
                [
                    FieldPanel("from_email"),
                    FieldPanel("reminder_hours_before"),
                    FieldPanel("notify_staff"),
                ],
                heading=_("General"),
            ),
            ObjectList(
                [
                    MultiFieldPanel(
                        [
                            FieldPanel("member_confirmation_subject"),
                            FieldPanel("member_confirmation_body"),
                        ],
                        heading=_("Confirmation to the member"),
                    ),
                    MultiFieldPanel(
                        [
                            FieldPanel("member_reschedule_subject"),
                            FieldPanel("member_reschedule_body"),
                        ],
                        heading=_("New time, to the member"),
                    ),
                    MultiFieldPanel(
                        [
                            FieldPanel("member_cancellation_subject"),
                            FieldPanel("member_cancellation_body"),
                        ],
                        heading=_("Cancellation, to the member"),
                    ),
                    MultiFieldPanel(
                        [FieldPanel("member_reminder_subject"), FieldPanel("member_reminder_body")],
                        heading=_("Reminder, to the member"),
                    ),
                ],
                heading=_("Emails to members"),
            ),
            ObjectList(
                [
                    MultiFieldPanel(
                        [
                            FieldPanel("staff_confirmation_subject"),
                            FieldPanel("staff_confirmation_body"),
                        ],
                        heading=_("New booking, to the staff member"),
                    ),
                    MultiFieldPanel(
                        [
                            FieldPanel("staff_reschedule_subject"),
                            FieldPanel("staff_reschedule_body"),
                        ],
                        heading=_("New time, to the staff member"),
                    ),
                    MultiFieldPanel(
                        [
                            FieldPanel("staff_cancellation_subject"),
                            FieldPanel("staff_cancellation_body"),
                        ],
                        heading=_("Cancellation, to the staff member"),
                    ),
                ],
                heading=_("Emails to staff"),
            ),
        ]
    )

    class Meta:
        verbose_name = _("booking emails")
        verbose_name_plural = _("booking emails")
