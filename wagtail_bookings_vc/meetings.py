"""The meeting of a booking, from planned to ready to cancelled: the only writer of meetings.

Each appointment gets its own meeting (R9); each class session has one meeting shared by
its attendees (R10), who each hold a personal join pass. The database is the source of
truth: a meeting that needs work carries ``state=pending`` or a ``next_attempt_at``, so
a job lost by the queue or a worker killed mid-call only delays it until the next sweep.

A job run twice, or by two workers at once, never makes two meetings: the job locks the
meeting row, claims it for a lease before calling the provider, and whoever finds a
fresh claim leaves it alone.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import accounts, jobs
from .models import (
    Booking,
    BookingStatus,
    ClassSession,
    JoinPass,
    JoinPassRole,
    Meeting,
    MeetingLinkMode,
    MeetingState,
    PaymentStatus,
    SessionLink,
)
from .providers.base import (
    AuthorizationExpired,
    MeetingDetails,
    MeetingSpec,
    PermanentFailure,
    ProviderError,
    RateLimited,
)
from .providers.registry import get_provider

logger = logging.getLogger(__name__)

ENSURE_JOB = "wagtail_bookings_vc.meetings.ensure_meeting"
# A worker that has not finished a provider call within the lease is presumed dead.
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)

NO_LINK = "none"
MANUAL = "manual"
AUTOMATIC = "automatic"


# --------------------------------------------------------------------------------------
# What kind of link a booking has
# --------------------------------------------------------------------------------------


def link_kind(booking: Booking) -> str:
    """``"none"``, ``"manual"`` or ``"automatic"``: where the booking's link comes from."""
    if booking.session_id:
        session = booking.session
        if not session.online or session.meeting_link_override == SessionLink.NONE:
            return NO_LINK
        if session.meeting_link_override == SessionLink.MANUAL:
            return MANUAL
        return session.group_class.meeting_link_mode
    if booking.service_id and booking.service.online:
        return booking.service.meeting_link_mode
    return NO_LINK


def manual_options(booking: Booking) -> dict[str, str]:
    """The hand-entered link that applies to a booking (the session's own, else the class's)."""
    if booking.session_id and booking.session.meeting_link_override == SessionLink.MANUAL:
        session = booking.session
        return {"url": session.meeting_url, "passcode": session.meeting_passcode}
    bookable = booking.bookable
    return {
        "url": bookable.meeting_url,
        "passcode": bookable.meeting_passcode,
        "description": bookable.meeting_description,
    }


def meeting_of(booking: Booking) -> Meeting | None:
    """The meeting a booking joins: its own (appointment) or its session's (class)."""
    owner: Any = booking.session if booking.session_id else booking
    try:
        return owner.meeting
    except Meeting.DoesNotExist:
        return None


# --------------------------------------------------------------------------------------
# Called by bookings.py inside its transaction
# --------------------------------------------------------------------------------------


def plan_booking(booking: Booking) -> None:
    """Give a new booking its join passes and, for automatic links, its (pending) meeting."""
    kind = link_kind(booking)
    if kind == NO_LINK:
        return
    JoinPass.objects.get_or_create(
        booking=booking, role=JoinPassRole.ATTENDEE, revoked_at=None
    )
    if booking.session_id:
        JoinPass.objects.get_or_create(
            session=booking.session, role=JoinPassRole.HOST, revoked_at=None
        )
    else:
        JoinPass.objects.get_or_create(booking=booking, role=JoinPassRole.HOST, revoked_at=None)
    if kind == AUTOMATIC:
        if booking.session_id:
            meeting, _created = Meeting.objects.get_or_create(session=booking.session)
        else:
            meeting, _created = Meeting.objects.get_or_create(booking=booking)
        if meeting.state != MeetingState.READY:
            jobs.enqueue(ENSURE_JOB, meeting.pk)


def booking_moved(booking: Booking) -> None:
    """A booking has a new time or session: bring its meeting along."""
    if booking.session_id:
        # The attendee's pass now leads to the new session's meeting.
        plan_booking(booking)
        return
    meeting = meeting_of(booking)
    if meeting is None:
        plan_booking(booking)
        return
    request_work(meeting)


def booking_cancelled(booking: Booking) -> None:
    """Revoke the booking's passes; an appointment's meeting is deleted at the provider.

    A class session's meeting stays for the other attendees (R13): it goes when the
    session is cancelled.
    """
    now = timezone.now()
    JoinPass.objects.filter(booking=booking, revoked_at=None).update(revoked_at=now)
    if not booking.session_id:
        meeting = meeting_of(booking)
        if meeting is not None:
            request_work(meeting)


