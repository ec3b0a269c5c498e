"""Nobody learns a meeting link they may not use (R18, R19, R21).

A member (the *victim*) books an online appointment and a seat in an online class, and
their meetings are made. Then, for each person who must not reach those meetings (an
anonymous visitor, another member, the member of a cancelled booking, the member of an
unpaid priced booking, and a staff member of another service), every page they can
reach and every email sent to them is searched for the victim's personal tokens and for
any provider URL. The provider's URLs appear in no page and no email for anyone at all:
they reach a browser only through the join view's redirect.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.urls import reverse
from wagtail.models import Page, Site

from example_site.home.models import HomePage
from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from wagtail_bookings_vc import bookings, meetings
from wagtail_bookings_vc.models import JoinPass, Meeting, MembersAreaPage
from wagtail_bookings_vc.notifications.reminders import send_due_reminders

ROME = ZoneInfo("Europe/Rome")
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)
TUESDAY_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
TUESDAY_11 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=ROME)
TUESDAY_14 = dt.datetime(2026, 11, 24, 14, 0, tzinfo=ROME)
TUESDAY_18 = dt.datetime(2026, 11, 24, 18, 0, tzinfo=ROME)
# Inside the join window of the victim's appointment, a day before the class.
JOIN_TIME = TUESDAY_10 - dt.timedelta(minutes=5)

pytestmark = pytest.mark.django_db

VIEWERS = ["anonymous", "another_member", "cancelled_member", "unpaid_member", "other_staff"]


@dataclasses.dataclass
class World:
    victim: object
    victim_bookings: list
    people: dict
    own_bookings: dict
    cancelled_at_outbox: int
    mail_after_setup: int


def tokens_of(booking_list) -> set[str]:
    """Every pass token of the bookings: attendee passes and their host passes."""
    tokens = set(JoinPass.objects.filter(booking__in=booking_list).values_list("token", flat=True))
    session_ids = [b.session_id for b in booking_list if b.session_id]
    tokens |= set(
        JoinPass.objects.filter(session_id__in=session_ids).values_list("token", flat=True)
    )
    return tokens


def provider_secrets() -> set[str]:
    """Every provider URL and meeting secret there is."""
    found: set[str] = set()
    for meeting in Meeting.objects.all():
        found |= {value for value in (meeting.join_url, meeting.host_url) if value}
        if meeting.extra.get("secret"):
            found.add(meeting.extra["secret"])
    return found


def email_text(message) -> str:
    """Everything an email carries, as sent: headers, every body part and attachment."""
    sent = message.message()
    parts = [str(value) for value in sent.values()]
    for part in sent.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True) or b""
            parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(parts)


def emails_to(address: str, since: int = 0) -> list[str]:
    return [email_text(m) for m in mail.outbox[since:] if any(address in to for to in m.to)]


def assert_nothing_of(secrets: set[str], text: str, where: str) -> None:
    leaked = sorted(secret for secret in secrets if secret in text)
    assert not leaked, f"{where} shows {leaked}"


@pytest.fixture
def world(recorder, run_jobs, settings):
    """The victim's bookings with ready meetings, and everyone else's own bookings."""
    settings.WAGTAILADMIN_BASE_URL = "http://testserver"
    with time_machine.travel(NOW, tick=False):
        anna = StaffFactory(name="Anna Rossi", email="anna@example.com")
        bruno_user = UserFactory(username="bruno", email="bruno.user@example.com")
        bruno = StaffFactory(name="Bruno Verdi", email="bruno@example.com", user=bruno_user)
        physio = ServiceFactory(name="Online physiotherapy", staff=[anna], online=True)
        coaching = ServiceFactory(
            name="Online coaching", staff=[bruno], online=True, price=Decimal("50.00")
        )
        yoga = GroupClassFactory(name="Online yoga", staff=anna, online=True)
        session = ClassSessionFactory(group_class=yoga, start=TUESDAY_18)

        root = Page.get_first_root_node()
        home = HomePage(
            title="Riverside",
            slug="riverside",
            body=[
                ("booking_widget", {"heading": "", "service": physio}),
                ("class_schedule", {"heading": "", "group_class": None, "limit": 10}),
            ],
        )
        root.add_child(instance=home)
        site = Site.objects.get(is_default_site=True)
        site.root_page = home
        site.save()
        home.add_child(instance=MembersAreaPage(title="My bookings", slug="my-bookings"))

        victim = UserFactory(username="victim", email="victim@example.com")
        victim_bookings = [
            run_jobs(
                bookings.book_appointment,
                member=victim,
                service=physio,
                staff=anna,
                start=TUESDAY_10,
            ),
            run_jobs(bookings.book_session, member=victim, session=session),
        ]

        another = UserFactory(username="another", email="another@example.com")
        cancelled = UserFactory(username="cancelled", email="cancelled@example.com")
        unpaid = UserFactory(username="unpaid", email="unpaid@example.com")
        own = {
            "another_member": [
                run_jobs(
                    bookings.book_appointment,
                    member=another,
                    service=physio,
                    staff=anna,
                    start=TUESDAY_11,
                ),
                run_jobs(bookings.book_session, member=another, session=session),
            ],
            "cancelled_member": [
                run_jobs(
                    bookings.book_appointment,
                    member=cancelled,
                    service=physio,
                    staff=anna,
                    start=TUESDAY_14,
                )
            ],
            "unpaid_member": [
                run_jobs(
                    bookings.book_appointment,
                    member=unpaid,
                    service=coaching,
                    staff=bruno,
                    start=TUESDAY_10,
                )
            ],
            "other_staff": [],
            "anonymous": [],
        }
        cancelled_at_outbox = len(mail.outbox)
        run_jobs(bookings.cancel, own["cancelled_member"][0])

    # The day of the meeting: reminders go out, join buttons open.
    with time_machine.travel(JOIN_TIME, tick=False):
        run_jobs(send_due_reminders)

    # A staff member of another service may use the admin and look at bookings.
    group = Group.objects.create(name="Staff")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_booking"),
    )
    bruno_user.groups.add(group)

    assert all(meetings.meeting_of(b).is_ready for b in victim_bookings), [
        (m.state, m.last_error) for m in Meeting.objects.all()
    ]
    return World(
        victim=victim,
        victim_bookings=victim_bookings,
        people={
            "anonymous": None,
            "another_member": another,
            "cancelled_member": cancelled,
            "unpaid_member": unpaid,
            "other_staff": bruno_user,
        },
        own_bookings=own,
        cancelled_at_outbox=cancelled_at_outbox,
        mail_after_setup=len(mail.outbox),
    )


def booking_urls(booking_list) -> list[str]:
    urls = []
    for booking in booking_list:
        for name in ("booking_detail", "cancel_booking", "reschedule_booking", "booking_ics"):
            urls.append(reverse(f"wagtail_bookings_vc:{name}", args=[booking.reference]))
    return urls


def reachable_pages(world: World, viewer: str) -> list[str]:
    urls = ["/", "/?bvc_week=2026-11-23", "/my-bookings/"]
    urls += booking_urls(world.victim_bookings)
    urls += booking_urls(world.own_bookings[viewer])
    if viewer == "other_staff":
        urls += [
            "/admin/",
            reverse("wagtailsnippets_wagtail_bookings_vc_booking:list"),
            *[
                reverse("wagtailsnippets_wagtail_bookings_vc_booking:inspect", args=[b.pk])
                for b in world.victim_bookings
            ],
        ]
    return urls


def forbidden_tokens(world: World, viewer: str) -> set[str]:
    tokens = tokens_of(world.victim_bookings)
    if viewer in ("cancelled_member", "unpaid_member"):
        # A cancelled booking's link is gone, an unpaid one's not given yet (R19).
        tokens |= {
            t
            for t in tokens_of(world.own_bookings[viewer])
            if JoinPass.objects.get(token=t).role == "attendee"
        }
    return tokens


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("moment", [NOW, JOIN_TIME], ids=["before", "during"])
def test_pages_show_nobody_a_link_they_may_not_use(client, world, viewer, moment):
    person = world.people[viewer]
    if person is not None:
        client.force_login(person)
    secrets = forbidden_tokens(world, viewer) | provider_secrets()
    assert secrets

    with time_machine.travel(moment, tick=False):
        for url in reachable_pages(world, viewer):
            response = client.get(url)
            assert response.status_code in (200, 302, 403, 404), (url, response.status_code)
            text = response.content.decode(errors="replace") + response.get("Location", "")
            assert_nothing_of(secrets, text, f"{url} for {viewer}")


@pytest.mark.parametrize("viewer", [v for v in VIEWERS if v != "anonymous"])
def test_emails_show_nobody_a_link_they_may_not_use(world, viewer):
    person = world.people[viewer]
    addresses = {person.email}
    if viewer == "other_staff":
        addresses.add("bruno@example.com")  # the staff member's own address
    victim_and_provider = tokens_of(world.victim_bookings) | provider_secrets()

    received = [text for address in addresses for text in emails_to(address)]

    assert received, f"{viewer} got no email to check"
    for text in received:
        assert_nothing_of(victim_and_provider, text, f"an email to {viewer}")
    own = forbidden_tokens(world, viewer) - tokens_of(world.victim_bookings)
    since = world.cancelled_at_outbox if viewer == "cancelled_member" else 0
    for text in emails_to(person.email, since):
        assert_nothing_of(own, text, f"an email to {viewer}")


def test_the_victim_does_see_their_own_links(client, world):
    """The checks above would find a leak: the victim's own pages and emails carry links."""
    client.force_login(world.victim)
    appointment = world.victim_bookings[0]
    path = meetings.join_path(appointment)

    with time_machine.travel(JOIN_TIME, tick=False):
        content = client.get("/my-bookings/").content.decode()
        assert path in content
        assert path in client.get(f"/bookings/{appointment.reference}/").content.decode()
        assert any(path in text for text in emails_to(world.victim.email))
        # ... and still never the provider's URL.
        assert_nothing_of(provider_secrets(), content, "the victim's members area")
        for text in emails_to(world.victim.email):
            assert_nothing_of(provider_secrets(), text, "an email to the victim")
        assert client.get(path)["Location"] == meetings.meeting_of(appointment).join_url


@pytest.mark.parametrize("viewer", ["cancelled_member", "unpaid_member"])
def test_own_link_of_a_cancelled_or_unpaid_booking_is_not_found_like_a_guess(client, world, viewer):
    (booking,) = world.own_bookings[viewer]
    (token,) = JoinPass.objects.filter(booking=booking, role="attendee").values_list(
        "token", flat=True
    )
    client.force_login(world.people[viewer])
    guess = "b" * len(token)

    with time_machine.travel(JOIN_TIME, tick=False):
        mine = client.get(f"/bookings/join/{token}/")
        guessed = client.get(f"/bookings/join/{guess}/")

    assert mine.status_code == guessed.status_code == 404
    assert same_page(mine, token) == same_page(guessed, guess)


def same_page(response, token) -> str:
    """The page without what differs between any two responses: the token, the CSRF token."""
    text = response.content.decode().replace(token, "<token>")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
