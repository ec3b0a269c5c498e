"""Every admin URL of the app answers only the people it is for (R4, R23).

Two staff members, Anna and Bruno, each a Wagtail user in the *Staff* group that
``manage.py bookings_vc_groups`` makes, each with a video account of their own. Anna has
an online appointment, a seat in her class's session and an appointment whose meeting
failed; Bruno has an appointment of his own.

Signed in as Bruno, every admin URL about Anna's things (her bookings, the Open-meeting
host links, her session's link screen and its actions, her video account, the calendar's
details, the report's retry buttons, the snippet screens) is tried with GET and, where
it changes something, POST. Each is refused, always in the same way: Wagtail's *permission
denied* (a message, then the dashboard; a 403 to the calendar's script), or a 404 exactly
like an id that does not exist where the view looks only among his own bookings. Nothing
changes, and no answer holds Anna's references, members, join tokens, meeting or host
URLs, or her account's details. The pages Bruno does reach (his calendar, his bookings,
his video account) show none of it either, whatever filter he asks for.

The same URLs send a member (the one who booked, even) and an anonymous visitor to the
admin's login. Anna, a booking manager and a superuser reach them, which shows the
refusals are about who asks. Every URL of ``admin_urls.py``, of the online-meetings
report and of the Bookings snippet viewsets is in the list: a URL added without being
tried here fails :func:`test_every_admin_url_of_the_app_is_tried`.

The booking and conferencing-account choosers, which Wagtail would open to anyone with
admin access, show a staff member their own bookings only and no accounts; a staff
member's search of the bookings listing finds their own bookings only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.db.models import Q
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from wagtail.models import ModelLogEntry

from tests import recording_provider as rec
from tests.conftest import _with_providers, default_site, make_default_account
from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from tests.proof.conftest import ROME, TUESDAY_10, TUESDAY_11, WEDNESDAY_15
from wagtail_bookings_vc import admin_urls, bookings, meetings, reports
from wagtail_bookings_vc.models import (
    Booking,
    ClassSession,
    ConferencingAccount,
    ConferencingSettings,
    GroupClass,
    JoinPass,
    Meeting,
    MeetingState,
    Service,
    Staff,
)
from wagtail_bookings_vc.providers import PermanentFailure
from wagtail_bookings_vc.viewsets import BookingsViewSetGroup

pytestmark = pytest.mark.django_db

ADMIN = admin_urls.NAMESPACE
REPORTS = reports.URL_NAMESPACE
THURSDAY_15 = dt.datetime(2026, 11, 26, 15, 0, tzinfo=ROME)
WEDNESDAY_10 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ROME)
#: An id no row has.
MISSING = 987654

#: Who may reach a URL, besides the ones it is refused to.
OWN = frozenset({"anna", "manager", "superuser"})
MANAGERS = frozenset({"manager", "superuser"})
#: Bookings change only through ``bookings.py``: their generic snippet forms are refused
#: to everyone (see ``BookingPermissionPolicy``), superusers included.
NOBODY: frozenset[str] = frozenset()

#: How a refusal looks.
DENIED = "permission denied: a message, then the dashboard"
FORBIDDEN = "403"
NOT_FOUND = "404"

#: URL names deliberately left out of the tries, each with why. None so far.
UNTRIED: dict[str, str] = {}


# --------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Clinic:
    """Anna's things, Bruno's appointment, and everyone who signs in."""

    users: dict[str, Any]
    anna: Staff
    bruno: Staff
    anna_account: ConferencingAccount
    organisation: ConferencingAccount
    service: Service
    group_class: GroupClass
    session: ClassSession
    later_session: ClassSession
    appointment: Booking
    seat: Booking
    failed: Booking
    bruno_appointment: Booking

    @property
    def annas_bookings(self) -> list[Booking]:
        return [self.appointment, self.seat, self.failed]

    @property
    def failed_meeting(self) -> Meeting:
        return Meeting.objects.get(booking=self.failed)


def staff_user(staff: Staff, username: str) -> Any:
    """A Wagtail user in the *Staff* group, linked to ``staff``."""
    user = UserFactory(username=username, email=f"{username}@staff.example")
    user.groups.add(Group.objects.get(name="Staff"))
    staff.user = user
    staff.save()
    return user


def member(username: str, first: str, last: str) -> Any:
    return UserFactory(
        username=username, email=f"{username}@example.com", first_name=first, last_name=last
    )


@pytest.fixture
def clinic(settings, clock, run_jobs, django_user_model) -> Clinic:
    _with_providers(
        settings,
        {
            "recorder": {"CLASS": "tests.recording_provider.RecordingProvider"},
            "oauthrec": {"CLASS": "tests.recording_provider.OAuthRecordingProvider"},
        },
    )
    rec.reset()
    rec.reset_oauth()
    default_site()
    make_default_account("recorder")
    call_command("bookings_vc_groups", stdout=io.StringIO())

    anna = StaffFactory(name="Anna Rossi", email="anna@example.com")
    bruno = StaffFactory(name="Bruno Neri", email="bruno@example.com")
    manager = UserFactory(username="manager")
    manager.groups.add(Group.objects.get(name="Booking managers"))
    carla = member("carla", "Carla", "Verdi")
    users = {
        "anna": staff_user(anna, "anna"),
        "bruno": staff_user(bruno, "bruno"),
        "manager": manager,
        "superuser": django_user_model.objects.create_superuser("root", "root@example.com", "pw"),
        "member": carla,
    }
    anna_account = ConferencingAccount.objects.create(
        provider="oauthrec",
        staff=anna,
        credentials={"access_token": "token-anna-secret"},
        external_user_id="anna-at-provider",
        external_email="anna@provider.example",
    )
    ConferencingAccount.objects.create(
        provider="oauthrec", staff=bruno, credentials={"access_token": "token-bruno-secret"}
    )
    organisation = ConferencingAccount.objects.create(
        provider="oauthrec",
        label="Clinic organisation",
        is_organisation=True,
        credentials={"org_token": "org-secret"},
    )

    service = ServiceFactory(name="Anna physio", slug="anna-physio", staff=[anna], online=True)
    brunos = ServiceFactory(name="Bruno physio", slug="bruno-physio", staff=[bruno], online=True)
    group_class = GroupClassFactory(name="Anna yoga", staff=anna, online=True, capacity=10)
    session = ClassSessionFactory(group_class=group_class, start=WEDNESDAY_15)
    later_session = ClassSessionFactory(group_class=group_class, start=THURSDAY_15)

    appointment = run_jobs(
        bookings.book_appointment, member=carla, service=service, staff=anna, start=TUESDAY_10
    )
    seat = run_jobs(
        bookings.book_session, member=member("dario", "Dario", "Bianchi"), session=session
    )
    rec.fail_next(1, PermanentFailure("The plan refused it."))
    failed = run_jobs(
        bookings.book_appointment,
        member=member("elsa", "Elsa", "Gialli"),
        service=service,
        staff=anna,
        start=TUESDAY_11,
    )
    bruno_appointment = run_jobs(
        bookings.book_appointment,
        member=member("fabio", "Fabio", "Conti"),
        service=brunos,
        staff=bruno,
        start=TUESDAY_10,
    )
    for booking in (appointment, seat, bruno_appointment):
        assert meetings.meeting_of(booking).is_ready
    assert Meeting.objects.get(booking=failed).state == MeetingState.FAILED
    return Clinic(
        users=users,
        anna=anna,
        bruno=bruno,
        anna_account=anna_account,
        organisation=organisation,
        service=service,
        group_class=group_class,
        session=session,
        later_session=later_session,
        appointment=appointment,
        seat=seat,
        failed=failed,
        bruno_appointment=bruno_appointment,
    )


# --------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Request:
    """One admin request: its URL's name, the method, the URL's arguments and data."""

    name: str
    args: tuple = ()
    method: str = "get"
    query: str = ""
    data: tuple = ()
    xhr: bool = False
    #: Who may reach it (see :data:`OWN`, :data:`MANAGERS`, :data:`NOBODY`).
    reached_by: frozenset[str] = OWN
    #: How it is refused to Bruno.
    refusal: str = DENIED
    #: Whether the people it is for are shown to reach it (see the last test).
    control: bool = True

    @property
    def url(self) -> str:
        return reverse(self.name, args=self.args) + self.query

    def send(self, client):
        headers = {"X-Requested-With": "XMLHttpRequest"} if self.xhr else {}
        if self.method == "post":
            return client.post(self.url, dict(self.data), headers=headers)
        return client.get(self.url, headers=headers)

    def missing(self) -> Request | None:
        """The same request about an id that does not exist, if it names one."""
        args = tuple(MISSING if isinstance(arg, int) else arg for arg in self.args)
        if args != self.args:
            return dataclasses.replace(self, args=args)
        data = tuple((key, MISSING if key == "staff" else value) for key, value in self.data)
        if data != self.data:
            return dataclasses.replace(self, data=data)
        return None

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.url}{' (script)' if self.xhr else ''}"


def get(name: str, *args: Any, **kwargs: Any) -> Request:
    return Request(name, args, **kwargs)


def post(name: str, *args: Any, data: dict[str, Any] | None = None, **kwargs: Any) -> Request:
    return Request(name, args, method="post", data=tuple((data or {}).items()), **kwargs)


def app_requests(c: Clinic) -> list[Request]:
    """The app's own admin views, about Anna's things, as Bruno could try them."""
    appointment, seat, session = c.appointment.pk, c.seat.pk, c.session.pk
    account, organisation = c.anna_account.pk, c.organisation.pk
    link = f"{ADMIN}:session_link"
    return [
        # Video accounts: the site's screen, Anna's account, organisations.
        get(f"{ADMIN}:video_conferencing", reached_by=MANAGERS),
        post(f"{ADMIN}:connect", "oauthrec", data={"staff": c.anna.pk}),
        post(f"{ADMIN}:connect", "recorder", data={"staff": c.anna.pk}),
        post(f"{ADMIN}:connect", "oauthrec", reached_by=MANAGERS),
        get(f"{ADMIN}:disconnect", account),
        post(f"{ADMIN}:disconnect", account),
        get(f"{ADMIN}:connect_organisation", "oauthrec", reached_by=MANAGERS),
        post(
            f"{ADMIN}:connect_organisation",
            "oauthrec",
            data={"label": "Taken over", "org_key": "k"},
            reached_by=MANAGERS,
        ),
        get(f"{ADMIN}:map_staff", organisation, reached_by=MANAGERS),
        post(
            f"{ADMIN}:map_staff",
            organisation,
            data={"staff": c.anna.pk, "user": "u-1"},
            reached_by=MANAGERS,
        ),
        # Open meeting: the host's way in.
        get(f"{ADMIN}:open_meeting", appointment),
        get(f"{ADMIN}:open_meeting", seat),
        get(f"{ADMIN}:open_session_meeting", session),
        # Session link and its actions.
        get(link, session),
        post(link, session, data={"action": "in_person"}),
        post(link, session, data={"action": "manual", "url": "https://evil.example/room"}),
        post(link, session, data={"action": "remove"}),
        post(link, session, data={"action": "restore"}),
        post(link, session, data={"action": "online"}),
        get(f"{ADMIN}:class_sessions", c.group_class.pk),
        # The calendar's details, as a page and as the dialog's fragment.
        get(f"{ADMIN}:calendar_booking", appointment),
        get(f"{ADMIN}:calendar_booking", appointment, xhr=True, refusal=FORBIDDEN),
        get(f"{ADMIN}:calendar_booking", seat),
        get(f"{ADMIN}:calendar_session", session),
        get(f"{ADMIN}:calendar_session", session, xhr=True, refusal=FORBIDDEN),
        # Cancel and reschedule.
        get(f"{ADMIN}:booking_cancel", appointment),
        post(f"{ADMIN}:booking_cancel", appointment),
        post(f"{ADMIN}:booking_cancel", seat),
        get(f"{ADMIN}:booking_reschedule", appointment, query="?date=2026-11-25"),
        get(f"{ADMIN}:booking_reschedule", seat),
        post(f"{ADMIN}:booking_reschedule", appointment, data={"start": WEDNESDAY_10.isoformat()}),
        post(f"{ADMIN}:booking_reschedule", seat, data={"session": c.later_session.pk}),
        # The online-meetings report: its rows, exports and retries.
        get(f"{REPORTS}:online_meetings", query=f"?staff={c.anna.pk}", reached_by=MANAGERS),
        get(f"{REPORTS}:online_meetings", query="?export=csv", reached_by=MANAGERS),
        get(f"{REPORTS}:online_meetings", query="?export=xlsx", reached_by=MANAGERS),
        get(f"{REPORTS}:online_meetings_results", reached_by=MANAGERS),
        get(f"{REPORTS}:bulk_retry", query=f"?staff={c.anna.pk}", reached_by=MANAGERS),
        post(f"{REPORTS}:bulk_retry", reached_by=MANAGERS),
        post(f"{REPORTS}:retry", c.failed_meeting.pk, reached_by=MANAGERS),
    ]


def snippet_viewsets() -> list[Any]:
    return [item.model.snippet_viewset for item in BookingsViewSetGroup.items]


def named_patterns(namespaces: tuple[str, ...]) -> dict[str, URLPattern]:
    """Every named URL pattern in one of ``namespaces``, by its full name."""
    found: dict[str, URLPattern] = {}

    def walk(patterns: list, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                walk(pattern.url_patterns, inner)
            elif pattern.name and namespace in namespaces:
                found[f"{namespace}:{pattern.name}"] = pattern

    walk(get_resolver().url_patterns, "")
    return found


#: Snippet views that change something: tried with POST as well. (A chooser's *create*
#: is tried with GET only: these models give it no form to post.)
WRITING_VIEWS = {"add", "edit", "delete", "copy", "mark_paid", "add_sessions"}
#: Chooser views that list or name objects.
CHOOSING_VIEWS = {"choose", "choose_results", "chosen", "chosen_multiple"}


def annas_object(c: Clinic, model: type) -> int:
    """The id of Anna's object of each snippet model (a new viewset needs one here)."""
    return {
        Booking: c.appointment.pk,
        Service: c.service.pk,
        GroupClass: c.group_class.pk,
        Staff: c.anna.pk,
        ConferencingAccount: c.anna_account.pk,
    }[model]


