"""The admin calendar: day, week and month views, filters, the booking dialog and who sees what.

The bookings are made the way members make them (``bookings.py``), their meetings by the
recording provider with the jobs run inline; the admin pages are then opened with the
test client, logged in as an administrator, as a staff member or as a viewer.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail.users.models import UserProfile

from tests import recording_provider as rec
from tests.factories import (
    AppointmentFactory,
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from wagtail_bookings_vc import admin_calendar, bookings, host_links, meetings
from wagtail_bookings_vc.models import Booking, ClassSession, Meeting, MeetingState, Staff

ROME = ZoneInfo("Europe/Rome")
# A Monday morning in Rome. With English formats weeks start on Sunday: the week shown
# runs from Sunday 22 to Saturday 28 November 2026.
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)
WEEK_DAY = dt.date(2026, 11, 24)

pytestmark = pytest.mark.django_db


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A time in Rome in November 2026."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=ROME)


@dataclass
class Scene:
    """A small studio: two staff members, two services, a class, a week of bookings."""

    anna: Staff
    bruno: Staff
    physio: object
    massage: object
    yoga: object
    yoga_session: ClassSession
    giulia_physio: Booking
    sara_physio: Booking
    marco_massage: Booking
    luca_physio: Booking
    elena_massage: Booking
    marco_physio: Booking
    cancelled: Booking
    seats: list[Booking]
    members: dict


def make_scene(run) -> Scene:
    """Book a week at the studio through ``bookings.py``; ``run`` runs a change and its jobs."""
    anna = StaffFactory(name="Anna Rossi", email="anna@example.com")
    bruno = StaffFactory(name="Bruno Conti", email="bruno@example.com")
    physio = ServiceFactory(name="Online physiotherapy", staff=[anna, bruno], online=True)
    massage = ServiceFactory(
        name="Sports massage", staff=[anna, bruno], online=False, price=Decimal("45.00")
    )
    yoga = GroupClassFactory(name="Online yoga", staff=anna, online=True, capacity=12)
    yoga_session = ClassSessionFactory(group_class=yoga, start=at(25, 18))
    names = {
        "giulia": ("Giulia", "Bianchi"),
        "marco": ("Marco", "Ferri"),
        "sara": ("Sara", "Greco"),
        "luca": ("Luca", "Moretti"),
        "elena": ("Elena", "Galli"),
    }
    members = {
        key: UserFactory(username=key, first_name=first, last_name=last, email=f"{key}@example.com")
        for key, (first, last) in names.items()
    }

    def appointment(member, service, staff, start):
        return run(
            bookings.book_appointment,
            member=members[member],
            service=service,
            staff=staff,
            start=start,
            time_zone="Europe/Rome",
        )

    scene = Scene(
        anna=anna,
        bruno=bruno,
        physio=physio,
        massage=massage,
        yoga=yoga,
        yoga_session=yoga_session,
        giulia_physio=appointment("giulia", physio, anna, at(24, 10)),
        sara_physio=appointment("sara", physio, bruno, at(24, 10)),
        marco_massage=appointment("marco", massage, bruno, at(24, 11)),
        luca_physio=appointment("luca", physio, anna, at(25, 9)),
        elena_massage=appointment("elena", massage, anna, at(26, 14)),
        marco_physio=appointment("marco", physio, bruno, at(27, 16)),
        cancelled=appointment("luca", physio, bruno, at(26, 9)),
        seats=[
            run(bookings.book_session, member=members[key], session=yoga_session)
            for key in ("giulia", "elena", "marco")
        ],
        members=members,
    )
    run(bookings.cancel, scene.cancelled)
    return scene


def staff_user(staff: Staff, username: str):
    """A Wagtail user who is ``staff`` and manages only their own bookings."""
    first, _space, last = staff.name.partition(" ")
    user = UserFactory(username=username, first_name=first, last_name=last)
    group, _created = Group.objects.get_or_create(name="Staff")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="manage_own_bookings"),
    )
    user.groups.add(group)
    staff.user = user
    staff.save()
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def week_url(day: dt.date = WEEK_DAY, view: str = "week", **params) -> str:
    return admin_calendar.calendar_url(view, day, "&".join(f"{k}={v}" for k, v in params.items()))


def results_url(day: dt.date = WEEK_DAY, view: str = "week", **params) -> str:
    url = reverse("wagtail_bookings_vc_admin:calendar_results", args=[view, day.isoformat()])
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}?{query}" if query else url


def panel_url(booking: Booking) -> str:
    return reverse("wagtail_bookings_vc_admin:calendar_booking", args=[booking.pk])


def session_panel_url(session: ClassSession) -> str:
    return reverse("wagtail_bookings_vc_admin:calendar_session", args=[session.pk])


def xhr(client: Client, url: str):
    return client.get(url, headers={"x-requested-with": "XMLHttpRequest"})


def items(content: str) -> list[str]:
    """The calendar's items as a screen reader names them (the grid shows what fits)."""
    found = re.findall(
        r'<a class="bvc-cal-item__link"[^>]*>.*?<span class="w-sr-only">(.*?)</span></a>',
        content,
        flags=re.DOTALL,
    )
    return [html.unescape(item) for item in found]


