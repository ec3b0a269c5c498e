"""Manual links: https only, the form editors use, and the shared-link provider."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from wagtail_bookings_vc.providers.base import PermanentFailure
from wagtail_bookings_vc.providers.manual import (
    ManualLinkForm,
    ManualLinkProvider,
    MeetingURLValidator,
    clean_meeting_url,
)
from wagtail_bookings_vc.testing.contract import ProviderContract

WHEREBY = "https://whereby.com/riverside-studio"


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        (WHEREBY, WHEREBY),
        (
            "https://us02web.zoom.us/j/85746065432?pwd=aBc123",
            "https://us02web.zoom.us/j/85746065432?pwd=aBc123",
        ),
        ("HTTPS://Meet.Example.com/Room", "https://Meet.Example.com/Room"),
        ("  https://meet.example.com/x \n", "https://meet.example.com/x"),
        ("https://bücher.example/raum", "https://bücher.example/raum"),
        ("https://meet.example.com:8443/room#lobby", "https://meet.example.com:8443/room#lobby"),
        ("https://203.0.113.7/room", "https://203.0.113.7/room"),
        (
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ%40thread.v2/0?context="
            "%7b%22Tid%22%3a%2272f988bf%22%2c%22Oid%22%3a%22a1b2%22%7d",
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ%40thread.v2/0?context="
            "%7b%22Tid%22%3a%2272f988bf%22%2c%22Oid%22%3a%22a1b2%22%7d",
        ),
    ],
)
def test_accepted_links(value, cleaned):
    assert clean_meeting_url(value) == cleaned


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("javascript:alert(document.cookie)", "scheme"),
        ("JaVaScRiPt:alert(1)", "scheme"),
        ("data:text/html;base64,PHNjcmlwdD4=", "scheme"),
        ("vbscript:msgbox(1)", "scheme"),
        ("http://meet.example.com/room", "scheme"),
        ("ftp://files.example.com/room", "scheme"),
        ("//meet.example.com/room", "scheme"),
        ("/join/room", "scheme"),
        ("meet.example.com/room", "scheme"),
        ("https:meet.example.com", "scheme"),
        ("https:/meet.example.com", "scheme"),
        ("https://", "invalid"),
        ("https:///room", "invalid"),
        ("https://meet", "invalid"),
        ("https://user:pass@meet.example.com/room", "credentials"),
        ("https://user@meet.example.com/room", "credentials"),
        ("https://meet.example.com@evil.example/room", "credentials"),
        ("https://meet.example.com\\@evil.example/", "invalid"),
        ("https://meet.exa mple.com/room", "whitespace"),
        ("https://meet.example.com/my room", "whitespace"),
        ("https://meet.example.com/room\tx", "whitespace"),
        ("https://meet.example.com/\x00", "whitespace"),
        ("\x01https://meet.example.com/", "whitespace"),
        ("https://meet.example.com/\u200broom", "whitespace"),
        ("https://meet.example.com/\u202eroom", "whitespace"),
        ("https://meet.example.com/" + "a" * 2100, "max_length"),
        ("", "required"),
        ("   ", "required"),
        (None, "invalid"),
        (42, "invalid"),
    ],
)
def test_rejected_links(value, code):
    with pytest.raises(ValidationError) as caught:
        clean_meeting_url(value)
    assert caught.value.code == code


def test_the_scheme_message_tells_what_to_type():
    with pytest.raises(ValidationError) as caught:
        clean_meeting_url("javascript:alert(1)")
    assert caught.value.messages == ["Enter a link that starts with https://"]


def test_validator_for_model_fields_is_deconstructible():
    validator = MeetingURLValidator()
    assert validator(WHEREBY) is None
    with pytest.raises(ValidationError):
        validator("http://meet.example.com")
    path, args, kwargs = validator.deconstruct()
    assert path == "wagtail_bookings_vc.providers.manual.MeetingURLValidator"
    assert (args, kwargs) == ((), {})
    assert validator == MeetingURLValidator()


# The form -----------------------------------------------------------------------------


def test_form_cleans_a_link_with_passcode_and_description():
    form = ManualLinkForm(
        {"url": f" {WHEREBY} ", "passcode": "4711", "description": "Knock before entering."}
    )
    assert form.is_valid(), form.errors
    assert form.to_options() == {
        "url": WHEREBY,
        "passcode": "4711",
        "description": "Knock before entering.",
    }


def test_form_needs_only_the_link():
    form = ManualLinkForm({"url": WHEREBY})
    assert form.is_valid(), form.errors
    assert form.to_options() == {"url": WHEREBY, "passcode": "", "description": ""}


def test_form_shows_a_clear_error_for_a_dangerous_link():
    form = ManualLinkForm({"url": "javascript:alert(1)"})
    assert not form.is_valid()
    assert form.errors["url"] == ["Enter a link that starts with https://"]


def test_form_limits_the_passcode_and_refuses_control_characters():
    assert not ManualLinkForm({"url": WHEREBY, "passcode": "x" * 65}).is_valid()
    assert ManualLinkForm({"url": WHEREBY, "passcode": "x" * 64}).is_valid()
    assert not ManualLinkForm({"url": WHEREBY, "description": "a\x07b"}).is_valid()
    assert ManualLinkForm({"url": WHEREBY, "description": "line 1\nline 2"}).is_valid()


# The provider -------------------------------------------------------------------------


class TestManualLinkContract(ProviderContract):
    spec_options = {"url": WHEREBY, "passcode": "4711", "description": "Knock first."}

    def make_provider(self):
        return ManualLinkProvider({}, provider_id="manual")


@pytest.fixture
def provider():
    return ManualLinkProvider({}, provider_id="manual")


def test_provider_is_a_shared_link_without_account(provider):
    assert provider.shared_link is True
    assert provider.needs_account is False
    assert provider.needs_oauth is False


def test_create_returns_the_configured_link(provider):
    spec = TestManualLinkContract().make_spec(
        options={"url": WHEREBY, "passcode": "4711", "description": "Knock first."}
    )
    details = provider.create_meeting(None, spec)
    assert details.join_url == WHEREBY
    assert details.passcode == "4711"
    assert details.extra == {"description": "Knock first."}
    assert details.host_url == ""


def test_update_returns_the_link_as_configured_now(provider):
    contract = TestManualLinkContract()
    details = provider.create_meeting(None, contract.make_spec())
    same = provider.update_meeting(None, details.external_id, contract.make_spec())
    assert same == details
    changed = provider.update_meeting(
        None, details.external_id, contract.make_spec(options={"url": "https://whereby.com/other"})
    )
    assert changed.join_url == "https://whereby.com/other"
    assert changed.external_id != details.external_id
    assert provider.delete_meeting(None, details.external_id) is None


@pytest.mark.parametrize("options", [{}, {"url": ""}, {"url": "javascript:alert(1)"}])
def test_a_missing_or_unsafe_link_is_a_permanent_failure(provider, options):
    with pytest.raises(PermanentFailure):
        provider.create_meeting(None, TestManualLinkContract().make_spec(options=options))