def snippet_requests(c: Clinic) -> list[Request]:
    """The Bookings snippet viewsets' views (and their choosers), about Anna's objects."""
    made = []
    for viewset in snippet_viewsets():
        namespaces = (
            viewset.get_admin_url_namespace(),
            viewset.get_chooser_admin_url_namespace(),
        )
        pk = annas_object(c, viewset.model)
        for name, pattern in named_patterns(namespaces).items():
            view = name.split(":")[1]
            args = (pk,) if pattern.pattern.converters else ()
            if viewset.model is Booking:
                reached_by = {"inspect": OWN, "mark_paid": MANAGERS}.get(view, NOBODY)
            else:
                reached_by = MANAGERS
            refusal = NOT_FOUND if (viewset.model, view) == (Booking, "inspect") else DENIED
            common = {"reached_by": reached_by, "refusal": refusal}
            if view == "chosen_multiple":
                common["query"] = f"?id={pk}"
            # A service, class or staff member with bookings cannot be deleted: even the
            # people who may delete them are sent back to its edit view with the reason.
            booked = view == "delete" and viewset.model in (Service, GroupClass, Staff)
            made.append(get(name, *args, control=not booked, **common))
            if view in WRITING_VIEWS:
                # Anna, her service and her class have bookings, which protect them from
                # being deleted: the people who may delete see the confirmation, no more.
                protected = view == "delete" and viewset.model in (Service, GroupClass, Staff)
                made.append(post(name, *args, control=not protected, **common))
    return made