def item_links(content: str) -> list[str]:
    return re.findall(r'<a class="bvc-cal-item__link" href="([^"]+)"', content)


def text(content: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", content)).split())


def denied(response) -> bool:
    """Wagtail answers a refused admin request with 403, or by sending to the dashboard."""
    return response.status_code == 403 or (
        response.status_code == 302 and response["Location"] == reverse("wagtailadmin_home")
    )


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def scene(recorder, run_jobs) -> Scene:
    return make_scene(run_jobs)


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "password")


@pytest.fixture
def admin_client(admin) -> Client:
    return client_for(admin)


@pytest.fixture
def anna_client(scene) -> Client:
    return client_for(staff_user(scene.anna, "anna"))


@pytest.fixture
def viewer_client(django_user_model) -> Client:
    """An admin user who may see every booking but manage none."""
    viewer = django_user_model.objects.create_user("viewer", password="password")
    viewer.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_booking"),
    )
    return client_for(viewer)


# --------------------------------------------------------------------------------------
# The week view
# --------------------------------------------------------------------------------------


def test_the_bookings_menu_leads_to_the_calendar(admin_client):
    response = admin_client.get(reverse("wagtailadmin_home"))

    assert response.status_code == 200
    assert f'"{reverse("wagtail_bookings_vc_admin:calendar")}"' in response.content.decode()


def test_an_administrator_sees_the_whole_week(admin_client, scene):
    response = admin_client.get(admin_calendar.calendar_url())

    assert response.status_code == 200
    content = response.content.decode()
    assert "22 November – 28 November 2026" in text(content)
    shown = items(content)
    assert shown == [
        "10:00–11:00, Online physiotherapy, Giulia Bianchi, Anna Rossi, Online",
        "10:00–11:00, Online physiotherapy, Sara Greco, Bruno Conti, Online",
        "11:00–12:00, Sports massage, Marco Ferri, Bruno Conti, In person, Awaiting payment",
        "09:00–10:00, Online physiotherapy, Luca Moretti, Anna Rossi, Online",
        "18:00–19:00, Online yoga, 3 of 12 seats taken, Anna Rossi, Online",
        "14:00–15:00, Sports massage, Elena Galli, Anna Rossi, In person, Awaiting payment",
        "16:00–17:00, Online physiotherapy, Marco Ferri, Bruno Conti, Online",
    ]
    # The class session shows once, with its seats; the cancelled booking not by default.
    assert item_links(content).count(session_panel_url(scene.yoga_session)) == 1
    for seat in scene.seats:
        assert panel_url(seat) not in content
    assert panel_url(scene.cancelled) not in content
    assert "Times in Europe/Rome" in text(content)


def test_overlapping_bookings_share_the_width_of_their_day(admin_client, scene):
    content = admin_client.get(week_url()).content.decode()

    tuesday = re.search(r'aria-label="Tue 24">(.*?)</section>', content, flags=re.DOTALL)[1]
    styles = re.findall(r'style="(--bvc-top[^"]+)"', tuesday)
    # 08:00–19:00 is shown (the yoga session ends at 19:00): 10:00 is 2 of 11 hours down.
    # The two bookings at 10:00 sit side by side; the one at 11:00 has the whole width.
    assert styles == [
        "--bvc-top:18.182%;--bvc-height:9.091%;--bvc-lane:0;--bvc-lanes:2",
        "--bvc-top:18.182%;--bvc-height:9.091%;--bvc-lane:1;--bvc-lanes:2",
        "--bvc-top:27.273%;--bvc-height:9.091%;--bvc-lane:0;--bvc-lanes:1",
    ]


