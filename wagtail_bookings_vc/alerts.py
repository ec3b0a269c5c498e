"""What needs an administrator's attention, on the Wagtail dashboard.

Meetings the app gave up on and accounts a provider stopped accepting are also emailed
to the site's administrators when they happen; the dashboard panel keeps showing them
until they are dealt with, to the people who can deal with them.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from wagtail.admin.ui.components import Component

from . import connect, permissions
from .meetings import GAVE_UP, upcoming
from .models import AccountStatus, ConferencingAccount, Meeting


def attention(user: Any) -> dict[str, Any]:
    """The failed upcoming meetings and the accounts needing reconnecting ``user`` may fix."""
    found: dict[str, Any] = {"failed": 0, "accounts": []}
    now = timezone.now()
    if permissions.manages_all_bookings(user):
        found["failed"] = upcoming(Meeting.objects.filter(GAVE_UP), now).count()
        found["report_url"] = reverse("wagtail_bookings_vc_reports:online_meetings") + (
            "?attention=retry"
        )
    troubled = ConferencingAccount.objects.filter(
        status=AccountStatus.NEEDS_RECONNECTING
    ).select_related("staff")
    if connect.can_manage_accounts(user):
        found["accounts"] = list(troubled.defer("credentials"))
        found["accounts_url"] = reverse("wagtail_bookings_vc_admin:video_conferencing")
    else:
        staff = permissions.staff_of_user(user)
        if staff is not None and connect.can_manage_own_account(user):
            found["accounts"] = list(troubled.filter(staff=staff).defer("credentials"))
            found["accounts_url"] = reverse("wagtail_bookings_vc_admin:my_video_account")
    return found


class AttentionPanel(Component):
    """A dashboard panel that lists what needs doing, and nothing when all is well."""

    name = "bookings_vc_attention"
    template_name = "wagtail_bookings_vc/admin/attention_panel.html"
    order = 90

    def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
        context = super().get_context_data(parent_context)
        context.update(attention(parent_context["request"].user))
        return context


def homepage_panels(request: Any, panels: list) -> None:
    """For the ``construct_homepage_panels`` hook."""
    panels.append(AttentionPanel())