CHOOSERS = "wagtailsnippetchoosers_wagtail_bookings_vc_"


def chooser_of(request: Request) -> str:
    """The model a chooser's listing or *chosen* view is about ("" for other views)."""
    namespace, view = request.name.split(":")
    if namespace.startswith(CHOOSERS) and view in CHOOSING_VIEWS:
        return namespace.removeprefix(CHOOSERS)
    return ""


def reached_by_bruno(request: Request) -> bool:
    """The bookings listing: Bruno reaches it, and it shows only his own."""
    return request.name.startswith("wagtailsnippets_wagtail_bookings_vc_booking:list")


#: Choosers of rows that are not everybody's: scoped to what the user may see.
#: The others list the catalogue (services, classes, staff names), which the site shows
#: its visitors anyway.
SCOPED_CHOOSERS = ("booking", "conferencingaccount")


def refused_requests(c: Clinic) -> list[Request]:
    """Everything about Anna's things that Bruno must be refused."""
    return [
        request
        for request in app_requests(c) + snippet_requests(c)
        if not chooser_of(request) and not reached_by_bruno(request)
    ]


def bruno_pages(c: Clinic) -> list[Request]:
    """The pages Bruno reaches, asked for Anna's things where they take a filter."""
    listing = "wagtailsnippets_wagtail_bookings_vc_booking:list"
    anna = f"?staff={c.anna.pk}"
    return [
        get("wagtailadmin_home"),
        get(f"{ADMIN}:my_video_account"),
        get(f"{ADMIN}:calendar", query=anna),
        get(f"{ADMIN}:calendar_period", "day", "2026-11-24", query=anna),
        get(f"{ADMIN}:calendar_period", "week", "2026-11-23", query=anna),
        get(f"{ADMIN}:calendar_period", "month", "2026-11-01", query=anna),
        get(f"{ADMIN}:calendar_results", "week", "2026-11-23", query=anna),
        get(listing),
        get(listing, query=anna),
        get(listing, query="?export=csv"),
        get(listing, query="?export=xlsx"),
        get(f"{listing}_results", query=anna),
        *(
            request
            for request in snippet_requests(c)
            if chooser_of(request) and chooser_of(request) not in SCOPED_CHOOSERS
        ),
    ]


