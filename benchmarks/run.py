"""Benchmarks: how fast booking, free slots, the members area and meeting links are.

Run from the repository root::

    python -m benchmarks.run                     # 10,000 existing bookings, SQLite
    python -m benchmarks.run --database postgres # the same on PostgreSQL (127.0.0.1:5432)
    python -m benchmarks.run --quick             # 1,000 bookings, fewer samples (CI)

Each run makes a throwaway database (a temporary SQLite file, or a PostgreSQL database
it drops afterwards), loads the existing bookings, then measures, and prints a table:

* the booking request (POST to the booking page, through Django's test client), p50/p95;
  again while a worker makes the meetings with a provider that takes 2 s to answer:
  the booking does not wait for the provider;
* the time from a booking to its meeting link being ready, one worker, a provider that
  answers in 300 ms;
* free slots of one staff member over 30 days, and of a service with 20 staff;
* the members area of a member with 500 bookings: queries (and those of a member with
  50 bookings: the same number) and render time;
* the admin calendar's busiest week;
* bookings per second through gunicorn, 50 signed-in members booking at once;
* the booking request and free slots of 20 staff at several numbers of existing
  bookings, while they are loaded (``python -m benchmarks.plot`` draws them);
* side by side with django-appointment, when it is installed (the ``bench`` extra,
  :mod:`benchmarks.peer`): the same staff, hours and bookings, free slots and booking
  timed in turn, and the ratio.

The worker is a real ``manage.py qcluster`` process (one worker) on the Redis broker
when Redis answers on 127.0.0.1:6379, else on the database broker; the provider is a
loopback fake (:mod:`tests.proof.flaky`), in a process of its own, with the latency each
measurement needs.

Results go to ``benchmarks/results/<time>-<database>-<mode>.json`` and are merged into
``benchmarks/results/latest.json`` (one entry per database and mode), which
``docs/proof.md`` quotes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

TARGETS = {
    "booking_request": 50.0,
    "booking_request_slow_provider": 50.0,
    "booking_to_link_ready": 1500.0,
    "free_slots_one_staff_30_days": 10.0,
    "free_slots_20_staff_30_days": 100.0,
    "members_area_500_bookings": 100.0,
    "admin_calendar_week": 500.0,
}

LABELS = {
    "booking_request": "booking request",
    "booking_request_slow_provider": "booking request, provider answering in 2 s",
    "booking_to_link_ready": "booking to link ready (1 worker, provider 300 ms)",
    "free_slots_one_staff_30_days": "free slots, 1 staff member, 30 days",
    "free_slots_20_staff_30_days": "free slots, service with 20 staff, 30 days",
    "members_area_500_bookings": "members area, 500 bookings",
    "admin_calendar_week": "admin calendar, the busiest week",
}


# --------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------


def sizes(quick: bool) -> dict[str, int]:
    """How much data and how many samples a run uses."""
    if quick:
        return {
            "bookings": 1_000,
            "requests": 20,
            "slow_requests": 8,
            "link_ready": 5,
            "slots_one": 20,
            "slots_many": 5,
            "members_area": 5,
            "calendar": 5,
            "checkpoints": (250, 500, 1_000),
            "scaling_requests": 5,
            "scaling_slots": 3,
            "concurrent_members": 50,
            "bookings_per_member": 3,
            "peer_slots": 5,
            "peer_requests": 5,
        }
    return {
        "bookings": 10_000,
        "requests": 100,
        "slow_requests": 100,
        "link_ready": 20,
        "slots_one": 100,
        "slots_many": 30,
        "members_area": 100,
        "calendar": 20,
        "checkpoints": (1_000, 2_500, 5_000, 10_000),
        "scaling_requests": 30,
        "scaling_slots": 10,
        "concurrent_members": 50,
        "bookings_per_member": 10,
        "peer_slots": 30,
        "peer_requests": 30,
    }


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95 and the extremes of ``samples`` (milliseconds), rounded."""
    ordered = sorted(samples)
    p95 = ordered[max(int(round(0.95 * len(ordered))) - 1, 0)]
    return {
        "samples": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }


