"""Video meetings: conferencing accounts, the meeting of a booking or session, join passes."""

from __future__ import annotations

import secrets

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from wagtail.admin.panels import FieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting

from ..crypto import EncryptedJSONField
from ..panels import PlanWarningPanel


def validate_meeting_url(value: str) -> None:
    from ..providers.manual import clean_meeting_url

    clean_meeting_url(value)


class MeetingLinkMode(models.TextChoices):
    AUTOMATIC = "automatic", _("Made automatically through the conferencing account")
    MANUAL = "manual", _("A link I enter by hand")


class OnlineMeetingFields(models.Model):
    """How bookings of a service or class get their video-meeting link (off by default, R8)."""

    meeting_link_mode = models.CharField(
        _("meeting link"),
        max_length=20,
        choices=MeetingLinkMode.choices,
        default=MeetingLinkMode.AUTOMATIC,
        help_text=_("Used only when the service or class is online."),
    )
    meeting_url = models.CharField(
        _("meeting link (manual)"),
        max_length=2048,
        blank=True,
        validators=[validate_meeting_url],
        help_text=_(
            "An https:// link, the same for every booking, for video services the site does "
            "not connect to (for example Whereby or a personal meeting room)."
        ),
    )
    meeting_passcode = models.CharField(_("passcode"), max_length=64, blank=True)
    meeting_description = models.CharField(
        _("how to join"),
        max_length=255,
        blank=True,
        help_text=_("A short note shown with the link, for example the dial-in number."),
    )
    hide_link_in_emails = models.BooleanField(_("leave the link out of emails"), default=False)
    hide_link_in_members_area = models.BooleanField(
        _("leave the link out of the members area"), default=False
    )
    waiting_room = models.BooleanField(
        _("waiting room"),
        default=True,
        help_text=_(
            "The host lets people in (Zoom, Teams lobby). Off: people join as soon as "
            "they open their link."
        ),
    )
    invite_attendees = models.BooleanField(
        _("invite members to the provider's calendar event"),
        default=False,
        help_text=_(
            "Google Meet only. The provider then emails members the meeting's own link, "
            "which bypasses the site's checks (payment, join window); off unless you need it."
        ),
    )

    meeting_panels = [
        PlanWarningPanel(),
        FieldPanel("online"),
        FieldPanel("meeting_link_mode"),
        FieldPanel("meeting_url"),
        FieldPanel("meeting_passcode"),
        FieldPanel("meeting_description"),
        FieldPanel("hide_link_in_emails"),
        FieldPanel("hide_link_in_members_area"),
        FieldPanel("waiting_room"),
        FieldPanel("invite_attendees"),
    ]

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        if (
            getattr(self, "online", False)
            and self.meeting_link_mode == MeetingLinkMode.MANUAL
            and not self.meeting_url
        ):
            raise ValidationError(
                {"meeting_url": _("Enter the meeting link, or let the link be made automatically.")}
            )


class AccountStatus(models.TextChoices):
    CONNECTED = "connected", pgettext_lazy("account status", "Connected")
    NEEDS_RECONNECTING = "needs_reconnecting", pgettext_lazy("account status", "Needs reconnecting")
    DISCONNECTED = "disconnected", pgettext_lazy("account status", "Disconnected")


