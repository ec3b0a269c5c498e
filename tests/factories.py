"""Factories for the test suite: staff who work weekdays 9–17, services, classes, sessions."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from wagtail_bookings_vc.models import (
    Booking,
    ClassSession,
    GroupClass,
    Service,
    Staff,
    TimeOff,
    WorkingHours,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"member{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Sequence(lambda n: f"Member{n}")
    last_name = "Tester"
    password = factory.django.Password("password")


class StaffFactory(factory.django.DjangoModelFactory):
    """A staff member in Europe/Rome who works Monday to Friday, 9:00 to 17:00."""

    class Meta:
        model = Staff
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Staff {n}")
    email = factory.Sequence(lambda n: f"staff{n}@example.com")
    time_zone = "Europe/Rome"

    @factory.post_generation
    def hours(self, create, extracted, **kwargs):
        if not create:
            return
        spans = (
            extracted
            if extracted is not None
            else [(day, dt.time(9), dt.time(17)) for day in range(5)]
        )
        for weekday, start, end in spans:
            WorkingHours.objects.create(staff=self, weekday=weekday, start_time=start, end_time=end)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Consultation {n}")
    slug = factory.Sequence(lambda n: f"consultation-{n}")
    duration_minutes = 60
    slot_interval_minutes = 60
    min_notice_minutes = 60
    max_days_ahead = 60
    cancellation_cutoff_hours = 24

    @factory.post_generation
    def staff(self, create, extracted, **kwargs):
        if create and extracted:
            self.staff.set(extracted)
            # A ParentalManyToManyField is written when the cluster is saved.
            self.save()


class GroupClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GroupClass

    name = factory.Sequence(lambda n: f"Yoga {n}")
    slug = factory.Sequence(lambda n: f"yoga-{n}")
    capacity = 10
    duration_minutes = 60
    staff = factory.SubFactory(StaffFactory)


class ClassSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClassSession

    group_class = factory.SubFactory(GroupClassFactory)
    start = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=3))


class TimeOffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimeOff

    staff = factory.SubFactory(StaffFactory)
    start = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=1))
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(hours=2))


class AppointmentFactory(factory.django.DjangoModelFactory):
    """A confirmed appointment written directly, to set the scene for a test.

    Real bookings go through ``wagtail_bookings_vc.bookings``; this one skips its rules
    so that a test can put a booking exactly where it needs one.
    """

    class Meta:
        model = Booking

    member = factory.SubFactory(UserFactory)
    member_name = factory.LazyAttribute(lambda o: o.member.get_full_name() if o.member else "")
    service = factory.SubFactory(ServiceFactory)
    staff = factory.SubFactory(StaffFactory)
    start = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=2))
    # In UTC: adding minutes to a local time would add wall-clock time across a clock change.
    end = factory.LazyAttribute(
        lambda o: o.start.astimezone(dt.UTC) + dt.timedelta(minutes=o.service.duration_minutes)
    )


class SeatFactory(factory.django.DjangoModelFactory):
    """A confirmed seat in a class session, written directly to set the scene for a test."""

    class Meta:
        model = Booking

    member = factory.SubFactory(UserFactory)
    session = factory.SubFactory(ClassSessionFactory)
    start = factory.LazyAttribute(lambda o: o.session.start)
    end = factory.LazyAttribute(lambda o: o.session.end)