def scoped_chooser_requests(c: Clinic) -> list[Request]:
    searched = get(f"{CHOOSERS}booking:choose", query="?q=carla")
    found = [request for request in snippet_requests(c) if chooser_of(request) in SCOPED_CHOOSERS]
    return [*found, searched]


# --------------------------------------------------------------------------------------
# What a response is, and what must not change or show
# --------------------------------------------------------------------------------------


XLSX = "application/vnd.openxmlformats"


def body(response) -> str:
    """The answer's text; a spreadsheet's is the XML inside it."""
    if not hasattr(response, "_bvc_body"):
        data = b"".join(response.streaming_content) if response.streaming else response.content
        if response.get("Content-Type", "").startswith(XLSX):
            with zipfile.ZipFile(io.BytesIO(data)) as workbook:
                data = b"".join(workbook.read(name) for name in workbook.namelist())
        response._bvc_body = data.decode(errors="replace")
    return response._bvc_body


def outcome(response) -> str:
    """How an answer reads: a refusal by name, else its status (and where it sends)."""
    if response.status_code == 302 and response["Location"] == reverse("wagtailadmin_home"):
        return DENIED
    if response.status_code == 302:
        return f"302 to {response['Location']}"
    return str(response.status_code)


def comparable(text: str) -> str:
    """A page without its CSRF token (masked afresh in every response)."""
    return re.sub(r'value="[A-Za-z0-9]{64}"', 'value=""', text)


