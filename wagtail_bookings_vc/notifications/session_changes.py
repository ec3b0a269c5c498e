"""Telling attendees when the way into their class session changes (R11, R12).

A session's :class:`LinkState` is what its attendees need to know to take part: whether
it takes place, when, online or in person (and where), and which link leads into it.
Saving a session or its class records the state each affected session had before (see
``receivers.py``). Once the transaction commits, every session whose state really
changed and that has not ended yet gets:

- one email to each confirmed attendee, in their language, saying what changed, with
  their personal join link when the session is online (never the provider's URL) and
  the calendar file updated;
- one email to the instructor per class, listing the sessions that changed and how many
  attendees were told (when the site emails staff about their bookings).

A change to the whole class (online on or off, how the link is made, its hand-entered
link) is one email per attendee per affected session: each carries that booking's own
calendar file. Several saves in one transaction (the class editor saves the class and
then each of its sessions) still make one email per attendee: the state before the
first save is compared with the state after the commit.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.mail import EmailMultiAlternatives
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import jobs, meetings
from . import context as ctx
from . import emails, link_ready
from .ics import CANCEL, REQUEST, booking_ics

if TYPE_CHECKING:
    from wagtail.models import Site

    from ..models import Booking, ClassSession, GroupClass

logger = logging.getLogger(__name__)

#: The email kinds; their texts are the templates ``emails/<kind>.txt`` and
#: ``emails/<kind>_subject.txt`` (no editable text in the settings).
MEMBER_KIND = "member_session_change"
STAFF_KIND = "staff_session_change"
MEMBER_JOB = "wagtail_bookings_vc.notifications.session_changes.send_member_session_change"
STAFF_JOB = "wagtail_bookings_vc.notifications.session_changes.send_staff_session_changes"

# What changed, as handed to the email jobs.
CANCELLED = "cancelled"
RESTORED = "restored"
MOVED = "moved"
IN_PERSON = "in_person"
ONLINE = "online"
LINK_CHANGED = "link_changed"
LINK_REMOVED = "link_removed"
LINK_ADDED = "link_added"
LOCATION = "location"
CHANGES = (
    CANCELLED,
    RESTORED,
    MOVED,
    IN_PERSON,
    ONLINE,
    LINK_CHANGED,
    LINK_REMOVED,
    LINK_ADDED,
    LOCATION,
)


# --------------------------------------------------------------------------------------
# What attendees need to know of a session, and what changed
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkState:
    """What a session's attendees need to know to take part in it.

    Attributes:
        cancelled: the session does not take place.
        start: when it starts.
        end: when it ends.
        online: held in a video meeting (else in person).
        kind: where its link comes from, as if it were not cancelled:
            ``meetings.NO_LINK``, ``MANUAL`` or ``AUTOMATIC``.
        url: the hand-entered link that applies (``kind`` manual only).
        passcode: the passcode that goes with it.
        location: where it takes place (in person only).
    """

    cancelled: bool
    start: datetime
    end: datetime
    online: bool
    kind: str
    url: str = ""
    passcode: str = ""
    location: str = ""


def link_state(session: ClassSession, group_class: GroupClass | None = None) -> LinkState:
    """The :class:`LinkState` of ``session``, as part of ``group_class`` (default: its own).

    Passing the class as it was before an edit gives the session's state before it.
    Follows :func:`wagtail_bookings_vc.meetings.session_link_kind`.
    """
    from ..models import SessionFormat, SessionLink

    group_class = group_class or session.group_class
    if session.format_override:
        online = session.format_override == SessionFormat.ONLINE
    else:
        online = bool(group_class.online)
    url = passcode = location = ""
    if not online:
        kind = meetings.NO_LINK
        location = session.location or group_class.location
    elif session.meeting_link_override == SessionLink.NONE:
        kind = meetings.NO_LINK
    elif session.meeting_link_override == SessionLink.MANUAL:
        kind, url, passcode = meetings.MANUAL, session.meeting_url, session.meeting_passcode
    else:
        kind = str(group_class.meeting_link_mode)
        if kind == meetings.MANUAL:
            url, passcode = group_class.meeting_url, group_class.meeting_passcode
    minutes = session.duration_minutes or group_class.duration_minutes
    return LinkState(
        cancelled=bool(session.cancelled),
        start=session.start,
        end=session.start + timedelta(minutes=minutes),
        online=online,
        kind=kind,
        url=url,
        passcode=passcode,
        location=location,
    )


def changes(before: LinkState, after: LinkState) -> list[str]:
    """What changed between two states of a session, for its attendees (may be empty).

    A cancelled session's other changes are not told: there is nothing to join.
    """
    if after.cancelled:
        return [] if before.cancelled else [CANCELLED]
    found = [RESTORED] if before.cancelled else []
    if (before.start, before.end) != (after.start, after.end):
        found.append(MOVED)
    if before.online != after.online:
        found.append(ONLINE if after.online else IN_PERSON)
    elif after.online:
        if (before.kind, before.url, before.passcode) != (after.kind, after.url, after.passcode):
            if after.kind == meetings.NO_LINK:
                found.append(LINK_REMOVED)
            elif before.kind == meetings.NO_LINK:
                found.append(LINK_ADDED)
            else:
                found.append(LINK_CHANGED)
    elif before.location != after.location:
        found.append(LOCATION)
    return found


def attendees_to_tell(session: ClassSession, now: datetime | None = None) -> list[Booking]:
    """The confirmed attendees of ``session`` who are emailed when it changes.

    Nobody once the session has ended; otherwise every confirmed seat with an address.
    """
    now = now or timezone.now()
    if link_state(session).end <= now:
        return []
    seats = session.bookings.confirmed().select_related("member").order_by("pk")
    return [seat for seat in seats if ctx.member_recipient(seat).email]


# --------------------------------------------------------------------------------------
# Collecting the changes of one transaction
# --------------------------------------------------------------------------------------


class _Pending:
    """The sessions changed in one transaction, each with its state before the first change."""

    def __init__(self) -> None:
        self.before: dict[int, LinkState] = {}
        self.done = False

    def run(self) -> None:
        self.done = True
        notify_changes(self.before)


_local = threading.local()


def remember(session_id: int, before: LinkState, using: str = DEFAULT_DB_ALIAS) -> None:
    """Record that ``session_id`` had state ``before`` until now (its first change wins).

    Call it after the change is saved: the attendees are told once the transaction
    commits, or at once outside a transaction.
    """
    pending = _open_pending(using)
    if pending is not None:
        pending.before.setdefault(session_id, before)
        return
    pending = _Pending()
    pending.before[session_id] = before
    if not hasattr(_local, "pending"):
        _local.pending = {}
    _local.pending[using] = pending
    # Robust: a failure here is logged and must not undo or hide the saved change.
    transaction.on_commit(pending.run, using=using, robust=True)


def _open_pending(using: str) -> _Pending | None:
    # The collection of the transaction in progress, if it still waits for the commit: a
    # rollback throws away its on-commit callback, and with it the collection.
    pending = getattr(_local, "pending", {}).get(using)
    if pending is None or pending.done:
        return None
    connection = connections[using]
    if not connection.in_atomic_block:
        return None
    waiting = any(func == pending.run for _sids, func, _robust in connection.run_on_commit)
    return pending if waiting else None


def notify_changes(before: dict[int, LinkState], now: datetime | None = None) -> int:
    """Queue the emails for every session in ``before`` whose state has changed since.

    Args:
        before: the sessions' states before the change, by primary key.
        now: the current time (default: ``timezone.now()``); ended sessions are skipped.

    Returns:
        How many attendee emails were queued.
    """
    from ..models import Booking, ClassSession

    now = now or timezone.now()
    sessions = ClassSession.objects.select_related("group_class").filter(pk__in=list(before))
    told: dict[int, list[list[Any]]] = defaultdict(list)
    queued = 0
    for session in sessions.order_by("start", "pk"):
        after = link_state(session)
        found = changes(before[session.pk], after)
        if not found:
            continue
        seats = attendees_to_tell(session, now)
        if not seats:
            continue
        # The calendar files in these emails replace the copies attendees already have.
        Booking.objects.filter(pk__in=[seat.pk for seat in seats]).update(
            sequence=F("sequence") + 1
        )
        if after.kind == meetings.AUTOMATIC and not after.cancelled:
            link_ready.expect_new_link(session.pk)
        for seat in seats:
            jobs.enqueue(MEMBER_JOB, seat.pk, found)
        queued += len(seats)
        told[session.group_class_id].append([session.pk, found, len(seats)])
        logger.info("Session %s changed (%s): %d attendees told.", session.pk, found, len(seats))
    for class_id, items in told.items():
        jobs.enqueue(STAFF_JOB, class_id, items)
    return queued


# --------------------------------------------------------------------------------------
# The emails
# --------------------------------------------------------------------------------------


def _member_sentence(code: str, location: str) -> str:
    if code == CANCELLED:
        return _("This session has been cancelled.")
    if code == RESTORED:
        return _("This session is no longer cancelled: it takes place after all.")
    if code == MOVED:
        return _("This session has a new time.")
    if code == IN_PERSON:
        if location:
            return _(
                "This session is now held in person, not online. Please come to: %(place)s."
            ) % {"place": location}
        return _("This session is now held in person, not online.")
    if code == ONLINE:
        return _("This session is now held online, in a video meeting.")
    if code == LINK_CHANGED:
        return _("The video meeting of this session has changed: use your personal link to join.")
    if code == LINK_REMOVED:
        return _(
            "This session has no video meeting link for now. We will email you if that changes."
        )
    if code == LINK_ADDED:
        return _("This session has a video meeting link again.")
    if code == LOCATION:
        return _("This session takes place somewhere else now: %(place)s.") % {"place": location}
    return ""


def _staff_sentence(code: str, location: str) -> str:
    if code == CANCELLED:
        return _("Cancelled.")
    if code == RESTORED:
        return _("No longer cancelled.")
    if code == MOVED:
        return _("New time.")
    if code == IN_PERSON:
        if location:
            return _("Now held in person, at %(place)s.") % {"place": location}
        return _("Now held in person.")
    if code == ONLINE:
        return _("Now held online.")
    if code == LINK_CHANGED:
        return _("Its meeting link changed.")
    if code == LINK_REMOVED:
        return _("Its meeting link was removed.")
    if code == LINK_ADDED:
        return _("It has a meeting link again.")
    if code == LOCATION:
        return _("Now at %(place)s.") % {"place": location}
    return ""


def headline(codes: list[str]) -> str:
    """A few words for the subject line that say what changed (in the active language)."""
    if len(codes) != 1:
        return _("Session changed")
    return {
        CANCELLED: _("Session cancelled"),
        RESTORED: _("Session back on"),
        MOVED: _("New time"),
        IN_PERSON: _("Now in person"),
        ONLINE: _("Now online"),
        LINK_CHANGED: _("New meeting link"),
        LINK_REMOVED: _("Meeting link removed"),
        LINK_ADDED: _("Meeting link added"),
        LOCATION: _("New place"),
    }.get(codes[0], _("Session changed"))


def send_member_session_change(booking_id: int, codes: list[str]) -> bool:
    """Job: tell the attendee of seat ``booking_id`` what changed in their session.

    Safe to run late: nothing is sent when the seat was cancelled since, its session
    has ended, or the member has no address. What the email shows of the session
    (time, place, link) is read when it is sent.

    Returns:
        Whether an email went out.
    """
    from ..models import Booking

    booking = (
        Booking.objects.select_related("member", "session__group_class__staff")
        .filter(pk=booking_id, session__isnull=False)
        .first()
    )
    if booking is None or booking.is_cancelled or booking.session.end <= timezone.now():
        return False
    rendered = _render_member(booking, codes)
    if rendered is None:
        return False
    message, context = rendered
    if context["join_link"]:
        # The member has the link by email now: no "your link is ready" email for it.
        link_ready.mark_link_sent(booking)
    message.send()
    return True


def build_member_email(
    booking: Booking, codes: list[str], *, site: Site | None = None
) -> EmailMultiAlternatives | None:
    """The email telling the member of ``booking`` that ``codes`` changed in their session.

    Returns:
        The message, or ``None`` when the member has no address.
    """
    rendered = _render_member(booking, codes, site=site)
    return rendered[0] if rendered is not None else None


def _render_member(
    booking: Booking, codes: list[str], *, site: Site | None = None
) -> tuple[EmailMultiAlternatives, dict[str, str]] | None:
    recipient = ctx.member_recipient(booking)
    if not recipient.email:
        return None
    site = site or ctx.default_site()
    prefs = ctx.email_settings(site)
    session = booking.session
    method = CANCEL if session.cancelled else REQUEST
    with translation.override(recipient.language):
        context = ctx.build_context(booking, recipient, site=site)
        context["headline"] = headline(codes)
        context["change_summary"] = "\n".join(
            sentence
            for sentence in (_member_sentence(code, session.effective_location) for code in codes)
            if sentence
        )
        subject, body = emails.render_email(MEMBER_KIND, context, prefs)
        html = render_to_string(
            emails.HTML_TEMPLATE,
            {"subject": subject, "body": body.strip(), "site_name": context["site_name"]},
        )
        ics = booking_ics(
            booking,
            method=method,
            meeting_url=context["join_link"],
            meeting_description=context["meeting_description"],
            meeting_passcode=context["meeting_passcode"],
        )
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=ctx.sender(site, prefs),
        to=[recipient.address],
    )
    message.attach_alternative(html, "text/html")
    message.attach(emails.calendar_attachment(ics, method))
    return message, context


def send_staff_session_changes(class_id: int, items: list[list[Any]]) -> bool:
    """Job: tell a class's instructor which of its sessions changed and who was told.

    Args:
        class_id: primary key of the class.
        items: ``[session_id, codes, attendees_told]`` for each session that changed.

    Returns:
        Whether an email went out: not when the class has no instructor with an
        address, or the site does not email staff about their bookings.
    """
    from ..models import GroupClass

    group_class = GroupClass.objects.select_related("staff__user").filter(pk=class_id).first()
    if group_class is None or group_class.staff is None:
        return False
    message = build_staff_email(group_class, items)
    if message is None:
        return False
    message.send()
    return True


def build_staff_email(
    group_class: GroupClass, items: list[list[Any]], *, site: Site | None = None
) -> EmailMultiAlternatives | None:
    """The instructor's email about the sessions of ``group_class`` in ``items``."""
    from .. import links
    from ..models import ClassSession

    site = site or ctx.default_site()
    prefs = ctx.email_settings(site)
    staff = group_class.staff
    if staff is None or not prefs.notify_staff:
        return None
    recipient = ctx.staff_member_recipient(staff)
    if not recipient.email:
        return None
    sessions = {
        session.pk: session
        for session in ClassSession.objects.filter(pk__in=[item[0] for item in items])
    }
    shown = [(sessions[item[0]], item[1], item[2]) for item in items if item[0] in sessions]
    if not shown:
        return None
    with translation.override(recipient.language):
        zone = ctx.zone_for(recipient.time_zone)
        blocks = []
        for session, codes, told in shown:
            session.group_class = group_class
            lines = [
                _("%(date)s, %(start)s–%(end)s (%(time_zone)s)")
                % {
                    "date": ctx.format_date(session.start, zone),
                    "start": ctx.format_time(session.start, zone),
                    "end": ctx.format_time(session.end, zone),
                    "time_zone": zone.key,
                }
            ]
            lines += [_staff_sentence(code, session.effective_location) for code in codes]
            lines.append(
                ngettext(
                    "%(count)d attendee was emailed.", "%(count)d attendees were emailed.", told
                )
                % {"count": told}
            )
            seat = session.bookings.confirmed().first()
            host = links.host_link(seat) if seat is not None else ""
            if host:
                lines.append(_("Open the video meeting as its host: %(url)s") % {"url": host})
            blocks.append("\n".join(line for line in lines if line))
        first, codes, _told = shown[0]
        context = {
            "staff_name": staff.name,
            "title": str(group_class),
            "site_name": ctx.site_name(site),
            "headline": headline(codes),
            "date": ctx.format_date(first.start, zone),
            "time": ctx.format_time(first.start, zone),
            "several": "1" if len(shown) > 1 else "",
            "session_changes": "\n\n".join(blocks),
        }
        subject, body = emails.render_email(STAFF_KIND, context, prefs)
        html = render_to_string(
            emails.HTML_TEMPLATE,
            {"subject": subject, "body": body.strip(), "site_name": context["site_name"]},
        )
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=ctx.sender(site, prefs),
        to=[recipient.address],
    )
    message.attach_alternative(html, "text/html")
    return message
