"""The booking widget and class schedule blocks, as visitors see them on a page."""

from __future__ import annotations

import datetime as dt
import html
import re
from html.parser import HTMLParser
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from wagtail.models import Site

from example_site.home.models import BodyBlock, ContentPage
from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    SeatFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from wagtail_bookings_vc.models import Booking

ROME = ZoneInfo("Europe/Rome")
# A Monday morning in Rome: the staff's day starts at 9:00, an hour from now.
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ROME)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monday_morning():
    with time_machine.travel(NOW, tick=False):
        yield


def make_page(*blocks: tuple[str, dict], slug: str = "book") -> ContentPage:
    """A live content page below the default site's root with the given body blocks."""
    root = Site.objects.get(is_default_site=True).root_page
    page = ContentPage(title="Book", slug=slug, body=list(blocks))
    root.add_child(instance=page)
    return page


class SlotForm(HTMLParser):
    """The slot picker's form as a browser sees it: its action, hidden fields and times."""

    def __init__(self, content: str) -> None:
        super().__init__()
        self.action = ""
        self.hidden: list[tuple[str, str]] = []
        self.radios: list[dict[str, str]] = []
        self.labels: dict[str, str] = {}
        self._inside = False
        self._label_for = ""
        self.feed(content)

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if tag == "form" and "data-bvc-slot-form" in attrs:
            self._inside, self.action = True, attrs["action"]
        elif self._inside and tag == "input" and attrs.get("type") == "hidden":
            self.hidden.append((attrs["name"], attrs["value"]))
        elif self._inside and tag == "input" and attrs.get("type") == "radio":
            self.radios.append(attrs)
        elif self._inside and tag == "label":
            self._label_for = attrs.get("for", "")
            self.labels[self._label_for] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False
        elif tag == "label":
            self._label_for = ""

    def handle_data(self, data):
        if self._label_for:
            self.labels[self._label_for] += data

    def url(self, radio: dict[str, str]) -> str:
        """The URL the form goes to with this time picked."""
        return f"{self.action}?{urlencode([*self.hidden, (radio['name'], radio['value'])])}"

    def label(self, radio: dict[str, str]) -> str:
        """The radio button's accessible name (its label's text)."""
        return " ".join(self.labels[radio["id"]].split())


def slot_links(content: str) -> list[str]:
    """Where the widget's form goes for each free time, in the order offered."""
    form = SlotForm(content)
    return [form.url(radio) for radio in form.radios]


def text(response) -> str:
    return response.content.decode()


def test_widget_shows_the_free_times_of_the_week_grouped_by_day(client):
    staff = StaffFactory(name="Anna Rossi")
    service = ServiceFactory(name="Physiotherapy", slug="physio", staff=[staff])
    make_page(("booking_widget", {"heading": "", "service": service}))

    response = client.get("/book/")

    assert response.status_code == 200
    content = text(response)
    assert "Book Physiotherapy" in content
    for day in ("Monday 23 November", "Friday 27 November", "Sunday 29 November"):
        assert day in content
    # Nine to five, one-hour appointments, on five weekdays.
    links = slot_links(content)
    assert len(links) == 40
    assert "Times are in Europe/Rome time" in content
    form = SlotForm(content)
    labels = [form.label(radio) for radio in form.radios]
    assert labels[0] == "09:00" and labels[7] == "16:00" and "17:00" not in labels
    assert links[0] == (
        "/bookings/services/physio/book/?next=%2Fbook%2F&tz=Europe%2FRome"
        f"&slot={staff.pk}%402026-11-23T08%3A00%3A00Z"
    )
    # Real radio buttons, one group, each with its own label; the day names the group.
    assert {radio["name"] for radio in form.radios} == {"slot"}
    assert all("required" in radio for radio in form.radios)
    assert len({radio["id"] for radio in form.radios}) == 40
    assert '<legend class="bvc-day__legend"><h4 class="bvc-day__title">Monday 23 November' in (
        content
    )


