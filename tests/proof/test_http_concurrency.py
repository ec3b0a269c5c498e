"""Members racing for the last places through a real WSGI server on PostgreSQL.

The example site runs under gunicorn (three processes, six threads each) on this test's
database. 200 signed-in members press *Book* for the last 10 seats of a class at the
same moment, then 50 members press *Book* for the same staff member's slot: exactly 10
and exactly 1 succeed, and everybody else gets the page that says the place has just
gone, in plain words.

Runs on PostgreSQL (``BVC_DATABASE=postgres``).
"""

from __future__ import annotations

import datetime as dt
import html
import re
import socket
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
import requests
from django.contrib.auth import get_user_model

from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
)
from tests.proof.conftest import on_postgres
from tests.proof.processes import running, signed_in, start, worker_env
from wagtail_bookings_vc.bookings import MESSAGES
from wagtail_bookings_vc.models import Booking, BookingStatus
from wagtail_bookings_vc.views import iso_utc

pytestmark = [*on_postgres, pytest.mark.django_db(transaction=True)]

ROME = ZoneInfo("Europe/Rome")
CLASS_ATTEMPTS, SEATS_LEFT, CAPACITY = 200, 10, 30
SLOT_ATTEMPTS = 50


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(base: str, server, log) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            # The first answer loads the site in a worker: slow on a busy machine.
            requests.get(f"{base}/accounts/login/", timeout=30)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not start:\n{log.read_text()}")


def open_form(browser: requests.Session, url: str) -> str:
    """GET the booking page as a member does; returns the form's CSRF token.

    A kept-alive connection the server has just closed is reset on reuse; a browser
    then opens a new one, and so does this (a GET changes nothing).
    """
    for attempt in range(3):
        try:
            page = browser.get(url, timeout=60)
            break
        except requests.ConnectionError:
            browser.close()
            if attempt == 2:
                raise
    assert page.status_code == 200, page.status_code
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]


def rush(browsers: list[requests.Session], url: str, tokens: list[str]) -> list[tuple]:
    """Every member presses *Book* at the same moment. Returns (status, text, seconds)."""
    barrier = threading.Barrier(len(browsers))
    results: list[tuple] = [None] * len(browsers)
    for browser in browsers:
        # Connections kept alive since the GET may be closed by the server any moment now:
        # each press opens its own, as a browser would after the keep-alive has passed.
        browser.close()

    def press(index: int) -> None:
        barrier.wait(timeout=60)
        began = time.monotonic()
        try:
            response = browsers[index].post(
                url,
                {
                    "csrfmiddlewaretoken": tokens[index],
                    "time_zone": "Europe/Rome",
                    "notes": "",
                },
                headers={"Referer": url},
                allow_redirects=False,
                timeout=120,
            )
            results[index] = (
                response.status_code,
                html.unescape(response.text),
                time.monotonic() - began,
            )
        except requests.RequestException as error:  # kept: checked in the test
            results[index] = (0, repr(error), time.monotonic() - began)

    threads = [threading.Thread(target=press, args=(i,), daemon=True) for i in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in threads)
    return results


def summary(results: list[tuple]) -> dict[str, object]:
    times = sorted(seconds for _, _, seconds in results)
    return {
        "answers": dict(sorted(Counter(status for status, _, _ in results).items())),
        "p50_ms": round(statistics.median(times) * 1000),
        "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000),
        "slowest_ms": round(times[-1] * 1000),
    }


def test_last_seats_and_last_slot_go_to_exactly_as_many_members(tmp_path, figures):
    import gunicorn  # noqa: F401 - the server under test must be installed

    staff = StaffFactory(name="Anna Rossi")
    group_class = GroupClassFactory(capacity=CAPACITY, staff=staff, name="Yoga")
    session = ClassSessionFactory(
        group_class=group_class, start=dt.datetime(2030, 3, 5, 18, 0, tzinfo=ROME)
    )
    SeatFactory.create_batch(CAPACITY - SEATS_LEFT, session=session)
    slot_staff = StaffFactory(name="Bruno Verdi")
    service = ServiceFactory(staff=[slot_staff], max_days_ahead=3650)
    # A Monday 10:00 in Rome, inside the factory's working hours.
    slot = dt.datetime(2030, 3, 4, 10, 0, tzinfo=ROME)
    users = [
        get_user_model().objects.create_user(f"racer{index}", f"racer{index}@example.com")
        for index in range(CLASS_ATTEMPTS)
    ]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    env = worker_env(BVC_PROOF_BROKER="orm")
    processes = []
    with running(processes):
        server = start(
            [
                "-m",
                "gunicorn",
                "example_site.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "3",
                "--worker-class",
                "gthread",
                "--threads",
                "6",
                "--timeout",
                "120",
            ],
            env,
            log,
        )
        processes.append(server)
        wait_until_serving(base, server, log)

        # 200 members on the class's booking page, then all press Book at once.
        class_url = f"{base}/bookings/sessions/{session.pk}/book/"
        browsers = signed_in(users)
        with ThreadPoolExecutor(8) as pool:
            tokens = list(pool.map(lambda b: open_form(b, class_url), browsers))
        class_results = rush(browsers, class_url, tokens)

        # 50 of them on one staff member's slot.
        slot_url = (
            f"{base}/bookings/services/{service.slug}/book/"
            f"?staff={slot_staff.pk}&start={iso_utc(slot)}"
        )
        racers = browsers[:SLOT_ATTEMPTS]
        with ThreadPoolExecutor(8) as pool:
            tokens = list(pool.map(lambda b: open_form(b, slot_url), racers))
        slot_results = rush(racers, slot_url, tokens)

    full = str(MESSAGES["full"])
    taken = str(MESSAGES["taken"])
    figures(
        "concurrency through gunicorn (PostgreSQL)",
        **{
            f"{CLASS_ATTEMPTS} members for the last {SEATS_LEFT} seats": summary(class_results),
            f"{SLOT_ATTEMPTS} members for one slot": summary(slot_results),
        },
    )

    statuses = Counter(status for status, _, _ in class_results)
    failed = [text for status, text, _ in class_results + slot_results if status == 0]
    assert failed == []
    assert statuses == {302: SEATS_LEFT, 409: CLASS_ATTEMPTS - SEATS_LEFT}, statuses
    assert all(full in text for status, text, _ in class_results if status == 409)
    seats = Booking.objects.filter(session=session, status=BookingStatus.CONFIRMED)
    assert seats.count() == CAPACITY
    assert seats.filter(member__in=users).count() == SEATS_LEFT

    statuses = Counter(status for status, _, _ in slot_results)
    assert statuses == {302: 1, 409: SLOT_ATTEMPTS - 1}, statuses
    assert all(taken in text for status, text, _ in slot_results if status == 409)
    assert Booking.objects.filter(staff=slot_staff, status=BookingStatus.CONFIRMED).count() == 1
