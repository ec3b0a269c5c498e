"""The online-meetings report (R24): every meeting, filters, exports and Retry."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from wagtail_bookings_vc.models import Meeting, MeetingState

from .conftest import make_default_account
from .factories import AppointmentFactory, SeatFactory, ServiceFactory, StaffFactory

REPORT = "wagtail_bookings_vc_reports:online_meetings"
RESULTS = "wagtail_bookings_vc_reports:online_meetings_results"
BULK_RETRY = "wagtail_bookings_vc_reports:bulk_retry"

SECRET_JOIN_URL = "https://meet.example.com/secret-room-4711"
SECRET_HOST_URL = "https://meet.example.com/secret-room-4711?host=1"
SECRET_PASSCODE = "pass-9876"


def report_url(**params: str) -> str:
    url = reverse(REPORT)
    if params:
        from urllib.parse import urlencode

        url += "?" + urlencode(params)
    return url


def retry_url(meeting: Meeting) -> str:
    return reverse("wagtail_bookings_vc_reports:retry", args=[meeting.pk])


def appointment_meeting(**fields) -> Meeting:
    """An online appointment and its meeting; ``fields`` go to the meeting."""
    booking_fields = {
        key.removeprefix("booking__"): fields.pop(key)
        for key in list(fields)
        if key.startswith("booking__")
    }
    booking = AppointmentFactory(service=ServiceFactory(online=True), **booking_fields)
    fields.setdefault("provider", "jitsi")
    return Meeting.objects.create(booking=booking, **fields)


def session_meeting(seats: int = 2, **fields) -> Meeting:
    """A class session with ``seats`` confirmed seats, and the session's shared meeting."""
    first = SeatFactory(session__group_class__online=True)
    for _seat in range(seats - 1):
        SeatFactory(session=first.session)
    fields.setdefault("provider", "jitsi")
    return Meeting.objects.create(session=first.session, **fields)


def column_headings(content: str) -> list[str]:
    """The report table's column headings, as a user reads them."""
    start = content.index('<table class="listing')
    table = content[start : content.index("</table>", start)]
    cells = re.findall(r"<th\b[^>]*>(.*?)</th>", table, flags=re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


def retry_forms(content: str) -> list[str]:
    return re.findall(r'<form[^>]*class="bvc-retry".*?</form>', content, flags=re.DOTALL)


def messages_of(response) -> list[str]:
    return [str(message).strip() for message in get_messages(response.wsgi_request)]


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "password")


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def viewer(django_user_model):
    """An admin user who may see bookings but not change them."""
    user = django_user_model.objects.create_user("viewer", password="password")
    user.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_booking"),
    )
    return user


@pytest.fixture
def viewer_client(viewer):
    client = Client()
    client.force_login(viewer)
    return client


# The listing -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_report_lists_every_meeting_with_its_columns(admin_client):
    failed = appointment_meeting(
        booking__member_name="Ada Lovelace",
        booking__staff=StaffFactory(name="Grace Hopper"),
        state=MeetingState.FAILED,
        attempts=3,
        last_error="The provider refused the meeting: the account's plan allows no more.",
    )
    shared = session_meeting(seats=3, state=MeetingState.READY)
    shared.session.group_class.staff.name = "Alan Turing"
    shared.session.group_class.staff.save()

    response = admin_client.get(report_url())

    assert response.status_code == 200
    content = response.content.decode()
    assert "Online meetings" in content
    assert column_headings(content) == [
        "Booking",
        "Member",
        "Staff",
        "Provider",
        "Start",
        "State",
        "Attempts",
        "Next attempt",
        "Last error",
    ]
    # An appointment: its reference links to the booking in the admin.
    booking = failed.booking
    inspect = reverse("wagtailsnippets_wagtail_bookings_vc_booking:inspect", args=[booking.pk])
    assert f'href="{inspect}"' in content
    assert booking.reference in content
    assert booking.service.name in content
    assert "Ada Lovelace" in content
    assert "Grace Hopper" in content
    assert "Jitsi Meet" in content
    assert "Failed" in content
    assert "the account&#x27;s plan allows no more" in content
    # A class session: one shared meeting, counted by its attendees.
    assert "Class session" in content
    assert "3 attendees" in content
    assert "Alan Turing" in content
    assert shared.session.group_class.name in content
    assert "Ready" in content


