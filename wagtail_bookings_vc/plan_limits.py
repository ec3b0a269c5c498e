"""Warnings about provider plan limits an editor should know before members book (R17).

Zoom's free (Basic) plan ends every meeting after 40 minutes. A service or class longer
than the plan of an account that would host it gets a warning in its edit view and in
the online-meetings report, instead of members finding out when the meeting stops.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext, ngettext

from . import accounts
from .models import ConferencingAccount, MeetingLinkMode
from .providers import ProviderError, get_provider


def max_meeting_minutes(account: ConferencingAccount) -> int | None:
    """The longest meeting the account's plan allows, when the provider says (else ``None``)."""
    if not account.is_connected:
        return None
    try:
        usage = get_provider(account.provider).usage(accounts.AccountHandle(account))
    except (ImproperlyConfigured, ProviderError, NotImplementedError):
        return None
    minutes = usage.get("max_meeting_minutes")
    return int(minutes) if minutes else None


def _hosting_accounts(bookable: Any) -> Iterable[ConferencingAccount]:
    """The accounts that may host the bookable's meetings: its staff's own, and the default."""
    staff_ids: list[int] = []
    if getattr(bookable, "staff_id", None):
        staff_ids.append(bookable.staff_id)
    elif bookable.pk and hasattr(bookable, "staff") and hasattr(bookable.staff, "all"):
        staff_ids.extend(bookable.staff.values_list("pk", flat=True))
    found = list(
        ConferencingAccount.objects.filter(staff_id__in=staff_ids).select_related(
            "organisation", "staff"
        )
    )
    default = accounts.default_account()
    if default is not None:
        found.append(default)
    return found


def plan_warnings(bookable: Any) -> list[str]:
    """Why meetings of ``bookable`` may not be made, or be cut short by a host's plan.

    Empty when there is nothing to warn about.
    """
    if not getattr(bookable, "online", False):
        return []
    if bookable.meeting_link_mode != MeetingLinkMode.AUTOMATIC:
        return []
    if not accounts.links_enabled():
        return [
            gettext(
                "No video conferencing account is connected, so no meeting can be made: "
                "connect the site's default account in Bookings → Video conferencing."
            )
        ]
    duration = bookable.duration_minutes or 0
    warnings = []
    for account in _hosting_accounts(bookable):
        limit = max_meeting_minutes(account)
        if limit and duration > limit:
            if account.staff_id:
                text = ngettext(
                    "The plan of %(name)s's account ends meetings after %(limit)s minute, "
                    "and these meetings last longer. Upgrade that plan, connect another "
                    "account or shorten the booking.",
                    "The plan of %(name)s's account ends meetings after %(limit)s minutes, "
                    "and these meetings last longer. Upgrade that plan, connect another "
                    "account or shorten the booking.",
                    limit,
                ) % {"name": account.staff.name, "limit": limit}
            else:
                text = ngettext(
                    "The plan of the site's default account ends meetings after %(limit)s "
                    "minute, and these meetings last longer. Upgrade that plan, connect "
                    "another account or shorten the booking.",
                    "The plan of the site's default account ends meetings after %(limit)s "
                    "minutes, and these meetings last longer. Upgrade that plan, connect "
                    "another account or shorten the booking.",
                    limit,
                ) % {"limit": limit}
            warnings.append(text)
    return warnings
