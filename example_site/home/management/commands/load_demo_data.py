"""Fill the example site with a small studio: accounts, staff, services, classes and pages.

Video meetings use Jitsi Meet (meet.jit.si), which needs no account: the site's
default conferencing account is a Jitsi one, so online bookings get real links.

Safe to run again: existing objects are kept (and the demo accounts get their
documented passwords back), missing ones are added, class sessions are topped up
to four weeks ahead.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.translation import get_supported_language_variant
from wagtail.models import Locale, Page, Site

from example_site.home.models import ContentPage, HomePage
from wagtail_bookings_vc import meetings
from wagtail_bookings_vc.groups import ensure_groups
from wagtail_bookings_vc.models import (
    AccountStatus,
    Booking,
    BookingStatus,
    ClassSession,
    ConferencingAccount,
    ConferencingSettings,
    GroupClass,
    Meeting,
    MeetingState,
    MembersAreaPage,
    PaymentStatus,
    Service,
    Staff,
    WorkingHours,
)

ROME = zoneinfo.ZoneInfo("Europe/Rome")
SITE_NAME = "Riverside Wellbeing Studio"
STUDIO_ADDRESS = "Studio 1, Lungotevere degli Artigiani 12, Rome"
SESSION_WEEKS = 4
MON, TUE, WED, THU, FRI = range(5)


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    first_name: str
    last_name: str
    email: str
    superuser: bool = False


@dataclass(frozen=True)
class DemoStaff:
    name: str
    email: str
    bio: str
    hours: list[tuple[int, dt.time, dt.time]]
    username: str = ""


@dataclass(frozen=True)
class DemoService:
    slug: str
    name: str
    description: str
    duration: int
    online: bool
    price: Decimal | None
    staff: list[str]
    slot_interval: int | None = None


@dataclass(frozen=True)
class DemoClass:
    slug: str
    name: str
    description: str
    capacity: int
    duration: int
    online: bool
    price: Decimal | None
    staff: str
    location: str
    weekdays: tuple[int, ...]
    time: dt.time


@dataclass
class Summary:
    """What the command did, for the closing report."""

    created: list[str] = field(default_factory=list)
    sessions_added: int = 0
    bookings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _weekdays(start: dt.time, end: dt.time, days: tuple[int, ...] = (MON, TUE, WED, THU, FRI)):
    return [(day, start, end) for day in days]


USERS = [
    DemoUser("admin", "admin", "Ada", "Admin", "admin@example.com", superuser=True),
    DemoUser("member", "member", "Maria", "Rossi", "maria.rossi@example.com"),
    DemoUser("member2", "member2", "Luca", "Ferri", "luca.ferri@example.com"),
    DemoUser("staff", "staff", "Giulia", "Bianchi", "giulia.bianchi@example.com"),
]

STAFF = [
    DemoStaff(
        name="Giulia Bianchi",
        email="giulia.bianchi@example.com",
        bio="Physiotherapist. Back and neck pain, sports injuries and recovery after surgery.",
        hours=_weekdays(dt.time(9), dt.time(13)) + _weekdays(dt.time(14), dt.time(18)),
        username="staff",
    ),
    DemoStaff(
        name="Marco Conti",
        email="marco.conti@example.com",
        bio="Nutritionist. Practical eating plans that fit a busy week.",
        hours=_weekdays(dt.time(10), dt.time(16)),
    ),
    DemoStaff(
        name="Elena Russo",
        email="elena.russo@example.com",
        bio="Yoga and pilates teacher, and our first point of contact for new clients.",
        hours=_weekdays(dt.time(9), dt.time(12)) + _weekdays(dt.time(14), dt.time(17)),
    ),
]

SERVICES = [
    DemoService(
        slug="online-consultation",
        name="Online consultation",
        description="A first conversation by video: tell us what you need and we plan together.",
        duration=30,
        online=True,
        price=Decimal("35.00"),
        staff=["Elena Russo", "Giulia Bianchi"],
    ),
    DemoService(
        slug="physiotherapy-session",
        name="Physiotherapy session",
        description="Assessment and treatment in the studio, with exercises to take home.",
        duration=45,
        online=False,
        price=Decimal("60.00"),
        staff=["Giulia Bianchi"],
    ),
    DemoService(
        slug="nutrition-check-in",
        name="Nutrition check-in",
        description="A short video call to review your plan and adjust it. Free for members.",
        duration=20,
        online=True,
        price=None,
        staff=["Marco Conti"],
        slot_interval=20,
    ),
]

CLASSES = [
    DemoClass(
        slug="morning-yoga",
        name="Morning yoga",
        description="A gentle, steady hour of yoga to start the day. Mats are provided.",
        capacity=12,
        duration=60,
        online=False,
        price=Decimal("15.00"),
        staff="Elena Russo",
        location=STUDIO_ADDRESS,
        weekdays=(TUE, THU),
        time=dt.time(7, 30),
    ),
    DemoClass(
        slug="online-pilates",
        name="Online pilates",
        description="Core strength and mobility, live by video. All you need is a mat.",
        capacity=20,
        duration=45,
        online=True,
        price=None,
        staff="Giulia Bianchi",
        location="",
        weekdays=(MON, WED),
        time=dt.time(18, 30),
    ),
]

HOME_INTRO = (
    "<p>Riverside is a small studio by the Tiber for physiotherapy, nutrition advice and "
    "movement classes. Choose a service, pick a time that suits you and you are booked: "
    "the confirmation arrives by email straight away.</p>"
)
HOME_ONLINE = (
    "<p>Online consultations, check-ins and pilates take place by video, in Jitsi Meet: you "
    "need nothing but a browser. Your personal link to join is in <b>My bookings</b> and in "
    "your emails; for a paid consultation it appears once your payment is received. The "
    "<b>Join</b> button opens 15 minutes before the start.</p>"
)
CLASSES_TEXT = (
    "<p>Classes are small and friendly. Book your place below; if your plans change, you can "
    "cancel from <b>My bookings</b> up to a day before.</p>"
)
MEMBERS_INTRO = (
    "<p>Your upcoming and past bookings. Online sessions have a <b>Join</b> button: it opens "
    "15 minutes before the start, and if this page is open at the start time, your meeting "
    "opens by itself.</p>"
)
JITSI_LABEL = "Jitsi Meet"


class Command(BaseCommand):
    help = "Load the example site's demo data (safe to run more than once)."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = Summary()
        with transaction.atomic():
            users = {demo.username: self._user(demo, summary) for demo in USERS}
            self._staff_group(users["staff"])
            staff = {demo.name: self._staff(demo, users, summary) for demo in STAFF}
            services = {demo.slug: self._service(demo, staff, summary) for demo in SERVICES}
            classes = {demo.slug: self._class(demo, staff, summary) for demo in CLASSES}
            for demo in CLASSES:
                summary.sessions_added += self._sessions(demo, classes[demo.slug])
            pages = self._pages(summary)
            self._conferencing(summary)
        # Bookings go through the app's own booking code, each in its own transaction.
        self._sample_bookings(users, services, classes, summary)
        self._report(pages, summary)

    # Accounts

    def _user(self, demo: DemoUser, summary: Summary) -> AbstractBaseUser:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=demo.username,
            defaults={
                "first_name": demo.first_name,
                "last_name": demo.last_name,
                "email": demo.email,
                "is_staff": demo.superuser,
                "is_superuser": demo.superuser,
            },
        )
        # The demo's printed passwords must always work, even after someone changed one.
        if created or not user.check_password(demo.password):
            user.set_password(demo.password)
            user.save()
        if created:
            summary.created.append(f"user {demo.username}")
        return user

    def _staff_group(self, user: AbstractBaseUser) -> None:
        """The demo staff user looks after their own bookings and video account only."""
        for group in ensure_groups():
            if group.name == "Staff":
                user.groups.add(group)

    # Catalogue

    def _staff(
        self, demo: DemoStaff, users: dict[str, AbstractBaseUser], summary: Summary
    ) -> Staff:
        staff, created = Staff.objects.get_or_create(
            email=demo.email,
            defaults={"name": demo.name, "bio": demo.bio, "time_zone": "Europe/Rome"},
        )
        if demo.username and staff.user_id is None:
            staff.user = users[demo.username]
            staff.save(update_fields=["user"])
        if not staff.working_hours.exists():
            WorkingHours.objects.bulk_create(
                WorkingHours(
                    staff=staff, weekday=day, start_time=start, end_time=end, sort_order=order
                )
                for order, (day, start, end) in enumerate(demo.hours)
            )
        if created:
            summary.created.append(f"staff {demo.name}")
        return staff

    def _service(self, demo: DemoService, staff: dict[str, Staff], summary: Summary) -> Service:
        service, created = Service.objects.get_or_create(
            slug=demo.slug,
            defaults={
                "name": demo.name,
                "description": demo.description,
                "duration_minutes": demo.duration,
                "slot_interval_minutes": demo.slot_interval,
                "online": demo.online,
                "price": demo.price,
                "currency": "EUR" if demo.price else "",
                "min_notice_minutes": 120,
                "max_days_ahead": 60,
            },
        )
        if created:
            service.staff.set([staff[name] for name in demo.staff])
            service.save()
            summary.created.append(f"service {demo.name}")
        return service

    def _class(self, demo: DemoClass, staff: dict[str, Staff], summary: Summary) -> GroupClass:
        group_class, created = GroupClass.objects.get_or_create(
            slug=demo.slug,
            defaults={
                "name": demo.name,
                "description": demo.description,
                "capacity": demo.capacity,
                "duration_minutes": demo.duration,
                "online": demo.online,
                "price": demo.price,
                "currency": "EUR" if demo.price else "",
                "staff": staff[demo.staff],
                "location": demo.location,
            },
        )
        if created:
            summary.created.append(f"class {demo.name}")
        return group_class

    def _sessions(self, demo: DemoClass, group_class: GroupClass) -> int:
        """Make sure the class has its weekly sessions for the next four weeks."""
        now = timezone.now()
        today = timezone.localdate(now, ROME)
        added = 0
        order = group_class.sessions.count()
        for offset in range(SESSION_WEEKS * 7):
            day = today + dt.timedelta(days=offset)
            if day.weekday() not in demo.weekdays:
                continue
            start = dt.datetime.combine(day, demo.time, tzinfo=ROME)
            if start <= now:
                continue
            _session, created = ClassSession.objects.get_or_create(
                group_class=group_class, start=start, defaults={"sort_order": order}
            )
            if created:
                added += 1
                order += 1
        return added

    # Pages

    def _pages(self, summary: Summary) -> dict[str, Page]:
        language = get_supported_language_variant(settings.LANGUAGE_CODE)
        Locale.objects.get_or_create(language_code=language)
        root = Page.get_first_root_node() or Page.add_root(instance=Page(title="Root", slug="root"))

        home = HomePage.objects.first()
        new_pages: list[Page] = []
        if home is None:
            slug = "home" if not root.get_children().filter(slug="home").exists() else "riverside"
            home = HomePage(
                title=SITE_NAME,
                slug=slug,
                tagline="Feel better, move better — in the studio or from home.",
                body=[
                    {"type": "paragraph", "value": HOME_INTRO},
                    {
                        "type": "booking_widget",
                        "value": {"heading": "Book an appointment", "service": None},
                    },
                    {"type": "heading", "value": "Online sessions"},
                    {"type": "paragraph", "value": HOME_ONLINE},
                ],
            )
            root.add_child(instance=home)
            new_pages.append(home)
            summary.created.append("home page")
        self._make_site_root(root, home)

        classes = ContentPage.objects.child_of(home).filter(slug="classes").first()
        if classes is None:
            classes = ContentPage(
                title="Classes",
                slug="classes",
                show_in_menus=True,
                intro="Small groups in the studio, and live classes you can join from home.",
                body=[
                    {"type": "paragraph", "value": CLASSES_TEXT},
                    {
                        "type": "class_schedule",
                        "value": {"heading": "Upcoming sessions", "group_class": None, "limit": 12},
                    },
                ],
            )
            home.add_child(instance=classes)
            new_pages.append(classes)
            summary.created.append("classes page")

        members = MembersAreaPage.objects.child_of(home).first()
        if members is None:
            members = MembersAreaPage(
                title="My bookings", slug="my-bookings", show_in_menus=True, intro=MEMBERS_INTRO
            )
            home.add_child(instance=members)
            new_pages.append(members)
            summary.created.append("members area page")

        # A first revision, so the admin shows the pages as published with a history.
        for page in new_pages:
            page.refresh_from_db()
            page.save_revision().publish()
        return {"home": home, "classes": classes, "members": members}

    def _make_site_root(self, root: Page, home: HomePage) -> None:
        """Point the default site at the home page and remove Wagtail's placeholder page.

        The site's host and port follow ``WAGTAILADMIN_BASE_URL``, so that links in emails
        lead back to the running demo.
        """
        base_url = urlsplit(getattr(settings, "WAGTAILADMIN_BASE_URL", "") or "http://localhost")
        wanted = {
            "root_page_id": home.pk,
            "site_name": SITE_NAME,
            "hostname": base_url.hostname or "localhost",
            "port": base_url.port or (443 if base_url.scheme == "https" else 80),
        }
        site = Site.objects.filter(is_default_site=True).first()
        if site is None:
            Site.objects.create(is_default_site=True, **wanted)
            return
        previous = site.root_page
        if any(getattr(site, name) != value for name, value in wanted.items()):
            for name, value in wanted.items():
                setattr(site, name, value)
            site.save()
        if previous.pk != home.pk and previous.specific_class is Page and previous.is_leaf():
            previous.delete()
        if home.slug != "home" and not root.get_children().filter(slug="home").exists():
            home.refresh_from_db()
            home.slug = "home"
            home.save()

    # Video meetings

    def _conferencing(self, summary: Summary) -> None:
        """Make a Jitsi Meet account the default site's default conferencing account.

        Jitsi needs no sign-up, so the demo's online bookings get rooms on meet.jit.si
        that really work. Meetings that failed for want of an account (demo data loaded
        before this step existed) are tried again.
        """
        site = Site.objects.get(is_default_site=True)
        account = (
            ConferencingAccount.objects.filter(provider="jitsi", staff__isnull=True)
            .order_by("pk")
            .first()
        )
        created = account is None
        if account is None:
            account = ConferencingAccount.objects.create(provider="jitsi", label=JITSI_LABEL)
        if account.status != AccountStatus.CONNECTED:
            account.status = AccountStatus.CONNECTED
            account.save(update_fields=["status", "updated_at"])
        conferencing = ConferencingSettings.for_site(site)
        if conferencing.default_account_id != account.pk:
            conferencing.default_account = account
            conferencing.save()
        if created:
            summary.created.append("Jitsi Meet conferencing account")
        for meeting in Meeting.objects.filter(state=MeetingState.FAILED, account__isnull=True):
            meetings.retry(meeting)

    # Bookings

    def _sample_bookings(
        self,
        users: dict[str, AbstractBaseUser],
        services: dict[str, Service],
        classes: dict[str, GroupClass],
        summary: Summary,
    ) -> None:
        try:
            from wagtail_bookings_vc import bookings
        except ImportError:
            summary.notes.append("No sample bookings: the booking module is not available yet.")
            return
        now = timezone.now()
        maria = users["member"]
        if not Booking.objects.filter(
            member=maria, service__isnull=False, status=BookingStatus.CONFIRMED, end__gt=now
        ).exists():
            booking = self._book_first_free(bookings, maria, services["online-consultation"], now)
            if booking is None:
                summary.notes.append("No free time was found for Maria's sample booking.")
            else:
                # As if she had paid online: the consultation is priced, and its link
                # shows once it is paid.
                if booking.payment_status == PaymentStatus.PENDING:
                    bookings.mark_paid(booking)
                summary.bookings.append(self._describe(booking) + ", paid")

        luca = users["member2"]
        yoga = classes["morning-yoga"]
        if not Booking.objects.filter(
            member=luca, session__group_class=yoga, status=BookingStatus.CONFIRMED, end__gt=now
        ).exists():
            session = yoga.sessions.filter(start__gt=now, cancelled=False).order_by("start").first()
            if session is not None:
                try:
                    booking = bookings.book_session(
                        member=luca, session=session, time_zone="Europe/Rome"
                    )
                except bookings.BookingError as error:
                    summary.notes.append(f"Luca's class seat was not booked: {error}")
                else:
                    summary.bookings.append(self._describe(booking))

    def _book_first_free(
        self, bookings: Any, member: AbstractBaseUser, service: Service, now: dt.datetime
    ) -> Booking | None:
        """Book the first free morning slot (Rome time) from the day after tomorrow."""
        from wagtail_bookings_vc import availability

        first_day = timezone.localdate(now, ROME) + dt.timedelta(days=2)
        slots = availability.free_slots(service, start_date=first_day, days=14, now=now)
        mornings = [slot for slot in slots if timezone.localtime(slot.start, ROME).hour >= 10]
        staff = {person.pk: person for person in service.staff.all()}
        for slot in mornings or slots:
            try:
                return bookings.book_appointment(
                    member=member,
                    service=service,
                    staff=staff[slot.staff_id],
                    start=slot.start,
                    time_zone="Europe/Rome",
                    notes="First visit.",
                )
            except bookings.BookingError:
                continue
        return None

    @staticmethod
    def _describe(booking: Booking) -> str:
        start = timezone.localtime(booking.start, ROME)
        who = booking.member.get_full_name() if booking.member else booking.member_name
        return f"{who}: {booking.title}, {start:%a %d %b %H:%M} (reference {booking.reference})"

    # Report

    def _report(self, pages: dict[str, Page], summary: Summary) -> None:
        write = self.stdout.write
        write(self.style.SUCCESS("Demo data is ready."))
        if summary.created:
            write(f"  Added: {', '.join(summary.created)}.")
        else:
            write("  Everything was already there; nothing was replaced.")
        sessions = ClassSession.objects.filter(start__gt=timezone.now(), cancelled=False).count()
        write(
            f"  {Staff.objects.count()} staff, {Service.objects.count()} services, "
            f"{GroupClass.objects.count()} classes with {sessions} upcoming sessions "
            f"({summary.sessions_added} added now)."
        )
        urls = [f"{p.title} ({Page.objects.get(pk=p.pk).get_url()})" for p in pages.values()]
        write(f"  Pages: {', '.join(urls)}.")
        for line in summary.bookings:
            write(f"  Sample booking for {line}")
        for note in summary.notes:
            write(f"  {note}")
        write("  Accounts (user / password): admin / admin, member / member (Maria Rossi),")
        write("  member2 / member2 (Luca Ferri), staff / staff (Giulia Bianchi, admin access).")
