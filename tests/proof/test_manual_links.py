"""Links typed in by hand: only https links reach a member, whatever was typed or stored."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.proof.conftest import EXAMPLES, TUESDAY_10
from wagtail_bookings_vc import meetings
from wagtail_bookings_vc.models import MeetingLinkMode, Service
from wagtail_bookings_vc.providers.manual import ManualLinkForm, clean_meeting_url

REFUSED = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://files.example.com/room",
    "http://meet.example.com/room",
    "//meet.example.com/room",
    "meet.example.com/room",
    "https://user:secret@meet.example.com/room",
    "https://meet.example.com\\@evil.example/room",
    "https://meet.example.com/ro om",
    "https://meet.example.com/room\u202egnp.exe",
    "https://meet.example.com/room\u200b",
    "https:///room",
    "https://",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
def test_every_non_https_or_disguised_link_is_refused(url):
    with pytest.raises(ValidationError):
        clean_meeting_url(url)
    assert not ManualLinkForm({"url": url}).is_valid()


@pytest.mark.django_db
@pytest.mark.parametrize("url", REFUSED[:8])
def test_a_service_cannot_be_saved_with_such_a_link(url):
    service = Service(
        name="Coaching",
        slug="coaching",
        online=True,
        meeting_link_mode=MeetingLinkMode.MANUAL,
        meeting_url=url,
    )
    with pytest.raises(ValidationError) as raised:
        service.full_clean()
    assert "meeting_url" in raised.value.error_dict


@given(st.text(max_size=200))
@settings(max_examples=EXAMPLES * 5, deadline=None, database=None)
def test_whatever_is_accepted_is_a_plain_https_link(text):
    try:
        cleaned = clean_meeting_url(text)
    except ValidationError:
        return
    assert cleaned.startswith("https://")
    assert not any(char.isspace() for char in cleaned)
    assert "@" not in cleaned.split("/")[2] and "\\" not in cleaned


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stored", ["javascript:alert(1)", "data:text/html,hi", "http://meet.example.com/x"]
)
def test_a_bad_link_stored_behind_the_forms_back_never_reaches_a_member(
    stored, world, client, clock
):
    """A link written straight into the database (an import, a script) is still checked."""
    Service.objects.filter(pk=world.service.pk).update(
        meeting_link_mode=MeetingLinkMode.MANUAL, meeting_url=stored
    )
    clock.move_to(TUESDAY_10 - dt.timedelta(minutes=5), tick=False)
    client.force_login(world.victim)

    response = client.get(meetings.join_path(world.victim_appointment))
    page = client.get(world.members_path).content.decode()

    assert response.status_code == 404
    assert stored not in page and stored.split(":")[0] + ":" not in page.replace("https:", "")