def session_changed(session: ClassSession) -> None:
    """A class session was edited (new time, cancelled, switched online or in person)."""
    try:
        meeting = session.meeting
    except Meeting.DoesNotExist:
        return
    if session.cancelled:
        JoinPass.objects.filter(session=session, revoked_at=None).update(
            revoked_at=timezone.now()
        )
    request_work(meeting)


def request_work(meeting: Meeting) -> None:
    """Mark a meeting as needing a job (create, update or delete) and enqueue one."""
    Meeting.objects.filter(pk=meeting.pk).exclude(state=MeetingState.CANCELLED).update(
        next_attempt_at=timezone.now()
    )
    jobs.enqueue(ENSURE_JOB, meeting.pk)


def retry(meeting: Meeting) -> None:
    """Start a failed meeting over, for an administrator's *Retry* (R24)."""
    Meeting.objects.filter(pk=meeting.pk, state=MeetingState.FAILED).update(
        state=MeetingState.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
    )
    jobs.enqueue(ENSURE_JOB, meeting.pk)


# --------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Work:
    action: str  # "create", "update" or "delete"
    start: datetime | None = None
    end: datetime | None = None


def _target(meeting: Meeting) -> tuple[str, datetime | None, datetime | None]:
    """What the meeting should be now: ``("delete", …)`` or ``("sync", start, end)``."""
    if meeting.session_id:
        session = meeting.session
        gone = (
            session.cancelled
            or not session.online
            or session.meeting_link_override != ""
            or session.group_class.meeting_link_mode != MeetingLinkMode.AUTOMATIC
            or not session.bookings.filter(status=BookingStatus.CONFIRMED).exists()
        )
        return ("delete", None, None) if gone else ("sync", session.start, session.end)
    booking = meeting.booking
    if booking.status == BookingStatus.CANCELLED or link_kind(booking) != AUTOMATIC:
        return ("delete", None, None)
    return ("sync", booking.start, booking.end)


def _spec(meeting: Meeting, start: datetime, end: datetime) -> MeetingSpec:
    if meeting.session_id:
        session = meeting.session
        bookable: Any = session.group_class
        staff = bookable.staff
        reference = f"S{session.pk}"
        attendees: tuple[str, ...] = ()
    else:
        booking = meeting.booking
        bookable = booking.service
        staff = booking.staff
        reference = booking.reference
        attendees = (booking.member_email,) if booking.member_email else ()
    return MeetingSpec(
        reference=reference,
        topic=str(bookable),
        agenda=bookable.description[:500],
        start=start,
        end=end,
        time_zone=staff.time_zone if staff else timezone.get_default_timezone_name(),
        host_email=staff.email if staff else "",
        host_name=staff.name if staff else "",
        attendee_emails=attendees,
    )


def _staff_of(meeting: Meeting) -> Any:
    if meeting.session_id:
        return meeting.session.group_class.staff
    return meeting.booking.staff


def _backoff(attempts: int) -> timedelta:
    delay = min(MAX_DELAY, BASE_DELAY * (2 ** max(attempts - 1, 0)))
    # Jitter spreads the retries of many meetings that failed together.
    return delay * random.uniform(0.5, 1.5)  # noqa: S311 - not a secret