class ConferencingAccount(models.Model):
    """An account at a video-meeting provider: the site's, or one staff member's own.

    A staff member may also be *mapped* to a user of an organisation account (R5): then
    ``organisation`` points at that account, whose credentials are used, and
    ``external_user_id`` names the user meetings are made for.
    """

    provider = models.CharField(_("provider"), max_length=64)
    staff = models.OneToOneField(
        "wagtail_bookings_vc.Staff",
        verbose_name=_("staff member"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conferencing_account",
        help_text=_("Empty for an account of the whole site."),
    )
    organisation = models.ForeignKey(
        "self",
        verbose_name=_("organisation account"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="mapped_accounts",
    )
    label = models.CharField(_("name"), max_length=255, blank=True)
    is_organisation = models.BooleanField(
        _("organisation account"),
        default=False,
        help_text=_("Connected with app-only credentials; staff members are mapped to its users."),
    )
    credentials = EncryptedJSONField(_("credentials"), default=dict, blank=True)
    external_user_id = models.CharField(_("provider user id"), max_length=255, blank=True)
    external_email = models.CharField(_("provider user email"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=32, choices=AccountStatus.choices, default=AccountStatus.CONNECTED
    )
    last_error = models.TextField(_("last error"), blank=True)
    connected_at = models.DateTimeField(_("connected"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("conferencing account")
        verbose_name_plural = _("conferencing accounts")
        permissions = [("connect_own_account", _("Can connect their own video account"))]

    def __str__(self) -> str:
        """The name given to the account, else its provider's name and whose account it is.

        For example *Zoom · studio@example.com*; before the provider has said which user
        connected (or once that is forgotten), the staff member's name or *site account*.
        """
        if self.label:
            return self.label
        from ..providers import get_provider

        try:
            provider = str(get_provider(self.provider).name)
        except ImproperlyConfigured:  # no longer enabled: its id is all there is
            provider = self.provider
        if self.external_email:
            return f"{provider} · {self.external_email}"
        if self.staff_id:
            return f"{provider} · {self.staff.name}"
        if self.is_organisation:
            return _("%(provider)s · organisation account") % {"provider": provider}
        return _("%(provider)s · site account") % {"provider": provider}

    @property
    def is_connected(self) -> bool:
        """Connected, and so is the organisation account it is mapped to, if any."""
        if self.status != AccountStatus.CONNECTED:
            return False
        return self.organisation is None or self.organisation.is_connected


class ConferencingSettings(BaseSiteSetting):
    """The site's default conferencing account and when join links open."""

    default_account = models.ForeignKey(
        ConferencingAccount,
        verbose_name=_("default account"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"staff__isnull": True},
        help_text=_(
            "Serves every online service and class unless the staff member has connected "
            "their own account. While it is disconnected, no meeting link is shown anywhere."
        ),
    )
    join_opens_minutes_before = models.PositiveIntegerField(
        _("join links open (minutes before the start)"), default=15
    )

    panels = [FieldPanel("default_account"), FieldPanel("join_opens_minutes_before")]

    class Meta:
        verbose_name = _("video conferencing")
        verbose_name_plural = _("video conferencing")


class MeetingState(models.TextChoices):
    PENDING = "pending", pgettext_lazy("meeting state", "Pending")
    CREATING = "creating", pgettext_lazy("meeting state", "Being created")
    READY = "ready", pgettext_lazy("meeting state", "Ready")
    FAILED = "failed", pgettext_lazy("meeting state", "Failed")
    CANCELLED = "cancelled", pgettext_lazy("meeting state", "Cancelled")


class Meeting(models.Model):
    """The video meeting of one appointment booking, or of one class session (R9, R10).

    Driven through its states only by ``wagtail_bookings_vc.meetings``.
    """

    booking = models.OneToOneField(
        "wagtail_bookings_vc.Booking",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="meeting",
    )
    session = models.OneToOneField(
        "wagtail_bookings_vc.ClassSession",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="meeting",
    )
    provider = models.CharField(_("provider"), max_length=64)
    account = models.ForeignKey(
        ConferencingAccount,
        verbose_name=_("account"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="meetings",
    )
    state = models.CharField(
        _("state"), max_length=20, choices=MeetingState.choices, default=MeetingState.PENDING
    )
    external_id = models.CharField(_("provider meeting id"), max_length=255, blank=True)
    join_url = models.URLField(_("join URL"), max_length=2000, blank=True)
    host_url = models.URLField(_("host URL"), max_length=2000, blank=True)
    passcode = models.CharField(_("passcode"), max_length=64, blank=True)
    extra = models.JSONField(_("provider details"), default=dict, blank=True)
    # The booking's times as last sent to the provider: a difference means "update it".
    synced_start = models.DateTimeField(null=True, blank=True)
    synced_end = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # Set while a worker calls the provider; a claim older than the lease is abandoned.
    claimed_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(_("ready"), null=True, blank=True)
    # Set by the first attempt to create the meeting and kept by every retry: the
    # providers' idempotency key, and the sign that an earlier attempt may have got through.
    request_key = models.CharField(max_length=32, blank=True)
    # When someone changed or deleted the meeting at the provider, outside the site.
    changed_outside_at = models.DateTimeField(_("changed outside the site"), null=True, blank=True)
    link_ready_notified = models.BooleanField(default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("online meeting")
        verbose_name_plural = _("online meetings")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(booking__isnull=False, session__isnull=True)
                    | Q(booking__isnull=True, session__isnull=False)
                ),
                name="bvc_meeting_booking_xor_session",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.external_id or self.get_state_display()}"

    @property
    def is_ready(self) -> bool:
        return self.state == MeetingState.READY and bool(self.join_url)


class ProviderCallCount(models.Model):
    """Meeting create and update calls made for one provider user on one UTC day (R16).

    Providers with a daily limit per host user (Zoom: 100) have the calls over the limit
    moved to the next day instead of refused.
    """

    provider = models.CharField(max_length=64)
    user_key = models.CharField(max_length=255)
    day = models.DateField()
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("provider call count")
        verbose_name_plural = _("provider call counts")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "user_key", "day"], name="bvc_provider_call_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.user_key} {self.day}: {self.calls}"


def new_join_token() -> str:
    """A personal join token: 32 bytes from the system's CSPRNG (256 bits)."""
    return secrets.token_urlsafe(32)


class JoinPassRole(models.TextChoices):
    ATTENDEE = "attendee", pgettext_lazy("meeting role", "Attendee")
    HOST = "host", pgettext_lazy("meeting role", "Host")


class JoinPass(models.Model):
    """A personal, revocable join link: ``/join/<token>/`` checks, then redirects (R10, R18).

    An attendee's pass belongs to their booking; a host's pass belongs to the staff member
    and the booking (appointment) or session (class) they host.
    """

    token = models.CharField(max_length=64, unique=True, default=new_join_token, editable=False)
    role = models.CharField(max_length=16, choices=JoinPassRole.choices)
    booking = models.ForeignKey(
        "wagtail_bookings_vc.Booking",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="join_passes",
    )
    session = models.ForeignKey(
        "wagtail_bookings_vc.ClassSession",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="host_passes",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("join link")
        verbose_name_plural = _("join links")
        constraints = [
            models.UniqueConstraint(
                fields=["booking", "role"],
                condition=Q(revoked_at__isnull=True, booking__isnull=False),
                name="bvc_one_live_pass_per_booking_role",
            ),
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(revoked_at__isnull=True, session__isnull=False),
                name="bvc_one_live_host_pass_per_session",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} pass"