def test_widget_links_to_the_next_week_and_back(client):
    service = ServiceFactory(slug="physio", staff=[StaffFactory()])
    make_page(("booking_widget", {"heading": "", "service": service}))

    first = text(client.get("/book/"))
    assert "Previous week" not in first
    next_link = html.unescape(re.search(r'href="([^"]+)" rel="next"', first).group(1))
    assert next_link.startswith("?bvc_week=2026-11-30#bvc-widget")

    second = text(client.get("/book/" + next_link.split("#")[0]))
    assert "Monday 30 November" in second
    assert "Monday 23 November" not in second
    assert "30 November – 6 December" in second
    previous_link = html.unescape(re.search(r'href="([^"]+)" rel="prev"', second).group(1))
    assert previous_link.startswith("?bvc_week=2026-11-23")


def test_widget_never_shows_a_week_before_today(client):
    service = ServiceFactory(slug="physio", staff=[StaffFactory()])
    make_page(("booking_widget", {"heading": "", "service": service}))

    for week in ("2026-11-02", "not-a-date"):
        content = text(client.get("/book/", {"bvc_week": week}))
        assert "23 November – 29 November" in content


def test_widget_stops_at_the_end_of_the_booking_window(client):
    service = ServiceFactory(slug="physio", max_days_ahead=10, staff=[StaffFactory()])
    make_page(("booking_widget", {"heading": "", "service": service}))

    content = text(client.get("/book/", {"bvc_week": "2026-11-30"}))
    assert 'rel="next"' not in content
    assert 'rel="prev"' in content

    far = text(client.get("/book/", {"bvc_week": "9999-12-31"}))
    assert "3 December – 9 December" in far


def test_widget_without_a_service_lets_the_visitor_choose_one_first(client):
    staff = StaffFactory()
    ServiceFactory(name="Massage", slug="massage", staff=[staff], price="40.00")
    ServiceFactory(name="Nutrition", slug="nutrition", staff=[staff], online=True)
    ServiceFactory(name="Retired", slug="retired", staff=[staff], active=False)
    make_page(("booking_widget", {"heading": "Book a session", "service": None}))

    content = text(client.get("/book/"))

    assert "Book a session" in content
    assert "Choose a service" in content
    assert "Massage" in content and "40.00 EUR" in content
    assert "Nutrition" in content and "Online" in content
    assert "Retired" not in content
    assert slot_links(content) == []
    assert 'href="?bvc_service=massage#bvc-widget' in content

    chosen = text(client.get("/book/", {"bvc_service": "massage"}))
    assert len(slot_links(chosen)) == 40
    assert all(link.startswith("/bookings/services/massage/book/") for link in slot_links(chosen))
    assert "Choose another service" in chosen


def test_widget_ignores_an_unknown_or_inactive_service_in_the_link(client):
    ServiceFactory(slug="massage", staff=[StaffFactory()])
    ServiceFactory(slug="retired", staff=[StaffFactory()], active=False)
    make_page(("booking_widget", {"heading": "", "service": None}))

    for slug in ("nope", "retired"):
        content = text(client.get("/book/", {"bvc_service": slug}))
        assert "Choose a service" in content
        assert slot_links(content) == []


def test_widget_filters_by_staff_when_several_staff_give_the_service(client):
    anna = StaffFactory(name="Anna")
    marco = StaffFactory(name="Marco", hours=[(0, dt.time(14), dt.time(16))])
    service = ServiceFactory(slug="physio", staff=[anna, marco])
    make_page(("booking_widget", {"heading": "", "service": service}))

    everyone = text(client.get("/book/"))
    # The widget's ids carry its block's id where Wagtail gives one (Wagtail 8).
    staff_label = r'<label class="bvc-filter__label" for="bvc-widget(?:-[\w-]+)?-staff"'
    assert re.search(staff_label, everyone)
    assert f'<option value="{marco.pk}">Marco</option>' in everyone
    # Both are free at 14:00 on Monday: the time is offered once, and says with whom.
    assert len(slot_links(everyone)) == 40
    form = SlotForm(everyone)
    assert form.label(form.radios[5]) == "14:00 with Anna"

    only_marco = text(client.get("/book/", {"bvc_staff": marco.pk}))
    links = slot_links(only_marco)
    assert len(links) == 2
    assert all(f"slot={marco.pk}%40" in link for link in links)
    assert f'<option value="{marco.pk}" selected>' in only_marco


