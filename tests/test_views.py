"""Booking through the confirmation pages, and a member's own booking pages."""

from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from tests.factories import (
    AppointmentFactory,
    ClassSessionFactory,
    GroupClassFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from wagtail_bookings_vc.models import Booking, BookingStatus

ROME = ZoneInfo("Europe/Rome")
UTC = dt.UTC
# A Monday morning in Rome; the staff work Monday to Friday, 9:00 to 17:00 Rome time.
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)
TUESDAY_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ROME)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monday_morning():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def staff():
    return StaffFactory(name="Anna Rossi")


@pytest.fixture
def service(staff):
    return ServiceFactory(name="Physiotherapy", slug="physio", staff=[staff], price="40.00")


@pytest.fixture
def member():
    return UserFactory(username="giulia", first_name="Giulia", last_name="Bianchi")


def iso(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def book_url(service, staff_id, start, **extra) -> str:
    query = {"staff": staff_id, "start": start if isinstance(start, str) else iso(start), **extra}
    return f"/bookings/services/{service.slug}/book/?{urlencode(query)}"


def text(response) -> str:
    return html.unescape(response.content.decode())


# Booking an appointment ----------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_log_in_and_back_to_the_same_slot(client, service, staff):
    url = book_url(service, staff.pk, TUESDAY_10, next="/book/")

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={quote(url, safe='/')}"


def test_confirm_page_summarises_the_slot_and_asks_for_zone_and_notes(
    client, member, service, staff
):
    client.force_login(member)

    response = client.get(book_url(service, staff.pk, TUESDAY_10, next="/book/"))

    assert response.status_code == 200
    content = text(response)
    assert "Physiotherapy" in content
    assert "Anna Rossi" in content
    assert "Tuesday 24 November 2026, 10:00–11:00 (Europe/Rome)" in content
    assert "40.00 EUR" in content
    assert "In person" in content
    assert "csrfmiddlewaretoken" in content
    assert '<option value="Europe/Rome" selected>' in content
    assert 'name="notes"' in content


def test_member_books_through_the_confirm_view_and_lands_on_the_booking(
    client, member, service, staff
):
    client.force_login(member)
    url = book_url(service, staff.pk, TUESDAY_10, next="/book/")

    response = client.post(url, {"time_zone": "Europe/London", "notes": "Left knee"})

    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/bookings/{booking.reference}/"
    assert booking.member == member
    assert booking.service == service and booking.staff == staff
    assert booking.start == TUESDAY_10
    assert booking.time_zone == "Europe/London"
    assert booking.notes == "Left knee"

    detail = client.get(response["Location"])
    content = text(detail)
    assert "Your booking is confirmed." in content
    # Shown in the zone the member chose, and that zone is named.
    assert "Tuesday 24 November 2026, 09:00–10:00 (Europe/London)" in content


def test_taken_slot_shows_a_friendly_error_and_writes_nothing(client, member, service, staff):
    client.force_login(member)
    url = book_url(service, staff.pk, TUESDAY_10, next="/book/?bvc_week=2026-11-23")
    AppointmentFactory(service=service, staff=staff, start=TUESDAY_10)

    response = client.post(url, {"time_zone": "Europe/Rome", "notes": ""})

    assert response.status_code == 409
    content = text(response)
    assert "This time has just been taken by someone else" in content
    assert 'href="/book/?bvc_week=2026-11-23"' in content
    assert "Pick another time" in content
    assert Booking.objects.count() == 1


def test_confirm_page_of_a_time_no_longer_free_offers_another_pick(client, member, service, staff):
    client.force_login(member)
    AppointmentFactory(service=service, staff=staff, start=TUESDAY_10)

    response = client.get(book_url(service, staff.pk, TUESDAY_10, next="/book/"))

    content = text(response)
    assert "no longer available" in content
    assert 'name="notes"' not in content
    assert 'href="/book/"' in content


def test_next_pointing_to_another_site_is_ignored(client, member, service, staff):
    client.force_login(member)
    AppointmentFactory(service=service, staff=staff, start=TUESDAY_10)

    response = client.get(book_url(service, staff.pk, TUESDAY_10, next="https://evil.example/"))

    assert "evil.example" not in text(response)


@pytest.mark.parametrize(
    ("staff_id", "start", "message"),
    [
        ("999999", iso(TUESDAY_10), "does not name a staff member"),
        ("abc", iso(TUESDAY_10), "does not name a staff member"),
        ("OTHER", iso(TUESDAY_10), "does not name a staff member"),
        ("STAFF", "tomorrow", "does not name a valid time"),
        ("STAFF", "", "does not name a valid time"),
        ("STAFF", "0001-01-01T00:00:00+05:00", "does not name a valid time"),
        ("99999999999999999999999", iso(TUESDAY_10), "does not name a staff member"),
    ],
)
def test_bad_booking_links_give_a_clear_error(
    client, member, service, staff, staff_id, start, message
):
    other = StaffFactory()
    staff_id = {"STAFF": str(staff.pk), "OTHER": str(other.pk)}.get(staff_id, staff_id)
    client.force_login(member)
    url = f"/bookings/services/physio/book/?{urlencode({'staff': staff_id, 'start': start})}"

    for response in (client.get(url), client.post(url, {"time_zone": "UTC"})):
        assert response.status_code == 400
        assert message in text(response)
    assert Booking.objects.count() == 0


def test_booking_link_with_an_unencoded_plus_in_the_time_still_works(
    client, member, service, staff
):
    client.force_login(member)
    url = f"/bookings/services/physio/book/?staff={staff.pk}&start=2026-11-24T09:00:00+00:00"

    response = client.get(url)

    assert response.status_code == 200
    assert "Tuesday 24 November 2026, 10:00–11:00 (Europe/Rome)" in text(response)


def test_unknown_service_is_not_found(client, member):
    client.force_login(member)

    assert client.get("/bookings/services/nothing/book/?staff=1&start=x").status_code == 404


def test_booking_too_soon_is_refused_with_the_reason(client, member, service, staff):
    client.force_login(member)
    soon = dt.datetime(2026, 11, 23, 8, 30, tzinfo=ROME)

    response = client.post(book_url(service, staff.pk, soon), {"time_zone": "Europe/Rome"})

    assert response.status_code == 409
    assert "at least 60 minutes ahead" in text(response)
    assert Booking.objects.count() == 0


# Booking a class seat --------------------------------------------------------------------


@pytest.fixture
def session():
    group_class = GroupClassFactory(name="Morning yoga", capacity=2, location="Studio 1")
    return ClassSessionFactory(group_class=group_class, start=TUESDAY_10)


def test_anonymous_visitor_is_sent_to_log_in_before_taking_a_seat(client, session):
    url = f"/bookings/sessions/{session.pk}/book/?next=/classes/"

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={quote(url, safe='/')}"


def test_member_takes_a_seat_through_the_confirm_view(client, member, session):
    client.force_login(member)
    url = f"/bookings/sessions/{session.pk}/book/?next=/classes/"

    page = text(client.get(url))
    assert "Morning yoga" in page and "Studio 1" in page
    assert "Tuesday 24 November 2026, 10:00–11:00 (Europe/Rome)" in page
    assert "Seats left" in page

    response = client.post(url, {"time_zone": "Europe/Rome", "notes": ""})

    booking = Booking.objects.get()
    assert response["Location"] == f"/bookings/{booking.reference}/"
    assert booking.session == session and booking.member == member


def test_full_session_says_so_and_writes_nothing(client, member, session):
    SeatFactory.create_batch(2, session=session)
    client.force_login(member)
    url = f"/bookings/sessions/{session.pk}/book/?next=/classes/"

    page = client.get(url)
    assert "this session is full" in text(page)
    assert 'name="notes"' not in text(page)

    response = client.post(url, {"time_zone": "Europe/Rome"})

    assert response.status_code == 409
    assert "this session is full" in text(response)
    assert 'href="/classes/"' in text(response)
    assert Booking.objects.count() == 2


def test_second_seat_in_the_same_session_points_to_the_first(client, member, session):
    seat = SeatFactory(session=session, member=member)
    client.force_login(member)

    content = text(client.get(f"/bookings/sessions/{session.pk}/book/"))

    assert "You already have a place in this session." in content
    assert f'href="/bookings/{seat.reference}/"' in content


def test_unknown_session_is_not_found(client, member):
    client.force_login(member)

    assert client.get("/bookings/sessions/999999/book/").status_code == 404
    assert client.get("/bookings/sessions/99999999999999999999999/book/").status_code == 404


# A member's booking ------------------------------------------------------------------------


@pytest.fixture
def booking(member, service, staff):
    return AppointmentFactory(
        member=member,
        service=service,
        staff=staff,
        start=dt.datetime(2026, 11, 26, 15, 0, tzinfo=ROME),
        time_zone="America/New_York",
        price=service.price,
        currency="EUR",
        payment_status="pending",
    )


ACTIONS = ["booking_detail", "cancel_booking", "reschedule_booking", "booking_ics"]


@pytest.mark.parametrize("name", ACTIONS)
def test_booking_pages_are_not_found_for_another_member(client, booking, name):
    client.force_login(UserFactory())

    assert (
        client.get(reverse(f"wagtail_bookings_vc:{name}", args=[booking.reference])).status_code
        == 404
    )
    if name in ("cancel_booking", "reschedule_booking"):
        url = reverse(f"wagtail_bookings_vc:{name}", args=[booking.reference])
        assert client.post(url).status_code == 404
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED


@pytest.mark.parametrize("name", ACTIONS)
def test_booking_pages_of_an_unknown_reference_are_not_found(client, member, name):
    client.force_login(member)

    assert (
        client.get(reverse(f"wagtail_bookings_vc:{name}", args=["NOSUCHREF234"])).status_code == 404
    )


@pytest.mark.parametrize("reference", ["REAL", "NOSUCHREF234"])
def test_anonymous_visitor_is_asked_to_log_in_whether_or_not_the_booking_exists(
    client, booking, reference
):
    reference = booking.reference if reference == "REAL" else reference

    response = client.get(f"/bookings/{reference}/")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/bookings/{reference}/"


def test_booking_detail_shows_what_when_who_and_the_actions(client, member, booking):
    client.force_login(member)

    content = text(client.get(f"/bookings/{booking.reference}/"))

    assert "Physiotherapy" in content
    # 15:00 in Rome is 9:00 in New York, the member's zone.
    assert "Thursday 26 November 2026, 09:00–10:00 (America/New_York)" in content
    assert "Anna Rossi" in content
    assert "In person" in content
    # Its state in words: a priced booking not paid yet.
    assert '<span class="bvc-badge bvc-badge--awaiting-payment">Awaiting payment</span>' in content
    assert "40.00 EUR" in content
    assert f'href="/bookings/{booking.reference}/calendar.ics" download' in content
    assert f'href="/bookings/{booking.reference}/cancel/"' in content
    assert f'href="/bookings/{booking.reference}/reschedule/"' in content


def test_booking_detail_explains_why_it_can_no_longer_be_changed(client, member, service, staff):
    soon = AppointmentFactory(
        member=member,
        service=service,
        staff=staff,
        start=dt.datetime(2026, 11, 23, 15, 0, tzinfo=ROME),
    )
    client.force_login(member)

    content = text(client.get(f"/bookings/{soon.reference}/"))

    assert "/cancel/" not in content and "/reschedule/" not in content
    assert "up to 24 hours before the start" in content


def test_booking_downloads_as_a_calendar_file(client, member, booking):
    client.force_login(member)

    response = client.get(f"/bookings/{booking.reference}/calendar.ics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert f"booking-{booking.reference}.ics" in response["Content-Disposition"]
    body = response.content.decode()
    assert "BEGIN:VCALENDAR" in body
    assert "METHOD:PUBLISH" in body
    assert booking.reference in body


# Cancelling ---------------------------------------------------------------------------------


def test_member_cancels_through_the_views(client, member, booking):
    client.force_login(member)
    url = f"/bookings/{booking.reference}/cancel/"

    page = text(client.get(url))
    assert "Do you really want to cancel" in page
    assert "csrfmiddlewaretoken" in page

    response = client.post(url)

    assert response["Location"] == f"/bookings/{booking.reference}/"
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    detail = text(client.get(response["Location"]))
    assert "Your booking has been cancelled." in detail
    assert "Cancelled" in detail
    assert "/cancel/" not in detail


def test_cancel_goes_back_to_a_safe_next_page(client, member, booking):
    client.force_login(member)

    response = client.post(f"/bookings/{booking.reference}/cancel/?next=/my-bookings/")

    assert response["Location"] == "/my-bookings/"


def test_cancelling_after_the_cut_off_is_refused(client, member, service, staff):
    soon = AppointmentFactory(
        member=member,
        service=service,
        staff=staff,
        start=dt.datetime(2026, 11, 23, 15, 0, tzinfo=ROME),
    )
    client.force_login(member)
    url = f"/bookings/{soon.reference}/cancel/"

    page = text(client.get(url))
    assert "up to 24 hours before the start" in page
    assert "Yes, cancel it" not in page

    response = client.post(url)

    assert response.status_code == 409
    soon.refresh_from_db()
    assert soon.status == BookingStatus.CONFIRMED


# Rescheduling -------------------------------------------------------------------------------


def test_member_reschedules_an_appointment_through_the_views(
    client, member, booking, service, staff
):
    service.slot_interval_minutes = 30
    service.save()
    client.force_login(member)
    url = f"/bookings/{booking.reference}/reschedule/"

    picker = text(client.get(url))
    assert "Pick a new time" in picker
    # The booking does not stand in its own way, but its current slot is not offered.
    assert f'value="{staff.pk}@2026-11-26T14:30:00Z"' in picker
    assert f'value="{staff.pk}@2026-11-26T14:00:00Z"' not in picker
    # The times are shown in the member's own zone, and sent back here.
    assert "Times are in America/New_York time" in picker
    assert "data-bvc-zone-auto" not in picker  # The member's zone, not the browser's.
    assert f'<form class="bvc-slot-form" method="get" action="{url}"' in picker
    assert '<input type="hidden" name="tz" value="America/New_York">' in picker
    new_start = dt.datetime(2026, 11, 27, 11, 0, tzinfo=ROME)
    choice = (
        f"{url}?{urlencode({'tz': 'America/New_York', 'slot': f'{staff.pk}@{iso(new_start)}'})}"
    )

    confirm = text(client.get(choice))
    assert "Friday 27 November 2026, 05:00–06:00 (America/New_York)" in confirm
    assert "Move my booking" in confirm

    response = client.post(choice)

    assert response["Location"] == f"/bookings/{booking.reference}/"
    booking.refresh_from_db()
    assert booking.start == new_start
    assert "Your booking has been moved." in text(client.get(response["Location"]))


def test_rescheduling_to_a_taken_time_is_refused(client, member, booking, service, staff):
    taken = dt.datetime(2026, 11, 27, 11, 0, tzinfo=ROME)
    AppointmentFactory(service=service, staff=staff, start=taken)
    client.force_login(member)
    query = urlencode({"staff": staff.pk, "start": iso(taken)})
    url = f"/bookings/{booking.reference}/reschedule/?{query}"

    page = text(client.get(url))
    assert "no longer available" in page
    assert "Move my booking" not in page

    response = client.post(url)

    assert response.status_code == 409
    assert "just been taken" in text(response)
    assert "Pick another time" in text(response)
    booking.refresh_from_db()
    assert booking.start == dt.datetime(2026, 11, 26, 15, 0, tzinfo=ROME)


def test_rescheduling_with_a_bad_link_is_a_clear_error(client, member, booking):
    client.force_login(member)

    response = client.post(f"/bookings/{booking.reference}/reschedule/?staff=999999&start=x")

    assert response.status_code == 400
    assert "does not name a staff member" in text(response)


def test_rescheduling_without_a_choice_changes_nothing(client, member, booking):
    client.force_login(member)

    response = client.post(f"/bookings/{booking.reference}/reschedule/")

    assert response.status_code == 400
    assert "Please pick where to move your booking first." in text(response)
    booking.refresh_from_db()
    assert booking.sequence == 0


def test_rescheduling_after_the_cut_off_is_refused(client, member, service, staff):
    soon = AppointmentFactory(
        member=member,
        service=service,
        staff=staff,
        start=dt.datetime(2026, 11, 23, 15, 0, tzinfo=ROME),
    )
    client.force_login(member)
    url = f"/bookings/{soon.reference}/reschedule/?staff={staff.pk}&start={iso(TUESDAY_10)}"

    assert "Pick a new time" not in text(client.get(f"/bookings/{soon.reference}/reschedule/"))
    response = client.post(url)

    assert response.status_code == 409
    assert "up to 24 hours before the start" in text(response)
    soon.refresh_from_db()
    assert soon.start == dt.datetime(2026, 11, 23, 15, 0, tzinfo=ROME)


def test_member_moves_a_class_booking_to_another_session(client, member):
    yoga = GroupClassFactory(name="Yoga")
    first = ClassSessionFactory(group_class=yoga, start=TUESDAY_10)
    second = ClassSessionFactory(group_class=yoga, start=TUESDAY_10 + dt.timedelta(days=2))
    ClassSessionFactory(start=TUESDAY_10)  # another class: not offered
    seat = SeatFactory(session=first, member=member)
    client.force_login(member)
    url = f"/bookings/{seat.reference}/reschedule/"

    picker = text(client.get(url))
    assert f'href="{url}?session={second.pk}"' in picker
    assert f"session={first.pk}" not in picker
    assert picker.count('class="bvc-session"') == 1

    response = client.post(f"{url}?session={second.pk}")

    assert response["Location"] == f"/bookings/{seat.reference}/"
    seat.refresh_from_db()
    assert seat.session == second


def test_moving_to_a_full_session_is_refused(client, member):
    yoga = GroupClassFactory(name="Yoga", capacity=1)
    first = ClassSessionFactory(group_class=yoga, start=TUESDAY_10)
    full = ClassSessionFactory(group_class=yoga, start=TUESDAY_10 + dt.timedelta(days=2))
    SeatFactory(session=full)
    seat = SeatFactory(session=first, member=member)
    client.force_login(member)

    url = f"/bookings/{seat.reference}/reschedule/?session={full.pk}"
    assert "this session is full" in text(client.get(url))

    response = client.post(url)

    assert response.status_code == 409
    assert "this session is full" in text(response)
    seat.refresh_from_db()
    assert seat.session == first


# The slot picker's form, time zones and accessible errors ------------------------------------


def slot_choice(service, staff, start, **extra) -> str:
    """The confirmation URL the widget's form goes to with a time picked."""
    query = {"next": "/book/", **extra, "slot": f"{staff.pk}@{iso(start)}"}
    return f"/bookings/services/{service.slug}/book/?{urlencode(query)}"


def test_time_picked_in_the_visitors_zone_is_confirmed_and_booked_in_it(
    client, member, service, staff, django_capture_on_commit_callbacks, mailoutbox
):
    client.force_login(member)
    url = slot_choice(service, staff, TUESDAY_10, tz="Asia/Tokyo")

    page = text(client.get(url))

    assert "Tuesday 24 November 2026, 18:00–19:00 (Asia/Tokyo)" in page
    assert '<option value="Asia/Tokyo" selected>' in page
    # The zone is known: the page's script does not replace it with the browser's.
    assert "data-bvc-detect-zone" not in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"time_zone": "Asia/Tokyo", "notes": ""})

    booking = Booking.objects.get()
    assert response["Location"] == f"/bookings/{booking.reference}/"
    assert (booking.staff, booking.start, booking.time_zone) == (staff, TUESDAY_10, "Asia/Tokyo")
    # The confirmation email and its calendar file agree with the page.
    (email,) = [message for message in mailoutbox if member.email in message.to[0]]
    assert "18:00" in email.body and "Asia/Tokyo" in email.body
    assert "Tuesday 24 November 2026, 18:00–19:00 (Asia/Tokyo)" in text(
        client.get(response["Location"])
    )
    ics = client.get(f"/bookings/{booking.reference}/calendar.ics").content.decode()
    assert "DTSTART:20261124T090000Z" in ics


