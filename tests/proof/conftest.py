"""What the proof suites share: their size, their figures, and what they need to run.

``BVC_PROOF_SIZE`` sets how many bookings the reliability runs make (60 by default, for
CI; 1000 for the full run) and, in proportion, how many examples the property tests
try. Each suite records its figures with the ``figures`` fixture; they are printed at the
end of the run and, when ``BVC_PROOF_RESULTS`` names a file, written there as JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import socket
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection

#: How many bookings the reliability runs make.
SIZE = int(os.environ.get("BVC_PROOF_SIZE", "60"))
#: Whether this is the full run (sizes from the issue) rather than the CI one.
FULL = SIZE >= 1000
#: Examples per property test.
EXAMPLES = 400 if FULL else 40

_figures: dict[str, dict[str, Any]] = {}


def reachable(host: str, port: int) -> bool:
    """Whether something listens on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


REDIS_HOST, REDIS_PORT = "127.0.0.1", int(os.environ.get("BVC_REDIS_PORT", "6379"))

#: Tests that need the suite to run on PostgreSQL (``BVC_DATABASE=postgres``).
on_postgres = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (BVC_DATABASE=postgres)"
    ),
]


def record(section: str, **values: Any) -> None:
    """Record figures of a suite: ``record("reliability", bookings=60, duplicates=0)``."""
    _figures.setdefault(section, {}).update(values)


@pytest.fixture
def figures():
    """:func:`record`, as a fixture."""
    return record


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The join throttle counts in the cache: each proof test starts from zero."""
    cache.clear()
    yield
    cache.clear()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _figures:
        return
    terminalreporter.section(f"proof figures (BVC_PROOF_SIZE={SIZE})")
    for section, values in _figures.items():
        terminalreporter.write_line(f"{section}:")
        width = max(len(name) for name in values)
        for name, value in values.items():
            terminalreporter.write_line(f"  {name:<{width}}  {value}")
    target = os.environ.get("BVC_PROOF_RESULTS")
    if target:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "kind": "proof",
            "size": SIZE,
            "database": connection.vendor,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "figures": _figures,
        }
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        terminalreporter.write_line(f"figures written to {path}")


# A small site with bookings, for the security suites -----------------------------------

ROME = zoneinfo.ZoneInfo("Europe/Rome")
#: A Monday morning in Rome; the staff work Monday to Friday, 9:00 to 17:00 Rome time.
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)
TUESDAY_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
TUESDAY_11 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=ROME)
WEDNESDAY_15 = dt.datetime(2026, 11, 25, 15, 0, tzinfo=ROME)


@dataclasses.dataclass
class World:
    """A victim and another member, each with an online appointment and a class seat."""

    staff: Any
    service: Any
    session: Any
    widget_path: str
    members_path: str
    victim: Any
    other: Any
    victim_appointment: Any
    victim_seat: Any
    other_appointment: Any

    @property
    def victim_bookings(self) -> list[Any]:
        return [self.victim_appointment, self.victim_seat]


@pytest.fixture
def clock():
    """The time stands still on :data:`NOW` (tests move it)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(recorder, run_jobs, clock) -> World:
    """Pages with the booking widget and the members area; bookings with ready meetings."""
    from wagtail.models import Site

    from example_site.home.models import ContentPage
    from tests.factories import (
        ClassSessionFactory,
        GroupClassFactory,
        ServiceFactory,
        StaffFactory,
        UserFactory,
    )
    from wagtail_bookings_vc import bookings, meetings
    from wagtail_bookings_vc.models import MembersAreaPage

    staff = StaffFactory(name="Anna Rossi", email="anna@example.com")
    service = ServiceFactory(name="Online physiotherapy", slug="physio", staff=[staff], online=True)
    yoga = GroupClassFactory(name="Online yoga", staff=staff, online=True, capacity=10)
    session = ClassSessionFactory(group_class=yoga, start=WEDNESDAY_15)
    root = Site.objects.get(is_default_site=True).root_page
    widget = root.add_child(
        instance=ContentPage(
            title="Book",
            slug="book",
            body=[
                ("booking_widget", {"heading": "", "service": service}),
                ("class_schedule", {"heading": "", "group_class": None, "limit": 10}),
            ],
        )
    )
    members_page = root.add_child(instance=MembersAreaPage(title="My bookings", slug="mine"))

    victim = UserFactory(username="victim", email="victim@example.com")
    other = UserFactory(username="other", email="other@example.com")
    appointment = run_jobs(
        bookings.book_appointment, member=victim, service=service, staff=staff, start=TUESDAY_10
    )
    seat = run_jobs(bookings.book_session, member=victim, session=session)
    others = run_jobs(
        bookings.book_appointment, member=other, service=service, staff=staff, start=TUESDAY_11
    )
    run_jobs(bookings.book_session, member=other, session=session)
    for booking in (appointment, seat, others):
        assert meetings.meeting_of(booking).is_ready
    return World(
        staff=staff,
        service=service,
        session=session,
        widget_path=widget.url,
        members_path=members_page.url,
        victim=victim,
        other=other,
        victim_appointment=appointment,
        victim_seat=seat,
        other_appointment=others,
    )
