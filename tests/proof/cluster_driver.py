"""Book appointments from a process of its own, so that their jobs go to the Redis queue.

Run by the proof tests with ``tests.proof.worker_settings``::

    python -m tests.proof.cluster_driver --service 3 --members 7,8,9 --count 60

Books ``count`` free slots of the service, members taking turns, through
``wagtail_bookings_vc.bookings`` exactly as the booking page does, and prints the
booking ids as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys


def main(argv: list[str] | None = None) -> int:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from wagtail_bookings_vc import availability, bookings
    from wagtail_bookings_vc.models import Service, Staff

    parser = argparse.ArgumentParser()
    parser.add_argument("--service", type=int, required=True)
    parser.add_argument("--members", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args(argv)

    service = Service.objects.get(pk=args.service)
    members = list(get_user_model().objects.filter(pk__in=args.members.split(",")))
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    slots = availability.free_slots(service, start_date=tomorrow, days=args.days)[: args.count]
    if len(slots) < args.count:
        raise SystemExit(f"only {len(slots)} free slots")
    staff = {member.pk: member for member in Staff.objects.filter(services=service)}
    booked = [
        bookings.book_appointment(
            member=members[index % len(members)],
            service=service,
            staff=staff[slot.staff_id],
            start=slot.start,
        ).pk
        for index, slot in enumerate(slots)
    ]
    sys.stdout.write(json.dumps({"booked": booked}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
