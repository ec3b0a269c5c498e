"""``manage.py bookings_vc_groups``: create the *Booking managers* and *Staff* groups."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wagtail_bookings_vc.groups import ensure_groups


class Command(BaseCommand):
    help = (
        "Create the 'Booking managers' and 'Staff' groups with their permissions, or add "
        "the permissions they miss. Safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            groups = ensure_groups()
        except LookupError as error:
            raise CommandError(str(error)) from error
        for group in groups:
            self.stdout.write(f"{group.name}: {group.permissions.count()} permissions")
