"""Join links cannot be guessed, stop working when revoked, and guessing is throttled."""

from __future__ import annotations

import base64
import datetime as dt
import math

import pytest

from tests.proof.conftest import TUESDAY_10, WEDNESDAY_15
from wagtail_bookings_vc import bookings, join, meetings
from wagtail_bookings_vc.models import JoinPass
from wagtail_bookings_vc.models.conferencing import new_join_token

pytestmark = pytest.mark.django_db

INSIDE_WINDOW = TUESDAY_10 - dt.timedelta(minutes=5)


def token_bits(token: str) -> int:
    """The random bits behind a URL-safe base64 token."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == token
    return len(raw) * 8


def guess(client, address: str, count: int = 1) -> list[int]:
    return [
        client.get(f"/bookings/join/{new_join_token()}/", REMOTE_ADDR=address).status_code
        for _ in range(count)
    ]


def test_join_tokens_carry_at_least_128_random_bits(world, figures):
    made = [new_join_token() for _ in range(10_000)]
    stored = list(JoinPass.objects.values_list("token", flat=True))

    assert len(set(made)) == len(made)
    assert JoinPass._meta.get_field("token").default is new_join_token
    bits = {token_bits(token) for token in made + stored}
    assert min(bits) >= 128
    # Even at the throttle's rate, from a million addresses at once, against a million
    # live passes: the expected time to hit any pass, in years.
    per_year = join.DEFAULT_GUESSES_PER_MINUTE * 60 * 24 * 365 * 1_000_000
    years = 2 ** (min(bits) - 1) / 1_000_000 / per_year
    figures(
        "join tokens",
        random_bits=min(bits),
        stored_passes_checked=len(stored),
        log10_years_to_guess_one=round(math.log10(years)),
    )


def test_revoked_and_cancelled_passes_are_refused(world, client, clock, run_jobs):
    clock.move_to(INSIDE_WINDOW, tick=False)
    path = meetings.join_path(world.victim_appointment)
    assert client.get(path).status_code == 302

    JoinPass.objects.filter(booking=world.victim_appointment).update(revoked_at=INSIDE_WINDOW)
    assert client.get(path).status_code == 404

    clock.move_to(WEDNESDAY_15 - dt.timedelta(minutes=5), tick=False)
    seat_path = meetings.join_path(world.victim_seat)
    assert client.get(seat_path).status_code == 302
    run_jobs(bookings.cancel, world.victim_seat, by_staff=True)
    assert meetings.join_path(world.victim_seat) == ""
    assert client.get(seat_path).status_code == 404


def test_guessing_is_throttled_per_client_and_known_links_never_count(
    world, client, clock, settings, figures
):
    settings.WAGTAIL_BOOKINGS_VC = {**settings.WAGTAIL_BOOKINGS_VC, "JOIN_GUESSES_PER_MINUTE": 5}
    clock.move_to(INSIDE_WINDOW, tick=False)
    mine = meetings.join_path(world.victim_appointment)

    # A member clicking their own link again and again is never throttled.
    assert {client.get(mine, REMOTE_ADDR="198.51.100.7").status_code for _ in range(30)} == {302}

    assert guess(client, "203.0.113.9", 5) == [404] * 5
    refused = client.get(f"/bookings/join/{new_join_token()}/", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "no-cache" in refused["Cache-Control"]
    assert refused["Referrer-Policy"] == "no-referrer"
    # Once refused, the client learns nothing, not even from a right guess.
    assert client.get(mine, REMOTE_ADDR="203.0.113.9").status_code == 429
    # Malformed guesses count too, and are refused alike.
    assert client.get("/bookings/join/x/", REMOTE_ADDR="203.0.113.9").status_code == 429

    # Everybody else is unaffected.
    assert client.get(mine, REMOTE_ADDR="198.51.100.7").status_code == 302
    assert guess(client, "192.0.2.44") == [404]

    # The next minute, the guesser may try again (and is counted again).
    clock.shift(dt.timedelta(seconds=61))
    assert guess(client, "203.0.113.9", 6) == [404] * 5 + [429]
    figures("join tokens", unknown_tokens_per_minute_before_429=5)


def test_the_throttle_can_be_turned_off(world, client, clock, settings):
    settings.WAGTAIL_BOOKINGS_VC = {**settings.WAGTAIL_BOOKINGS_VC, "JOIN_GUESSES_PER_MINUTE": 0}

    assert set(guess(client, "203.0.113.10", 40)) == {404}