@pytest.mark.django_db
def test_the_start_is_a_date_and_time_in_the_admin_users_time_zone(admin_client, admin):
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(admin)
    profile.current_time_zone = "Asia/Tokyo"
    profile.save()
    start = dt.datetime(2027, 1, 15, 22, 30, tzinfo=dt.UTC)
    appointment_meeting(booking__start=start)

    content = admin_client.get(report_url()).content.decode()

    # 22:30 UTC is 7:30 the next morning in Tokyo.
    assert "01/16/2027 7:30 a.m." in content
    assert " ago" not in content


@pytest.mark.django_db
def test_an_unknown_provider_is_shown_by_its_id(admin_client):
    appointment_meeting(provider="retired_vendor", state=MeetingState.FAILED)
    content = admin_client.get(report_url()).content.decode()
    assert "retired_vendor" in content


@pytest.mark.django_db
def test_the_report_never_shows_join_links_host_links_or_passcodes(admin_client):
    appointment_meeting(
        state=MeetingState.READY,
        join_url=SECRET_JOIN_URL,
        host_url=SECRET_HOST_URL,
        passcode=SECRET_PASSCODE,
        extra={"start_url": SECRET_HOST_URL},
    )
    content = admin_client.get(report_url()).content.decode()
    assert "secret-room-4711" not in content
    assert SECRET_PASSCODE not in content


@pytest.mark.django_db
def test_filters_by_state(admin_client):
    failed = appointment_meeting(state=MeetingState.FAILED)
    ready = appointment_meeting(state=MeetingState.READY)

    content = admin_client.get(report_url(state="failed")).content.decode()

    assert failed.booking.reference in content
    assert ready.booking.reference not in content


@pytest.mark.django_db
def test_filters_by_provider(admin_client):
    jitsi = appointment_meeting(provider="jitsi")
    other = appointment_meeting(provider="retired_vendor")

    content = admin_client.get(report_url(provider="retired_vendor")).content.decode()

    assert other.booking.reference in content
    assert jitsi.booking.reference not in content


@pytest.mark.django_db
def test_filters_by_staff_for_appointments_and_class_sessions(admin_client):
    staff = StaffFactory(name="Grace Hopper")
    theirs = appointment_meeting(booking__staff=staff)
    their_class = session_meeting()
    their_class.session.group_class.staff = staff
    their_class.session.group_class.save()
    someone_elses = appointment_meeting()

    response = admin_client.get(report_url(staff=str(staff.pk)))

    listed = {meeting.pk for meeting in response.context["object_list"]}
    assert listed == {theirs.pk, their_class.pk}
    assert someone_elses.booking.reference not in response.content.decode()


@pytest.mark.django_db
def test_filters_by_start_date_range(admin_client):
    in_march = appointment_meeting(booking__start=dt.datetime(2027, 3, 10, 9, tzinfo=dt.UTC))
    in_april = appointment_meeting(booking__start=dt.datetime(2027, 4, 10, 9, tzinfo=dt.UTC))
    session_in_march = session_meeting()
    session_in_march.session.start = dt.datetime(2027, 3, 20, 18, tzinfo=dt.UTC)
    session_in_march.session.save()

    response = admin_client.get(report_url(start_from="2027-03-01", start_to="2027-03-31"))

    listed = {meeting.pk for meeting in response.context["object_list"]}
    assert listed == {in_march.pk, session_in_march.pk}
    assert in_april.booking.reference not in response.content.decode()


@pytest.mark.django_db
def test_the_results_view_answers_the_filters_refresh(admin_client):
    failed = appointment_meeting(state=MeetingState.FAILED)
    response = admin_client.get(reverse(RESULTS), {"state": "failed", "_w_filter_fragment": "1"})
    assert response.status_code == 200
    assert failed.booking.reference in response.content.decode()


@pytest.mark.django_db
def test_no_meetings_says_so(admin_client):
    content = admin_client.get(report_url()).content.decode()
    assert "There are no online meetings yet." in content


