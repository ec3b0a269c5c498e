"""*Session link* in the admin (R12), and who is emailed when it is used (R11).

An administrator or the class's instructor uses the screen as in a browser session; the
jobs each request leaves for after its commit run inline (django-q2 in sync mode).
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse
from wagtail.test.utils.form_data import inline_formset, nested_form_data

from tests.factories import ClassSessionFactory, GroupClassFactory, StaffFactory
from tests.notifications.helpers import START
from tests.notifications.session_scene import (
    JOIN_LINK,
    NOW,
    build_scene,
    calendar_of,
    everything_in,
    join_url_of,
    take_seat,
    to,
)
from wagtail_bookings_vc.admin_sessions import class_sessions_url, session_link_url
from wagtail_bookings_vc.models import ClassSession, Meeting, MeetingState, SessionFormat

pytestmark = pytest.mark.django_db

WHEREBY = "https://whereby.com/riverside-yoga"


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "password")


@pytest.fixture
def instructor_user(django_user_model):
    """A staff member's Wagtail user who manages their own bookings only."""
    user = django_user_model.objects.create_user("oskar", "oskar@example.com", "password")
    user.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="manage_own_bookings"),
    )
    return user


@pytest.fixture
def scene(run_jobs, instructor_user):
    return build_scene(run_jobs, staff_user=instructor_user)


@pytest.fixture
def act(client, admin, django_capture_on_commit_callbacks):
    """Press a button on a session's screen (as the administrator, unless told otherwise)."""

    def press(session, action, *, user=None, **fields):
        client.force_login(user or admin)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(session_link_url(session), {"action": action, **fields})

    return press


def refused(response) -> bool:
    """Wagtail answers a refused admin request with its dashboard and a message."""
    if response.status_code == 403:
        return True
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    return (
        response.status_code == 302
        and response["Location"] == reverse("wagtailadmin_home")
        and any("do not have permission" in message for message in messages)
    )


def page_at(client, url, user) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def page(client, session, user) -> str:
    return page_at(client, session_link_url(session), user)


def test_the_screen_says_how_the_session_is_held_and_who_will_be_emailed(scene, client, admin):
    url = session_link_url(scene.session)
    assert url == f"/admin/bookings-vc/sessions/{scene.session.pk}/link/"

    content = page(client, scene.session, admin)

    assert "Held online, as the class." in content
    assert "Made automatically through the conferencing account." in content
    assert "Meeting: Ready." in content
    assert "2 attendees will be emailed about any change you make here" in content
    for label in ("Hold in person", "Use this link", "Remove the link"):
        assert label in content
    assert "Hold online" not in content
    assert "Restore the automatic link" not in content
    # Members' join links and the provider's URL are not shown here.
    assert "/bookings/join/" not in content
    assert Meeting.objects.get(session=scene.session).join_url not in content


def test_holding_a_session_in_person_emails_both_attendees_where_to_go(scene, act, client, admin):
    response = act(scene.session, "in_person")

    assert response.status_code == 302
    assert ClassSession.objects.get(pk=scene.session.pk).format_override == "in_person"
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "Now in person: Morning yoga, Tuesday 12 January 2027"
        assert "Please come to: Studio 2." in message.body
        assert "Where: Studio 2" in message.body
        assert "/bookings/join/" not in everything_in(message)
        assert "meet.jit.si" not in everything_in(message)
        assert str(calendar_of(message)[1]["LOCATION"]) == "Studio 2"
    (staff_message,) = to("oskar@example.com")
    assert "Now held in person, at Studio 2." in staff_message.body
    assert len(mail.outbox) == 3
    assert Meeting.objects.get(session=scene.session).state == MeetingState.CANCELLED

    content = page(client, scene.session, admin)
    assert "The session is now held in person. 2 attendees are being emailed." in content
    assert "Held in person at Studio 2, for this session only." in content
    assert "Hold online" in content


def test_back_online_emails_each_attendee_their_own_personal_link(scene, act):
    act(scene.session, "in_person")
    mail.outbox.clear()

    act(scene.session, "online")

    meeting = Meeting.objects.get(session=scene.session)
    assert meeting.state == MeetingState.READY
    links = []
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "Now online: Morning yoga, Tuesday 12 January 2027"
        (link,) = JOIN_LINK.findall(message.body)
        assert link == join_url_of(seat)
        assert meeting.join_url not in everything_in(message)
        links.append(link)
    assert links[0] != links[1]
    assert ClassSession.objects.get(pk=scene.session.pk).format_override == ""