def test_times_are_in_the_admin_users_own_time_zone(admin, admin_client, scene):
    profile = UserProfile.get_for_user(admin)
    profile.current_time_zone = "America/New_York"
    profile.save()

    content = admin_client.get(week_url()).content.decode()

    assert "Times in America/New_York" in text(content)
    assert "04:00–05:00, Online physiotherapy, Giulia Bianchi, Anna Rossi, Online" in items(content)
    # The grid starts earlier to show a 03:00 appointment (09:00 in Rome).
    assert '<div class="bvc-timegrid__hour">03:00</div>' in content

    panel = xhr(admin_client, panel_url(scene.giulia_physio)).content.decode()
    # The dialog shows the time under its title.
    assert 'data-bvc-panel-subtitle="Tuesday 24 November 2026, 04:00–05:00 (America/New_York)"' in (
        panel
    )
    # The member booked in Rome: their own time is shown too.
    assert "Tuesday 24 November 2026, 10:00–11:00 (Europe/Rome)" in text(panel)


def test_previous_next_and_today_move_by_a_week_and_keep_the_filters(admin_client, scene):
    content = admin_client.get(week_url(service=scene.physio.pk)).content.decode()

    query = f"service={scene.physio.pk}"
    assert f'href="{week_url(dt.date(2026, 11, 15))}?{query}" rel="prev"' in content
    assert f'href="{week_url(dt.date(2026, 11, 29))}?{query}" rel="next"' in content
    assert f'href="{week_url(dt.date(2026, 11, 23))}?{query}">Today<' in content
    assert f'href="{week_url(WEEK_DAY, "month")}?{query}">Month<' in content

    following = admin_client.get(week_url(dt.date(2026, 11, 29))).content.decode()
    assert "29 November – 5 December 2026" in text(following)
    assert items(following) == []
    assert "No bookings or sessions." in text(following)


def test_a_session_that_began_the_evening_before_shows_from_midnight(admin_client):
    yoga = GroupClassFactory(name="Night yoga", duration_minutes=60)
    ClassSessionFactory(group_class=yoga, start=at(21, 23, 30))

    content = admin_client.get(week_url()).content.decode()

    sunday = re.search(r'aria-label="Sun 22">(.*?)</section>', content, flags=re.DOTALL)[1]
    (item,) = items(sunday)
    assert item.startswith("23:30–00:30, Night yoga, 0 of 10 seats taken")
    assert '<div class="bvc-timegrid__hour">00:00</div>' in content
    assert "--bvc-top:0.000%" in sunday


def test_an_unknown_view_or_date_is_not_found(admin_client):
    assert admin_client.get("/admin/bookings-vc/calendar/year/2026-11-24/").status_code == 404
    assert admin_client.get("/admin/bookings-vc/calendar/week/2026-13-40/").status_code == 404


# --------------------------------------------------------------------------------------
# Day and month
# --------------------------------------------------------------------------------------


def test_the_day_view_has_a_column_per_staff_member(admin_client, scene):
    content = admin_client.get(week_url(view="day")).content.decode()

    assert "Tuesday 24 November 2026" in text(content)
    columns = re.findall(
        r'<section class="bvc-timegrid__column[^"]*" aria-label="([^"]+)">(.*?)</section>',
        content,
        flags=re.DOTALL,
    )
    assert [label for label, _body in columns] == ["Anna Rossi", "Bruno Conti"]
    assert items(columns[0][1]) == [
        "10:00–11:00, Online physiotherapy, Giulia Bianchi, Anna Rossi, Online"
    ]
    assert items(columns[1][1]) == [
        "10:00–11:00, Online physiotherapy, Sara Greco, Bruno Conti, Online",
        "11:00–12:00, Sports massage, Marco Ferri, Bruno Conti, In person, Awaiting payment",
    ]
    assert f'href="{week_url(dt.date(2026, 11, 23), "day")}" rel="prev"' in content


def test_the_month_view_lists_a_few_items_a_day_and_links_to_the_rest(
    admin_client, scene, run_jobs
):
    for hour in (12, 13, 14, 15):
        run_jobs(
            bookings.book_appointment,
            member=scene.members["elena"],
            service=scene.physio,
            staff=scene.anna,
            start=at(24, hour),
        )

    content = admin_client.get(week_url(view="month")).content.decode()

    assert "November 2026" in text(content)
    cells = re.findall(r'<td class="bvc-month__day[^"]*"[^>]*>(.*?)</td>', content, re.DOTALL)
    # 1 November 2026 is a Sunday and the 30th a Monday: five weeks, to 5 December.
    assert len(cells) == 35
    tuesday = cells[23]  # the grid starts on Sunday 1 November
    assert "Tuesday 24 November 2026" in text(tuesday)
    assert len(items(tuesday)) == 4
    assert "3 more" in text(tuesday)
    assert f'href="{week_url(WEEK_DAY, "day")}"' in tuesday
    assert 'class="bvc-month__day is-outside"' in content  # December's first days


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------