@pytest.mark.django_db
def test_the_report_is_in_the_reports_menu(admin_client):
    content = admin_client.get(reverse("wagtailadmin_home")).content.decode()
    assert reverse(REPORT) in content


# Exports -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_csv_export_has_headings_and_rows_and_no_secrets(admin_client, admin):
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(admin)
    # Not the site's time zone (Europe/Rome): the CSV is in the admin user's.
    profile.current_time_zone = "Asia/Tokyo"
    profile.save()
    failed = appointment_meeting(
        booking__member_name="Ada Lovelace",
        booking__start=dt.datetime(2027, 6, 1, 7, tzinfo=dt.UTC),
        state=MeetingState.FAILED,
        attempts=2,
        last_error="No video conferencing account is connected.",
    )
    appointment_meeting(
        state=MeetingState.READY,
        join_url=SECRET_JOIN_URL,
        host_url=SECRET_HOST_URL,
        passcode=SECRET_PASSCODE,
    )
    session_meeting(seats=2, state=MeetingState.PENDING)

    response = admin_client.get(report_url(export="csv"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "online-meetings-" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "Booking",
        "Service or class",
        "Member",
        "Attendees",
        "Staff",
        "Provider",
        "Start (Asia/Tokyo)",
        "State",
        "Attempts",
        "Next attempt (Asia/Tokyo)",
        "Last error",
    ]
    assert len(rows) == 4
    by_booking = {row[0]: row for row in rows[1:]}
    row = by_booking[failed.booking.reference]
    assert row[1] == failed.booking.service.name
    assert row[2] == "Ada Lovelace"
    assert row[4] == failed.booking.staff.name
    assert row[5] == "Jitsi Meet"
    # 07:00 UTC is 16:00 in Tokyo.
    assert row[6] == "2027-06-01 16:00"
    assert row[7:] == ["Failed", "2", "", "No video conferencing account is connected."]
    assert by_booking["Class session"][3] == "2"
    assert "secret-room-4711" not in text
    assert SECRET_PASSCODE not in text


@pytest.mark.django_db
def test_csv_export_keeps_the_filters(admin_client):
    failed = appointment_meeting(state=MeetingState.FAILED)
    ready = appointment_meeting(state=MeetingState.READY)

    response = admin_client.get(report_url(state="failed", export="csv"))

    text = b"".join(response.streaming_content).decode()
    assert failed.booking.reference in text
    assert ready.booking.reference not in text


@pytest.mark.django_db
def test_xlsx_export_is_a_spreadsheet(admin_client):
    from openpyxl import load_workbook

    failed = appointment_meeting(state=MeetingState.FAILED, join_url=SECRET_JOIN_URL)

    response = admin_client.get(report_url(export="xlsx"))

    assert response.status_code == 200
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows[0][0] == "Booking"
    assert rows[1][0] == failed.booking.reference
    assert rows[1][7] == "Failed"
    assert isinstance(rows[1][6], dt.datetime)
    assert all(SECRET_JOIN_URL not in str(value) for row in rows for value in row)


# Retry -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_retry_makes_a_failed_meeting_again(admin_client, django_capture_on_commit_callbacks):
    make_default_account("jitsi")
    meeting = appointment_meeting(
        state=MeetingState.FAILED,
        provider="",
        attempts=8,
        last_error="No video conferencing account is connected: connect one, then retry.",
    )
    listing = admin_client.get(report_url()).content.decode()
    assert retry_url(meeting) in listing

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(retry_url(meeting), {"next": report_url(state="failed")})

    assert response.status_code == 302
    assert response["Location"] == report_url(state="failed")
    assert callbacks, "the retry enqueued no job"
    meeting.refresh_from_db()
    # The job ran inline: the meeting was made at Jitsi Meet.
    assert meeting.state == MeetingState.READY
    assert meeting.provider == "jitsi"
    assert meeting.join_url
    assert meeting.last_error == ""
    assert meeting.attempts == 0
    assert messages_of(response) == [
        f"The meeting of booking {meeting.booking.reference} will be tried again."
    ]


@pytest.mark.django_db
def test_retry_sets_the_meeting_pending_until_its_job_runs(admin_client):
    meeting = appointment_meeting(state=MeetingState.FAILED, attempts=8, last_error="Gone.")

    # Outside a commit the job waits: the meeting is pending, due now.
    response = admin_client.post(retry_url(meeting))

    assert response.status_code == 302
    assert response["Location"] == reverse(REPORT)
    meeting.refresh_from_db()
    assert meeting.state == MeetingState.PENDING
    assert meeting.attempts == 0
    assert meeting.last_error == ""
    assert meeting.next_attempt_at is not None


@pytest.mark.django_db
def test_retry_of_a_meeting_that_has_not_failed_changes_nothing(admin_client):
    meeting = appointment_meeting(state=MeetingState.READY, join_url=SECRET_JOIN_URL)

    response = admin_client.post(retry_url(meeting))

    meeting.refresh_from_db()
    assert meeting.state == MeetingState.READY
    assert "has not failed" in messages_of(response)[0]


@pytest.mark.django_db
def test_retry_is_offered_only_on_meetings_the_job_gave_up_on(admin_client):
    failed = appointment_meeting(state=MeetingState.FAILED)
    ready = appointment_meeting(state=MeetingState.READY)
    change_failed = appointment_meeting(
        state=MeetingState.READY, last_error="The provider refused the new time."
    )

    content = admin_client.get(report_url()).content.decode()

    assert retry_url(failed) in content
    assert retry_url(change_failed) in content
    assert retry_url(ready) not in content


@pytest.mark.django_db
def test_retry_of_a_failed_change_tries_the_change_again(admin_client):
    meeting = appointment_meeting(
        state=MeetingState.READY, last_error="The provider refused the new time.", attempts=8
    )

    admin_client.post(retry_url(meeting))

    meeting.refresh_from_db()
    assert meeting.last_error == ""
    assert meeting.attempts == 0


@pytest.mark.django_db
def test_retry_is_a_post(admin_client):
    meeting = appointment_meeting(state=MeetingState.FAILED)
    assert admin_client.get(retry_url(meeting)).status_code == 405
    meeting.refresh_from_db()
    assert meeting.state == MeetingState.FAILED


@pytest.mark.django_db
def test_retry_needs_the_csrf_token(admin):
    meeting = appointment_meeting(state=MeetingState.FAILED)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)

    assert client.post(retry_url(meeting)).status_code == 403
    meeting.refresh_from_db()
    assert meeting.state == MeetingState.FAILED

    # The report's Retry form carries the token.
    [form] = retry_forms(client.get(report_url()).content.decode())
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = client.post(retry_url(meeting), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.state == MeetingState.PENDING


@pytest.mark.django_db
def test_bulk_retry_tries_every_failed_meeting_the_filters_match(
    admin_client, django_capture_on_commit_callbacks
):
    make_default_account("jitsi")
    staff = StaffFactory()
    failed = [
        appointment_meeting(booking__staff=staff, state=MeetingState.FAILED, last_error="Down.")
        for _ in range(3)
    ]
    other_staff = appointment_meeting(state=MeetingState.FAILED, last_error="Down.")
    ready = appointment_meeting(booking__staff=staff, state=MeetingState.READY)

    listing = admin_client.get(report_url(staff=str(staff.pk))).content.decode()
    bulk_url = reverse(BULK_RETRY) + f"?staff={staff.pk}"
    assert bulk_url.replace("&", "&amp;") in listing

    confirm = admin_client.get(bulk_url)
    assert confirm.status_code == 200
    assert "3 failed meetings match" in confirm.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(bulk_url)

    assert response.status_code == 302
    assert response["Location"] == report_url(staff=str(staff.pk))
    assert messages_of(response) == ["3 meetings will be tried again."]
    for meeting in failed:
        meeting.refresh_from_db()
        assert meeting.state == MeetingState.READY
    other_staff.refresh_from_db()
    assert other_staff.state == MeetingState.FAILED
    ready.refresh_from_db()
    assert ready.state == MeetingState.READY


@pytest.mark.django_db
def test_bulk_retry_with_nothing_failed_says_so(admin_client):
    appointment_meeting(state=MeetingState.READY)

    listing = admin_client.get(report_url()).content.decode()
    assert reverse(BULK_RETRY) not in listing

    confirm = admin_client.get(reverse(BULK_RETRY)).content.decode()
    assert "No failed meetings match" in confirm
    response = admin_client.post(reverse(BULK_RETRY))
    assert messages_of(response) == ["No failed meetings match the filters."]


# Permissions -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_viewer_sees_the_report_without_retry(viewer_client):
    failed = appointment_meeting(state=MeetingState.FAILED)

    response = viewer_client.get(report_url())

    assert response.status_code == 200
    content = response.content.decode()
    assert failed.booking.reference in content
    assert retry_url(failed) not in content
    assert reverse(BULK_RETRY) not in content
    assert retry_forms(content) == []
    assert "Retry" not in column_headings(content)


@pytest.mark.django_db
def test_a_viewer_may_not_retry(viewer_client):
    failed = appointment_meeting(state=MeetingState.FAILED)

    single = viewer_client.post(retry_url(failed))
    bulk = viewer_client.post(reverse(BULK_RETRY))
    confirm = viewer_client.get(reverse(BULK_RETRY))

    for response in (single, bulk, confirm):
        assert response.status_code == 302
        assert response["Location"] == reverse("wagtailadmin_home")
    failed.refresh_from_db()
    assert failed.state == MeetingState.FAILED


@pytest.mark.django_db
def test_the_report_needs_the_view_permission(client, django_user_model):
    editor = django_user_model.objects.create_user("editor", password="password")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(editor)
    appointment_meeting(state=MeetingState.FAILED)

    response = client.get(report_url())

    assert response.status_code == 302
    assert response["Location"] == reverse("wagtailadmin_home")
    assert "do not have permission" in messages_of(response)[0]
    assert client.get(report_url(export="csv")).status_code == 302
    home = client.get(reverse("wagtailadmin_home")).content.decode()
    assert reverse(REPORT) not in home


@pytest.mark.django_db
def test_a_user_who_may_change_bookings_may_retry(client, django_user_model):
    manager = django_user_model.objects.create_user("manager", password="password")
    manager.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_booking"),
        Permission.objects.get(codename="change_booking"),
    )
    client.force_login(manager)
    failed = appointment_meeting(state=MeetingState.FAILED)

    assert retry_url(failed) in client.get(report_url()).content.decode()
    client.post(retry_url(failed))

    failed.refresh_from_db()
    assert failed.state == MeetingState.PENDING


