"""Fixtures for the email, calendar-file and reminder tests.

The times are fixed: the appointment is on Tuesday 12 January 2027 from 10:00
to 11:00 in Rome (the staff member's zone), which is 04:00 to 05:00 in New
York (the member's zone) and 09:00 to 10:00 UTC.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from wagtail.models import Site

from tests.factories import (
    ClassSessionFactory,
    GroupClassFactory,
    ServiceFactory,
    StaffFactory,
    UserFactory,
)
from wagtail_bookings_vc.models import Booking, BookingEmailSettings

from .helpers import END, SITE_HOST, START


@pytest.fixture
def site(db):
    """The default site, at https://studio.example.com, called Riverside Studio."""
    site = Site.objects.get(is_default_site=True)
    site.hostname = SITE_HOST
    site.port = 443
    site.site_name = "Riverside Studio"
    site.save()
    return site


@pytest.fixture
def email_prefs(site):
    return BookingEmailSettings.for_site(site)


@pytest.fixture
def staff(db):
    return StaffFactory(name="Giulia Rossi", email="giulia@example.com", time_zone="Europe/Rome")


@pytest.fixture
def member(db):
    return UserFactory(
        username="ada", first_name="Ada", last_name="Lovelace", email="ada@example.com"
    )


@pytest.fixture
def service(staff):
    return ServiceFactory(name="Massage", staff=[staff], price=Decimal("40.00"), currency="EUR")


@pytest.fixture
def make_booking(site, member, service, staff):
    """Write a booking straight to the database (for the parts that need no booking flow)."""

    def make(**fields) -> Booking:
        values = {
            "member": member,
            "member_name": "Ada Lovelace",
            "member_email": "ada@example.com",
            "service": service,
            "staff": staff,
            "start": START,
            "end": END,
            "time_zone": "America/New_York",
            "language": "en",
            "price": Decimal("40.00"),
            "currency": "EUR",
            "notes": "First visit",
        }
        values.update(fields)
        return Booking.objects.create(**values)

    return make


@pytest.fixture
def booking(make_booking):
    return make_booking()


@pytest.fixture
def group_class(db):
    instructor = StaffFactory(
        name="Oskar Lind", email="oskar@example.com", time_zone="Europe/Stockholm"
    )
    return GroupClassFactory(name="Morning yoga", staff=instructor, location="Studio 2")


@pytest.fixture
def class_booking(site, member, group_class):
    session = ClassSessionFactory(group_class=group_class, start=START)
    return Booking.objects.create(
        member=member,
        member_name="Ada Lovelace",
        member_email="ada@example.com",
        session=session,
        start=session.start,
        end=session.end,
        time_zone="Europe/Rome",
        language="en",
    )
