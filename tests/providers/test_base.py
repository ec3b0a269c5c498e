"""The provider interface: spec and result types, the error tree, the base class."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import Promise

from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    MeetingDetails,
    MeetingSpec,
    PermanentFailure,
    Provider,
    ProviderAccount,
    ProviderError,
    RateLimited,
    TemporaryFailure,
)
from wagtail_bookings_vc.testing import InMemoryAccount

START = datetime(2030, 3, 4, 14, 0, tzinfo=UTC)


def make_spec(**changes):
    values = {
        "reference": "BK-42",
        "topic": "Physio check-up",
        "start": START,
        "end": START + timedelta(minutes=30),
    }
    values.update(changes)
    return MeetingSpec(**values)


class MinimalProvider(Provider):
    id = "minimal"
    name = "Minimal"
    default_options = {"API_BASE_URL": "https://api.example.com", "RETRIES": 2}

    def create_meeting(self, account, spec):
        return MeetingDetails("1", "https://meet.example.com/1")

    def update_meeting(self, account, external_id, spec):
        return MeetingDetails(external_id, "https://meet.example.com/1")

    def delete_meeting(self, account, external_id):
        return None


# MeetingSpec ------------------------------------------------------------------------


def test_spec_needs_aware_times_in_order():
    with pytest.raises(ValueError, match="aware"):
        make_spec(start=datetime(2030, 3, 4, 14, 0))
    with pytest.raises(ValueError, match="after"):
        make_spec(end=START)


def test_spec_is_frozen_and_keeps_its_own_copy_of_options():
    options = {"waiting_room": True}
    spec = make_spec(options=options, attendee_emails=["a@example.com"])
    options["waiting_room"] = False
    assert spec.options["waiting_room"] is True
    assert spec.attendee_emails == ("a@example.com",)
    with pytest.raises(TypeError):
        spec.options["waiting_room"] = False  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.topic = "Other"  # type: ignore[misc]
    assert hash(spec) == hash(
        make_spec(options={"waiting_room": True}, attendee_emails=["a@example.com"])
    )


def test_spec_duration_in_minutes_rounds_up():
    assert make_spec().duration_minutes == 30
    assert make_spec(end=START + timedelta(minutes=30, seconds=1)).duration_minutes == 31


def test_agenda_carries_the_reference_for_later_lookups():
    spec = make_spec(agenda="Bring your last report.")
    assert spec.agenda_with_reference() == "Bring your last report.\n\n[booking-ref:BK-42]"
    assert make_spec().agenda_with_reference() == "[booking-ref:BK-42]"


def test_agenda_is_shortened_so_the_reference_always_fits():
    spec = make_spec(agenda="x" * 5000)
    text = spec.agenda_with_reference(max_length=2000)
    assert len(text) <= 2000
    assert text.endswith("[booking-ref:BK-42]")


# MeetingDetails -----------------------------------------------------------------------


def test_details_store_provider_ids_as_strings():
    # Zoom meeting numbers are 64-bit integers; JSON readers may lose digits of a number.
    details = MeetingDetails(85746065432123456, "https://zoom.us/j/85746065432123456")  # type: ignore[arg-type]
    assert details.external_id == "85746065432123456"


def test_details_round_trip_through_a_dict():
    details = MeetingDetails(
        "abc", "https://meet.example.com/abc", "https://meet.example.com/host", "1234", {"k": [1]}
    )
    assert MeetingDetails.from_dict(details.to_dict()) == details
    assert details.to_dict()["extra"] == {"k": [1]}


def test_details_are_read_only():
    details = MeetingDetails("abc", "https://meet.example.com/abc", extra={"a": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        details.join_url = "https://evil.example"  # type: ignore[misc]
    with pytest.raises(TypeError):
        details.extra["a"] = 2  # type: ignore[index]


# Errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error_class", [AuthorizationExpired, RateLimited, TemporaryFailure, PermanentFailure]
)
def test_every_error_is_a_provider_error_with_a_plain_message(error_class):
    error = error_class()
    assert isinstance(error, ProviderError)
    assert isinstance(error.message, Promise)  # translated when shown, not when raised
    assert str(error) == str(error.message)
    assert str(error).endswith(".")


def test_error_shows_the_providers_own_code_and_message():
    error = PermanentFailure(provider_code=3001, provider_message="Meeting is not found")
    assert error.provider_code == "3001"
    assert str(error) == "The provider refused the request. (3001: Meeting is not found)"


def test_rate_limited_carries_retry_after():
    assert RateLimited(12).retry_after == 12.0
    assert RateLimited().retry_after is None
    assert RateLimited(-5).retry_after == 0.0


def test_errors_survive_pickling_by_the_task_queue():
    error = RateLimited(30, "Slow down", provider_code="429", provider_message="Too many")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  (bytes made on the line)
    assert type(copy) is RateLimited
    assert (copy.retry_after, copy.provider_code, copy.provider_message) == (
        30.0,
        "429",
        "Too many",
    )
    assert str(copy) == str(error)
    lazy = pickle.loads(pickle.dumps(AuthorizationExpired()))  # noqa: S301
    assert str(lazy) == str(AuthorizationExpired())


# The base class -----------------------------------------------------------------------


def test_provider_must_implement_the_meeting_methods():
    class Incomplete(Provider):
        id = "incomplete"

    with pytest.raises(TypeError):
        Incomplete({})  # type: ignore[abstract]


def test_options_merge_defaults_and_drop_class():
    provider = MinimalProvider({"CLASS": "x.y", "RETRIES": 5})
    assert dict(provider.options) == {"API_BASE_URL": "https://api.example.com", "RETRIES": 5}
    with pytest.raises(TypeError):
        provider.options["RETRIES"] = 1  # type: ignore[index]


def test_configured_id_and_name_win_over_the_class():
    provider = MinimalProvider({"NAME": "Our rooms"}, provider_id="rooms")
    assert (provider.id, provider.name) == ("rooms", "Our rooms")
    assert MinimalProvider.id == "minimal"


def test_a_provider_without_an_id_is_refused():
    class Nameless(MinimalProvider):
        id = ""

    with pytest.raises(ImproperlyConfigured):
        Nameless({})


def test_oauth_methods_are_not_implemented_by_default_and_disconnect_does_nothing():
    provider = MinimalProvider({})
    account = InMemoryAccount({"access_token": "t"})
    with pytest.raises(NotImplementedError):
        provider.start_authorization("https://site.example/cb", "state")
    with pytest.raises(NotImplementedError):
        provider.finish_authorization(account, {"code": "c"}, "https://site.example/cb", {})
    with pytest.raises(NotImplementedError):
        provider.connect_organisation(account, {})
    with pytest.raises(NotImplementedError):
        provider.list_users(account)
    with pytest.raises(NotImplementedError):
        provider.handle_webhook({}, b"{}")
    assert provider.disconnect(account) is None
    assert provider.usage(account) == {}
    assert provider.checks() == []


def test_participant_url_defaults_to_host_url_for_the_host():
    provider = MinimalProvider({})
    details = MeetingDetails("1", "https://meet.example.com/j/1", "https://meet.example.com/s/1")
    kwargs = {"name": "A", "email": "a@example.com", "expires_at": None}
    assert provider.participant_url(details, is_host=True, **kwargs) == details.host_url
    assert provider.participant_url(details, is_host=False, **kwargs) == details.join_url
    plain = MeetingDetails("1", "https://meet.example.com/j/1")
    assert provider.participant_url(plain, is_host=True, **kwargs) == plain.join_url


def test_session_applies_the_providers_timeout_option():
    provider = MinimalProvider({"HTTP_TIMEOUT": (1, 2), "HTTP_TRUST_ENV": False})
    session = provider.session()
    assert isinstance(session, requests.Session)
    assert session.get_adapter("https://api.example.com").timeout == (1.0, 2.0)
    assert session.trust_env is False


def test_in_memory_account_follows_the_account_protocol():
    account = InMemoryAccount({"refresh_token": "r1"}, external_user_id="u1")
    assert isinstance(account, ProviderAccount)
    account.credentials = {"refresh_token": "r2"}
    assert account.credential_history == [{"refresh_token": "r2"}]
    assert "r2" not in repr(account)