SNAPSHOT_MODELS = (
    Booking,
    Meeting,
    JoinPass,
    ConferencingAccount,
    ConferencingSettings,
    ClassSession,
    GroupClass,
    Service,
    Staff,
)


def snapshot() -> dict[str, Any]:
    """Every row a request could change, and what the app told the outside world."""
    rows: dict[str, Any] = {
        model.__name__: list(model.objects.order_by("pk").values()) for model in SNAPSHOT_MODELS
    }
    rows["provider calls"] = [(call.action, call.external_id) for call in rec.calls]
    rows["provider consents"] = list(rec.oauth_log["finished"])
    rows["provider revocations"] = list(rec.oauth_log["revoked"])
    rows["emails"] = [(message.subject, tuple(message.to)) for message in mail.outbox]
    rows["admin log"] = ModelLogEntry.objects.count()
    return rows


def annas_secrets(c: Clinic) -> set[str]:
    """What only Anna (and the people who manage every booking) may see."""
    annas = c.annas_bookings
    found = {booking.reference for booking in annas}
    found |= {booking.member_email for booking in annas}
    found |= {booking.member_name for booking in annas}
    passes = JoinPass.objects.filter(Q(booking__in=annas) | Q(session=c.session))
    found |= set(passes.values_list("token", flat=True))
    for meeting in Meeting.objects.filter(Q(booking__in=annas) | Q(session=c.session)):
        found |= {
            value for value in (meeting.join_url, meeting.host_url, meeting.passcode) if value
        }
    found |= {"token-anna-secret", "anna@provider.example", "anna-at-provider", "org-secret"}
    assert "" not in found
    return found