def test_widget_has_no_staff_filter_for_a_single_staff_member(client):
    service = ServiceFactory(slug="physio", staff=[StaffFactory()])
    make_page(("booking_widget", {"heading": "", "service": service}))

    assert "bvc_staff" not in text(client.get("/book/"))


def test_widget_names_the_staff_members_zone(client):
    staff = StaffFactory(time_zone="America/New_York")
    service = ServiceFactory(slug="physio", staff=[staff])
    make_page(("booking_widget", {"heading": "", "service": service}))

    content = text(client.get("/book/"))

    assert "Times are in America/New_York time" in content
    assert ">09:00<" in content


def test_widget_says_when_a_week_has_no_free_times(client):
    staff = StaffFactory(hours=[])
    service = ServiceFactory(slug="physio", staff=[staff])
    make_page(("booking_widget", {"heading": "", "service": service}))

    content = text(client.get("/book/"))

    assert "No free times this week." in content
    assert "Try the next week" in content
    assert slot_links(content) == []


def test_widget_of_an_inactive_service_says_it_cannot_be_booked(client):
    service = ServiceFactory(slug="physio", active=False, staff=[StaffFactory()])
    make_page(("booking_widget", {"heading": "", "service": service}))

    content = text(client.get("/book/"))

    assert "cannot be booked online" in content
    assert slot_links(content) == []


def test_widget_renders_without_a_request():
    service = ServiceFactory(slug="physio", staff=[StaffFactory()])
    block = BodyBlock().child_blocks["booking_widget"]

    rendered = block.render(block.to_python({"heading": "", "service": service.pk}))

    assert "Monday 23 November" in rendered
    assert SlotForm(rendered).action == "/bookings/services/physio/book/"
    assert len(slot_links(rendered)) == 40


def test_class_schedule_shows_seats_left_and_full(client):
    yoga = GroupClassFactory(name="Morning yoga", capacity=10, location="Studio 1")
    full = ClassSessionFactory(group_class=yoga, start=NOW + dt.timedelta(days=1), capacity=2)
    SeatFactory.create_batch(2, session=full)
    open_session = ClassSessionFactory(group_class=yoga, start=NOW + dt.timedelta(days=2))
    SeatFactory(session=open_session)
    make_page(("class_schedule", {"heading": "Timetable", "group_class": None, "limit": 10}))

    content = text(client.get("/book/"))

    assert "Timetable" in content
    assert "Morning yoga" in content and "Studio 1" in content
    assert f"with {yoga.staff.name}" in content
    assert "Tuesday 24 November 2026, 08:00–09:00 (Europe/Rome)" in content
    assert "9 seats left" in content
    assert "Full" in content
    assert f'href="/bookings/sessions/{open_session.pk}/book/?next=%2Fbook%2F"' in content
    assert f"/bookings/sessions/{full.pk}/book/" not in content


def test_class_schedule_of_one_class_respects_the_limit(client):
    yoga = GroupClassFactory(name="Yoga")
    other = GroupClassFactory(name="Pilates")
    for days in (1, 2, 3):
        ClassSessionFactory(group_class=yoga, start=NOW + dt.timedelta(days=days))
    ClassSessionFactory(group_class=other, start=NOW + dt.timedelta(days=1))
    make_page(("class_schedule", {"heading": "", "group_class": yoga, "limit": 2}))

    content = text(client.get("/book/"))

    assert content.count('class="bvc-session"') == 2
    assert "Pilates" not in content


def test_class_schedule_shows_the_members_own_seat(client):
    member = UserFactory()
    session = ClassSessionFactory(start=NOW + dt.timedelta(days=1))
    seat = SeatFactory(session=session, member=member)
    make_page(("class_schedule", {"heading": "", "group_class": None, "limit": 10}))
    client.force_login(member)

    content = text(client.get("/book/"))

    assert "Booked" in content
    assert f'href="/bookings/{seat.reference}/"' in content
    assert f"/bookings/sessions/{session.pk}/book/" not in content