def test_an_in_person_class_session_held_online(run_jobs, act, instructor_user):
    scene = build_scene(run_jobs, staff_user=instructor_user, online=False)

    act(scene.session, "online")

    session = ClassSession.objects.get(pk=scene.session.pk)
    assert session.format_override == SessionFormat.ONLINE
    assert Meeting.objects.get(session=session).state == MeetingState.READY
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert JOIN_LINK.findall(message.body) == [join_url_of(seat)]


def test_entering_and_changing_the_sessions_own_link_emails_the_attendees(scene, act, client):
    act(scene.session, "manual", url=WHEREBY, passcode="4321")

    session = ClassSession.objects.get(pk=scene.session.pk)
    assert (session.meeting_link_override, session.meeting_url) == ("manual", WHEREBY)
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "New meeting link: Morning yoga, Tuesday 12 January 2027"
        assert join_url_of(seat) in message.body
        assert "Passcode: 4321" in message.body
        assert "whereby.com" not in everything_in(message)
    mail.outbox.clear()

    act(scene.session, "manual", url=WHEREBY + "-room-2", passcode="4321")
    assert len(to("ada@example.com")) == 1 and len(to("bruno@example.com")) == 1
    mail.outbox.clear()

    # The same link again changes nothing, and nobody is emailed.
    act(scene.session, "manual", url=WHEREBY + "-room-2", passcode="4321")
    assert mail.outbox == []
    assert "nobody was emailed" in client.get(session_link_url(scene.session)).content.decode()

    # The attendees' links lead to the link entered, at the time of the session.
    with time_machine.travel(START - dt.timedelta(minutes=5), tick=False):
        response = client.get(
            join_url_of(scene.seats[0]).removeprefix("https://studio.example.com")
        )
    assert response["Location"] == WHEREBY + "-room-2"


def test_a_link_that_is_not_https_is_refused(scene, act):
    response = act(scene.session, "manual", url="http://whereby.com/riverside")

    assert response.status_code == 400
    assert "https://" in response.content.decode()
    assert ClassSession.objects.get(pk=scene.session.pk).meeting_link_override == ""
    assert mail.outbox == []


def test_restoring_the_automatic_link_and_removing_it(scene, act, client, admin):
    act(scene.session, "manual", url=WHEREBY)
    mail.outbox.clear()
    assert "Restore the automatic link" in page(client, scene.session, admin)

    act(scene.session, "restore")

    session = ClassSession.objects.get(pk=scene.session.pk)
    assert (session.meeting_link_override, session.meeting_url) == ("", "")
    assert Meeting.objects.get(session=session).state == MeetingState.READY
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject.startswith("New meeting link:")
        assert join_url_of(seat) in message.body
    mail.outbox.clear()

    act(scene.session, "remove")

    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "Meeting link removed: Morning yoga, Tuesday 12 January 2027"
        assert "/bookings/join/" not in everything_in(message)
    assert "No meeting link: it was removed for this session." in page(client, scene.session, admin)


def class_form(group_class, sessions, **changes) -> dict:
    """The class editor's form as a browser posts it, with ``changes`` made to the class."""
    rome = dt.timezone(dt.timedelta(hours=1))  # January in Rome, the site's time zone
    values = {
        "name": group_class.name,
        "slug": group_class.slug,
        "description": group_class.description,
        "capacity": group_class.capacity,
        "duration_minutes": group_class.duration_minutes,
        "staff": group_class.staff_id,
        "location": group_class.location,
        "min_notice_minutes": group_class.min_notice_minutes,
        "cancellation_cutoff_hours": group_class.cancellation_cutoff_hours,
        "price": "",
        "currency": "",
        "online": "on" if group_class.online else "",
        "meeting_link_mode": group_class.meeting_link_mode,
        "meeting_url": group_class.meeting_url,
        "meeting_passcode": group_class.meeting_passcode,
        "meeting_description": group_class.meeting_description,
        "waiting_room": "on" if group_class.waiting_room else "",
        "active": "on" if group_class.active else "",
        **changes,
        "sessions": inline_formset(
            [
                {
                    "id": session.pk,
                    "start": session.start.astimezone(rome).strftime("%Y-%m-%d %H:%M"),
                    "duration_minutes": session.duration_minutes or "",
                    "capacity": session.capacity or "",
                    "location": session.location,
                    "cancelled": "on" if session.cancelled else "",
                    "format_override": session.format_override,
                    "meeting_link_override": session.meeting_link_override,
                    "meeting_url": session.meeting_url,
                    "meeting_passcode": session.meeting_passcode,
                }
                for session in sessions
            ],
            initial=len(sessions),
        ),
    }
    return nested_form_data(values)