def leaks(response, secrets: set[str]) -> list[str]:
    text = body(response) + response.get("Location", "")
    return sorted(secret for secret in secrets if secret in text)


def login(client, user) -> None:
    client.logout()
    client.force_login(user)


# --------------------------------------------------------------------------------------
# The list is complete
# --------------------------------------------------------------------------------------


def all_tried(c: Clinic) -> list[Request]:
    oauth = get(f"{ADMIN}:oauth_callback")  # tried with a real state in its own test
    return refused_requests(c) + bruno_pages(c) + scoped_chooser_requests(c) + [oauth]


def app_url_names() -> set[str]:
    """The named URLs of ``admin_urls.py``, of the report, and of the snippet viewsets."""

    def names(patterns: list, namespace: str) -> set[str]:
        found = set()
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found |= names(pattern.url_patterns, pattern.namespace or namespace)
            elif pattern.name:
                found.add(f"{namespace}:{pattern.name}")
        return found

    found = names(admin_urls.admin_urls(), ADMIN) | names(reports.admin_urls(), REPORTS)
    for viewset in snippet_viewsets():
        found |= set(
            named_patterns(
                (viewset.get_admin_url_namespace(), viewset.get_chooser_admin_url_namespace())
            )
        )
    return found


def test_every_admin_url_of_the_app_is_tried(clinic, figures):
    expected = app_url_names()
    tried = {request.name for request in all_tried(clinic)}

    assert expected - tried - set(UNTRIED) == set(), "admin URLs nobody tries"
    assert set(UNTRIED) <= expected, "exceptions for URLs that are gone"
    own = {name for name in expected if name.startswith((f"{ADMIN}:", f"{REPORTS}:"))}
    assert len(own) >= 20  # the walk found the app's own views, not just the snippets
    figures(
        "IDOR",
        admin_url_names=(
            f"{len(expected)} ({len(own)} of the app's own views, "
            f"{len(expected) - len(own)} of its snippet viewsets), every one tried"
        ),
    )


# --------------------------------------------------------------------------------------
# Another staff member
# --------------------------------------------------------------------------------------