def details(content: str) -> list[str]:
    """Each item's member, or a session's seats."""
    found = re.findall(r'<span class="bvc-cal-item__detail">(.*?)</span>', content)
    return [html.unescape(detail) for detail in found]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": "massage"}, ["Marco Ferri", "Elena Galli"]),
        ({"group_class": "yoga"}, ["3 of 12 seats taken"]),
        ({"staff": "bruno"}, ["Sara Greco", "Marco Ferri", "Marco Ferri"]),
        ({"where": "in_person"}, ["Marco Ferri", "Elena Galli"]),
        (
            {"where": "online", "staff": "anna"},
            ["Giulia Bianchi", "Luca Moretti", "3 of 12 seats taken"],
        ),
        ({"status": "cancelled"}, ["Luca Moretti"]),
    ],
)
def test_filters_narrow_the_calendar(admin_client, scene, params, expected):
    objects = {
        "massage": scene.massage,
        "yoga": scene.yoga,
        "bruno": scene.bruno,
        "anna": scene.anna,
    }
    query = {key: getattr(objects.get(value), "pk", value) for key, value in params.items()}

    # The filter drawer swaps the results in place.
    response = admin_client.get(results_url(**query))

    assert response.status_code == 200
    content = response.content.decode()
    assert "<html" not in content
    assert details(content) == expected
    assert "w-active-filters" in content


def test_all_statuses_include_the_cancelled_booking_struck_through(admin_client, scene):
    content = admin_client.get(week_url(status="all")).content.decode()

    assert len(items(content)) == 8
    cancelled = re.search(
        rf'<li class="([^"]+)"[^>]*><a class="bvc-cal-item__link" '
        rf'href="{panel_url(scene.cancelled)}"',
        content,
    )
    assert "bvc-cal-item--cancelled" in cancelled[1]


def test_a_failed_meeting_is_marked_on_the_calendar(admin_client, scene):
    Meeting.objects.filter(booking=scene.luca_physio).update(
        state=MeetingState.FAILED, last_error="The account's plan allows no more meetings."
    )

    content = admin_client.get(week_url()).content.decode()

    assert (
        "09:00–10:00, Online physiotherapy, Luca Moretti, Anna Rossi, Online, Meeting failed"
        in (items(content))
    )
    assert "bvc-cal-item--problem" in content
    panel = xhr(admin_client, panel_url(scene.luca_physio)).content.decode()
    assert "Recorder did not make the meeting." in text(panel)
    assert "The account&#x27;s plan allows no more meetings." in panel


# --------------------------------------------------------------------------------------
# The dialog: a booking's details, Open meeting, the join link
# --------------------------------------------------------------------------------------


def test_an_administrator_opens_a_booking_and_its_meeting(admin_client, scene, clock):
    booking = scene.giulia_physio
    meeting = Meeting.objects.get(booking=booking)
    assert meeting.state == MeetingState.READY

    week = admin_client.get(week_url()).content.decode()
    assert panel_url(booking) in item_links(week)

    response = xhr(admin_client, panel_url(booking) + "?next=" + week_url())
    assert response.status_code == 200
    panel = response.content.decode()
    assert "<html" not in panel
    assert 'data-bvc-panel-title="Online physiotherapy"' in panel
    shown = text(panel)
    assert "Confirmed" in shown and "Free" in shown
    assert "Member Giulia Bianchi giulia@example.com" in shown
    assert "Staff Anna Rossi" in shown
    assert "Ready at Recorder." in shown
    open_url = host_links.open_meeting_url(booking)
    assert f'href="{open_url}"' in panel
    join_url = "http://localhost" + meetings.join_path(booking)
    assert f'value="{join_url}"' in panel
    assert f'href="/admin/bookings-vc/bookings/{booking.pk}/cancel/?next=' in panel
    assert f'href="/admin/bookings-vc/bookings/{booking.pk}/reschedule/?next=' in panel
    # Never the provider's own links.
    assert rec.MEETING_HOST not in panel
    assert meeting.passcode not in panel

    # Without script, the item's link opens the same details as an admin page.
    page = admin_client.get(panel_url(booking)).content.decode()
    assert "<html" in page and f'href="{open_url}"' in page

    # At the start, Open meeting sends the host to the provider, after the permission check.
    clock.move_to(at(24, 9, 55), tick=False)
    response = admin_client.get(open_url)
    assert response.status_code == 302
    assert response["Location"] == meeting.host_url


