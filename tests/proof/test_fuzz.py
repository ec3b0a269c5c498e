"""Any input to the public booking pages gives a page, a form error or a 4xx: never a 500,
never a half-written booking.

Hypothesis throws text, numbers, dates at the edge of the calendar, control characters
and the like at every parameter of the booking widget, the booking, cancel and
reschedule pages and the join link, signed in as a member. A server error would raise
in the test client. After every request the bookings must still add up: a request that
did not succeed changed nothing, and one that did left every booking whole (its join
passes and its meeting made, no double booking, no class over capacity).
"""

from __future__ import annotations

import datetime as dt
import string
from collections import Counter
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.proof.conftest import EXAMPLES, TUESDAY_10, record
from wagtail_bookings_vc import meetings
from wagtail_bookings_vc.models import (
    Booking,
    BookingStatus,
    JoinPass,
    JoinPassRole,
    Meeting,
)
from wagtail_bookings_vc.views import iso_utc

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # Nothing written to the working tree: examples that once failed are listed below.
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a browser could send: any Unicode character but lone surrogates (which no client
# can encode), NUL and control characters included.
any_text = st.text(st.characters(codec="utf-8"), max_size=40)
numbers = st.integers(min_value=-(2**70), max_value=2**70).map(str)
edge_times = st.sampled_from(
    [
        iso_utc(TUESDAY_10),
        "2026-11-24T13:00:00Z",
        "2026-11-24T09:00:00Z",
        "2026-11-24T09:00:00",
        "2026-11-24T09:00:00+14:00",
        "2026-11-24 09:00:00+01:00",
        "0001-01-01T00:00:00+00:30",
        "9999-12-31T23:59:59-23:59",
        "2026-02-30T10:00:00Z",
        "2026-11-24T24:00:00Z",
        "NaN",
        "",
        "2026-11-24",
        "T",
    ]
)
times = st.one_of(edge_times, st.datetimes().map(lambda d: d.isoformat()), any_text)
zones = st.one_of(
    st.sampled_from(["Europe/Rome", "UTC", "America/New_York", "", "Mars/Olympus", "../etc"]),
    any_text,
)
nexts = st.one_of(
    st.sampled_from(["/mine/", "https://evil.example/", "//evil.example", "javascript:x", ""]),
    any_text,
)
values = st.one_of(any_text, numbers, times)
TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"


_statuses: dict[str, Counter[int]] = {}


def seen(endpoint: str, status: int) -> None:
    """Count the answers each endpoint gave, for the printed figures."""
    counts = _statuses.setdefault(endpoint, Counter())
    counts[status] += 1
    record(
        f"fuzzing ({EXAMPLES} examples per test)",
        **{name: dict(sorted(found.items())) for name, found in _statuses.items()},
    )


def snapshot() -> tuple:
    return (
        tuple(
            Booking.objects.order_by("pk").values_list(
                "pk", "status", "start", "end", "staff_id", "session_id", "notes", "time_zone"
            )
        ),
        tuple(JoinPass.objects.order_by("pk").values_list("pk", "revoked_at")),
        tuple(Meeting.objects.order_by("pk").values_list("pk", "state", "next_attempt_at")),
    )


def assert_whole() -> None:
    """Every confirmed booking is complete, and nothing is booked twice."""
    confirmed = Booking.objects.filter(status=BookingStatus.CONFIRMED).select_related(
        "service", "session__group_class"
    )
    by_staff: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    for booking in confirmed:
        assert booking.member_id and booking.end > booking.start
        assert (
            JoinPass.objects.filter(
                booking=booking, role=JoinPassRole.ATTENDEE, revoked_at=None
            ).count()
            == 1
        ), booking.reference
        assert meetings.meeting_of(booking) is not None, booking.reference
        if booking.service_id:
            by_staff.setdefault(booking.staff_id, []).append((booking.start, booking.end))
        else:
            session = booking.session
            taken = session.bookings.filter(status=BookingStatus.CONFIRMED).count()
            assert taken <= session.effective_capacity
    for spans in by_staff.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, "two appointments overlap"


def check(endpoint: str, response, before: tuple, *, success_status: int = 302) -> None:
    seen(endpoint, response.status_code)
    assert response.status_code < 500
    if response.status_code != success_status:
        assert response.status_code in (200, 400, 404, 405, 409, 429), response.status_code
        assert snapshot() == before
    assert_whole()


@given(params=st.dictionaries(st.sampled_from(["bvc_service", "bvc_week", "bvc_staff"]), values))
@FUZZ
def test_booking_widget(world, client, params):
    before = snapshot()
    response = client.get(f"{world.widget_path}?{urlencode(params)}")
    seen("booking widget", response.status_code)
    assert response.status_code == 200
    assert snapshot() == before


@given(
    staff=st.one_of(st.just("me"), numbers, any_text),
    start=times,
    zone=zones,
    notes=any_text,
    after=nexts,
    post=st.booleans(),
)
@FUZZ
def test_book_appointment(world, client, staff, start, zone, notes, after, post):
    client.force_login(world.other)
    staff = str(world.staff.pk) if staff == "me" else staff
    url = f"/bookings/services/{world.service.slug}/book/?" + urlencode(
        {"staff": staff, "start": start, "next": after}
    )
    before = snapshot()
    if post:
        response = client.post(url, {"time_zone": zone, "notes": notes})
        check("book appointment (POST)", response, before)
    else:
        check("book appointment (GET)", client.get(url), before, success_status=-1)


@given(
    session=st.one_of(st.just("mine"), st.integers(min_value=0, max_value=2**80)),
    zone=zones,
    notes=any_text,
    extra=st.dictionaries(any_text, any_text, max_size=3),
)
@FUZZ
def test_book_session(world, client, session, zone, notes, extra):
    client.force_login(world.other)
    world_session = world.session.pk if session == "mine" else session
    # The other member sits in the session already: free the seat for a real attempt.
    Booking.objects.filter(member=world.other, session=world.session).delete()
    before = snapshot()
    response = client.post(
        f"/bookings/sessions/{world_session}/book/",
        {**extra, "time_zone": zone, "notes": notes},
    )
    check("book session (POST)", response, before)


@given(
    reference=st.one_of(st.just("mine"), any_text.filter(bool)),
    after=nexts,
    extra=st.dictionaries(any_text, any_text, max_size=3),
)
@example(reference="\x00", after="/mine/", extra={})  # PostgreSQL refuses NUL in text
@FUZZ
def test_cancel(world, client, reference, after, extra):
    client.force_login(world.other)
    if reference == "mine":
        reference = world.other_appointment.reference
    before = snapshot()
    response = client.post(
        f"/bookings/{quote(reference, safe='')}/cancel/", {**extra, "next": after}
    )
    check("cancel (POST)", response, before)
    if response.status_code == 302:
        # Only ever the member's own booking, and only to a page of this site.
        assert response["Location"].startswith("/")
        assert not response["Location"].startswith("//")


@given(
    staff=st.one_of(st.just("me"), numbers, any_text),
    start=times,
    session=st.one_of(st.just("mine"), numbers, any_text),
    which=st.sampled_from(["appointment", "seat"]),
    post=st.booleans(),
)
@FUZZ
def test_reschedule(world, client, staff, start, session, which, post):
    client.force_login(world.victim)
    booking = world.victim_appointment if which == "appointment" else world.victim_seat
    staff = str(world.staff.pk) if staff == "me" else staff
    session = str(world.session.pk) if session == "mine" else session
    params = {"session": session} if which == "seat" else {"staff": staff, "start": start}
    url = f"/bookings/{booking.reference}/reschedule/?{urlencode(params)}"
    before = snapshot()
    if post:
        check("reschedule (POST)", client.post(url, {}), before)
    else:
        check("reschedule (GET)", client.get(url), before, success_status=-1)


@given(token=st.one_of(any_text.filter(bool), st.text(TOKEN_ALPHABET, min_size=20, max_size=70)))
@example(token="\x00")
@FUZZ
def test_join(world, client, token, settings):
    # Reach the look-up every time rather than the guessing throttle.
    settings.WAGTAIL_BOOKINGS_VC = {**settings.WAGTAIL_BOOKINGS_VC, "JOIN_GUESSES_PER_MINUTE": 0}
    before = snapshot()
    response = client.get(f"/bookings/join/{quote(token, safe='')}/")
    seen("join", response.status_code)
    assert response.status_code == 404
    assert snapshot() == before