def test_another_staff_member_is_refused_every_admin_url_about_annas_things(
    clinic, client, clock, figures
):
    login(client, clinic.users["bruno"])
    secrets = annas_secrets(clinic)
    before = snapshot()
    seen: dict[str, int] = {}
    existence_shows = []
    requests = refused_requests(clinic)
    for request in requests:
        response = request.send(client)
        assert outcome(response) == request.refusal, str(request)
        assert not leaks(response, secrets), f"{request} shows {leaks(response, secrets)}"
        seen[request.refusal] = seen.get(request.refusal, 0) + 1
        missing_request = request.missing()
        if missing_request is None:
            continue
        missing = missing_request.send(client)
        assert outcome(missing) in (DENIED, FORBIDDEN, NOT_FOUND), str(missing_request)
        if request.refusal == NOT_FOUND:
            # Nothing tells Anna's booking from a booking that does not exist.
            assert comparable(body(response)) == comparable(body(missing)), str(request)
        elif outcome(missing) != request.refusal:
            existence_shows.append(str(request))
    assert snapshot() == before

    # Inside the meeting's window too, when Anna is sent to her host link.
    appointment, seat = clinic.appointment, clinic.seat
    windows = [
        (appointment, reverse(f"{ADMIN}:open_meeting", args=[appointment.pk])),
        (seat, reverse(f"{ADMIN}:open_meeting", args=[seat.pk])),
        (seat, reverse(f"{ADMIN}:open_session_meeting", args=[seat.session_id])),
    ]
    for booking, url in windows:
        clock.move_to(booking.start - dt.timedelta(minutes=5), tick=False)
        response = client.get(url)
        assert outcome(response) == DENIED, url
        assert not leaks(response, secrets), url
    assert snapshot() == before
    anna = Client()
    anna.force_login(clinic.users["anna"])
    for booking, url in windows:
        clock.move_to(booking.start - dt.timedelta(minutes=5), tick=False)
        assert anna.get(url)["Location"] == meetings.meeting_of(booking).host_url, url

    counts = ", ".join(f"{count} {how}" for how, count in sorted(seen.items()))
    figures(
        "IDOR",
        admin_requests_by_another_staff_member=f"{len(requests)}, all refused ({counts})",
        admin_refusals_where_a_missing_id_answers_404=(
            f"{len(existence_shows)} (the id's existence shows, nothing of its content)"
        ),
        admin_changes_after_refusals=0,
    )


def test_the_pages_another_staff_member_reaches_show_nothing_of_annas(clinic, client, figures):
    login(client, clinic.users["bruno"])
    secrets = annas_secrets(clinic)
    before = snapshot()
    pages = bruno_pages(clinic)
    for request in pages:
        response = request.send(client)
        assert response.status_code == 200, str(request)
        assert not leaks(response, secrets), f"{request} shows {leaks(response, secrets)}"
    # The pages were not simply empty: Bruno's own booking is on them.
    listing = client.get(reverse("wagtailsnippets_wagtail_bookings_vc_booking:list")).content
    assert clinic.bruno_appointment.reference in listing.decode()
    week = client.get(reverse(f"{ADMIN}:calendar_period", args=["week", "2026-11-23"]))
    assert "Fabio Conti" in week.content.decode()
    export = client.get(
        reverse("wagtailsnippets_wagtail_bookings_vc_booking:list"), {"export": "csv"}
    )
    # A heading and Bruno's one booking: Anna's three are not in the export.
    assert len(body(export).splitlines()) == 2
    assert snapshot() == before
    figures("IDOR", admin_pages_another_staff_member_reaches=f"{len(pages)}, none shows Anna's")


def test_a_callback_with_annas_connection_state_is_refused_to_another_staff_member(clinic, client):
    """Anna reconnects her account; Bruno cannot finish her connection with his own
    consent, even holding her state: it lives in her session, not in the URL's reach."""
    anna = client
    login(anna, clinic.users["anna"])
    started = anna.post(reverse(f"{ADMIN}:connect", args=["oauthrec"]), {"staff": clinic.anna.pk})
    assert started.status_code == 302
    state = parse_qs(urlsplit(started["Location"]).query)["state"][0]
    before = snapshot()
    callback = reverse(f"{ADMIN}:oauth_callback")

    bruno = Client()
    bruno.force_login(clinic.users["bruno"])
    response = bruno.get(callback, {"state": state, "code": "good-mallory"})

    assert response.status_code == 302
    assert response["Location"] == reverse(f"{ADMIN}:my_video_account")
    assert not leaks(response, annas_secrets(clinic))
    assert snapshot() == before
    # Her own callback still works: the refusal was about who asked.
    finished = anna.get(callback, {"state": state, "code": "good-anna"})
    assert finished["Location"] == reverse(f"{ADMIN}:my_video_account")
    account = ConferencingAccount.objects.get(pk=clinic.anna_account.pk)
    assert account.is_connected and account.external_user_id == "anna"