def ensure_meeting(meeting_id: int, now: datetime | None = None) -> str:
    """Job: bring one meeting to what its booking or session needs now.

    Creates, updates or deletes the meeting at its provider. Safe to run twice and in
    parallel. Returns what it did, for logs and tests: ``"created"``, ``"updated"``,
    ``"deleted"``, ``"nothing"``, ``"busy"``, ``"waiting"`` or ``"failed"``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        meeting = (
            Meeting.objects.select_for_update()
            .select_related("booking__service", "booking__staff", "session__group_class")
            .filter(pk=meeting_id)
            .first()
        )
        if meeting is None or meeting.state == MeetingState.CANCELLED:
            return "nothing"
        if meeting.claimed_at and meeting.claimed_at > now - LEASE:
            return "busy"
        goal, start, end = _target(meeting)
        if goal == "delete":
            if not meeting.external_id:
                meeting.state = MeetingState.CANCELLED
                meeting.next_attempt_at = None
                meeting.save(update_fields=["state", "next_attempt_at", "updated_at"])
                return "deleted"
            work = _Work("delete")
        else:
            in_sync = (
                meeting.state == MeetingState.READY
                and meeting.synced_start == start
                and meeting.synced_end == end
            )
            if in_sync:
                if meeting.next_attempt_at:
                    meeting.next_attempt_at = None
                    meeting.save(update_fields=["next_attempt_at", "updated_at"])
                return "nothing"
            if meeting.state == MeetingState.FAILED:
                return "nothing"
            work = _Work("update" if meeting.external_id else "create", start, end)
        if meeting.next_attempt_at and meeting.next_attempt_at > now:
            return "waiting"
        if work.action == "create":
            account = accounts.account_for(_staff_of(meeting))
            if account is None:
                _fail(
                    meeting,
                    _(
                        "No video conferencing account is connected: connect the site's "
                        "default account, then retry."
                    ),
                )
                return "failed"
            meeting.account = account
            meeting.provider = account.provider
            meeting.state = MeetingState.CREATING
        meeting.claimed_at = now
        meeting.attempts += 1
        meeting.save()

    return _call_provider(meeting, work, now)


def _call_provider(meeting: Meeting, work: _Work, now: datetime) -> str:
    account = meeting.account
    try:
        provider = get_provider(meeting.provider)
        if work.action == "delete":
            provider.delete_meeting(account, meeting.external_id)
            details = None
        else:
            spec = _spec(meeting, work.start, work.end)  # type: ignore[arg-type]
            if work.action == "create":
                details = provider.create_meeting(account, spec)
            else:
                details = provider.update_meeting(account, meeting.external_id, spec)
    except ProviderError as error:
        return _record_error(meeting, work, error, now)
    except Exception as error:  # noqa: BLE001 - a bug in a provider must not lose the meeting
        logger.exception("Provider %s failed on meeting %s", meeting.provider, meeting.pk)
        return _record_error(meeting, work, ProviderError(str(error) or repr(error)), now)
    return _record_success(meeting, work, details, now)


def _record_success(
    meeting: Meeting, work: _Work, details: MeetingDetails | None, now: datetime
) -> str:
    with transaction.atomic():
        locked = Meeting.objects.select_for_update().get(pk=meeting.pk)
        locked.claimed_at = None
        locked.last_error = ""
        locked.next_attempt_at = None
        if details is None:
            locked.state = MeetingState.CANCELLED
        else:
            locked.state = MeetingState.READY
            locked.external_id = details.external_id
            locked.join_url = details.join_url
            locked.host_url = details.host_url
            locked.passcode = details.passcode
            locked.extra = dict(details.extra)
            locked.synced_start = work.start
            locked.synced_end = work.end
            locked.ready_at = locked.ready_at or now
            locked.attempts = 0
        locked.save()
        if work.action == "create":
            transaction.on_commit(lambda: _link_ready(locked.pk))
    # The booking may have moved while the provider was called: look again.
    if details is not None:
        goal, start, end = _target(locked)
        if goal == "delete" or (start, end) != (work.start, work.end):
            request_work(locked)
    return {"create": "created", "update": "updated", "delete": "deleted"}[work.action]


def _record_error(meeting: Meeting, work: _Work, error: ProviderError, now: datetime) -> str:
    message = str(error)
    with transaction.atomic():
        locked = Meeting.objects.select_for_update().select_related("account").get(pk=meeting.pk)
        locked.claimed_at = None
        locked.last_error = message
        final = isinstance(error, PermanentFailure | AuthorizationExpired) or (
            locked.attempts >= MAX_ATTEMPTS
        )
        if isinstance(error, AuthorizationExpired) and locked.account is not None:
            accounts.mark_needs_reconnecting(locked.account, message)
        if final:
            locked.next_attempt_at = None
            if work.action == "create" or locked.state == MeetingState.CREATING:
                locked.state = MeetingState.FAILED
            else:
                # The meeting exists; what failed is a change to it. Keep it joinable and
                # leave the change for an administrator's retry.
                locked.state = MeetingState.READY if locked.external_id else MeetingState.FAILED
        else:
            if isinstance(error, RateLimited) and error.retry_after:
                delay = timedelta(seconds=error.retry_after)
            else:
                delay = _backoff(locked.attempts)
            locked.next_attempt_at = now + delay
            if locked.state == MeetingState.CREATING:
                locked.state = MeetingState.PENDING
        locked.save()
    logger.warning("Meeting %s: %s failed: %s", meeting.pk, work.action, message)
    return "failed"


def _fail(meeting: Meeting, message: str) -> None:
    meeting.state = MeetingState.FAILED
    meeting.last_error = message
    meeting.next_attempt_at = None
    meeting.claimed_at = None
    meeting.save()


def _link_ready(meeting_id: int) -> None:
    from .signals import meeting_ready

    meeting = Meeting.objects.filter(pk=meeting_id).first()
    if meeting is not None:
        meeting_ready.send(sender=Meeting, meeting=meeting)


# --------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------


def due_meetings(now: datetime | None = None) -> Any:
    """Meetings that need a job now: never started, due for a retry, or abandoned mid-call."""
    now = now or timezone.now()
    return Meeting.objects.filter(
        Q(state=MeetingState.PENDING, next_attempt_at__isnull=True)
        | Q(next_attempt_at__lte=now)
        | Q(state=MeetingState.CREATING, claimed_at__lt=now - LEASE)
    ).exclude(state=MeetingState.CANCELLED)


def sweep_meetings(now: datetime | None = None) -> int:
    """Run the job for every due meeting; return how many were looked at."""
    ids = list(due_meetings(now).values_list("pk", flat=True)[:500])
    for meeting_id in ids:
        ensure_meeting(meeting_id, now=now)
    return len(ids)


# --------------------------------------------------------------------------------------
# Joining
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinDecision:
    """What a click on a join link leads to.

    ``status`` is ``"go"`` (redirect to ``url``), ``"early"`` (show a countdown to
    ``opens_at``), ``"preparing"`` (the meeting is being made), ``"ended"``, or
    ``"unavailable"`` (no link may be shown: the page says nothing about why).
    """

    status: str
    url: str = ""
    start: datetime | None = None
    end: datetime | None = None
    opens_at: datetime | None = None
    title: str = ""


def join_window_opens(start: datetime) -> datetime:
    minutes = accounts.conferencing_settings().join_opens_minutes_before
    return start - timedelta(minutes=minutes)


def decide_join(join_pass: JoinPass, now: datetime | None = None) -> JoinDecision:
    """Check, at click time, whether the holder of ``join_pass`` may join now (R18, R19, R22)."""
    now = now or timezone.now()
    unavailable = JoinDecision("unavailable")
    if join_pass.revoked_at is not None:
        return unavailable
    if join_pass.role == JoinPassRole.HOST and join_pass.session_id:
        session = join_pass.session
        if session.cancelled:
            return unavailable
        booking = session.bookings.filter(status=BookingStatus.CONFIRMED).first()
        if booking is None:
            return unavailable
        person_name = session.group_class.staff.name if session.group_class.staff else ""
        person_email = session.group_class.staff.email if session.group_class.staff else ""
    else:
        booking = join_pass.booking
        if booking is None or booking.status != BookingStatus.CONFIRMED:
            return unavailable
        if join_pass.role == JoinPassRole.ATTENDEE:
            if booking.payment_status in (PaymentStatus.PENDING, PaymentStatus.REFUNDED):
                return unavailable
            person_name, person_email = booking.member_name, booking.member_email
        else:
            person_name = booking.staff.name if booking.staff else ""
            person_email = booking.staff.email if booking.staff else ""
    kind = link_kind(booking)
    if kind == NO_LINK:
        return unavailable
    start, end = (booking.session.start, booking.session.end) if booking.session_id else (
        booking.start,
        booking.end,
    )
    title = booking.title
    opens_at = join_window_opens(start)
    if now < opens_at:
        return JoinDecision("early", start=start, end=end, opens_at=opens_at, title=title)
    if now >= end:
        return JoinDecision("ended", start=start, end=end, title=title)
    is_host = join_pass.role == JoinPassRole.HOST
    if kind == MANUAL:
        details = get_provider("manual").create_meeting(None, _manual_spec(booking, start, end))
        provider = get_provider("manual")
        account = None
    else:
        if not accounts.links_enabled():
            return unavailable
        meeting = meeting_of(booking)
        if meeting is None or not meeting.is_ready:
            return JoinDecision("preparing", start=start, end=end, title=title)
        if meeting.account is not None and not meeting.account.is_connected:
            return unavailable
        provider = get_provider(meeting.provider)
        account = meeting.account
        details = MeetingDetails(
            external_id=meeting.external_id,
            join_url=meeting.join_url,
            host_url=meeting.host_url,
            passcode=meeting.passcode,
            extra=meeting.extra,
        )
    url = provider.participant_url(
        details,
        name=person_name,
        email=person_email,
        is_host=is_host,
        expires_at=end,
        account=account,
    )
    JoinPass.objects.filter(pk=join_pass.pk).update(
        use_count=F("use_count") + 1, last_used_at=now
    )
    return JoinDecision("go", url=url, start=start, end=end, title=title)


def _manual_spec(booking: Booking, start: datetime, end: datetime) -> MeetingSpec:
    return MeetingSpec(
        reference=booking.reference,
        topic=booking.title,
        start=start,
        end=end,
        options=manual_options(booking),
    )


def join_path(booking: Booking, role: str = JoinPassRole.ATTENDEE) -> str:
    """The personal join link's path for a booking's attendee or host, or ``""``."""
    if role == JoinPassRole.HOST and booking.session_id:
        join_pass = JoinPass.objects.filter(session=booking.session_id, role=role, revoked_at=None)
    else:
        join_pass = JoinPass.objects.filter(booking=booking, role=role, revoked_at=None)
    token = join_pass.values_list("token", flat=True).first()
    if not token:
        return ""
    return reverse("wagtail_bookings_vc:join", args=[token])