def test_confirm_page_without_a_zone_lets_the_browser_offer_its_own(client, member, service, staff):
    client.force_login(member)

    page = text(client.get(slot_choice(service, staff, TUESDAY_10, tz="Not/AZone")))

    # An unknown zone is ignored: the staff member's zone is shown, and named.
    assert "Tuesday 24 November 2026, 10:00–11:00 (Europe/Rome)" in page
    assert "data-bvc-detect-zone" in page


def test_continuing_without_a_time_asks_to_pick_one(client, member, service):
    client.force_login(member)

    response = client.get(f"/bookings/services/{service.slug}/book/?next=%2Fbook%2F")

    assert response.status_code == 400
    content = text(response)
    assert "Please pick a time first." in content
    assert 'href="/book/"' in content


def test_form_errors_are_tied_to_their_fields(client, member, service, staff):
    client.force_login(member)

    response = client.post(
        slot_choice(service, staff, TUESDAY_10), {"time_zone": "Nowhere/Special", "notes": ""}
    )

    assert response.status_code == 400
    content = response.content.decode()
    select = re.search(r'<select name="time_zone"[^>]*>', content)[0]
    assert 'aria-invalid="true"' in select
    assert 'aria-describedby="id_time_zone_helptext id_time_zone_error"' in select
    assert 'id="id_time_zone_error"' in content and 'id="id_time_zone_helptext"' in content
    assert 'role="alert"' in content
    assert Booking.objects.count() == 0


# Add to calendar -------------------------------------------------------------------------------


def test_booking_detail_offers_to_add_it_to_a_calendar(client, member, booking):
    client.force_login(member)

    content = text(client.get(f"/bookings/{booking.reference}/"))

    assert "Add to your calendar" in content
    assert 'href="https://calendar.google.com/calendar/render?action=TEMPLATE' in content
    assert 'href="https://outlook.live.com/calendar/0/deeplink/compose?' in content
    assert 'href="https://outlook.office.com/calendar/0/deeplink/compose?' in content
    assert "dates=20261126T140000Z%2F20261126T150000Z" in content
    assert f"%2Fbookings%2F{booking.reference}%2F" in content


def test_cancelled_booking_offers_only_to_remove_it_from_a_calendar(client, member, booking):
    booking.status = BookingStatus.CANCELLED
    booking.save()
    client.force_login(member)

    content = text(client.get(f"/bookings/{booking.reference}/"))

    assert "calendar.google.com" not in content and "outlook." not in content
    assert "Remove from your calendar (.ics)" in content
    assert '<span class="bvc-badge bvc-badge--cancelled">Cancelled</span>' in content
