"""A member's booking URLs answer nobody else, and no page shows anybody else's links.

Every URL of the victim's appointment and class seat (page, cancel, reschedule with and
without a choice, calendar file) is tried with GET and POST by another member and by an
anonymous visitor. Another member gets exactly what a reference that does not exist
gets (404, the same page); a visitor is sent to log in, exactly as for a reference that
does not exist. Nothing about the victim's bookings changes.

Join links are bearer links (they arrive by email and open on any device), so what
protects them is that nobody else can learn them: every page another member reaches is
searched for the victim's join and host tokens, references and the provider's URLs.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from tests.proof.conftest import NOW, ROME
from wagtail_bookings_vc import meetings
from wagtail_bookings_vc.models import Booking, JoinPass, Meeting
from wagtail_bookings_vc.views import iso_utc

pytestmark = pytest.mark.django_db

TUESDAY_14 = dt.datetime(2026, 11, 24, 14, 0, tzinfo=ROME)
MISSING = "ZZZZZZZZZZZZ"


def member_urls(world, reference: str, booking: Booking | None) -> list[tuple[str, str]]:
    """(method, url) of every URL of one booking, as a member would use them."""
    choice = (
        f"?session={world.session.pk}"
        if booking is not None and booking.session_id
        else f"?staff={world.staff.pk}&start={iso_utc(TUESDAY_14)}"
    )
    urls = [
        ("get", f"/bookings/{reference}/"),
        ("get", f"/bookings/{reference}/calendar.ics"),
        ("get", f"/bookings/{reference}/cancel/"),
        ("post", f"/bookings/{reference}/cancel/"),
        ("get", f"/bookings/{reference}/reschedule/"),
        ("get", f"/bookings/{reference}/reschedule/{choice}"),
        ("post", f"/bookings/{reference}/reschedule/{choice}"),
    ]
    return urls


def call(client: Client, method: str, url: str):
    if method == "post":
        return client.post(url, {"time_zone": "Europe/Rome"})
    return client.get(url)


def comparable(response) -> str:
    """The page, without the CSRF token (masked afresh in every response)."""
    return re.sub(r'value="[A-Za-z0-9]{64}"', 'value=""', response.content.decode())


def snapshot() -> tuple:
    return (
        tuple(Booking.objects.order_by("pk").values_list("pk", "status", "start", "staff_id")),
        tuple(JoinPass.objects.order_by("pk").values_list("pk", "token", "revoked_at")),
        tuple(Meeting.objects.order_by("pk").values_list("pk", "state", "external_id")),
    )


def victim_secrets(world) -> set[str]:
    found = {booking.reference for booking in world.victim_bookings}
    found |= set(
        JoinPass.objects.filter(booking__member=world.victim).values_list("token", flat=True)
    )
    # The class's host pass is the staff member's, not any member's.
    found |= set(JoinPass.objects.filter(session=world.session).values_list("token", flat=True))
    for meeting in Meeting.objects.all():
        found |= {url for url in (meeting.join_url, meeting.host_url) if url}
    found.add(world.victim.email)
    return found


def test_another_member_gets_what_a_missing_reference_gets(world, client, figures):
    client.force_login(world.other)
    before = snapshot()
    tried = 0
    for booking in world.victim_bookings:
        for (method, url), (_, missing_url) in zip(
            member_urls(world, booking.reference, booking),
            member_urls(world, MISSING, booking),
            strict=True,
        ):
            response = call(client, method, url)
            missing = call(client, method, missing_url)
            tried += 1
            assert response.status_code == missing.status_code == 404, (method, url)
            body = comparable(response).replace(booking.reference, MISSING)
            assert body == comparable(missing), (method, url)
    assert snapshot() == before
    figures("IDOR", another_member_requests=f"{tried}, all 404 like a missing reference")


def test_an_anonymous_visitor_is_sent_to_log_in_as_for_a_missing_reference(world, client, figures):
    before = snapshot()
    tried = 0
    for booking in world.victim_bookings:
        for (method, url), (_, missing_url) in zip(
            member_urls(world, booking.reference, booking),
            member_urls(world, MISSING, booking),
            strict=True,
        ):
            response = call(client, method, url)
            missing = call(client, method, missing_url)
            tried += 1
            assert response.status_code == missing.status_code == 302, (method, url)
            assert response["Location"].startswith("/accounts/login/?next=")
            assert response["Location"].replace(booking.reference, MISSING) == missing["Location"]
            assert not response.content
    assert snapshot() == before
    figures("IDOR", anonymous_requests=f"{tried}, all sent to log in like a missing reference")


def test_the_victim_still_reaches_every_url(world, client):
    """The same URLs work for their own member: the refusals above are about who asks."""
    client.force_login(world.victim)
    for booking in world.victim_bookings:
        for method, url in member_urls(world, booking.reference, booking):
            if method == "get":
                assert client.get(url).status_code == 200, url


def test_no_page_another_member_reaches_shows_the_victims_links(world, client, clock, figures):
    secrets = victim_secrets(world)
    client.force_login(world.other)
    own = world.other_appointment
    pages = [
        world.members_path,
        f"{world.members_path}?show=past",
        world.widget_path,
        f"/bookings/{own.reference}/",
        f"/bookings/{own.reference}/calendar.ics",
        f"/bookings/{own.reference}/cancel/",
        f"/bookings/{own.reference}/reschedule/",
        f"/bookings/sessions/{world.session.pk}/book/",
        f"/bookings/services/{world.service.slug}/book/?staff={world.staff.pk}"
        f"&start={iso_utc(TUESDAY_14)}",
    ]
    own_token = meetings.join_path(own)
    # Before the meetings open, and once they are open.
    for moment in (NOW, dt.datetime(2026, 11, 24, 9, 55, tzinfo=ROME)):
        clock.move_to(moment, tick=False)
        for path in pages:
            response = client.get(path)
            assert response.status_code == 200, path
            text = response.content.decode()
            leaked = sorted(secret for secret in secrets if secret in text)
            assert not leaked, f"{path} shows {leaked}"
        # The other member's own link works: the page was not simply empty.
        assert own_token in client.get(world.members_path).content.decode()
    figures("IDOR", pages_searched_for_the_victims_links=len(pages) * 2, leaks=0)
