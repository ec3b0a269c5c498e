"""The Wagtail groups a booking site starts with: *Booking managers* and *Staff*.

Created (or completed, never narrowed) by ``manage.py bookings_vc_groups``. Sites
change them afterwards in Settings → Groups like any other group.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

APP = "wagtail_bookings_vc"

#: Group name -> (app label, codename) of every permission it gets.
GROUPS: dict[str, list[tuple[str, str]]] = {
    # Runs the booking side of the site: the catalogue, every booking and meeting,
    # every video conferencing account.
    str(_("Booking managers")): [
        ("wagtailadmin", "access_admin"),
        *[
            (APP, f"{action}_{model}")
            for model in ("service", "groupclass", "staff", "conferencingaccount")
            for action in ("add", "change", "delete", "view")
        ],
        (APP, "view_booking"),
        (APP, "change_booking"),
        (APP, "change_bookingemailsettings"),
        (APP, "change_conferencingsettings"),
    ],
    # A member of staff: their own bookings, calendar and video account (R4, R23).
    str(_("Staff")): [
        ("wagtailadmin", "access_admin"),
        (APP, "manage_own_bookings"),
        (APP, "connect_own_account"),
    ],
}


def ensure_groups() -> list[Group]:
    """Create the groups, or add what they miss; return them. Safe to run again."""
    made = []
    for name, wanted in GROUPS.items():
        group, _created = Group.objects.get_or_create(name=name)
        query = Q(pk__in=[])
        for app_label, codename in wanted:
            query |= Q(content_type__app_label=app_label, codename=codename)
        found = list(Permission.objects.filter(query))
        missing = {c for _a, c in wanted} - {p.codename for p in found}
        if missing:
            raise LookupError(
                f"Permissions not found: {', '.join(sorted(missing))}. Run migrate first."
            )
        group.permissions.add(*found)
        made.append(group)
    return made
