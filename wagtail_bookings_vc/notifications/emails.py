"""The booking emails: one background job renders and sends one email about one booking.

Subject and body come from the site's *Booking emails* settings when an editor
wrote them, else from the templates ``wagtail_bookings_vc/emails/<kind>_subject.txt``
and ``<kind>.txt`` (which a site may override). Every email carries the
booking as a calendar file, ``invite.ics``, with the reader's own meeting link
when the booking is online.
"""

from __future__ import annotations

import logging
import re
from email.message import MIMEPart
from email.mime.text import MIMEText
from typing import TYPE_CHECKING

import django
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine, TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.urls import NoReverseMatch
from django.utils import translation

from ..memo import read_scope
from ..models.settings import EMAIL_KINDS
from . import context as ctx
from . import link_ready
from .ics import CANCEL, REQUEST, booking_ics

if TYPE_CHECKING:
    from wagtail.models import Site

    from ..models import Booking, BookingEmailSettings

logger = logging.getLogger(__name__)

#: The email that brings a member the link that was not ready for their confirmation (R15).
LINK_READY = link_ready.LINK_READY_KIND
#: The emails an editor can rewrite in the settings.
EDITABLE_KINDS: tuple[str, ...] = tuple(kind for kind, _label in EMAIL_KINDS)
KINDS: tuple[str, ...] = (*EDITABLE_KINDS, LINK_READY)
MEMBER_KINDS = frozenset(kind for kind in KINDS if kind.startswith("member_"))
STAFF_KINDS = frozenset(kind for kind in KINDS if kind.startswith("staff_"))
CANCELLATION_KINDS = frozenset({"member_cancellation", "staff_cancellation"})

TEMPLATE_DIR = "wagtail_bookings_vc/emails"
HTML_TEMPLATE = f"{TEMPLATE_DIR}/base.html"
ICS_FILENAME = "invite.ics"

# Errors an editor's template can cause; the built-in text is used instead.
_TEMPLATE_ERRORS = (TemplateSyntaxError, TemplateDoesNotExist, NoReverseMatch)


def send_booking_email(booking_id: int, kind: str) -> None:
    """Job: send the email ``kind`` about booking ``booking_id``.

    Safe to run late or twice: nothing is sent when the booking is gone, when
    it was cancelled since (except for the cancellation emails), or when the
    recipient has no email address.

    Args:
        booking_id: primary key of the booking.
        kind: one of ``KINDS``, e.g. ``"member_confirmation"``.

    Raises:
        ValueError: ``kind`` is not a known email kind.
    """
    deliver(booking_id, kind)


def deliver(booking_id: int, kind: str) -> bool:
    """Send the email ``kind`` about booking ``booking_id``; return whether one was sent.

    Args:
        booking_id: primary key of the booking.
        kind: one of ``KINDS``.

    Returns:
        ``True`` if an email went out, ``False`` if there was nothing to send.

    Raises:
        ValueError: ``kind`` is not a known email kind.
    """
    _check_kind(kind)
    # The site, its settings and its conferencing account are read once per email.
    with read_scope():
        return _deliver(booking_id, kind)


def _deliver(booking_id: int, kind: str) -> bool:
    booking = _load(booking_id)
    if booking is None:
        logger.info("Booking %s no longer exists; %s not sent.", booking_id, kind)
        return False
    rendered = _render(booking, kind)
    if rendered is None:
        return False
    message, context = rendered
    if context["join_link"] and kind != LINK_READY:
        # The member has the link by email now: no "your link is ready" email for it.
        link_ready.mark_link_sent(booking)
    message.send()
    return True


def build_booking_email(
    booking: Booking, kind: str, *, site: Site | None = None
) -> EmailMultiAlternatives | None:
    """Render the email ``kind`` about ``booking``, ready to send.

    Member emails are written in the member's language and time zone, staff
    emails in the staff member's.

    Args:
        booking: the booking the email is about.
        kind: one of ``KINDS``.
        site: the site the email speaks for (default: the default site).

    Returns:
        The message, or ``None`` when there is nobody to send it to, the
        booking was cancelled since the email was asked for, or (for the *link
        ready* email) the member has no link to be sent.

    Raises:
        ValueError: ``kind`` is not a known email kind.
    """
    _check_kind(kind)
    rendered = _render(booking, kind, site=site)
    return rendered[0] if rendered is not None else None