@pytest.mark.parametrize("model", SCOPED_CHOOSERS)
def test_the_choosers_show_another_staff_member_nothing_of_annas(clinic, client, model):
    login(client, clinic.users["bruno"])
    secrets = annas_secrets(clinic)
    found = {}
    for request in scoped_chooser_requests(clinic):
        if chooser_of(request) != model:
            continue
        response = request.send(client)
        if outcome(response) not in (DENIED, FORBIDDEN, NOT_FOUND) and leaks(response, secrets):
            found[str(request)] = leaks(response, secrets)
    assert not found


def test_another_staff_member_searching_the_bookings_finds_only_their_own(clinic, client):
    login(client, clinic.users["bruno"])
    listing = reverse("wagtailsnippets_wagtail_bookings_vc_booking:list")

    for term in ("carla@example.com", "Carla", clinic.appointment.reference):
        response = client.get(listing, {"q": term})
        assert response.status_code == 200
        # The search box shows the term itself back; nothing else of Anna's may show.
        assert not leaks(response, annas_secrets(clinic) - {term})
    found = client.get(listing, {"q": "Fabio"})
    assert clinic.bruno_appointment.reference in body(found)


# --------------------------------------------------------------------------------------
# Members and visitors
# --------------------------------------------------------------------------------------


def login_url(request: Request) -> str:
    return f"{reverse('wagtailadmin_login')}?{urlencode({'next': request.url}, safe='/')}"


@pytest.mark.parametrize("who", ["member", "visitor"])
def test_members_and_visitors_are_sent_to_the_admin_login(clinic, client, who, figures):
    """Even the member who booked Anna's appointment: the admin is not for members."""
    if who == "member":
        login(client, clinic.users["member"])
    secrets = annas_secrets(clinic)
    before = snapshot()
    requests = all_tried(clinic)
    for request in requests:
        response = request.send(client)
        if request.xhr:
            # The dialog's script gets a plain refusal, not a login page.
            assert response.status_code == 403, str(request)
        else:
            assert response.status_code == 302, str(request)
            assert response["Location"] == login_url(request), str(request)
            assert not body(response)
        assert not leaks(response, secrets), str(request)
    assert snapshot() == before
    figures("IDOR", **{f"admin_requests_by_a_{who}": f"{len(requests)}, all sent to log in"})


# --------------------------------------------------------------------------------------
# The people they are for
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["anna", "manager", "superuser"])
def test_the_people_they_are_for_reach_the_same_urls(clinic, client, role, figures):
    """GETs answer 200; POSTs do what they are for (each undone before the next)."""
    user = clinic.users[role]
    reached = 0
    for request in refused_requests(clinic):
        if not request.control:
            continue
        login(client, user)
        if role not in request.reached_by:
            if request.reached_by == NOBODY:
                assert outcome(request.send(client)) == DENIED, str(request)
            continue
        if request.method == "get":
            response = request.send(client)
            assert response.status_code == 200, f"{request}: {outcome(response)}"
        else:
            with transaction.atomic():
                response = request.send(client)
                body(response)
                transaction.set_rollback(True)
            assert response.status_code in (200, 302), f"{request}: {outcome(response)}"
            assert outcome(response) != DENIED, str(request)
            if response.status_code == 302:
                assert not response["Location"].startswith(reverse("wagtailadmin_login"))
        reached += 1
    assert reached
    figures("IDOR", **{f"admin_requests_reached_by_{role}": reached})
