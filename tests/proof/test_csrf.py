"""Every public form that changes something refuses a POST without its CSRF token.

Each form is posted twice by a signed-in member through a client that enforces CSRF
checks: without the token (refused with 403, nothing changes), then with the token the
form's own page handed out (accepted), which shows the refusal was the token's doing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.proof.conftest import ROME
from wagtail_bookings_vc.models import Booking, BookingStatus
from wagtail_bookings_vc.views import iso_utc

pytestmark = pytest.mark.django_db

TUESDAY_14 = dt.datetime(2026, 11, 24, 14, 0, tzinfo=ROME)
FORM = {"time_zone": "Europe/Rome", "notes": "Hello"}


@dataclasses.dataclass
class Form:
    name: str
    url: Callable[[Any], str]
    data: dict[str, str]
    done: Callable[[Any], bool]
    member: bool = True


def state(world) -> tuple:
    """Everything the forms could change."""
    return tuple(
        Booking.objects.order_by("pk").values_list("pk", "status", "start", "staff", "session")
    )


FORMS = [
    Form(
        "book an appointment",
        lambda w: (
            f"/bookings/services/{w.service.slug}/book/?staff={w.staff.pk}"
            f"&start={iso_utc(TUESDAY_14)}"
        ),
        FORM,
        lambda w: Booking.objects.filter(member=w.victim, start=TUESDAY_14).exists(),
    ),
    Form(
        "book a class seat",
        lambda w: f"/bookings/sessions/{w.session.pk}/book/",
        FORM,
        lambda w: Booking.objects.filter(member=w.victim, session=w.session).exists(),
    ),
    Form(
        "cancel",
        lambda w: f"/bookings/{w.victim_appointment.reference}/cancel/",
        {},
        lambda w: Booking.objects.get(pk=w.victim_appointment.pk).status == BookingStatus.CANCELLED,
    ),
    Form(
        "reschedule",
        lambda w: (
            f"/bookings/{w.victim_appointment.reference}/reschedule/?staff={w.staff.pk}"
            f"&start={iso_utc(TUESDAY_14)}"
        ),
        {},
        lambda w: Booking.objects.get(pk=w.victim_appointment.pk).start == TUESDAY_14,
    ),
    Form(
        "log in",
        lambda w: "/accounts/login/",
        {"username": "victim", "password": "password"},
        lambda w: True,
        member=False,
    ),
    Form(
        "log out",
        lambda w: "/accounts/logout/",
        {},
        lambda w: True,
    ),
]


def page_token(client: Client, url: str) -> str:
    """The CSRF token the form's page hands out (the log-out form lives on every page)."""
    page = client.get(url if "logout" not in url else "/mine/")
    assert page.status_code == 200, (url, page.status_code)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert found, f"{url} has no CSRF token in its form"
    return found[1]


@pytest.mark.parametrize("form", FORMS, ids=lambda form: form.name)
def test_post_without_the_csrf_token_is_refused(form, world, figures):
    client = Client(enforce_csrf_checks=True)
    if form.member:
        client.force_login(world.victim)
    url = form.url(world)
    before = state(world)
    if form.name == "book a class seat":
        # The victim already sits in the world's session: free the seat to take it again.
        world.victim_seat.delete()
        before = state(world)

    refused = client.post(url, form.data)
    forged = client.post(url, {**form.data, "csrfmiddlewaretoken": "x" * 64})

    assert refused.status_code == forged.status_code == 403
    assert state(world) == before
    accepted = client.post(url, {**form.data, "csrfmiddlewaretoken": page_token(client, url)})
    assert accepted.status_code == 302, (form.name, accepted.status_code)
    assert form.done(world)
    figures("CSRF", **{form.name: "403 without the token, 302 with it"})
