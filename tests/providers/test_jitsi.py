"""Jitsi Meet: unguessable rooms, the domain from settings, per-participant JWTs."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ImproperlyConfigured

from wagtail_bookings_vc.providers.base import MeetingDetails, MeetingSpec
from wagtail_bookings_vc.providers.jitsi import JitsiProvider
from wagtail_bookings_vc.testing.contract import ProviderContract

SECRET = "a-long-shared-secret-of-at-least-32-bytes!"
START = datetime(2030, 5, 6, 8, 0, tzinfo=UTC)
END = START + timedelta(minutes=50)


def jitsi(**options):
    return JitsiProvider(options, provider_id="jitsi")


def spec(**changes):
    values = {"reference": "BK-7", "topic": "Yoga", "start": START, "end": END}
    values.update(changes)
    return MeetingSpec(**values)


def token_of(url):
    return parse_qs(urlsplit(url).query)["jwt"][0]


def decode(token, key=SECRET, **kwargs):
    kwargs.setdefault("audience", "jitsi")
    kwargs.setdefault("algorithms", ["HS256"])
    # The tokens in these tests are for meetings in 2030: check signature and claims, and
    # compare times by hand.
    return jwt.decode(token, key, options={"verify_nbf": False}, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Jitsi makes no HTTP call: any attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("Jitsi must not make HTTP calls")

    monkeypatch.setattr(requests.Session, "request", refuse)


# The shared contract, in each token mode ----------------------------------------------


class TestJitsiContract(ProviderContract):
    def make_provider(self):
        return jitsi()


class TestJitsiWithTokensContract(ProviderContract):
    def make_provider(self):
        return jitsi(DOMAIN="meet.example.com", APP_ID="bookings", APP_SECRET=SECRET)


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PEM = RSA_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
JAAS_APP = "vpaas-magic-cookie-0123456789abcdef"


@functools.cache
def jaas():
    # Loading an RSA key takes a while; the provider keeps no per-call state.
    return jitsi(
        DOMAIN="8x8.vc",
        TENANT=JAAS_APP,
        APP_ID=JAAS_APP,
        ISSUER="chat",
        PRIVATE_KEY=RSA_PEM,
        KEY_ID=f"{JAAS_APP}/4f4910",
    )


class TestJaaSContract(ProviderContract):
    def make_provider(self):
        return jaas()


# Rooms --------------------------------------------------------------------------------


def test_room_names_are_unguessable_and_unique():
    provider = jitsi()
    rooms = {provider.create_meeting(None, spec()).external_id for _ in range(2000)}
    assert len(rooms) == 2000
    for room in list(rooms)[:50]:
        # 32 lower-case base32 characters: 160 random bits that survive Jitsi's lower-casing.
        assert re.fullmatch(r"[a-z2-7]{32}", room)


def test_a_readable_prefix_comes_from_settings():
    room = jitsi(ROOM_PREFIX="Riverside Studio").create_meeting(None, spec()).external_id
    assert re.fullmatch(r"riverside-studio-[a-z2-7]{32}", room)


def test_create_returns_the_room_url_on_the_configured_domain_without_a_token():
    provider = jitsi(DOMAIN="meet.example.com", APP_ID="bookings", APP_SECRET=SECRET)
    details = provider.create_meeting(None, spec())
    assert details.join_url == f"https://meet.example.com/{details.external_id}"
    assert "jwt" not in details.join_url
    assert details.host_url == ""
    assert details.passcode == ""
    assert details.extra["ends_at"] == END.isoformat()


def test_default_domain_is_meet_jit_si_and_a_tenant_goes_before_the_room():
    assert jitsi().create_meeting(None, spec()).join_url.startswith("https://meet.jit.si/")
    details = jitsi(DOMAIN="8x8.vc", TENANT=JAAS_APP).create_meeting(None, spec())
    assert details.join_url == f"https://8x8.vc/{JAAS_APP}/{details.external_id}"


def test_update_keeps_the_room_and_delete_does_nothing():
    provider = jitsi()
    details = provider.create_meeting(None, spec())
    moved = provider.update_meeting(None, details.external_id, spec(end=END + timedelta(hours=1)))
    assert (moved.external_id, moved.join_url) == (details.external_id, details.join_url)
    assert moved.extra["ends_at"] == (END + timedelta(hours=1)).isoformat()
    assert provider.delete_meeting(None, details.external_id) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"DOMAIN": "https://meet.example.com"}, "DOMAIN"),
        ({"DOMAIN": "meet.example.com/room"}, "DOMAIN"),
        ({"DOMAIN": ""}, "DOMAIN"),
        ({"TENANT": "a/b"}, "TENANT"),
        ({"APP_ID": "bookings"}, "no APP_SECRET"),
        ({"APP_SECRET": SECRET}, "no APP_ID"),
        ({"APP_ID": "x", "APP_SECRET": SECRET, "PRIVATE_KEY": RSA_PEM, "KEY_ID": "k"}, "keep one"),
        ({"APP_ID": "x", "PRIVATE_KEY": RSA_PEM}, "KEY_ID"),
        ({"APP_ID": "x", "PRIVATE_KEY": "not a key", "KEY_ID": "k"}, "PEM"),
        ({"TOKEN_GRACE_MINUTES": "soon"}, "TOKEN_GRACE_MINUTES"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        jitsi(**options)


def test_a_self_hosted_domain_with_a_port_is_accepted():
    assert jitsi(DOMAIN="Meet.Example.com:8443").domain == "meet.example.com:8443"


# Without tokens -----------------------------------------------------------------------


def test_without_an_app_id_everyone_gets_the_room_url_with_their_name_prefilled():
    provider = jitsi()
    details = provider.create_meeting(None, spec())
    url = provider.participant_url(
        details, name='Zoë "Z" Ngô', email="zoe@example.com", is_host=False, expires_at=END
    )
    assert "jwt" not in url
    base, _, fragment = url.partition("#")
    assert base == details.join_url
    assert unquote(fragment) == 'userInfo.displayName="Zoë \\"Z\\" Ngô"'
    host = provider.participant_url(details, name="", email="h@example.com", is_host=True)
    assert host == details.join_url


def test_prefilled_name_can_be_turned_off():
    provider = jitsi(PREFILL_DISPLAY_NAME=False)
    details = provider.create_meeting(None, spec())
    url = provider.participant_url(details, name="Ann", email="a@example.com", is_host=False)
    assert url == details.join_url


# With tokens --------------------------------------------------------------------------


@pytest.fixture
def provider():
    return jitsi(DOMAIN="meet.example.com", APP_ID="bookings", APP_SECRET=SECRET)


def test_each_participant_gets_a_verified_hs256_token_for_the_room(provider):
    details = provider.create_meeting(None, spec())
    url = provider.participant_url(
        details, name="Ann Attendee", email="ann@example.com", is_host=False, expires_at=END
    )
    assert url.startswith(f"{details.join_url}?jwt=")
    token = token_of(url)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = decode(token)
    assert claims["iss"] == "bookings"
    assert claims["aud"] == "jitsi"
    assert claims["sub"] == "meet.example.com"
    assert claims["room"] == details.external_id
    assert claims["exp"] == int((END + timedelta(minutes=30)).timestamp())
    assert claims["nbf"] <= int(datetime.now(UTC).timestamp())
    user = claims["context"]["user"]
    assert user["name"] == "Ann Attendee"
    assert user["email"] == "ann@example.com"
    assert all(isinstance(value, str) for value in user.values())
    assert user["moderator"] == "false"
    assert user["affiliation"] == "member"
    assert claims["moderator"] is False


def test_only_the_host_is_moderator(provider):
    details = provider.create_meeting(None, spec())
    host = decode(
        token_of(
            provider.participant_url(
                details, name="Hana", email="hana@example.com", is_host=True, expires_at=END
            )
        )
    )
    assert host["context"]["user"]["moderator"] == "true"
    assert host["context"]["user"]["affiliation"] == "owner"
    assert host["moderator"] is True


def test_a_token_signed_with_another_secret_is_rejected(provider):
    details = provider.create_meeting(None, spec())
    url = provider.participant_url(details, name="A", email="a@example.com", is_host=False)
    with pytest.raises(jwt.InvalidSignatureError):
        decode(token_of(url), key="another-secret-that-is-also-32-bytes-long")


def test_tokens_are_personal(provider):
    details = provider.create_meeting(None, spec())
    first = decode(
        token_of(provider.participant_url(details, name="A", email="a@example.com", is_host=False))
    )
    second = decode(
        token_of(provider.participant_url(details, name="B", email="b@example.com", is_host=False))
    )
    assert first["context"]["user"]["id"] != second["context"]["user"]["id"]
    assert "a@example.com" not in first["context"]["user"]["id"]


def test_expiry_follows_the_stored_end_when_none_is_given(provider):
    details = provider.create_meeting(None, spec())
    claims = decode(
        token_of(provider.participant_url(details, name="A", email="a@example.com", is_host=False))
    )
    assert claims["exp"] == int((END + timedelta(minutes=30)).timestamp())


def test_an_expired_token_fails_verification(provider):
    details = MeetingDetails("room1", "https://meet.example.com/room1", extra={"room": "room1"})
    past = datetime.now(UTC) - timedelta(hours=2)
    url = provider.participant_url(
        details, name="A", email="a@example.com", is_host=False, expires_at=past
    )
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token_of(url), SECRET, audience="jitsi", algorithms=["HS256"])


def test_audience_issuer_subject_and_grace_come_from_settings():
    provider = jitsi(
        DOMAIN="meet.example.com",
        TENANT="studio",
        APP_ID="bookings",
        APP_SECRET=SECRET,
        AUDIENCE="bookings-aud",
        ISSUER="bookings-iss",
        TOKEN_GRACE_MINUTES=5,
    )
    details = provider.create_meeting(None, spec())
    claims = decode(
        token_of(
            provider.participant_url(
                details, name="A", email="a@example.com", is_host=False, expires_at=END
            )
        ),
        audience="bookings-aud",
    )
    assert (claims["iss"], claims["sub"]) == ("bookings-iss", "studio")
    assert claims["exp"] == int((END + timedelta(minutes=5)).timestamp())
    subject = jitsi(APP_ID="b", APP_SECRET=SECRET, SUBJECT="*").make_token(
        room="r", name="A", email="", is_host=False, expires_at=END
    )
    assert decode(subject)["sub"] == "*"


def test_jaas_tokens_use_rs256_with_the_key_id():
    provider = jaas()
    details = provider.create_meeting(None, spec())
    url = provider.participant_url(
        details, name="Hana", email="hana@example.com", is_host=True, expires_at=END
    )
    assert url.startswith(f"https://8x8.vc/{JAAS_APP}/{details.external_id}?jwt=")
    token = token_of(url)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == f"{JAAS_APP}/4f4910"
    claims = decode(token, key=RSA_KEY.public_key(), algorithms=["RS256"])
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("chat", "jitsi", JAAS_APP)
    assert claims["context"]["user"]["moderator"] == "true"


def test_stored_details_never_carry_a_token(provider):
    details = provider.create_meeting(None, spec())
    provider.participant_url(details, name="A", email="a@example.com", is_host=True)
    assert "jwt" not in repr(details.to_dict())