def _render(
    booking: Booking, kind: str, *, site: Site | None = None
) -> tuple[EmailMultiAlternatives, dict[str, str]] | None:
    if booking.is_cancelled and kind not in CANCELLATION_KINDS:
        # A late job: the member has already been (or is about to be) told it is cancelled.
        return None
    recipient = (
        ctx.member_recipient(booking) if kind in MEMBER_KINDS else ctx.staff_recipient(booking)
    )
    if recipient is None or not recipient.email:
        return None
    site = site or ctx.default_site()
    prefs = ctx.email_settings(site)
    method = CANCEL if kind in CANCELLATION_KINDS else REQUEST

    with translation.override(recipient.language):
        context = ctx.build_context(booking, recipient, site=site)
        if kind == LINK_READY and not context["join_link"]:
            return None
        subject, body = render_email(kind, context, prefs)
        html = render_to_string(
            HTML_TEMPLATE,
            {"subject": subject, "body": body.strip(), "site_name": context["site_name"]},
        )
        ics = booking_ics(
            booking,
            method=method,
            # Each reader's own link: the member's join link, the staff member's host link.
            meeting_url=context["join_link"] or context["host_link"],
            meeting_description=context["meeting_description"],
            meeting_passcode=context["meeting_passcode"],
        )

    reply_to = []
    if kind in STAFF_KINDS:
        # Staff answering a booking email mean to write to the member, not to the site.
        member = ctx.member_recipient(booking)
        if member.email:
            reply_to = [member.address]
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=ctx.sender(site, prefs),
        to=[recipient.address],
        reply_to=reply_to,
    )
    message.attach_alternative(html, "text/html")
    message.attach(calendar_attachment(ics, method))
    return message, context


def render_email(
    kind: str, context: dict[str, str], prefs: BookingEmailSettings
) -> tuple[str, str]:
    """Render the subject and plain-text body of ``kind``.

    The editor's text from the settings wins when there is one and it renders;
    otherwise the built-in template is used.

    Args:
        kind: one of ``KINDS``.
        context: the template variables (strings only).
        prefs: the site's booking email settings.

    Returns:
        ``(subject, body)``: a one-line subject and the body text.
    """
    subject = _render_editor_text(getattr(prefs, f"{kind}_subject", ""), context, kind)
    if not subject.strip():
        subject = render_to_string(f"{TEMPLATE_DIR}/{kind}_subject.txt", context)
    body = _render_editor_text(getattr(prefs, f"{kind}_body", ""), context, kind)
    if not body.strip():
        body = render_to_string(f"{TEMPLATE_DIR}/{kind}.txt", context)
    return _one_line(subject), _tidy(body)


def _render_editor_text(source: str, context: dict[str, str], kind: str) -> str:
    if not source or not source.strip():
        return ""
    try:
        template = Engine.get_default().from_string(source)
        # Plain-text emails: a name like "O'Brien" must not turn into an HTML entity.
        return template.render(Context(context, autoescape=False))
    except _TEMPLATE_ERRORS:
        logger.warning("The edited %s email has a template error; built-in text used.", kind)
        return ""


def calendar_attachment(ics: bytes, method: str) -> MIMEPart | MIMEText:
    """The ``invite.ics`` attachment of a booking email, with its iTIP ``method``."""
    text = ics.decode("utf-8")
    if django.VERSION >= (6, 0):
        part = MIMEPart()
        part.set_content(
            text,
            subtype="calendar",
            charset="utf-8",
            disposition="attachment",
            filename=ICS_FILENAME,
            params={"method": method},
        )
        return part
    # Django 5.2 only takes the legacy MIME classes.
    legacy = MIMEText(text, "calendar", "utf-8")
    legacy.set_param("method", method)
    legacy.add_header("Content-Disposition", "attachment", filename=ICS_FILENAME)
    return legacy


def _load(booking_id: int) -> Booking | None:
    from ..models import Booking

    return (
        Booking.objects.select_related(
            "member", "service", "staff__user", "session__group_class__staff__user"
        )
        .filter(pk=booking_id)
        .first()
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Unknown booking email kind: {kind!r}")


def _one_line(text: str) -> str:
    # Header injection and folded subjects both come from newlines; a subject has none.
    return " ".join(text.split())


def _tidy(text: str) -> str:
    # Optional lines in templates leave runs of blank lines behind.
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
