"""The booking emails: who gets what, in which time zone and language, and from where."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core import mail
from django.utils import translation
from wagtail.models import Site

from wagtail_bookings_vc.models import BookingStatus
from wagtail_bookings_vc.notifications import context as ctx
from wagtail_bookings_vc.notifications.emails import (
    EDITABLE_KINDS,
    LINK_READY,
    MEMBER_KINDS,
    STAFF_KINDS,
    build_booking_email,
    deliver,
    send_booking_email,
)

from .helpers import SITE_URL, attachment_part, html_of

pytestmark = pytest.mark.django_db


def _cancel(booking):
    booking.status = BookingStatus.CANCELLED
    booking.save()


def _send(booking, kind):
    if "cancellation" in kind:
        _cancel(booking)
    assert deliver(booking.pk, kind) is True
    (message,) = mail.outbox
    return message


# --- every kind -----------------------------------------------------------------------


# The "link ready" email needs an online booking: tests/notifications/test_meeting_links.py.
@pytest.mark.parametrize("kind", sorted(MEMBER_KINDS - {LINK_READY}))
def test_member_emails_show_times_in_the_members_zone(booking, kind):
    message = _send(booking, kind)

    assert message.to == ["Ada Lovelace <ada@example.com>"]
    assert "Tuesday 12 January 2027, 04:00–05:00 (America/New_York)" in message.body
    assert "Europe/Rome" not in message.body
    assert booking.reference in message.body
    assert "\n" not in message.subject and "Massage" in message.subject
    assert message.reply_to == []


@pytest.mark.parametrize("kind", sorted(STAFF_KINDS))
def test_staff_emails_show_times_in_the_staff_members_zone(booking, kind):
    message = _send(booking, kind)

    assert message.to == ["Giulia Rossi <giulia@example.com>"]
    assert "Tuesday 12 January 2027, 10:00–11:00 (Europe/Rome)" in message.body
    assert "America/New_York" not in message.body
    assert "10:00–11:00" in message.subject
    assert "Ada Lovelace <ada@example.com>" in message.body
    assert "First visit" in message.body
    # Answering the email writes to the member.
    assert message.reply_to == ["Ada Lovelace <ada@example.com>"]


def test_member_confirmation_has_the_booking_details_and_manage_link(booking):
    message = _send(booking, "member_confirmation")

    assert message.subject == "Booking confirmed: Massage, Tuesday 12 January 2027"
    assert "Hello Ada Lovelace," in message.body
    assert "With: Giulia Rossi" in message.body
    assert "Price: 40.00 EUR" in message.body
    assert f"{SITE_URL}/bookings/{booking.reference}/" in message.body


def test_member_reminder_subject_names_the_day_and_time(booking):
    message = _send(booking, "member_reminder")

    assert message.subject == "Reminder: Massage, Tuesday 12 January 2027, 04:00–05:00"


def test_cancellation_email_has_no_manage_link(booking):
    message = _send(booking, "member_cancellation")

    assert message.subject.startswith("Booking cancelled: Massage")
    assert "/bookings/" not in message.body


def test_free_booking_shows_no_price(make_booking):
    booking = make_booking(price=None, currency="")

    message = _send(booking, "member_confirmation")

    assert "Price" not in message.body


@pytest.mark.parametrize("kind", EDITABLE_KINDS)
def test_every_email_has_an_html_version_that_is_well_formed(booking, kind):
    message = _send(booking, kind)

    html = html_of(message)
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en"' in html
    assert _unclosed_tags(html) == []
    assert booking.reference in html


def test_html_version_links_the_manage_page(booking):
    html = html_of(_send(booking, "member_confirmation"))

    url = f"{SITE_URL}/bookings/{booking.reference}/"
    assert f'<a href="{url}"' in html


def test_names_are_not_html_escaped_in_plain_text(make_booking):
    booking = make_booking(member_name="Dónal O'Brien & Co")

    message = _send(booking, "member_confirmation")

    assert "Hello Dónal O'Brien & Co," in message.body
    assert "O&#x27;Brien" in html_of(message)


# --- class sessions -------------------------------------------------------------------


def test_class_emails_go_to_the_instructor_with_the_class_location(class_booking):
    member_message = build_booking_email(class_booking, "member_confirmation")
    staff_message = build_booking_email(class_booking, "staff_confirmation")

    assert "Where: Studio 2" in member_message.body
    assert "With: Oskar Lind" in member_message.body
    assert "10:00–11:00 (Europe/Rome)" in member_message.body
    assert staff_message.to == ["Oskar Lind <oskar@example.com>"]
    assert "10:00–11:00 (Europe/Stockholm)" in staff_message.body


def test_online_bookings_say_online(class_booking):
    group_class = class_booking.session.group_class
    group_class.online = True
    group_class.save()

    message = build_booking_email(class_booking, "member_confirmation")

    assert "Where: Online" in message.body


def test_class_without_an_instructor_sends_no_staff_email(class_booking):
    group_class = class_booking.session.group_class
    group_class.staff = None
    group_class.save()
    class_booking.staff = None
    class_booking.save()

    assert build_booking_email(class_booking, "staff_confirmation") is None


# --- language -------------------------------------------------------------------------


def test_member_email_is_written_in_the_members_language(make_booking, settings):
    booking = make_booking(language="it")

    message = _send(booking, "member_confirmation")

    # Django's own translations of day and month names.
    assert "Martedì 12 Gennaio 2027" in message.body
    assert "Martedì 12 Gennaio 2027" in message.subject
    assert '<html lang="it"' in html_of(message)
    # The language is only borrowed for the email.
    assert translation.get_language() == settings.LANGUAGE_CODE


def test_staff_email_is_written_in_the_site_language(make_booking):
    booking = make_booking(language="it")

    message = _send(booking, "staff_confirmation")

    assert "Tuesday 12 January 2027" in message.body


def test_staff_email_follows_the_staff_members_admin_language(booking, staff):
    from wagtail.users.models import UserProfile

    from tests.factories import UserFactory

    staff.user = UserFactory(username="giulia")
    staff.save()
    profile = UserProfile.get_for_user(staff.user)
    profile.preferred_language = "it"
    profile.save()

    message = _send(booking, "staff_confirmation")

    assert "Martedì 12 Gennaio 2027" in message.body


def test_member_language_falls_back_to_the_site_language(make_booking, settings):
    booking = make_booking(language="")

    message = _send(booking, "member_confirmation")

    assert "Tuesday 12 January 2027" in message.body


def test_emails_are_rendered_inside_translation_override(booking, monkeypatch):
    languages = []
    real_override = translation.override

    def spy(language, *args, **kwargs):
        languages.append(language)
        return real_override(language, *args, **kwargs)

    monkeypatch.setattr(translation, "override", spy)
    booking.language = "sv"
    booking.save()

    deliver(booking.pk, "member_confirmation")

    assert languages == ["sv"]


# --- editors' texts ---------------------------------------------------------------------


def test_editor_text_replaces_the_built_in_one(booking, email_prefs):
    email_prefs.member_confirmation_subject = "See you {{ date }} – {{ title }}"
    email_prefs.member_confirmation_body = (
        "Dear {{ member_name }},\n"
        "{{ title }} with {{ staff_name }}: {{ start }} until {{ end }}.\n"
        "On {{ date }} at {{ time }} ({{ time_zone }}), {{ location|default:'our studio' }}.\n"
        "Ref {{ reference }}, {{ price }}. Manage: {{ manage_url }}\n"
        "{{ site_name }}"
    )
    email_prefs.save()

    message = _send(booking, "member_confirmation")

    assert message.subject == "See you Tuesday 12 January 2027 – Massage"
    assert message.body == (
        "Dear Ada Lovelace,\n"
        "Massage with Giulia Rossi: Tuesday 12 January 2027, 04:00 (America/New_York) "
        "until Tuesday 12 January 2027, 05:00 (America/New_York).\n"
        "On Tuesday 12 January 2027 at 04:00–05:00 (America/New_York), our studio.\n"
        f"Ref {booking.reference}, 40.00 EUR. Manage: {SITE_URL}/bookings/{booking.reference}/\n"
        "Riverside Studio\n"
    )


def test_editor_subject_alone_keeps_the_built_in_body(booking, email_prefs):
    email_prefs.member_reminder_subject = "Tomorrow: {{ title }}"
    email_prefs.save()

    message = _send(booking, "member_reminder")

    assert message.subject == "Tomorrow: Massage"
    assert "A reminder of your upcoming booking:" in message.body


def test_editor_text_is_not_html_escaped(make_booking, email_prefs):
    booking = make_booking(member_name="Dónal O'Brien")
    email_prefs.member_confirmation_body = "Hi {{ member_name }} <{{ manage_url }}>"
    email_prefs.save()

    message = _send(booking, "member_confirmation")

    assert message.body.startswith(f"Hi Dónal O'Brien <{SITE_URL}/bookings/")


def test_editor_text_with_a_syntax_error_falls_back_to_the_built_in_text(booking, email_prefs):
    email_prefs.member_confirmation_subject = "{% if %}broken"
    email_prefs.member_confirmation_body = "{% for %}{{ title }}"
    email_prefs.save()

    message = _send(booking, "member_confirmation")

    assert message.subject == "Booking confirmed: Massage, Tuesday 12 January 2027"
    assert "Your booking is confirmed." in message.body


def test_editor_text_cannot_reach_into_the_database(booking, email_prefs):
    email_prefs.member_confirmation_body = "[{{ booking.member.password }}{{ member.password }}]"
    email_prefs.save()

    message = _send(booking, "member_confirmation")

    assert message.body == "[]\n"


def test_editor_texts_are_per_kind(booking, email_prefs):
    email_prefs.staff_confirmation_subject = "Booked: {{ member_name }}"
    email_prefs.save()

    member_message = build_booking_email(booking, "member_confirmation")
    staff_message = build_booking_email(booking, "staff_confirmation")

    assert member_message.subject.startswith("Booking confirmed")
    assert staff_message.subject == "Booked: Ada Lovelace"


def test_template_variables_are_all_strings(booking):
    recipient = ctx.member_recipient(booking)

    with translation.override("en"):
        variables = ctx.build_context(booking, recipient)

    assert set(variables) == set(ctx.TEMPLATE_VARIABLES)
    assert all(type(value) is str for value in variables.values())


def test_template_variables_are_documented():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "emails.md").read_text()

    for name in ctx.TEMPLATE_VARIABLES:
        assert f"`{{{{ {name} }}}}`" in docs, name


# --- sender and site ------------------------------------------------------------------


def test_sender_is_the_site_setting(booking, email_prefs):
    email_prefs.from_email = "desk@studio.example.com"
    email_prefs.save()

    message = _send(booking, "member_confirmation")

    assert message.from_email == "Riverside Studio <desk@studio.example.com>"


def test_sender_defaults_to_default_from_email(booking, settings):
    settings.DEFAULT_FROM_EMAIL = "Bookings <noreply@example.org>"

    message = _send(booking, "member_confirmation")

    assert message.from_email == "Bookings <noreply@example.org>"


def test_manage_link_uses_wagtailadmin_base_url_without_a_site(booking, settings):
    Site.objects.all().delete()
    settings.WAGTAILADMIN_BASE_URL = "https://admin.example.net/"

    message = _send(booking, "member_confirmation")

    assert f"https://admin.example.net/bookings/{booking.reference}/" in message.body


def test_email_carries_the_calendar_file(booking):
    message = _send(booking, "member_confirmation")

    part = attachment_part(message)
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == "REQUEST"
    assert part.get_content_charset() == "utf-8"
    assert part.get_content_disposition() == "attachment"


# --- when nothing is sent -------------------------------------------------------------


def test_vanished_booking_sends_nothing(booking):
    booking_id = booking.pk
    booking.delete()

    send_booking_email(booking_id, "member_confirmation")

    assert mail.outbox == []


def test_confirmation_is_not_sent_once_the_booking_is_cancelled(booking):
    _cancel(booking)

    assert deliver(booking.pk, "member_confirmation") is False
    assert deliver(booking.pk, "member_reminder") is False
    assert mail.outbox == []


def test_member_without_an_address_gets_nothing(make_booking, member):
    member.email = ""
    member.save()
    booking = make_booking(member_email="")

    assert deliver(booking.pk, "member_confirmation") is False
    assert mail.outbox == []


def test_address_falls_back_to_the_members_account(make_booking):
    booking = make_booking(member_email="")

    message = _send(booking, "member_confirmation")

    assert message.to == ["Ada Lovelace <ada@example.com>"]


def test_unknown_kind_is_refused(booking):
    with pytest.raises(ValueError, match="Unknown booking email kind"):
        send_booking_email(booking.pk, "member_invoice")


# --- helpers --------------------------------------------------------------------------

VOID_ELEMENTS = {"br", "meta", "link", "img", "hr", "input"}


def _unclosed_tags(html: str) -> list[str]:
    """Tags left open (or closed without being opened) in ``html``."""

    class Checker(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.errors: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag not in VOID_ELEMENTS:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if self.stack and self.stack[-1] == tag:
                self.stack.pop()
            else:
                self.errors.append(tag)

    checker = Checker()
    checker.feed(html)
    checker.close()
    return checker.errors + checker.stack