def test_a_session_opens_with_its_attendees_and_its_meeting(admin_client, scene):
    session = scene.yoga_session

    panel = xhr(admin_client, session_panel_url(session)).content.decode()

    shown = text(panel)
    assert "3 of 12 seats taken" in shown
    assert "Instructor Anna Rossi" in shown
    assert "Giulia Bianchi" in shown and "Elena Galli" in shown and "Marco Ferri" in shown
    assert f'href="{host_links.open_session_meeting_url(session)}"' in panel
    for seat in scene.seats:
        assert panel_url(seat) in panel
    # A seat's own details link back to its session.
    seat_panel = xhr(admin_client, panel_url(scene.seats[0])).content.decode()
    assert session_panel_url(session) in seat_panel
    assert "Class Online yoga" in text(seat_panel)


def test_an_in_person_booking_has_no_meeting_and_no_join_link(admin_client, scene):
    panel = xhr(admin_client, panel_url(scene.marco_massage)).content.decode()

    shown = text(panel)
    assert "In person: there is no video meeting." in shown
    assert "Awaiting payment of 45.00 EUR" in shown
    assert "Open meeting" not in shown
    assert "/bookings/join/" not in panel


def test_a_viewer_sees_the_calendar_but_no_host_link_join_link_or_actions(viewer_client, scene):
    content = viewer_client.get(week_url()).content.decode()
    assert len(items(content)) == 7

    panel = xhr(viewer_client, panel_url(scene.giulia_physio)).content.decode()
    assert "Giulia Bianchi" in text(panel)
    assert "Open meeting" not in text(panel)
    assert host_links.open_meeting_url(scene.giulia_physio) not in panel
    assert "/bookings/join/" not in panel
    assert "/cancel/" not in panel and "/reschedule/" not in panel
    assert denied(viewer_client.get(host_links.open_meeting_url(scene.giulia_physio)))


# --------------------------------------------------------------------------------------
# Staff members see their own calendar only
# --------------------------------------------------------------------------------------


def test_a_staff_member_sees_only_their_own_calendar(anna_client, scene):
    content = anna_client.get(admin_calendar.calendar_url()).content.decode()

    assert "Your calendar, Anna Rossi" in text(content)
    assert [item.rsplit(", Anna Rossi", 1)[0] for item in items(content)] == [
        "10:00–11:00, Online physiotherapy, Giulia Bianchi",
        "09:00–10:00, Online physiotherapy, Luca Moretti",
        "18:00–19:00, Online yoga, 3 of 12 seats taken",
        "14:00–15:00, Sports massage, Elena Galli",
    ]
    # No staff filter to choose someone else with.
    assert 'name="staff"' not in content
    assert "Bruno Conti" not in content


def test_a_staff_member_cannot_see_another_calendar_through_the_address(anna_client, scene):
    for url in (
        week_url(staff=scene.bruno.pk),
        results_url(staff=scene.bruno.pk),
        week_url(view="day", staff=scene.bruno.pk),
        week_url(view="month", staff=scene.bruno.pk, status="all"),
    ):
        content = anna_client.get(url).content.decode()
        assert "Sara Greco" not in content and "Bruno Conti" not in content, url
        assert panel_url(scene.cancelled) not in content

    day = anna_client.get(week_url(view="day")).content.decode()
    columns = re.findall(r'class="bvc-timegrid__column[^"]*" aria-label="([^"]+)"', day)
    assert columns == ["Anna Rossi"]


def test_a_staff_member_is_refused_another_staff_members_booking(anna_client, scene):
    theirs = scene.sara_physio

    assert xhr(anna_client, panel_url(theirs)).status_code == 403
    assert denied(anna_client.get(panel_url(theirs)))
    assert denied(anna_client.get(host_links.open_meeting_url(theirs)))
    assert denied(
        anna_client.get(reverse("wagtail_bookings_vc_admin:booking_cancel", args=[theirs.pk]))
    )
    assert denied(
        anna_client.post(reverse("wagtail_bookings_vc_admin:booking_cancel", args=[theirs.pk]))
    )
    assert denied(
        anna_client.post(
            reverse("wagtail_bookings_vc_admin:booking_reschedule", args=[theirs.pk]),
            {"start": at(25, 12).isoformat()},
        )
    )
    theirs.refresh_from_db()
    assert theirs.status == "confirmed" and theirs.start == at(24, 10)


