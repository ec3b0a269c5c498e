"""What a member is shown of a booking's meeting link: ``links.member_link`` and ``host_link``.

Bookings are made through ``bookings.py`` and the jobs they leave run inline, so the
meetings are real Jitsi rooms made by the real meeting job.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from tests.notifications.helpers import HeldJobs, connect_default_account
from wagtail_bookings_vc import bookings, jobs, links, meetings
from wagtail_bookings_vc.models import (
    AccountStatus,
    Booking,
    JoinPassRole,
    MeetingLinkMode,
    SessionLink,
)

ROME = ZoneInfo("Europe/Rome")
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)  # Monday morning
TUESDAY_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
WEDNESDAY_18 = dt.datetime(2026, 11, 25, 18, 0, tzinfo=ROME)
MANUAL_URL = "https://whereby.com/riverside-studio"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def account():
    return connect_default_account()


@pytest.fixture
def staff():
    return StaffFactory(name="Anna Rossi")


@pytest.fixture
def service(staff, account):
    return ServiceFactory(name="Online check-in", staff=[staff], online=True)


@pytest.fixture
def member():
    return UserFactory()


@pytest.fixture
def book(django_capture_on_commit_callbacks, service, staff, member):
    """Book an appointment the way the booking views do, then run the jobs it leaves."""

    def make(**kwargs) -> Booking:
        values = {
            "member": member,
            "service": service,
            "staff": staff,
            "start": TUESDAY_10,
            "time_zone": "Europe/Rome",
        }
        values.update(kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            booking = bookings.book_appointment(**values)
        return Booking.objects.get(pk=booking.pk)

    return make


def at(moment: dt.datetime, booking: Booking, where: str = links.MEMBERS_AREA):
    return links.member_link(booking, where=where, now=moment)


# --- the button's states ---------------------------------------------------------------


def test_link_waits_for_the_join_window(book):
    booking = book()

    link = links.member_link(booking, where=links.MEMBERS_AREA)

    assert link.status == links.WAITING
    assert not link.is_open
    assert link.path == meetings.join_path(booking)
    assert link.path.startswith("/bookings/join/")
    assert link.url == f"http://localhost{link.path}"
    assert link.opens_at == TUESDAY_10 - dt.timedelta(minutes=15)
    assert link.starts_at == TUESDAY_10
    assert link.reason == ""


def test_link_opens_shortly_before_the_start(book):
    booking = book()

    assert at(TUESDAY_10 - dt.timedelta(minutes=16), booking).status == links.WAITING
    assert at(TUESDAY_10 - dt.timedelta(minutes=15), booking).is_open
    assert at(TUESDAY_10 + dt.timedelta(minutes=59), booking).is_open
    # Over: nothing to join any more.
    assert at(TUESDAY_10 + dt.timedelta(hours=1), booking) is None


def test_the_link_is_the_personal_one_never_the_providers(book):
    booking = book()
    meeting = meetings.meeting_of(booking)

    link = at(TUESDAY_10, booking)

    assert meeting.join_url.startswith("https://meet.jit.si/")
    assert meeting.join_url not in (link.path, link.url)
    assert meeting.external_id not in link.url


def test_unpaid_priced_booking_shows_why_there_is_no_link(book, service):
    service.price = Decimal("35.00")
    service.save()
    booking = book()

    link = at(TUESDAY_10, booking)

    assert link.status == links.AWAITING_PAYMENT
    assert not link.shown and link.path == link.url == ""
    assert link.reason == "Your link appears once your payment is received."
    bookings.mark_paid(booking)
    assert at(TUESDAY_10, booking).is_open


def test_meeting_still_being_made_shows_a_note(
    django_capture_on_commit_callbacks, book, monkeypatch
):
    held = HeldJobs(jobs.enqueue)
    monkeypatch.setattr(jobs, "enqueue", held)
    booking = book()

    link = at(TUESDAY_10, booking)

    assert link.status == links.PREPARING
    assert link.reason == "Your link is being prepared."
    assert link.path == ""
    (meeting_id,) = held.meeting_ids
    with django_capture_on_commit_callbacks(execute=True):
        meetings.ensure_meeting(meeting_id)
    assert at(TUESDAY_10, Booking.objects.get(pk=booking.pk)).is_open


@pytest.mark.parametrize(
    ("setting", "hidden_in", "shown_in"),
    [
        ("hide_link_in_members_area", links.MEMBERS_AREA, links.EMAIL),
        ("hide_link_in_emails", links.EMAIL, links.MEMBERS_AREA),
    ],
)
def test_link_can_be_left_out_of_one_place(book, service, setting, hidden_in, shown_in):
    setattr(service, setting, True)
    service.save()
    booking = book()

    assert at(TUESDAY_10, booking, hidden_in) is None
    assert at(TUESDAY_10, booking, shown_in).is_open


def test_cancelled_booking_has_no_join_link(book):
    booking = book()
    bookings.cancel(booking)

    assert at(TUESDAY_10, Booking.objects.get(pk=booking.pk)) is None


def test_in_person_booking_has_no_join_link(book, service):
    service.online = False
    service.save()

    assert at(TUESDAY_10, book()) is None


@pytest.mark.parametrize("status", [AccountStatus.DISCONNECTED, AccountStatus.NEEDS_RECONNECTING])
def test_no_automatic_link_while_the_default_account_is_not_connected(book, account, status):
    booking = book()
    account.status = status
    account.save()

    assert at(TUESDAY_10, booking) is None
    assert at(TUESDAY_10, booking, links.EMAIL) is None
    assert links.host_link(booking) == ""


def test_staff_accounts_do_not_help_while_the_default_account_is_disconnected(book, account, staff):
    from wagtail_bookings_vc.models import ConferencingAccount

    ConferencingAccount.objects.create(provider="jitsi", staff=staff, label="Anna's rooms")
    booking = book()
    assert at(TUESDAY_10, booking).is_open
    account.status = AccountStatus.DISCONNECTED
    account.save()

    assert at(TUESDAY_10, booking) is None


def test_no_automatic_link_without_a_default_account(book, account):
    booking = book()
    account.delete()

    assert at(TUESDAY_10, booking) is None


# --- hand-entered links ----------------------------------------------------------------


@pytest.fixture
def manual_service(service):
    service.meeting_link_mode = MeetingLinkMode.MANUAL
    service.meeting_url = MANUAL_URL
    service.meeting_passcode = "4321"
    service.meeting_description = "Use the browser; no app needed."
    service.save()
    return service


def test_manual_link_comes_with_its_note_and_passcode(book, manual_service):
    link = at(TUESDAY_10, book())

    assert link.is_open
    assert link.path.startswith("/bookings/join/")
    assert MANUAL_URL not in link.url
    assert link.description == "Use the browser; no app needed."
    assert link.passcode == "4321"


def test_manual_link_shows_although_the_default_account_is_disconnected(
    book, manual_service, account
):
    account.status = AccountStatus.DISCONNECTED
    account.save()

    assert at(TUESDAY_10, book()).is_open


# --- classes ---------------------------------------------------------------------------


@pytest.fixture
def session(staff, account):
    group_class = GroupClassFactory(
        name="Online pilates",
        staff=staff,
        online=True,
        meeting_description="Have a mat ready.",
    )
    return ClassSessionFactory(group_class=group_class, start=WEDNESDAY_18)


def test_class_attendees_get_links_of_their_own(django_capture_on_commit_callbacks, session):
    seats = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            seats.append(bookings.book_session(member=UserFactory(), session=session))

    first, second = (at(WEDNESDAY_18, seat) for seat in seats)

    assert first.is_open and second.is_open
    assert first.path != second.path
    assert first.description == "Have a mat ready."
    assert first.starts_at == WEDNESDAY_18


def test_a_sessions_own_link_does_not_take_the_class_note(
    django_capture_on_commit_callbacks, session
):
    session.meeting_link_override = SessionLink.MANUAL
    session.meeting_url = MANUAL_URL
    session.save()
    with django_capture_on_commit_callbacks(execute=True):
        seat = bookings.book_session(member=UserFactory(), session=session)

    link = at(WEDNESDAY_18, seat)

    assert link.is_open
    assert link.description == ""


# --- the host link ---------------------------------------------------------------------


def test_host_link_is_the_staff_members_own(book):
    booking = book()

    url = links.host_link(booking)

    assert url == "http://localhost" + meetings.join_path(booking, role=JoinPassRole.HOST)
    assert url != at(TUESDAY_10, booking).url


def test_host_link_is_there_while_the_meeting_is_being_made(book, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", HeldJobs(jobs.enqueue))

    assert links.host_link(book()).startswith("http://localhost/bookings/join/")


def test_host_link_ignores_the_members_hiding_settings(book, service):
    service.hide_link_in_emails = service.hide_link_in_members_area = True
    service.save()

    assert links.host_link(book())


def test_cancelled_or_in_person_booking_has_no_host_link(book, service):
    booking = book()
    bookings.cancel(booking)
    assert links.host_link(Booking.objects.get(pk=booking.pk)) == ""

    service.online = False
    service.save()
    assert links.host_link(book(start=TUESDAY_10 + dt.timedelta(hours=2))) == ""


# --- many bookings at once -------------------------------------------------------------


def test_links_for_a_list_cost_no_query_per_booking(
    django_capture_on_commit_callbacks, book, session, member
):
    def count() -> int:
        mine = list(
            Booking.objects.filter(member=member).select_related("service", "session__group_class")
        )
        with CaptureQueriesContext(connection) as queries:
            links.load_link_data(mine)
            found = links.member_links(mine, where=links.MEMBERS_AREA, now=TUESDAY_10)
        assert all(link is not None and link.shown for link in found.values())
        return len(queries)

    book()
    with django_capture_on_commit_callbacks(execute=True):
        bookings.book_session(member=member, session=session)
    few = count()
    for hour in (12, 14, 15):
        book(start=TUESDAY_10.replace(hour=hour))

    assert count() == few
