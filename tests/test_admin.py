"""The Bookings menu in the Wagtail admin: services, classes, staff and bookings."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from wagtail_bookings_vc.models import Booking, ClassSession

from .factories import (
    AppointmentFactory,
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
)

ROME = zoneinfo.ZoneInfo("Europe/Rome")


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "password")


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


def snippet_url(model_name: str, view: str, *args: object) -> str:
    return reverse(f"wagtailsnippets_wagtail_bookings_vc_{model_name}:{view}", args=args)


@pytest.mark.django_db
@pytest.mark.parametrize("model_name", ["service", "groupclass", "staff", "booking"])
def test_every_listing_opens(admin_client, model_name):
    response = admin_client.get(snippet_url(model_name, "list"))
    assert response.status_code == 200


@pytest.mark.django_db
def test_the_bookings_menu_groups_the_snippets(admin_client):
    response = admin_client.get(reverse("wagtailadmin_home"))
    content = response.content.decode()
    assert "Bookings" in content
    assert snippet_url("service", "list") in content


@pytest.mark.django_db
def test_service_editor_saves_staff_and_online_flag(admin_client):
    staff = StaffFactory()
    response = admin_client.post(
        snippet_url("service", "add"),
        {
            "name": "Massage",
            "slug": "massage",
            "description": "",
            "duration_minutes": "45",
            "buffer_before_minutes": "0",
            "buffer_after_minutes": "15",
            "slot_interval_minutes": "",
            "staff": [staff.pk],
            "min_notice_minutes": "60",
            "max_days_ahead": "30",
            "cancellation_cutoff_hours": "24",
            "price": "",
            "currency": "",
            "online": "on",
            "meeting_link_mode": "automatic",
            "meeting_url": "",
            "meeting_passcode": "",
            "meeting_description": "",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    service = staff.services.get()
    assert service.online is True
    assert service.buffer_after_minutes == 15


@pytest.mark.django_db
def test_new_service_is_not_online_by_default():
    assert ServiceFactory().online is False
    assert GroupClassFactory().online is False


@pytest.mark.django_db
def test_a_series_of_weekly_sessions_keeps_its_clock_time_across_dst(admin_client, admin):
    group_class = GroupClassFactory()
    url = snippet_url("groupclass", "add_sessions", group_class.pk)
    assert admin_client.get(url).status_code == 200

    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(admin)
    profile.current_time_zone = "Europe/Rome"
    profile.save()
    response = admin_client.post(
        url, {"first_start": "2027-03-16 18:00", "count": "4", "every_days": "7", "location": ""}
    )
    assert response.status_code == 302
    starts = [s.start.astimezone(ROME) for s in group_class.sessions.order_by("start")]
    assert [s.date() for s in starts] == [
        dt.date(2027, 3, 16),
        dt.date(2027, 3, 23),
        dt.date(2027, 3, 30),
        dt.date(2027, 4, 6),
    ]
    assert {s.time() for s in starts} == {dt.time(18)}

    # Running the same series again adds nothing.
    admin_client.post(
        url, {"first_start": "2027-03-16 18:00", "count": "4", "every_days": "7", "location": ""}
    )
    assert ClassSession.objects.filter(group_class=group_class).count() == 4


@pytest.mark.django_db
def test_a_series_with_bad_input_shows_errors_and_adds_nothing(admin_client):
    group_class = GroupClassFactory()
    response = admin_client.post(
        snippet_url("groupclass", "add_sessions", group_class.pk),
        {"first_start": "not a date", "count": "0", "every_days": "7"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors.keys() >= {"first_start", "count"}
    assert not group_class.sessions.exists()


@pytest.mark.django_db
def test_bookings_are_listed_and_inspected_but_never_edited_in_a_form(admin_client, admin):
    session = ClassSessionFactory(start=timezone.now() + dt.timedelta(days=2))
    booking = Booking.objects.create(
        member=admin,
        member_name="Boss",
        session=session,
        start=session.start,
        end=session.end,
    )
    listing = admin_client.get(snippet_url("booking", "list"))
    assert booking.reference in listing.content.decode()
    # The start is a date and time, not "in 2 days".
    assert str(timezone.localtime(session.start).year) in listing.content.decode()
    assert snippet_url("booking", "add") not in listing.content.decode()

    inspect = admin_client.get(snippet_url("booking", "inspect", booking.pk))
    assert inspect.status_code == 200
    assert booking.reference in inspect.content.decode()

    assert admin_client.get(snippet_url("booking", "edit", booking.pk)).status_code in (302, 403)
    assert admin_client.get(snippet_url("booking", "add")).status_code in (302, 403)
    assert admin_client.post(snippet_url("booking", "delete", booking.pk)).status_code in (302, 403)
    assert Booking.objects.filter(pk=booking.pk).exists()


@pytest.mark.django_db
def test_bookings_listing_filters_by_status(admin_client, admin):
    session = ClassSessionFactory()
    kept = Booking.objects.create(
        member=admin, session=session, start=session.start, end=session.end
    )
    other = ClassSessionFactory()
    dropped = Booking.objects.create(
        member=admin, session=other, start=other.start, end=other.end, status="cancelled"
    )
    response = admin_client.get(snippet_url("booking", "list"), {"status": "confirmed"})
    content = response.content.decode()
    assert kept.reference in content
    assert dropped.reference not in content


@pytest.mark.django_db
def test_editors_find_the_booking_emails_in_the_settings(admin_client):
    from wagtail.models import Site

    site = Site.objects.get(is_default_site=True)
    url = reverse(
        "wagtailsettings:edit", args=["wagtail_bookings_vc", "bookingemailsettings", site.pk]
    )
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "Emails to members" in response.content.decode()


@pytest.mark.django_db
def test_a_jitsi_account_is_added_and_chosen_as_the_site_default(admin_client):
    from wagtail.models import Site

    from wagtail_bookings_vc.models import ConferencingAccount, ConferencingSettings

    response = admin_client.post(
        snippet_url("conferencingaccount", "add"),
        {"provider": "jitsi", "label": "Our Jitsi", "staff": ""},
    )
    assert response.status_code == 302
    account = ConferencingAccount.objects.get(label="Our Jitsi")
    assert account.is_connected

    site = Site.objects.get(is_default_site=True)
    url = reverse(
        "wagtailsettings:edit", args=["wagtail_bookings_vc", "conferencingsettings", site.pk]
    )
    response = admin_client.post(
        url, {"default_account": account.pk, "join_opens_minutes_before": "10"}
    )
    assert response.status_code == 302
    settings = ConferencingSettings.for_site(site)
    assert settings.default_account == account
    assert settings.join_opens_minutes_before == 10


@pytest.mark.django_db
def test_the_manual_link_is_not_offered_as_an_account(admin_client):
    response = admin_client.get(snippet_url("conferencingaccount", "add"))
    content = response.content.decode()
    assert 'value="jitsi"' in content
    assert 'value="manual"' not in content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "http://meet.example.com/room",
        "ftp://example.com/room",
    ],
)
def test_a_manual_meeting_link_must_be_https(admin_client, url):
    response = admin_client.post(
        snippet_url("service", "add"),
        {
            "name": "Coaching",
            "slug": "coaching",
            "duration_minutes": "45",
            "buffer_before_minutes": "0",
            "buffer_after_minutes": "0",
            "min_notice_minutes": "60",
            "max_days_ahead": "30",
            "cancellation_cutoff_hours": "24",
            "online": "on",
            "meeting_link_mode": "manual",
            "meeting_url": url,
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "https://" in str(response.context["form"].errors["meeting_url"])
    assert not ServiceFactory._meta.model.objects.filter(slug="coaching").exists()


@pytest.mark.django_db
def test_an_online_service_with_a_manual_link_needs_the_link(admin_client):
    response = admin_client.post(
        snippet_url("service", "add"),
        {
            "name": "Coaching",
            "slug": "coaching",
            "duration_minutes": "45",
            "buffer_before_minutes": "0",
            "buffer_after_minutes": "0",
            "min_notice_minutes": "60",
            "max_days_ahead": "30",
            "cancellation_cutoff_hours": "24",
            "online": "on",
            "meeting_link_mode": "manual",
            "meeting_url": "",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "meeting_url" in response.context["form"].errors


@pytest.mark.django_db
def test_an_administrator_marks_a_pending_booking_paid(admin_client, admin):
    session = ClassSessionFactory()
    booking = Booking.objects.create(
        member=admin,
        session=session,
        start=session.start,
        end=session.end,
        price="20.00",
        currency="EUR",
        payment_status="pending",
    )
    listing = admin_client.get(snippet_url("booking", "list")).content.decode()
    url = snippet_url("booking", "mark_paid", booking.pk)
    assert url in listing
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url)
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.payment_status == "paid"


@pytest.mark.django_db
def test_marking_paid_needs_the_change_permission(client, django_user_model):
    from django.contrib.auth.models import Permission

    editor = django_user_model.objects.create_user("editor", password="password")
    editor.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_booking"),
    )
    session = ClassSessionFactory()
    booking = Booking.objects.create(
        member=editor,
        session=session,
        start=session.start,
        end=session.end,
        price="20.00",
        payment_status="pending",
    )
    client.force_login(editor)
    response = client.post(snippet_url("booking", "mark_paid", booking.pk))
    assert response.status_code in (302, 403)
    booking.refresh_from_db()
    assert booking.payment_status == "pending"


@pytest.mark.django_db
def test_the_bookings_menu_links_the_online_meetings_report(admin_client):
    response = admin_client.get(reverse("wagtailadmin_home"))
    assert "Online meetings" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("model_name", ["service", "groupclass", "staff", "booking"])
def test_every_listing_finds_what_is_searched(admin_client, model_name):
    ServiceFactory(name="Physiotherapy")
    GroupClassFactory(name="Physiotherapy group")
    StaffFactory(name="Physiotherapy Team", email="physio@example.com")
    booking = AppointmentFactory(member_name="Physiotherapy Client")
    other = AppointmentFactory(member_name="Someone Else")
    for term in ("Physiotherapy", "Physio"):  # whole words, and the start of one
        response = admin_client.get(snippet_url(model_name, "list"), {"q": term})
        assert response.status_code == 200
        text = response.content.decode()
        assert "Physiotherapy" in text
        if model_name == "booking":
            assert booking.reference in text
            assert other.reference not in text
    if model_name == "booking":  # a reference, or part of it
        text = admin_client.get(snippet_url("booking", "list"), {"q": other.reference[2:8]})
        assert other.reference in text.content.decode()


@pytest.mark.django_db
def test_a_class_with_booked_sessions_is_not_deleted(admin_client):
    from .factories import SeatFactory

    session = ClassSessionFactory(group_class=GroupClassFactory(name="Pilates"))
    SeatFactory(session=session)
    url = snippet_url("groupclass", "delete", session.group_class.pk)

    for response in (admin_client.get(url), admin_client.post(url)):
        assert response.status_code == 302
        assert response["Location"] == snippet_url("groupclass", "edit", session.group_class.pk)
    followed = admin_client.get(response["Location"])
    assert "“Pilates” cannot be deleted: its sessions have bookings." in followed.content.decode()
    assert ClassSession.objects.filter(pk=session.pk).exists()
    assert Booking.objects.filter(session=session).count() == 1


@pytest.mark.django_db
def test_a_class_without_bookings_is_deleted(admin_client):
    session = ClassSessionFactory(group_class=GroupClassFactory(name="Pilates"))
    response = admin_client.post(snippet_url("groupclass", "delete", session.group_class.pk))
    assert response.status_code == 302
    assert not ClassSession.objects.filter(pk=session.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("model_name", "field"), [("service", "bookable"), ("staff", "active")])
def test_a_service_or_staff_member_with_bookings_is_not_deleted(admin_client, model_name, field):
    booking = AppointmentFactory()
    instance = booking.service if model_name == "service" else booking.staff
    url = snippet_url(model_name, "delete", instance.pk)

    for response in (admin_client.get(url), admin_client.post(url)):
        assert response.status_code == 302
        assert response["Location"] == snippet_url(model_name, "edit", instance.pk)
    followed = admin_client.get(response["Location"]).content.decode()
    assert (
        f"“{instance.name}” cannot be deleted: it has bookings. Untick “{field}” to stop "
        "new bookings."
    ) in followed
    assert type(instance).objects.filter(pk=instance.pk).exists()
    assert Booking.objects.filter(pk=booking.pk).exists()


@pytest.mark.django_db
def test_a_service_without_bookings_is_deleted(admin_client):
    service = ServiceFactory()
    response = admin_client.post(snippet_url("service", "delete", service.pk))
    assert response.status_code == 302
    assert not type(service).objects.filter(pk=service.pk).exists()