def test_a_staff_member_manages_their_own_booking_from_the_dialog(anna_client, scene):
    own = scene.giulia_physio

    panel = xhr(anna_client, panel_url(own)).content.decode()

    assert f'href="{host_links.open_meeting_url(own)}"' in panel
    assert "/bookings/join/" in panel
    assert f"/admin/bookings-vc/bookings/{own.pk}/cancel/" in panel


def test_someone_without_bookings_has_no_calendar(django_user_model):
    editor = django_user_model.objects.create_user("editor", password="password")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client = client_for(editor)

    assert denied(client.get(admin_calendar.calendar_url()))
    home = client.get(reverse("wagtailadmin_home")).content.decode()
    assert reverse("wagtail_bookings_vc_admin:calendar") not in home


# --------------------------------------------------------------------------------------
# A busy week renders in a fixed number of queries
# --------------------------------------------------------------------------------------


def busy_week(count: int) -> None:
    """``count`` appointments (a third of them online, with meetings) and a few sessions."""
    staff = [StaffFactory(name=f"Therapist {n}") for n in range(10)]
    services = [ServiceFactory(staff=staff, online=n % 3 == 0) for n in range(5)]
    member = UserFactory()
    start = dt.datetime.combine(dt.date(2026, 11, 22), dt.time(8), tzinfo=ROME)
    created = Booking.objects.bulk_create(
        Booking(
            service=services[n % 5],
            staff=staff[n % 10],
            member=member,
            member_name=f"Member {n}",
            start=start + dt.timedelta(days=n % 7, minutes=15 * (n // 7 % 48)),
            end=start + dt.timedelta(days=n % 7, minutes=15 * (n // 7 % 48) + 30),
        )
        for n in range(count)
    )
    Meeting.objects.bulk_create(
        Meeting(booking=booking, provider="recorder", state=MeetingState.READY)
        for booking in created
        if booking.service.online
    )
    for n in range(3):
        ClassSessionFactory(
            group_class=GroupClassFactory(staff=staff[n]), start=start + dt.timedelta(days=n)
        )


def test_a_week_of_500_bookings_renders_in_a_fixed_number_of_queries(
    admin_client, admin, django_assert_max_num_queries
):
    busy_week(10)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(week_url()).status_code == 200

    busy_week(490)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_client.get(week_url(status="all"))

    assert len(items(response.content.decode())) == 500 + 6
    # The same for the benchmark's entry point.
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = admin_calendar.render_week_for_bench(admin, WEEK_DAY)
    assert len(items(page)) == 500 + 6


def test_the_month_of_a_busy_week_renders_in_a_fixed_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    busy_week(10)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(week_url(view="month"))
        admin_client.get(week_url(view="day"))

    busy_week(490)
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client.get(week_url(view="month"))
        admin_client.get(week_url(view="day"))


# --------------------------------------------------------------------------------------
# Unit: periods and layout
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "first"), [("en", dt.date(2026, 11, 22)), ("it", dt.date(2026, 11, 23))]
)
def test_weeks_start_on_the_locales_first_day(language, first):
    from django.utils import translation

    with translation.override(language):
        period = admin_calendar.Period("week", dt.date(2026, 11, 25))
        assert period.first == first
        assert period.last == first + dt.timedelta(days=6)


def test_a_month_shows_whole_weeks_and_moves_by_months():
    period = admin_calendar.Period("month", dt.date(2026, 12, 31))

    assert period.first == dt.date(2026, 11, 29)
    assert period.last == dt.date(2027, 1, 2)
    assert period.previous == dt.date(2026, 11, 1)
    assert period.next == dt.date(2027, 1, 1)
    assert period.contains(dt.date(2026, 12, 1)) and not period.contains(dt.date(2027, 1, 1))


def test_an_appointment_written_directly_without_a_meeting_still_shows(admin_client):
    booking = AppointmentFactory(start=at(24, 12), member_name="Direct Entry")

    content = admin_client.get(week_url()).content.decode()

    assert any("Direct Entry" in item for item in items(content))
    panel = xhr(admin_client, panel_url(booking)).content.decode()
    assert "In person: there is no video meeting." in text(panel)
