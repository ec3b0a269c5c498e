"""Bookings and meetings in the admin: who sees which, Open meeting (R23), plan warnings (R17),
and the groups a site starts with."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from tests import recording_provider as rec
from tests.conftest import _with_providers, default_site, make_default_account
from tests.factories import GroupClassFactory, ServiceFactory, StaffFactory, UserFactory
from wagtail_bookings_vc import bookings, meetings
from wagtail_bookings_vc.groups import ensure_groups
from wagtail_bookings_vc.models import ConferencingAccount, Meeting

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TUESDAY_10 = dt.datetime(2026, 3, 3, 10, 0, tzinfo=UTC)

INSPECT = "wagtailsnippets_wagtail_bookings_vc_booking:inspect"
LISTING = "wagtailsnippets_wagtail_bookings_vc_booking:list"
REPORT = "wagtail_bookings_vc_reports:online_meetings"


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def providers(settings, db):
    _with_providers(
        settings,
        {
            "recorder": {"CLASS": "tests.recording_provider.RecordingProvider"},
            "oauthrec": {"CLASS": "tests.recording_provider.OAuthRecordingProvider"},
        },
    )
    rec.reset()
    default_site()
    yield make_default_account("recorder")
    rec.reset()


@pytest.fixture
def anna():
    return StaffFactory(name="Anna Rossi", email="anna@example.com")


@pytest.fixture
def bruno():
    return StaffFactory(name="Bruno Neri", email="bruno@example.com")


def book(staff, start=TUESDAY_10, run=None):
    service = ServiceFactory(name=f"Online session with {staff.name}", staff=[staff], online=True)
    return bookings.book_appointment(
        member=UserFactory(), service=service, staff=staff, start=start
    )


@pytest.fixture
def booked(providers, anna, bruno, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return {"anna": book(anna), "bruno": book(bruno, TUESDAY_10 + dt.timedelta(hours=2))}


def staff_login(client, staff):
    """Log ``staff`` in as a member of the *Staff* group."""
    user = UserFactory(username=f"staff-{staff.pk}")
    ensure_groups()
    user.groups.add(Group.objects.get(name="Staff"))
    staff.user = user
    staff.save()
    client.force_login(user)
    return user


# --------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------


def test_the_groups_command_creates_managers_and_staff_and_can_run_again(db):
    call_command("bookings_vc_groups")
    call_command("bookings_vc_groups")

    managers = Group.objects.get(name="Booking managers")
    staff = Group.objects.get(name="Staff")
    assert managers.permissions.filter(codename="change_booking").exists()
    assert managers.permissions.filter(codename="change_conferencingaccount").exists()
    assert set(staff.permissions.values_list("codename", flat=True)) == {
        "access_admin",
        "manage_own_bookings",
        "connect_own_account",
    }


# --------------------------------------------------------------------------------------
# Who sees which booking
# --------------------------------------------------------------------------------------


def test_a_staff_member_sees_only_their_own_bookings(booked, anna, client):
    staff_login(client, anna)

    listing = client.get(reverse(LISTING)).content.decode()

    assert booked["anna"].reference in listing
    assert booked["bruno"].reference not in listing


def test_a_staff_member_cannot_inspect_another_staff_members_booking(booked, anna, client):
    staff_login(client, anna)

    assert client.get(reverse(INSPECT, args=[booked["anna"].pk])).status_code == 200
    assert client.get(reverse(INSPECT, args=[booked["bruno"].pk])).status_code == 404


def test_a_manager_sees_every_booking(booked, admin_client):
    listing = admin_client.get(reverse(LISTING)).content.decode()

    assert booked["anna"].reference in listing and booked["bruno"].reference in listing


# --------------------------------------------------------------------------------------
# Open meeting (R23)
# --------------------------------------------------------------------------------------


def open_url(booking):
    return reverse("wagtail_bookings_vc_admin:open_meeting", args=[booking.pk])


def test_the_booking_shows_its_meeting_and_an_open_meeting_button(booked, admin_client):
    booking = booked["anna"]

    page = admin_client.get(reverse(INSPECT, args=[booking.pk])).content.decode()

    assert open_url(booking) in page
    assert "Ready" in page
    assert meetings.join_path(booking) in page  # the member's link, to copy for support
    assert rec.MEETING_HOST not in page  # never a provider URL


def test_open_meeting_sends_the_host_to_the_meeting_inside_the_window(booked, admin_client, clock):
    booking = booked["anna"]
    clock.move_to(TUESDAY_10 - dt.timedelta(minutes=5), tick=False)

    response = admin_client.get(open_url(booking))

    meeting = Meeting.objects.get(booking=booking)
    assert response.status_code == 302
    assert response["Location"] == meeting.host_url
    assert response["Referrer-Policy"] == "no-referrer"


def test_open_meeting_before_the_window_says_when_it_opens(booked, admin_client):
    response = admin_client.get(open_url(booked["anna"]))

    assert response.status_code == 200
    assert "The meeting opens at" in response.content.decode()


def test_a_staff_member_opens_only_their_own_meetings(booked, anna, client, clock):
    staff_login(client, anna)
    clock.move_to(TUESDAY_10 - dt.timedelta(minutes=5), tick=False)

    assert client.get(open_url(booked["anna"])).status_code == 302
    refused = client.get(open_url(booked["bruno"]))
    assert refused.status_code in (302, 403)
    assert rec.MEETING_HOST not in refused.get("Location", "")


def test_someone_who_may_only_view_bookings_cannot_open_meetings(booked, client):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_booking"),
    )
    client.force_login(viewer)

    page = client.get(reverse(INSPECT, args=[booked["anna"].pk])).content.decode()
    assert open_url(booked["anna"]) not in page
    assert rec.MEETING_HOST not in client.get(open_url(booked["anna"])).get("Location", "")


def test_the_report_offers_open_meeting_and_shows_changes_made_outside(booked, admin_client):
    meeting = Meeting.objects.get(booking=booked["anna"])
    Meeting.objects.filter(pk=meeting.pk).update(changed_outside_at=NOW)

    page = admin_client.get(reverse(REPORT)).content.decode()

    assert open_url(booked["anna"]) in page
    assert "Changed outside the site" in page


# --------------------------------------------------------------------------------------
# Plan limits (R17)
# --------------------------------------------------------------------------------------


@pytest.fixture
def basic_plan(providers, anna):
    return ConferencingAccount.objects.create(
        provider="oauthrec", staff=anna, credentials={"plan": "basic"}
    )


def edit_url(obj):
    name = type(obj)._meta.model_name
    return reverse(f"wagtailsnippets_wagtail_bookings_vc_{name}:edit", args=[obj.pk])


def test_a_service_longer_than_the_hosts_plan_gets_a_warning(basic_plan, anna, admin_client):
    long = ServiceFactory(name="Long", staff=[anna], online=True, duration_minutes=60)
    short = ServiceFactory(name="Short", staff=[anna], online=True, duration_minutes=30)
    offline = ServiceFactory(name="Offline", staff=[anna], online=False, duration_minutes=60)

    assert "ends meetings after 40 minutes" in admin_client.get(edit_url(long)).content.decode()
    assert "ends meetings after" not in admin_client.get(edit_url(short)).content.decode()
    assert "ends meetings after" not in admin_client.get(edit_url(offline)).content.decode()


def test_a_class_longer_than_the_hosts_plan_gets_a_warning(basic_plan, anna, admin_client):
    group_class = GroupClassFactory(name="Yoga", staff=anna, online=True, duration_minutes=90)

    assert "The plan of Anna Rossi&#x27;s account ends meetings after 40 minutes" in (
        admin_client.get(edit_url(group_class)).content.decode()
    )


def test_the_report_marks_meetings_longer_than_the_plan(
    basic_plan, anna, admin_client, django_capture_on_commit_callbacks
):
    service = ServiceFactory(name="Long", staff=[anna], online=True, duration_minutes=60)
    with django_capture_on_commit_callbacks(execute=True):
        bookings.book_appointment(
            member=UserFactory(), service=service, staff=anna, start=TUESDAY_10
        )

    assert "Longer than the plan allows" in admin_client.get(reverse(REPORT)).content.decode()


# --------------------------------------------------------------------------------------
# Filters, warnings and emails
# --------------------------------------------------------------------------------------


def test_the_bookings_listing_filters_by_class_and_online(providers, anna, admin_client, run_jobs):
    from tests.factories import ClassSessionFactory, SeatFactory

    online = run_jobs(book, anna)
    in_person_service = ServiceFactory(name="Massage", staff=[anna], online=False)
    in_person = run_jobs(
        bookings.book_appointment,
        member=UserFactory(),
        service=in_person_service,
        staff=anna,
        start=TUESDAY_10 + dt.timedelta(hours=3),
    )
    yoga = GroupClassFactory(name="Yoga", staff=anna, online=False)
    seat = SeatFactory(session=ClassSessionFactory(group_class=yoga))
    listing = reverse(LISTING)

    only_online = admin_client.get(listing, {"online": "yes"}).content.decode()
    assert online.reference in only_online
    assert in_person.reference not in only_online and seat.reference not in only_online
    in_person_page = admin_client.get(listing, {"online": "no"}).content.decode()
    assert in_person.reference in in_person_page and seat.reference in in_person_page
    assert online.reference not in in_person_page
    yoga_page = admin_client.get(listing, {"group_class": yoga.pk}).content.decode()
    assert seat.reference in yoga_page and online.reference not in yoga_page


def test_an_online_service_without_a_connected_account_gets_a_warning(db, anna, admin_client):
    service = ServiceFactory(name="Long", staff=[anna], online=True)

    page = admin_client.get(edit_url(service)).content.decode()

    assert "No video conferencing account is connected" in page


def test_a_meeting_that_fails_for_good_is_emailed_to_admins_and_its_host(
    providers, anna, settings, run_jobs
):
    from django.core import mail

    from tests.test_meetings import admins
    from wagtail_bookings_vc.providers import PermanentFailure

    settings.ADMINS = admins("admin@example.com")
    rec.fail_next(1, PermanentFailure("The host's plan does not allow this."))
    booking = run_jobs(book, anna)

    assert Meeting.objects.get(booking=booking).state == "failed"
    sent = [m for m in mail.outbox if "could not be made" in m.subject]
    assert {tuple(m.to) for m in sent} == {("admin@example.com",), ("anna@example.com",)}
    assert all("The host's plan does not allow this." in m.body for m in sent)
    assert all(booking.reference in m.body for m in sent)


def test_an_account_that_needs_reconnecting_is_emailed_to_its_staff_member(
    providers, anna, settings, run_jobs
):
    from django.core import mail

    from tests.test_meetings import admins
    from wagtail_bookings_vc.providers import AuthorizationExpired

    settings.ADMINS = admins("admin@example.com")
    ConferencingAccount.objects.create(provider="recorder", staff=anna)
    rec.fail_next(1, AuthorizationExpired())
    run_jobs(book, anna)

    about = [m for m in mail.outbox if "needs reconnecting" in m.subject]
    assert {tuple(m.to) for m in about} == {("admin@example.com",), ("anna@example.com",)}
    assert not [m for m in mail.outbox if "could not be made" in m.subject]
