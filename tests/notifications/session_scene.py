"""A class session with attendees, for the tests of session changes (R11, R12).

Morning yoga is taught online by Oskar Lind (Stockholm) at Studio 2; its session is on
Tuesday 12 January 2027 at 10:00 in Rome (09:00 UTC). The clock stands a week earlier.
Meetings are real Jitsi rooms, made by the meeting job through the site's default account.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass

from django.core import mail
from django.utils import translation
from icalendar import Calendar
from wagtail.models import Site

from tests.factories import ClassSessionFactory, GroupClassFactory, StaffFactory, UserFactory
from wagtail_bookings_vc import bookings, meetings
from wagtail_bookings_vc.models import Booking, ClassSession, GroupClass, JoinPassRole, Staff

from .helpers import SITE_HOST, SITE_URL, START, connect_default_account, html_of, ics_of

NOW = START - dt.timedelta(days=7)
JOIN_LINK = re.compile(re.escape(SITE_URL) + r"/bookings/join/[\w-]+/")


@dataclass
class Scene:
    staff: Staff
    group_class: GroupClass
    session: ClassSession
    seats: list[Booking]


def riverside_site() -> Site:
    """The default site, at https://studio.example.com, called Riverside Studio."""
    site = Site.objects.get(is_default_site=True)
    site.hostname = SITE_HOST
    site.port = 443
    site.site_name = "Riverside Studio"
    site.save()
    return site


def build_scene(run_jobs, *, staff_user=None, languages=("en", "en"), **class_fields) -> Scene:
    """Morning yoga with one session and an attendee per language, booked as members do."""
    riverside_site()
    connect_default_account("jitsi")
    staff = StaffFactory(
        name="Oskar Lind", email="oskar@example.com", time_zone="Europe/Stockholm", user=staff_user
    )
    fields = {"online": True, **class_fields}
    group_class = GroupClassFactory(
        name="Morning yoga", slug="morning-yoga", staff=staff, location="Studio 2", **fields
    )
    session = ClassSessionFactory(group_class=group_class, start=START)
    names = ["ada", "bruno", "carla", "dario"]
    seats = [
        take_seat(run_jobs, session, f"{names[n]}@example.com", language=language)
        for n, language in enumerate(languages)
    ]
    mail.outbox.clear()
    return Scene(staff, group_class, ClassSession.objects.get(pk=session.pk), seats)


def take_seat(run_jobs, session, email: str, *, language: str = "en") -> Booking:
    """A member books a seat in ``session`` the way the pages do (in ``language``)."""
    name = email.split("@")[0]
    member = UserFactory(username=name, first_name=name.title(), last_name="Rossi", email=email)
    with translation.override(language):
        booking = run_jobs(
            bookings.book_session,
            member=member,
            session=session,
            time_zone="Europe/Rome",
            now=NOW,
        )
    return Booking.objects.get(pk=booking.pk)


def to(address: str) -> list:
    return [message for message in mail.outbox if address in message.to[0]]


def everything_in(message) -> str:
    parts = [message.body, html_of(message)]
    # The instructor's summary has no calendar file.
    with contextlib.suppress(AssertionError):
        parts.append(ics_of(message).decode())
    return "\n".join(parts)


def join_url_of(booking: Booking, role: str = JoinPassRole.ATTENDEE) -> str:
    path = meetings.join_path(booking, role)
    assert path, "no join link"
    return SITE_URL + path


def calendar_of(message):
    calendar = Calendar.from_ical(ics_of(message))
    (event,) = calendar.walk("VEVENT")
    return calendar, event
