"""Attendees are told when the way into their class session changes (R11, R12).

Sessions and classes are saved the way the admin saves them; every job that leaves for
after the commit runs inline (django-q2 in sync mode), meetings included.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from wagtail.models import Site

from tests.factories import ClassSessionFactory, UserFactory
from wagtail_bookings_vc import jobs, meetings
from wagtail_bookings_vc.models import (
    Booking,
    BookingEmailSettings,
    Meeting,
    MeetingLinkMode,
    MeetingState,
    SessionFormat,
    SessionLink,
)
from wagtail_bookings_vc.notifications import session_changes as sc

from .helpers import START, HeldJobs, html_of
from .session_scene import (
    JOIN_LINK,
    NOW,
    build_scene,
    calendar_of,
    everything_in,
    join_url_of,
    take_seat,
    to,
)

pytestmark = pytest.mark.django_db

WHEREBY = "https://whereby.com/riverside-yoga"


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    def run(change, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return change(*args, **kwargs)

    return run


@pytest.fixture
def scene(run_jobs):
    return build_scene(run_jobs)


def save(run_jobs, instance, **fields):
    for name, value in fields.items():
        setattr(instance, name, value)
    run_jobs(instance.save)


def member_messages(scene):
    return [message for seat in scene.seats for message in to(seat.member_email)]


# --- what counts as a change -----------------------------------------------------------


def state(**fields):
    values = {
        "cancelled": False,
        "start": START,
        "end": START + dt.timedelta(hours=1),
        "online": True,
        "kind": meetings.AUTOMATIC,
    }
    return sc.LinkState(**{**values, **fields})


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (state(), state(), []),
        (state(), state(online=False, kind=meetings.NO_LINK, location="Studio 2"), ["in_person"]),
        (state(online=False, kind=meetings.NO_LINK), state(), ["online"]),
        (state(), state(kind=meetings.MANUAL, url=WHEREBY), ["link_changed"]),
        (
            state(kind=meetings.MANUAL, url=WHEREBY),
            state(kind=meetings.MANUAL, url=WHEREBY, passcode="1234"),
            ["link_changed"],
        ),
        (state(), state(kind=meetings.NO_LINK), ["link_removed"]),
        (state(kind=meetings.NO_LINK), state(), ["link_added"]),
        (state(), state(cancelled=True), ["cancelled"]),
        (state(cancelled=True), state(cancelled=True, online=False), []),
        (state(cancelled=True), state(), ["restored"]),
        (
            state(),
            state(start=START + dt.timedelta(hours=2), end=START + dt.timedelta(hours=3)),
            ["moved"],
        ),
        (
            state(online=False, kind=meetings.NO_LINK, location="Studio 2"),
            state(online=False, kind=meetings.NO_LINK, location="The park"),
            ["location"],
        ),
        # The class's hand-entered link does not matter while the session is in person.
        (
            state(online=False, kind=meetings.NO_LINK, location="Studio 2"),
            state(online=False, kind=meetings.NO_LINK, location="Studio 2"),
            [],
        ),
    ],
)
def test_what_attendees_are_told_about(before, after, expected):
    assert sc.changes(before, after) == expected


# --- one session -----------------------------------------------------------------------


def test_session_held_in_person_tells_each_attendee_where_to_go(scene, run_jobs):
    save(run_jobs, scene.session, format_override=SessionFormat.IN_PERSON)

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "Now in person: Morning yoga, Tuesday 12 January 2027"
        assert "Please come to: Studio 2." in message.body
        assert "Where: Studio 2" in message.body
        assert "/bookings/join/" not in everything_in(message)
        assert "meet.jit.si" not in everything_in(message)
        calendar, event = calendar_of(message)
        assert calendar["METHOD"] == "REQUEST"
        assert str(event["LOCATION"]) == "Studio 2"
        # Calendar programs replace the copy from the confirmation.
        assert event["SEQUENCE"] == 1
    assert len(mail.outbox) == 3


def test_session_back_online_gives_each_attendee_their_own_link(scene, run_jobs):
    save(run_jobs, scene.session, format_override=SessionFormat.IN_PERSON)
    mail.outbox.clear()

    save(run_jobs, scene.session, format_override="")

    meeting = Meeting.objects.get(session=scene.session)
    assert meeting.state == MeetingState.READY
    own_links = [join_url_of(seat) for seat in scene.seats]
    assert len(set(own_links)) == 2
    for seat, own in zip(scene.seats, own_links, strict=True):
        (message,) = to(seat.member_email)
        assert message.subject == "Now online: Morning yoga, Tuesday 12 January 2027"
        assert "This session is now held online, in a video meeting." in message.body
        assert JOIN_LINK.findall(message.body) == [own]
        assert str(calendar_of(message)[1]["LOCATION"]) == own
        assert meeting.join_url not in everything_in(message)


def test_link_follows_when_the_new_meeting_is_not_ready_yet(scene, run_jobs, monkeypatch):
    save(run_jobs, scene.session, format_override=SessionFormat.IN_PERSON)
    mail.outbox.clear()
    held = HeldJobs(jobs.enqueue)
    monkeypatch.setattr(jobs, "enqueue", held)

    save(run_jobs, scene.session, format_override="")

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert "Your link is being prepared. We will email it to you" in message.body
        assert "/bookings/join/" not in message.body
    mail.outbox.clear()

    for meeting_id in held.meeting_ids:
        run_jobs(meetings.ensure_meeting, meeting_id)

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject.startswith("Your meeting link: Morning yoga")
        assert join_url_of(seat) in message.body


def test_session_own_link_changed_restored_and_removed(scene, run_jobs):
    save(
        run_jobs,
        scene.session,
        meeting_link_override=SessionLink.MANUAL,
        meeting_url=WHEREBY,
        meeting_passcode="4321",
    )
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "New meeting link: Morning yoga, Tuesday 12 January 2027"
        assert join_url_of(seat) in message.body
        assert "Passcode: 4321" in message.body
        assert "whereby.com" not in everything_in(message)
    mail.outbox.clear()

    save(run_jobs, scene.session, meeting_url=WHEREBY + "-2")
    assert len(member_messages(scene)) == 2
    mail.outbox.clear()

    save(run_jobs, scene.session, meeting_link_override="", meeting_url="", meeting_passcode="")
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject.startswith("New meeting link:")
        assert join_url_of(seat) in message.body
    mail.outbox.clear()

    save(run_jobs, scene.session, meeting_link_override=SessionLink.NONE)
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject.startswith("Meeting link removed:")
        assert "no video meeting link for now" in message.body
        assert "/bookings/join/" not in everything_in(message)


def test_session_moved_takes_its_seats_along(scene, run_jobs):
    seat = scene.seats[0]
    Booking.objects.filter(pk=seat.pk).update(reminder_sent_at=NOW)
    later = START + dt.timedelta(hours=2)

    save(run_jobs, scene.session, start=later)

    seat.refresh_from_db()
    assert (seat.start, seat.end) == (later, later + dt.timedelta(hours=1))
    assert seat.reminder_sent_at is None
    (message,) = to(seat.member_email)
    assert message.subject == "New time: Morning yoga, Tuesday 12 January 2027"
    assert "12:00–13:00 (Europe/Rome)" in message.body
    assert join_url_of(seat) in message.body
    assert calendar_of(message)[1].decoded("DTSTART") == later


def test_cancelled_session_and_back_on(scene, run_jobs):
    save(run_jobs, scene.session, cancelled=True)

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "Session cancelled: Morning yoga, Tuesday 12 January 2027"
        assert "This session has been cancelled." in message.body
        assert "/bookings/join/" not in everything_in(message)
        calendar, event = calendar_of(message)
        assert calendar["METHOD"] == "CANCEL"
        assert event["STATUS"] == "CANCELLED"
    (staff_message,) = to("oskar@example.com")
    assert (
        staff_message.subject == "Session cancelled: Morning yoga, Tuesday 12 January 2027, 10:00"
    )
    mail.outbox.clear()

    save(run_jobs, scene.session, cancelled=False)

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "Session back on: Morning yoga, Tuesday 12 January 2027"
        assert join_url_of(seat) in message.body
        calendar, event = calendar_of(message)
        assert calendar["METHOD"] == "REQUEST"
        assert event["SEQUENCE"] == 2


def test_instructor_gets_one_email_with_the_host_link(scene, run_jobs):
    save(run_jobs, scene.session, meeting_link_override=SessionLink.MANUAL, meeting_url=WHEREBY)

    (message,) = to("oskar@example.com")
    assert message.subject == "New meeting link: Morning yoga, Tuesday 12 January 2027, 10:00"
    assert "Tuesday 12 January 2027, 10:00–11:00 (Europe/Stockholm)" in message.body
    assert "Its meeting link changed." in message.body
    assert "2 attendees were emailed." in message.body
    assert join_url_of(scene.seats[0], "host") in message.body
    assert "whereby.com" not in everything_in(message)
    for seat in scene.seats:
        assert join_url_of(seat) not in message.body


def test_instructor_is_not_emailed_when_staff_emails_are_off(scene, run_jobs):
    prefs = BookingEmailSettings.for_site(Site.objects.get(is_default_site=True))
    prefs.notify_staff = False
    prefs.save()

    save(run_jobs, scene.session, format_override=SessionFormat.IN_PERSON)

    assert to("oskar@example.com") == []
    assert len(member_messages(scene)) == 2


def test_emails_are_in_each_attendees_language(run_jobs):
    scene = build_scene(run_jobs, languages=("it", "en"))

    save(run_jobs, scene.session, format_override=SessionFormat.IN_PERSON)

    (italian,) = to(scene.seats[0].member_email)
    (english,) = to(scene.seats[1].member_email)
    assert "Martedì 12 Gennaio 2027" in italian.subject
    assert "Martedì 12 Gennaio 2027" in italian.body
    assert '<html lang="it"' in html_of(italian)
    assert "Tuesday 12 January 2027" in english.subject
    assert '<html lang="en"' in html_of(english)


def test_link_left_out_of_emails_stays_out(run_jobs):
    scene = build_scene(run_jobs, hide_link_in_emails=True)
    save(run_jobs, scene.session, format_override=SessionFormat.IN_PERSON)
    mail.outbox.clear()

    save(run_jobs, scene.session, format_override="")

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject.startswith("Now online:")
        assert "/bookings/join/" not in everything_in(message)


# --- nothing to tell -------------------------------------------------------------------


def test_saving_an_unchanged_session_or_class_sends_nothing(scene, run_jobs):
    run_jobs(scene.session.save)
    run_jobs(scene.group_class.save)
    save(run_jobs, scene.session, capacity=30)
    save(run_jobs, scene.group_class, description="Bring a mat.", hide_link_in_members_area=True)

    assert mail.outbox == []
    assert Booking.objects.get(pk=scene.seats[0].pk).sequence == 0


def test_switching_back_and_forth_in_one_transaction_sends_nothing(scene, run_jobs):
    def there_and_back():
        with transaction.atomic():
            scene.session.format_override = SessionFormat.IN_PERSON
            scene.session.save()
            scene.session.format_override = ""
            scene.session.save()

    run_jobs(there_and_back)

    assert mail.outbox == []


def test_a_session_that_has_ended_sends_nothing(scene, run_jobs):
    past = ClassSessionFactory(group_class=scene.group_class, start=NOW - dt.timedelta(days=1))
    Booking.objects.create(
        member=UserFactory(email="past@example.com"),
        member_email="past@example.com",
        session=past,
        start=past.start,
        end=past.end,
    )

    save(run_jobs, past, format_override=SessionFormat.IN_PERSON)
    save(run_jobs, past, format_override="", cancelled=True)

    assert mail.outbox == []


def test_cancelled_seats_are_not_told(scene, run_jobs):
    from wagtail_bookings_vc import bookings

    run_jobs(bookings.cancel, scene.seats[0], now=NOW)
    mail.outbox.clear()

    save(run_jobs, scene.session, format_override=SessionFormat.IN_PERSON)

    assert to(scene.seats[0].member_email) == []
    assert len(to(scene.seats[1].member_email)) == 1
    assert "1 attendee was emailed." in to("oskar@example.com")[0].body


def test_nobody_is_emailed_for_a_session_without_attendees(run_jobs):
    scene = build_scene(run_jobs, languages=())

    save(run_jobs, scene.session, format_override=SessionFormat.IN_PERSON)

    assert mail.outbox == []


# --- the whole class (R11) -------------------------------------------------------------


@pytest.fixture
def course(scene, run_jobs):
    """Two upcoming sessions with attendees, and one that is over."""
    second = ClassSessionFactory(group_class=scene.group_class, start=START + dt.timedelta(days=7))
    carla = take_seat(run_jobs, second, "carla@example.com")
    past = ClassSessionFactory(group_class=scene.group_class, start=NOW - dt.timedelta(days=2))
    Booking.objects.create(
        member=UserFactory(email="past@example.com"),
        member_email="past@example.com",
        session=past,
        start=past.start,
        end=past.end,
    )
    mail.outbox.clear()
    return scene, second, carla


def test_class_link_entered_by_hand_tells_every_upcoming_sessions_attendees(course, run_jobs):
    scene, second, carla = course

    save(
        run_jobs,
        scene.group_class,
        meeting_link_mode=MeetingLinkMode.MANUAL,
        meeting_url=WHEREBY,
    )

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "New meeting link: Morning yoga, Tuesday 12 January 2027"
        assert join_url_of(seat) in message.body
    (message,) = to("carla@example.com")
    assert message.subject == "New meeting link: Morning yoga, Tuesday 19 January 2027"
    assert join_url_of(carla) in message.body
    assert to("past@example.com") == []
    (staff_message,) = to("oskar@example.com")
    assert staff_message.subject == "Sessions changed: Morning yoga"
    assert "2 attendees were emailed." in staff_message.body
    assert "1 attendee was emailed." in staff_message.body
    assert len(mail.outbox) == 4
    for message in mail.outbox:
        assert "whereby.com" not in everything_in(message)

    # The class's link changes again: every upcoming session's attendees are told again.
    mail.outbox.clear()
    save(run_jobs, scene.group_class, meeting_url=WHEREBY + "-new")
    for address in ("ada@example.com", "bruno@example.com", "carla@example.com"):
        assert len(to(address)) == 1
    assert len(to("oskar@example.com")) == 1
    assert to("past@example.com") == []


def test_class_turned_in_person_spares_sessions_with_their_own_format(course, run_jobs):
    scene, second, carla = course
    save(run_jobs, second, format_override=SessionFormat.ONLINE)
    mail.outbox.clear()

    save(run_jobs, scene.group_class, online=False)

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject.startswith("Now in person:")
        assert "Please come to: Studio 2." in message.body
    assert to("carla@example.com") == []
    assert Meeting.objects.get(session=scene.session).state == MeetingState.CANCELLED


def test_class_and_session_saved_together_make_one_email_each(course, run_jobs):
    scene, second, carla = course

    def edit_in_the_class_editor():
        with transaction.atomic():
            scene.group_class.meeting_link_mode = MeetingLinkMode.MANUAL
            scene.group_class.meeting_url = WHEREBY
            scene.group_class.save()
            for session in (scene.session, second):
                session.refresh_from_db()
                session.group_class = scene.group_class
            scene.session.format_override = SessionFormat.IN_PERSON
            scene.session.save()
            second.save()

    run_jobs(edit_in_the_class_editor)

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject.startswith("Now in person:")
    (message,) = to("carla@example.com")
    assert message.subject.startswith("New meeting link:")
    assert len(to("oskar@example.com")) == 1


def test_class_given_a_longer_duration_moves_the_end_of_its_seats(course, run_jobs):
    scene, second, carla = course

    save(run_jobs, scene.group_class, duration_minutes=90)

    carla.refresh_from_db()
    assert carla.end == carla.start + dt.timedelta(minutes=90)
    (message,) = to("carla@example.com")
    assert message.subject.startswith("New time:")
    assert "10:00–11:30 (Europe/Rome)" in message.body