@contextlib.contextmanager
def full_collections() -> Iterator[dict[str, float]]:
    """Count Python's full garbage collections (generation 2) while the block runs.

    They stop the process for as long as it takes to walk every object of the process
    (Django, Wagtail and all), which shows as the odd slow sample.
    """
    found: dict[str, float] = {"full_gc_pauses": 0, "full_gc_max_ms": 0.0}
    began: list[float] = []

    def watch(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            began.append(time.perf_counter())
        elif began:
            pause = (time.perf_counter() - began.pop()) * 1000
            found["full_gc_pauses"] += 1
            found["full_gc_max_ms"] = round(max(found["full_gc_max_ms"], pause), 1)

    gc.callbacks.append(watch)
    try:
        yield found
    finally:
        gc.callbacks.remove(watch)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = function()
    return (time.perf_counter() - began) * 1000, result


# --------------------------------------------------------------------------------------
# The throwaway database and the worker
# --------------------------------------------------------------------------------------


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def throwaway_database(kind: str, workdir: Path) -> Iterator[str]:
    """A database name (or file) that exists for the run only."""
    if kind == "sqlite":
        yield str(workdir / "bench.sqlite3")
        return
    import psycopg

    name = f"bvc_bench_{os.getpid()}"
    params = {
        "host": os.environ.get("BVC_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("BVC_PG_PORT", "5432"),
        "user": os.environ.get("BVC_PG_USER", "postgres"),
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(**params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Worker:
    """A ``manage.py qcluster`` process with one worker, in a process group of its own."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=os.environ.copy(),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in a session of its own, and its children (SIGTERM, then
    SIGKILL after 20 s)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)


class _Provider:
    """The loopback fake provider, run inside the provider's own process."""

    def __init__(self) -> None:
        from tests.proof.flaky import FlakyMeetingsServer

        self.server = FlakyMeetingsServer(fault_rate=0.0)
        self.server.__enter__()

    def url(self) -> str:
        return self.server.url

    def add_latency(self, seconds: float) -> None:
        self.server.add_latency(seconds)

    def issue_credentials(self) -> dict[str, Any]:
        return self.server.issue_credentials()

    def calls(self) -> int:
        return len(self.server.requests)

    def close(self) -> None:
        self.server.__exit__(None, None, None)


class _ProviderManager(BaseManager):
    pass


_ProviderManager.register("Provider", _Provider)


@contextlib.contextmanager
def provider_process() -> Iterator[Any]:
    """The fake provider in a process of its own, as a real provider is not in the web
    process: its answers must not take the interpreter from the requests being timed.

    Yields a proxy with ``url()``, ``add_latency()``, ``issue_credentials()`` and
    ``calls()``.
    """
    import multiprocessing

    manager = _ProviderManager(ctx=multiprocessing.get_context("spawn"))
    manager.start()
    try:
        provider = manager.Provider()  # type: ignore[attr-defined]
        try:
            yield provider
        finally:
            provider.close()
    finally:
        manager.shutdown()


def drain(timeout: float = 300.0) -> None:
    """Wait until the worker has emptied the queue and every meeting is ready, so that a
    measurement starts without another one's backlog (and the worker busy with it)."""
    from django_q.brokers import get_broker

    from wagtail_bookings_vc.models import Meeting, MeetingState

    broker = get_broker()
    deadline = time.monotonic() + timeout
    while broker.queue_size() or Meeting.objects.exclude(state=MeetingState.READY).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not catch up within {timeout:g} s")
        time.sleep(0.2)


def flush_queue() -> None:
    """Drop the jobs still queued (a measurement must not inherit another's backlog)."""
    from django_q.brokers import get_broker

    get_broker().purge_queue()


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def load_data(
    count: int,
    server: Any,
    *,
    checkpoints: tuple[int, ...] = (),
    at_checkpoint: Callable[[dict[str, Any], int], None] | None = None,
) -> dict[str, Any]:
    """Staff, a service, members and ``count`` existing bookings; returns what is measured.

    The bookings go in in batches; once ``checkpoints[i]`` of them are in,
    ``at_checkpoint(data, checkpoints[i])`` runs (the latency against the number of
    bookings is measured that way).
    """
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from wagtail.models import Site

    from wagtail_bookings_vc.models import (
        Booking,
        BookingStatus,
        ConferencingAccount,
        ConferencingSettings,
        JoinPass,
        JoinPassRole,
        Meeting,
        MeetingState,
        MembersAreaPage,
        Service,
        Staff,
        WorkingHours,
    )

    rng = random.Random(20261123)  # noqa: S311 - test data
    site = Site.objects.get(is_default_site=True)
    members_page = site.root_page.add_child(
        instance=MembersAreaPage(title="My bookings", slug="my-bookings")
    )
    account = ConferencingAccount.objects.create(
        provider="bench", label="Studio", credentials=server.issue_credentials()
    )
    conferencing = ConferencingSettings.for_site(site)
    conferencing.default_account = account
    conferencing.save()

    staff = [
        Staff.objects.create(
            name=f"Staff {n}", email=f"staff{n}@example.com", time_zone="Europe/Rome"
        )
        for n in range(20)
    ]
    WorkingHours.objects.bulk_create(
        WorkingHours(staff=member, weekday=day, start_time=dt.time(8), end_time=dt.time(20))
        for member in staff
        for day in range(7)
    )
    service = Service(
        name="Online consultation",
        slug="online-consultation",
        duration_minutes=30,
        slot_interval_minutes=30,
        min_notice_minutes=60,
        max_days_ahead=400,
        cancellation_cutoff_hours=0,
        online=True,
    )
    service.save()
    service.staff.set(staff)
    service.save()

    users = get_user_model().objects
    members = [
        users.create_user(f"member{n}", f"member{n}@example.com", "password") for n in range(200)
    ]
    heavy = users.create_user("heavy", "heavy@example.com", "password")
    light = users.create_user("light", "light@example.com", "password")
    booker = users.create_user("booker", "booker@example.com", "password")

    # Existing bookings: a year around today, on the half-hour grid, none overlapping.
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    taken: set[tuple[int, dt.datetime]] = set()
    rows = []
    owners = [heavy] * 500 + [light] * 50
    while len(rows) < count:
        member_staff = rng.choice(staff)
        start = now + dt.timedelta(days=rng.randint(-180, 180), minutes=30 * rng.randint(-12, 12))
        if (member_staff.pk, start) in taken or abs(start - now) < dt.timedelta(hours=2):
            continue
        taken.add((member_staff.pk, start))
        member = owners[len(rows)] if len(rows) < len(owners) else rng.choice(members)
        rows.append(
            Booking(
                member=member,
                member_name=member.username,
                member_email=member.email,
                service=service,
                staff=member_staff,
                start=start,
                end=start + dt.timedelta(minutes=30),
                status=BookingStatus.CONFIRMED,
                time_zone="Europe/Rome",
            )
        )
    data = {
        "service": service,
        "staff": staff,
        "booker": booker,
        "heavy": heavy,
        "light": light,
        "members": members,
        "members_path": members_page.url,
    }
    done = 0
    for stop in sorted({*(point for point in checkpoints if point < count), count}):
        Booking.objects.bulk_create(rows[done:stop], batch_size=1000)
        done = stop
        if at_checkpoint is not None and stop in checkpoints:
            at_checkpoint(data, stop)
    # The members-area members' bookings have their links, as online bookings do.
    linked = list(Booking.objects.filter(member__in=[heavy, light]))
    JoinPass.objects.bulk_create(
        JoinPass(booking=booking, role=role)
        for booking in linked
        for role in (JoinPassRole.ATTENDEE, JoinPassRole.HOST)
    )
    Meeting.objects.bulk_create(
        Meeting(
            booking=booking,
            provider="bench",
            account=account,
            state=MeetingState.READY,
            external_id=f"x{booking.pk}",
            join_url=f"https://meet.example.test/j/x{booking.pk}",
            synced_start=booking.start,
            synced_end=booking.end,
            ready_at=now,
        )
        for booking in linked
    )
    return data


# --------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------


class Booker:
    """Books free slots of the service one after the other, through the booking page."""

    def __init__(self, data: dict[str, Any], *, first_day: int = 7) -> None:
        from django.test import Client
        from django.utils import timezone

        from wagtail_bookings_vc import availability

        self.service = data["service"]
        self.client = Client()
        self.client.force_login(data["booker"])
        # By default inside the year the existing bookings fill.
        first = timezone.localdate() + dt.timedelta(days=first_day)
        self.slots = iter(availability.free_slots(self.service, start_date=first, days=60))

    def book(self) -> tuple[float, int]:
        """Book the next free slot; returns (milliseconds, the new booking's id)."""
        from wagtail_bookings_vc.models import Booking
        from wagtail_bookings_vc.views import iso_utc

        slot = next(self.slots)
        url = (
            f"/bookings/services/{self.service.slug}/book/"
            f"?staff={slot.staff_id}&start={iso_utc(slot.start)}"
        )
        elapsed, response = timed(
            lambda: self.client.post(url, {"time_zone": "Europe/Rome", "notes": ""})
        )
        if response.status_code != 302:
            raise RuntimeError(f"booking failed with {response.status_code}")
        booking = Booking.objects.get(staff_id=slot.staff_id, start=slot.start)
        return elapsed, booking.pk


def measure_booking(booker: Booker, count: int) -> dict[str, Any]:
    booker.book()  # warm-up
    with full_collections() as pauses:
        samples = [booker.book()[0] for _ in range(count)]
    return {**percentiles(samples), **pauses}


def measure_link_ready(booker: Booker, count: int, timeout: float = 30.0) -> dict[str, Any]:
    from wagtail_bookings_vc.models import Meeting, MeetingState

    samples = []
    for _ in range(count + 1):
        began = time.perf_counter()
        _elapsed, booking_id = booker.book()
        deadline = time.monotonic() + timeout
        while not Meeting.objects.filter(booking_id=booking_id, state=MeetingState.READY).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("a meeting link was not ready in time")
            time.sleep(0.01)
        samples.append((time.perf_counter() - began) * 1000)
    return percentiles(samples[1:])  # the first one warms the worker up


def measure_free_slots(data: dict[str, Any], count: int, *, one: bool) -> dict[str, Any]:
    from django.utils import timezone

    from wagtail_bookings_vc import availability

    service = data["service"]
    staff = data["staff"][0] if one else None
    first = timezone.localdate() + dt.timedelta(days=1)

    def run() -> int:
        return len(availability.free_slots(service, start_date=first, days=30, staff=staff))

    run()
    samples, found = [], 0
    with full_collections() as pauses:
        for _ in range(count):
            elapsed, found = timed(run)
            samples.append(elapsed)
    return {**percentiles(samples), "slots_found": found, **pauses}


def measure_members_area(data: dict[str, Any], count: int) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from wagtail_bookings_vc.models import Booking

    def page(user: Any) -> tuple[float, int, int]:
        client = Client()
        client.force_login(user)
        client.get(data["members_path"])  # warm-up
        with CaptureQueriesContext(connection) as queries:
            elapsed, response = timed(lambda: client.get(data["members_path"]))
        if response.status_code != 200:
            raise RuntimeError(f"members area answered {response.status_code}")
        listed = response.content.decode().count('class="bvc-booking__title"')
        return elapsed, len(queries.captured_queries), listed

    samples = []
    with full_collections() as pauses:
        for _ in range(count):
            elapsed, queries, listed = page(data["heavy"])
            samples.append(elapsed)
    _light_time, light_queries, _light_listed = page(data["light"])
    return {
        **percentiles(samples),
        "bookings": Booking.objects.filter(member=data["heavy"]).count(),
        "listed_on_the_page": listed,
        "queries": queries,
        "queries_with_50_bookings": light_queries,
        **pauses,
    }


def measure_calendar_week(count: int) -> dict[str, Any]:
    """The admin calendar's week view with the most bookings, for an administrator."""
    import datetime as dt

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count
    from django.db.models.functions import TruncWeek
    from django.test.utils import CaptureQueriesContext

    from wagtail_bookings_vc.admin_calendar import render_week_for_bench
    from wagtail_bookings_vc.models import Booking

    busiest = (
        Booking.objects.annotate(week=TruncWeek("start"))
        .values("week")
        .annotate(count=Count("pk"))
        .order_by("-count")
        .first()
    )
    if busiest is None:
        return {}
    monday = busiest["week"]
    day = monday.date() if isinstance(monday, dt.datetime) else monday
    admin = get_user_model().objects.filter(is_superuser=True).first()
    if admin is None:
        admin = get_user_model().objects.create_superuser("bench-admin", "", "bench-admin")
    render_week_for_bench(admin, day)  # warm-up
    samples = []
    with full_collections() as pauses:
        for _ in range(count):
            with CaptureQueriesContext(connection) as queries:
                elapsed, _html = timed(lambda: render_week_for_bench(admin, day))
            samples.append(elapsed)
    return {
        **percentiles(samples),
        "bookings_in_the_week": busiest["count"],
        "queries": len(queries.captured_queries),
        **pauses,
    }


class Scaling:
    """Latency against the number of existing bookings, measured while they are loaded.

    At each checkpoint: the booking request (on dates the existing bookings do not
    reach, so that every checkpoint books the same kind of slot) and the free slots of
    the service with 20 staff over 30 days.
    """

    def __init__(self, requests: int, slot_runs: int) -> None:
        self.requests = requests
        self.slot_runs = slot_runs
        self.points: list[dict[str, Any]] = []

    def __call__(self, data: dict[str, Any], existing: int) -> None:
        booker = Booker(data, first_day=200)
        booking = measure_booking(booker, self.requests)
        slots = measure_free_slots(data, self.slot_runs, one=False)
        self.points.append(
            {
                "existing_bookings": existing,
                "booking_request_p50_ms": booking["p50_ms"],
                "booking_request_p95_ms": booking["p95_ms"],
                "free_slots_20_staff_p50_ms": slots["p50_ms"],
                "free_slots_20_staff_p95_ms": slots["p95_ms"],
            }
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def web_server(log: Path, *, processes: int = 2, threads: int = 8) -> Iterator[str]:
    """The example site under gunicorn on this run's database; yields its base URL."""
    import requests

    port = free_port()
    with log.open("ab") as output:
        server = subprocess.Popen(  # noqa: S603 - our own interpreter
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example_site.wsgi:application",
                f"--bind=127.0.0.1:{port}",
                f"--workers={processes}",
                "--worker-class=gthread",
                f"--threads={threads}",
                "--timeout=120",
            ],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    probe = requests.Session()
    probe.trust_env = False
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn stopped:\n{log.read_text()}")
            try:
                probe.get(f"{base}/accounts/login/", timeout=60)
                break
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}") from None
                time.sleep(0.2)
        yield base
    finally:
        stop_group(server)


def measure_throughput(data: dict[str, Any], size: dict[str, Any], log: Path) -> dict[str, Any]:
    """Bookings per second through gunicorn, with members booking at the same time.

    Every member is signed in and books ``bookings_per_member`` free slots one after
    the other, as a browser does: the booking page (GET, for its form and CSRF token),
    then *Book* (POST). The members' slots are all different, so every booking must
    succeed; the figure is successful bookings per second of wall time.
    """
    import re
    import threading

    import requests
    from django.utils import timezone

    from tests.proof.processes import signed_in
    from wagtail_bookings_vc import availability
    from wagtail_bookings_vc.views import iso_utc

    service = data["service"]
    members = data["members"][: size["concurrent_members"]]
    each = size["bookings_per_member"]
    # Dates beyond the existing bookings and the other measurements' bookings.
    first = timezone.localdate() + dt.timedelta(days=280)
    slots = availability.free_slots(service, start_date=first, days=60)
    if len(slots) < len(members) * each:
        raise RuntimeError("not enough free slots for the throughput run")
    browsers = signed_in(members)

    token_pattern = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
    posts: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    with web_server(log) as base:
        # Every process and thread of the server answers once before the clock starts.
        for browser in browsers[:16]:
            browser.get(f"{base}/accounts/login/", timeout=30)
        barrier = threading.Barrier(len(browsers) + 1)

        def member(index: int) -> None:
            browser = browsers[index]
            barrier.wait(timeout=60)
            for slot in slots[index :: len(browsers)][:each]:
                url = (
                    f"{base}/bookings/services/{service.slug}/book/"
                    f"?staff={slot.staff_id}&start={iso_utc(slot.start)}"
                )
                try:
                    page = browser.get(url, timeout=120)
                    token = token_pattern.search(page.text)[1]
                    began = time.perf_counter()
                    answer = browser.post(
                        url,
                        {"csrfmiddlewaretoken": token, "time_zone": "Europe/Rome", "notes": ""},
                        headers={"Referer": url},
                        allow_redirects=False,
                        timeout=120,
                    )
                    elapsed = (time.perf_counter() - began) * 1000
                except (requests.RequestException, TypeError) as error:
                    with lock:
                        errors.append(repr(error))
                    continue
                with lock:
                    if answer.status_code == 302:
                        posts.append(elapsed)
                    else:
                        errors.append(f"POST answered {answer.status_code}")

        threads = [
            threading.Thread(target=member, args=(index,), daemon=True)
            for index in range(len(browsers))
        ]
        for thread in threads:
            thread.start()
        barrier.wait(timeout=60)
        began = time.perf_counter()
        for thread in threads:
            thread.join(timeout=600)
        seconds = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} bookings failed, the first: {errors[0]}")
    return {
        **percentiles(posts),
        "members": len(browsers),
        "bookings": len(posts),
        "seconds": round(seconds, 2),
        "bookings_per_second": round(len(posts) / seconds, 1),
        "server": "gunicorn, 2 processes x 8 threads (gthread)",
    }


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def prepare_environment(args: argparse.Namespace, workdir: Path, fake_url: str) -> str:
    from cryptography.fernet import Fernet

    broker = (
        "redis" if reachable("127.0.0.1", int(os.environ.get("BVC_REDIS_PORT", "6379"))) else "orm"
    )
    os.environ.update(
        DJANGO_SETTINGS_MODULE="benchmarks.settings",
        BVC_BENCH_DATABASE=args.database,
        BVC_BENCH_SECRET_KEY=secrets.token_urlsafe(50),
        BVC_BENCH_KEY=Fernet.generate_key().decode(),
        BVC_BENCH_FAKE_URL=fake_url,
        BVC_BENCH_Q_NAME=f"bvc-bench-{os.getpid()}",
        BVC_BENCH_BROKER=broker,
    )
    return broker


def run(args: argparse.Namespace) -> dict[str, Any]:
    size = sizes(args.quick)
    if args.bookings:
        size["bookings"] = args.bookings
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bvc-bench-") as tmp,
        provider_process() as server,
    ):
        workdir = Path(tmp)
        broker = prepare_environment(args, workdir, server.url())
        with throwaway_database(args.database, workdir) as name:
            os.environ["BVC_BENCH_DB_NAME"] = name
            import django

            django.setup()
            from django.core.management import call_command

            from benchmarks import peer

            if peer.available():
                peer.quiet_logs()

            call_command("migrate", verbosity=0, interactive=False)
            began = time.monotonic()
            scaling = Scaling(size["scaling_requests"], size["scaling_slots"])
            data = load_data(
                size["bookings"],
                server,
                checkpoints=size["checkpoints"],
                at_checkpoint=scaling,
            )
            load_seconds = time.monotonic() - began
            flush_queue()

            results: dict[str, Any] = {}
            results["free_slots_one_staff_30_days"] = measure_free_slots(
                data, size["slots_one"], one=True
            )
            results["free_slots_20_staff_30_days"] = measure_free_slots(
                data, size["slots_many"], one=False
            )
            results["members_area_500_bookings"] = measure_members_area(data, size["members_area"])
            results["admin_calendar_week"] = measure_calendar_week(size["calendar"])
            # The same staff, hours and bookings in django-appointment, timed in turn.
            if peer.available():
                results["django_appointment"] = peer.measure(peer.load(data), data, size)

            worker = Worker(workdir / "worker.log")
            booker = Booker(data)
            try:
                # A worker makes the meetings meanwhile, from a provider answering at once.
                worker.start()
                results["booking_request"] = measure_booking(booker, size["requests"])
                # The same with the provider taking 2 s: the request must not wait for it.
                # The worker starts with an empty queue, so that it is calling the slow
                # provider (not working off the requests above) while these are timed.
                drain()
                server.add_latency(2.0)
                calls = server.calls()
                results["booking_request_slow_provider"] = measure_booking(
                    booker, size["slow_requests"]
                )
                results["booking_request_slow_provider"]["provider_calls_meanwhile"] = (
                    server.calls() - calls
                )
                server.add_latency(0.0)
                drain()
                # Members booking at the same time through a real WSGI server.
                results["throughput"] = measure_throughput(data, size, workdir / "gunicorn.log")
                worker.stop()
                flush_queue()
                # Link ready: one worker, an empty queue, a provider answering in 300 ms.
                server.add_latency(0.3)
                worker.start()
                results["booking_to_link_ready"] = measure_link_ready(booker, size["link_ready"])
            finally:
                worker.stop()
                flush_queue()
            from django.db import connections

            connections.close_all()

    import django as django_module

    return {
        "kind": "bench",
        "database": args.database,
        "mode": "quick" if args.quick else "full",
        "existing_bookings": size["bookings"],
        "broker": broker,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "load_seconds": round(load_seconds, 1),
        "python": platform.python_version(),
        "django": django_module.get_version(),
        "cpus": os.cpu_count(),
        "targets_ms": TARGETS,
        "results": results,
        "scaling": scaling.points,
    }


def table(report: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    lines = [
        f"wagtail-bookings-vc benchmarks: {report['database']}, {report['mode']} mode, "
        f"{report['existing_bookings']:,} existing bookings, broker {report['broker']}",
        "",
        f"{'measurement':<52} {'p50 ms':>9} {'p95 ms':>9} {'target':>9}  met  full GCs",
        "-" * 98,
    ]
    for key, label in LABELS.items():
        found = report["results"].get(key)
        if not found:
            continue
        target = report["targets_ms"].get(key)
        met = "yes" if target is None or found["p95_ms"] <= target else "NO"
        pauses = found.get("full_gc_pauses")
        gcs = (
            f"{pauses} ({found['full_gc_max_ms']:g} ms)" if pauses else ("0" if pauses == 0 else "")
        )
        lines.append(
            f"{label:<52} {found['p50_ms']:>9.1f} {found['p95_ms']:>9.1f} "
            f"{'≤ ' + format(target, 'g'):>9}  {met:<4} {gcs}"
        )
    area = report["results"].get("members_area_500_bookings")
    if area:
        lines.append(
            f"{'members area: queries with 500 / with 50 bookings':<52} "
            f"{area['queries']:>9} {area['queries_with_50_bookings']:>9} {'equal':>9}  "
            f"{'yes' if area['queries'] == area['queries_with_50_bookings'] else 'NO'}"
        )
    week = report["results"].get("admin_calendar_week")
    if week:
        lines.append(
            f"{'admin calendar: bookings in that week / queries':<52} "
            f"{week['bookings_in_the_week']:>9} {week['queries']:>9}"
        )
    throughput = report["results"].get("throughput")
    if throughput:
        lines += [
            "",
            f"bookings per second through gunicorn, {throughput['members']} members at once: "
            f"{throughput['bookings_per_second']} ({throughput['bookings']} bookings in "
            f"{throughput['seconds']} s; Book p50 {throughput['p50_ms']} ms, "
            f"p95 {throughput['p95_ms']} ms)",
        ]
    if report["results"].get("django_appointment"):
        from benchmarks import peer

        lines += ["", peer.table(report["results"]["django_appointment"])]
    if report.get("scaling"):
        lines += [
            "",
            f"{'existing bookings':>18} {'booking p50':>12} {'booking p95':>12} "
            f"{'slots(20) p50':>14} {'slots(20) p95':>14}",
        ]
        lines += [
            f"{point['existing_bookings']:>18,} {point['booking_request_p50_ms']:>12.1f} "
            f"{point['booking_request_p95_ms']:>12.1f} "
            f"{point['free_slots_20_staff_p50_ms']:>14.1f} "
            f"{point['free_slots_20_staff_p95_ms']:>14.1f}"
            for point in report["scaling"]
        ]
    lines.append("")
    lines.append(
        "full GCs: Python's full garbage collections during the samples, and the longest; "
        "each stops the process for a walk over all its objects."
    )
    lines.append(f"run took {report['seconds']} s (loading the data {report['load_seconds']} s)")
    return "\n".join(lines)


def save(report: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = report["finished_at"].replace(":", "").replace("+0000", "Z")
    path = RESULTS / f"{stamp}-{report['database']}-{report['mode']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    latest_path = RESULTS / "latest.json"
    latest = json.loads(latest_path.read_text()) if latest_path.exists() else {}
    latest[f"{report['database']}-{report['mode']}"] = report
    latest_path.write_text(json.dumps(latest, indent=2, sort_keys=True) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="postgres" if os.environ.get("BVC_DATABASE") == "postgres" else "sqlite",
    )
    parser.add_argument("--bookings", type=int, help="existing bookings (default 10,000)")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    report = run(args)
    output = table(report)
    if not args.no_save:
        output += f"\nresults written to {save(report).relative_to(ROOT)}"
    sys.stdout.write(output + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