def test_class_schedule_without_sessions_says_so(client):
    ClassSessionFactory(start=timezone.now() - dt.timedelta(days=1))
    make_page(("class_schedule", {"heading": "", "group_class": None, "limit": 10}))

    content = text(client.get("/book/"))

    assert "No sessions are planned" in content
    assert Booking.objects.count() == 0


# Time zones ---------------------------------------------------------------------------------


def test_widget_shows_the_times_in_the_zone_the_visitor_picks(client):
    staff = StaffFactory(name="Anna")
    service = ServiceFactory(slug="physio", staff=[staff])
    make_page(("booking_widget", {"heading": "", "service": service}))

    content = text(client.get("/book/", {"bvc_tz": "Asia/Tokyo"}))

    assert "Times are in Asia/Tokyo time" in content
    assert "<option selected>Asia/Tokyo</option>" in content
    # The zone was chosen: the page's script leaves it alone.
    assert "data-bvc-zone-auto" not in content
    form = SlotForm(content)
    # 9:00 in Rome is 17:00 in Tokyo; Friday's 16:00 is Saturday's midnight there.
    assert form.label(form.radios[0]) == "17:00"
    assert form.label(form.radios[-1]) == "00:00"
    saturday = content.split(">Saturday 28 November<")[1].split("</fieldset>")[0]
    assert "00:00" in saturday
    assert len(form.radios) == 40
    # The zone goes along to the confirmation page.
    assert ("tz", "Asia/Tokyo") in form.hidden
    assert slot_links(content)[0] == (
        "/bookings/services/physio/book/?next=%2Fbook%2F%3Fbvc_tz%3DAsia%252FTokyo"
        f"&tz=Asia%2FTokyo&slot={staff.pk}%402026-11-23T08%3A00%3A00Z"
    )


def test_widget_days_are_the_visitors_days_even_far_behind_the_staff(client):
    every_day = [(day, dt.time(9), dt.time(17)) for day in range(7)]
    service = ServiceFactory(slug="physio", staff=[StaffFactory(hours=every_day)])
    make_page(("booking_widget", {"heading": "", "service": service}))

    content = text(client.get("/book/", {"bvc_tz": "Pacific/Honolulu"}))

    # It is still Sunday evening in Honolulu: the week starts there.
    assert "22 November – 28 November" in content
    sunday = content.split(">Sunday 22 November<")[1].split("</fieldset>")[0]
    assert "22:00" in sunday and "23:00" in sunday
    # Sunday 29 November, 9:00 in Rome, is Saturday 28 November, 22:00 in Honolulu.
    saturday = content.split(">Saturday 28 November<")[1].split("</fieldset>")[0]
    assert "22:00" in saturday and "23:00" in saturday
    # Monday to Saturday in Rome, and the first two hours of Sunday there.
    assert len(slot_links(content)) == 6 * 8 + 2


def test_widget_without_a_chosen_zone_lets_the_browser_pick_one(client):
    service = ServiceFactory(slug="physio", staff=[StaffFactory()])
    make_page(("booking_widget", {"heading": "", "service": service}))

    for query in ({}, {"bvc_tz": "Mars/Olympus_Mons"}):
        content = text(client.get("/book/", query))
        assert "Times are in Europe/Rome time" in content
        assert "<option selected>Europe/Rome</option>" in content
        assert "data-bvc-zone-auto" in content
    # The zone select is labelled, and the page announces changes politely.
    zone_label = r'<label class="bvc-filter__label" for="bvc-widget(?:-[\w-]+)?-zone">'
    assert re.search(zone_label, content)
    assert 'role="status" aria-live="polite"' in content


def test_widget_filter_keeps_the_week_and_the_pages_own_parameters(client):
    service = ServiceFactory(slug="physio", staff=[StaffFactory(), StaffFactory()])
    make_page(("booking_widget", {"heading": "", "service": service}))

    content = text(client.get("/book/", {"bvc_week": "2026-11-30", "ref": "news", "bvc_tz": "UTC"}))

    filter_form = content.split("data-bvc-filter>")[1].split("</form>")[0]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', filter_form))
    assert hidden == {"bvc_week": "2026-11-30", "ref": "news"}