def test_the_class_editor_tells_the_attendees_of_each_upcoming_session(
    scene, client, admin, run_jobs, django_capture_on_commit_callbacks
):
    second = ClassSessionFactory(group_class=scene.group_class, start=START + dt.timedelta(days=7))
    carla = take_seat(run_jobs, second, "carla@example.com")
    past = ClassSessionFactory(group_class=scene.group_class, start=NOW - dt.timedelta(days=3))
    mail.outbox.clear()
    client.force_login(admin)
    edit = reverse(
        "wagtailsnippets_wagtail_bookings_vc_groupclass:edit", args=[scene.group_class.pk]
    )
    sessions = [scene.session, second, past]

    def submit(**changes):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(edit, class_form(scene.group_class, sessions, **changes))

    # Saved unchanged: every session is saved again, and nobody is emailed.
    response = submit()
    assert response.status_code == 302, response.context["form"].errors
    assert mail.outbox == []

    response = submit(meeting_link_mode="manual", meeting_url=WHEREBY)

    assert response.status_code == 302
    for seat in scene.seats:
        (message,) = to(seat.member_email)
        assert message.subject == "New meeting link: Morning yoga, Tuesday 12 January 2027"
        assert join_url_of(seat) in message.body
    (message,) = to("carla@example.com")
    assert message.subject == "New meeting link: Morning yoga, Tuesday 19 January 2027"
    assert join_url_of(carla) in message.body
    (staff_message,) = to("oskar@example.com")
    assert staff_message.subject == "Sessions changed: Morning yoga"
    assert len(mail.outbox) == 4


def test_a_session_that_is_over_cannot_be_changed(scene, act, client, admin):
    past = ClassSessionFactory(group_class=scene.group_class, start=NOW - dt.timedelta(days=1))

    assert "This session is over" in page(client, past, admin)
    act(past, "in_person")

    assert ClassSession.objects.get(pk=past.pk).format_override == ""
    assert mail.outbox == []


def test_the_instructor_manages_their_own_sessions_only(scene, act, client, instructor_user):
    other = ClassSessionFactory(
        group_class=GroupClassFactory(staff=StaffFactory(), online=True), start=START
    )
    client.force_login(instructor_user)

    assert client.get(session_link_url(scene.session)).status_code == 200
    assert refused(client.get(session_link_url(other)))
    response = act(other, "in_person", user=instructor_user)

    assert refused(response)
    assert ClassSession.objects.get(pk=other.pk).format_override == ""

    act(scene.session, "in_person", user=instructor_user)
    assert ClassSession.objects.get(pk=scene.session.pk).format_override == "in_person"
    assert len(to("ada@example.com")) == 1


def test_staff_without_booking_rights_are_refused(scene, client, django_user_model):
    editor = django_user_model.objects.create_user("editor", password="password")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(editor)

    assert refused(client.get(session_link_url(scene.session)))
    assert refused(client.post(session_link_url(scene.session), {"action": "remove"}))
    assert ClassSession.objects.get(pk=scene.session.pk).meeting_link_override == ""


def test_emails_from_the_screen_are_in_each_attendees_language(run_jobs, act, instructor_user):
    scene = build_scene(run_jobs, staff_user=instructor_user, languages=("it", "en"))

    act(scene.session, "in_person")

    (italian,) = to(scene.seats[0].member_email)
    (english,) = to(scene.seats[1].member_email)
    assert "Martedì 12 Gennaio 2027" in italian.subject
    assert "Martedì 12 Gennaio 2027" in italian.body
    assert "Tuesday 12 January 2027" in english.body


def test_a_classs_sessions_are_listed_each_with_its_link_button(
    scene, client, admin, instructor_user
):
    second = ClassSessionFactory(group_class=scene.group_class, start=START + dt.timedelta(days=7))
    past = ClassSessionFactory(group_class=scene.group_class, start=NOW - dt.timedelta(days=3))
    url = class_sessions_url(scene.group_class)

    for user in (admin, instructor_user):
        content = page_at(client, url, user)
        assert session_link_url(scene.session) in content
        assert session_link_url(second) in content
        assert session_link_url(past) not in content
    assert class_sessions_url(scene.group_class) in page(client, scene.session, admin)

    other_class = GroupClassFactory(staff=StaffFactory())
    client.force_login(instructor_user)
    assert refused(client.get(class_sessions_url(other_class)))
