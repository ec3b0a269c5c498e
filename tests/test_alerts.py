"""The dashboard tells the people who can fix them about failed meetings and accounts that
need reconnecting, and shows nothing when all is well."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from tests.factories import AppointmentFactory, StaffFactory, UserFactory
from wagtail_bookings_vc.groups import ensure_groups
from wagtail_bookings_vc.models import AccountStatus, ConferencingAccount, Meeting, MeetingState

HEADING = "Video meetings need attention"
REPORT = "wagtail_bookings_vc_reports:online_meetings"


@pytest.fixture
def failed_meeting(db):
    booking = AppointmentFactory(start=timezone.now() + dt.timedelta(days=2))
    return Meeting.objects.create(
        booking=booking, state=MeetingState.FAILED, last_error="The provider refused."
    )


def test_nothing_shows_when_all_is_well(admin_client):
    assert HEADING not in admin_client.get(reverse("wagtailadmin_home")).content.decode()


def test_a_manager_sees_failed_meetings_and_accounts_to_reconnect(admin_client, failed_meeting):
    ConferencingAccount.objects.create(
        provider="jitsi", label="Studio Zoom", status=AccountStatus.NEEDS_RECONNECTING
    )

    page = admin_client.get(reverse("wagtailadmin_home")).content.decode()

    assert HEADING in page
    assert "1 upcoming meeting could not be made or changed." in page
    assert "“Studio Zoom” needs reconnecting." in page
    assert reverse(REPORT) + "?attention=retry" in page


def test_the_report_link_shows_exactly_the_meetings_waiting_for_a_retry(
    admin_client, failed_meeting
):
    ready = Meeting.objects.create(
        booking=AppointmentFactory(start=timezone.now() + dt.timedelta(days=3)),
        state=MeetingState.READY,
    )

    page = admin_client.get(reverse(REPORT), {"attention": "retry"}).content.decode()

    assert failed_meeting.booking.reference in page
    assert ready.booking.reference not in page


def test_staff_see_only_their_own_account_to_reconnect(client, failed_meeting):
    anna = StaffFactory(name="Anna")
    bruno = StaffFactory(name="Bruno")
    for staff in (anna, bruno):
        ConferencingAccount.objects.create(
            provider="jitsi",
            staff=staff,
            label=f"{staff.name}'s account",
            status=AccountStatus.NEEDS_RECONNECTING,
        )
    user = UserFactory()
    ensure_groups()
    user.groups.add(Group.objects.get(name="Staff"))
    anna.user = user
    anna.save()
    client.force_login(user)

    page = client.get(reverse("wagtailadmin_home")).content.decode()

    assert "Anna&#x27;s account" in page or "Anna's account" in page
    assert "Bruno" not in page
    assert "could not be made" not in page  # failed meetings are for managers