# Queries -----------------------------------------------------------------------------


def _report_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(report_url())
    assert response.status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_report_makes_the_same_few_queries_for_any_number_of_rows(
    admin_client, django_assert_max_num_queries
):
    appointment_meeting(state=MeetingState.FAILED)
    session_meeting(state=MeetingState.READY)
    admin_client.get(report_url())  # warm the session and user profile
    few = _report_queries(admin_client)

    for index in range(10):
        appointment_meeting(state=MeetingState.FAILED if index % 2 else MeetingState.READY)
        session_meeting(seats=3, state=MeetingState.PENDING)

    with django_assert_max_num_queries(few):
        response = admin_client.get(report_url())
    assert len(response.context["object_list"]) == 22
    with django_assert_max_num_queries(few):
        response = admin_client.get(report_url(export="csv"))
        b"".join(response.streaming_content)


@pytest.mark.django_db
def test_the_start_filter_uses_the_admin_users_dates(admin_client, admin):
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(admin)
    profile.current_time_zone = "Pacific/Auckland"
    profile.save()
    # 20:00 UTC on 31 March is already 1 April in Auckland.
    late = appointment_meeting(booking__start=dt.datetime(2027, 3, 31, 20, tzinfo=dt.UTC))

    march = admin_client.get(report_url(start_from="2027-03-01", start_to="2027-03-31"))
    april = admin_client.get(report_url(start_from="2027-04-01", start_to="2027-04-30"))

    assert late.pk not in {meeting.pk for meeting in march.context["object_list"]}
    assert late.pk in {meeting.pk for meeting in april.context["object_list"]}
    assert timezone.is_aware(late.booking.start)
