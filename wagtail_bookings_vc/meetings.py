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
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import accounts, jobs
from .models import (
    AccountStatus,
    Booking,
    BookingStatus,
    ClassSession,
    ConferencingAccount,
    GroupClass,
    JoinPass,
    JoinPassRole,
    Meeting,
    MeetingState,
    PaymentStatus,
    ProviderCallCount,
    Service,
    SessionLink,
)
from .providers.base import (
    AuthorizationExpired,
    MeetingDetails,
    MeetingSpec,
    PermanentFailure,
    Provider,
    ProviderError,
    RateLimited,
    WebhookEvent,
)
from .providers.registry import get_provider, shared_link_provider

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
        return session_link_kind(booking.session)
    if booking.service_id and booking.service.online:
        return booking.service.meeting_link_mode
    return NO_LINK


def session_link_kind(session: ClassSession) -> str:
    """Where a class session's link comes from: its own override, else its class's mode.

    A cancelled session, or one held in person, has no link at all.
    """
    if session.cancelled or not session.online:
        return NO_LINK
    if session.meeting_link_override == SessionLink.NONE:
        return NO_LINK
    if session.meeting_link_override == SessionLink.MANUAL:
        return MANUAL
    return session.group_class.meeting_link_mode


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
# Called when a booking, session, service or class changes (bookings.py, receivers.py)
# --------------------------------------------------------------------------------------


def plan_booking(booking: Booking, *, new: bool = False) -> None:
    """Give a booking its join passes and, for automatic links, its (pending) meeting.

    ``new``: the appointment was made in this transaction, so nothing of it exists yet
    and everything is written at once (the booking request's few queries).
    """
    kind = link_kind(booking)
    if kind == NO_LINK:
        return
    if new and not booking.session_id:
        JoinPass.objects.bulk_create(
            JoinPass(booking_id=booking.pk, role=role)
            for role in (JoinPassRole.ATTENDEE, JoinPassRole.HOST)
        )
        if kind == AUTOMATIC:
            # As request_work() marks it: the sweep makes it if the queue loses the job.
            meeting = Meeting.objects.create(booking_id=booking.pk, next_attempt_at=timezone.now())
            jobs.enqueue(ENSURE_JOB, meeting.pk)
        return
    _plan_passes(booking)
    if kind == AUTOMATIC:
        meeting = _needed_meeting(booking)
        if meeting.state != MeetingState.READY:
            request_work(meeting)


def _plan_passes(booking: Booking) -> None:
    JoinPass.objects.get_or_create(booking=booking, role=JoinPassRole.ATTENDEE, revoked_at=None)
    if booking.session_id:
        JoinPass.objects.get_or_create(
            session_id=booking.session_id, role=JoinPassRole.HOST, revoked_at=None
        )
    else:
        JoinPass.objects.get_or_create(booking=booking, role=JoinPassRole.HOST, revoked_at=None)


def _needed_meeting(booking: Booking) -> Meeting:
    # By id: the caller's booking must not keep this (pending) meeting in its cache.
    if booking.session_id:
        meeting, _created = Meeting.objects.get_or_create(session_id=booking.session_id)
    else:
        meeting, _created = Meeting.objects.get_or_create(booking_id=booking.pk)
    return meeting


def booking_moved(booking: Booking) -> None:
    """A booking has a new time or session: bring its meeting along."""
    if booking.session_id:
        # The attendee's pass now leads to the new session's meeting; the old session's
        # meeting stays for its other attendees until that session is cancelled (R13).
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
    """A class session was edited: new time, cancelled or restored, switched online or in
    person, its link overridden or restored (R12, R13).

    Attendees who booked while the session had no link get their passes now; the
    session's meeting is then created, updated, deleted or made again as it needs.
    The passes are kept when the link goes away, so that the links attendees already
    hold work again if the session comes back online.
    """
    kind = session_link_kind(session)
    confirmed = list(session.bookings.filter(status=BookingStatus.CONFIRMED))
    if kind != NO_LINK:
        for booking in confirmed:
            booking.session = session
            _plan_passes(booking)
    try:
        meeting: Meeting | None = session.meeting
    except Meeting.DoesNotExist:
        meeting = None
    if meeting is None and kind == AUTOMATIC and confirmed:
        meeting, _created = Meeting.objects.get_or_create(session_id=session.pk)
    if meeting is not None:
        request_work(meeting)


def bookable_changed(bookable: Service | GroupClass, now: datetime | None = None) -> None:
    """A service or class was edited: bring the links of its upcoming bookings in step.

    Turning online meetings on gives the bookings already made their passes and
    meetings; turning them off, or switching between automatic and manual links,
    deletes the meetings that are no longer needed.
    """
    now = now or timezone.now()
    if isinstance(bookable, GroupClass):
        for session in bookable.sessions.filter(start__gte=now - timedelta(days=1)):
            session.group_class = bookable
            session_changed(session)
        return
    upcoming = bookable.bookings.filter(status=BookingStatus.CONFIRMED, end__gt=now)
    for booking in upcoming.select_related("meeting"):
        booking.service = bookable
        kind = link_kind(booking)
        meeting = meeting_of(booking)
        if kind == AUTOMATIC and meeting is not None and meeting.state == MeetingState.READY:
            continue
        if kind != NO_LINK:
            plan_booking(booking)
        if meeting is not None and kind != AUTOMATIC:
            request_work(meeting)


def request_work(meeting: Meeting) -> None:
    """Mark a meeting as needing a job (create, update or delete) and enqueue one.

    The mark lives in the database (``next_attempt_at``), so the sweep does the work
    if the queue loses the job. A retry already planned for later (after a rate limit
    or a failure) keeps its time; a meeting waiting to be made closer to its date (R16)
    is looked at again, as its date may have changed.
    """
    now = timezone.now()
    Meeting.objects.filter(pk=meeting.pk).filter(
        Q(next_attempt_at__isnull=True)
        | Q(state=MeetingState.PENDING, attempts=0, external_id="", next_attempt_at__gt=now)
    ).update(next_attempt_at=now)
    jobs.enqueue(ENSURE_JOB, meeting.pk)


def upcoming(meetings: QuerySet[Meeting], now: datetime) -> QuerySet[Meeting]:
    """Those of ``meetings`` whose booking or session has not ended."""
    # A session's end depends on its class's duration; none lasts a day.
    return meetings.filter(
        Q(booking__end__gt=now) | Q(session__start__gt=now - timedelta(hours=24))
    )


def account_connected(account: ConferencingAccount) -> None:
    """An account was (re)connected: upcoming meetings that failed for want of it are retried.

    Runs inside the connecting transaction; the jobs start once it commits.
    """
    now = timezone.now()
    failed = upcoming(Meeting.objects.filter(state=MeetingState.FAILED), now)
    for meeting in failed.only("pk"):
        transaction.on_commit(lambda meeting=meeting: retry(meeting))


def account_released(account: ConferencingAccount) -> None:
    """An account was disconnected: its upcoming meetings are made again elsewhere.

    Without its credentials the site can no longer change or delete those meetings, so
    they are forgotten and made again through the account that applies now (the site's
    default account when a staff member disconnects their own; none while the default
    account is disconnected, R3 — they are then retried when an account is connected).
    """
    now = timezone.now()
    mine = upcoming(
        Meeting.objects.filter(account=account).exclude(state=MeetingState.CANCELLED), now
    )
    for meeting in _locked(mine):
        _start_afresh(meeting)
        meeting.claimed_at = None
        meeting.next_attempt_at = now
        meeting.save()
        transaction.on_commit(lambda meeting=meeting: jobs.enqueue(ENSURE_JOB, meeting.pk))


def apply_webhook_event(provider_id: str, event: WebhookEvent) -> None:
    """Apply a change the provider reported that was made outside the site (R7, R24).

    The booking stays the source of truth: a meeting deleted at the provider is made
    again and a meeting moved there is put back at the booked time. Both are recorded
    as *changed outside the site* for the online-meetings report.
    """
    now = timezone.now()
    if event.kind == WebhookEvent.ACCOUNT_REVOKED:
        _account_revoked(provider_id, event.external_user_id)
        return
    if not event.external_id or event.kind not in (
        WebhookEvent.MEETING_DELETED,
        WebhookEvent.MEETING_CHANGED,
    ):
        return
    with transaction.atomic():
        meeting = (
            _locked(Meeting.objects.all())
            .filter(provider=provider_id, external_id=event.external_id)
            .exclude(state=MeetingState.CANCELLED)
            .first()
        )
        if meeting is None or meeting.claimed_at is not None:
            # Not ours, already gone, or being changed by the site right now (its own
            # change coming back as an event).
            return
        if event.kind == WebhookEvent.MEETING_CHANGED:
            if event.start is None or event.start == meeting.synced_start:
                return
            meeting.synced_start = None
        else:
            _start_afresh(meeting)
        meeting.changed_outside_at = now
        meeting.next_attempt_at = now
        meeting.save()
        pk = meeting.pk
        transaction.on_commit(lambda: jobs.enqueue(ENSURE_JOB, pk))


def _account_revoked(provider_id: str, external_user_id: str) -> None:
    if not external_user_id:
        return
    revoked = ConferencingAccount.objects.filter(
        provider=provider_id, external_user_id=external_user_id, organisation__isnull=True
    ).exclude(status=AccountStatus.DISCONNECTED)
    with transaction.atomic():
        for account in revoked:
            ConferencingAccount.objects.filter(pk=account.pk).update(
                credentials={}, status=AccountStatus.DISCONNECTED
            )
            logger.warning("Conferencing account %s was disconnected at the provider.", account.pk)
            account_released(account)


GAVE_UP = Q(state=MeetingState.FAILED) | (
    Q(state=MeetingState.READY, next_attempt_at__isnull=True) & ~Q(last_error="")
)
"""Meetings the job has given up on: a failed creation, or a ready meeting whose last
change (new time, deletion) failed for good. These wait for an administrator's retry."""


def needs_retry(meeting: Meeting) -> bool:
    """Whether ``meeting`` waits for an administrator's *Retry* (see :data:`GAVE_UP`)."""
    if meeting.state == MeetingState.FAILED:
        return True
    return (
        meeting.state == MeetingState.READY
        and meeting.next_attempt_at is None
        and bool(meeting.last_error)
    )


def retry(meeting: Meeting) -> None:
    """Try again after the provider gave up, for an administrator's *Retry* (R24).

    A meeting that failed to be made starts over; a ready meeting whose last change
    (new time, deletion) failed gets that change tried again.
    """
    now = timezone.now()
    Meeting.objects.filter(pk=meeting.pk, state=MeetingState.FAILED).update(
        state=MeetingState.PENDING, attempts=0, next_attempt_at=now, last_error="", claimed_at=None
    )
    Meeting.objects.filter(pk=meeting.pk).exclude(last_error="").exclude(
        state=MeetingState.CANCELLED
    ).update(attempts=0, next_attempt_at=now, last_error="")
    jobs.enqueue(ENSURE_JOB, meeting.pk)


# --------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Work:
    action: str  # "create", "update" or "delete"
    start: datetime | None = None
    end: datetime | None = None
    # A create whose earlier attempt may have reached the provider.
    may_exist: bool = False


def _target(meeting: Meeting) -> tuple[str, datetime | None, datetime | None]:
    """What the meeting should be now: ``("delete", …)`` or ``("sync", start, end)``.

    A class session keeps its meeting while it is online with an automatic link, also
    when every attendee has left: it goes when the session is cancelled, held in person
    or given a link by hand (R12, R13).
    """
    if meeting.session_id:
        session = meeting.session
        if session_link_kind(session) != AUTOMATIC:
            return ("delete", None, None)
        return ("sync", session.start, session.end)
    booking = meeting.booking
    if booking.status == BookingStatus.CANCELLED or link_kind(booking) != AUTOMATIC:
        return ("delete", None, None)
    return ("sync", booking.start, booking.end)


def _spec(
    meeting: Meeting, start: datetime, end: datetime, *, may_exist: bool = False
) -> MeetingSpec:
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
        request_id=meeting.request_key,
        may_exist=may_exist,
        options={
            "waiting_room": bookable.waiting_room,
            "invite_attendees": bookable.invite_attendees,
        },
    )


def _staff_of(meeting: Meeting) -> Any:
    if meeting.session_id:
        return meeting.session.group_class.staff
    return meeting.booking.staff


def _backoff(attempts: int) -> timedelta:
    delay = min(MAX_DELAY, BASE_DELAY * (2 ** max(attempts - 1, 0)))
    # Jitter spreads the retries of many meetings that failed together.
    return delay * random.uniform(0.5, 1.5)  # noqa: S311 - not a secret


def _locked(queryset: QuerySet) -> QuerySet:
    """Lock the meeting rows ``queryset`` reads until the transaction ends.

    Only the meeting's own row: PostgreSQL refuses to lock the nullable side of the
    outer joins that ``select_related`` adds. SQLite has no row locks; its IMMEDIATE
    transactions serialise the writers instead.
    """
    features = connections[queryset.db].features
    return queryset.select_for_update(of=("self",) if features.has_select_for_update_of else ())


def _start_afresh(meeting: Meeting) -> None:
    """Forget a deleted meeting's details, so that a new one is made (R12: back online)."""
    meeting.state = MeetingState.PENDING
    meeting.external_id = ""
    meeting.join_url = ""
    meeting.host_url = ""
    meeting.passcode = ""
    meeting.extra = {}
    meeting.synced_start = None
    meeting.synced_end = None
    meeting.attempts = 0
    meeting.last_error = ""
    meeting.ready_at = None
    meeting.account = None
    meeting.provider = ""
    meeting.request_key = ""


def ensure_meeting(meeting_id: int, now: datetime | None = None) -> str:
    """Job: bring one meeting to what its booking or session needs now.

    Creates, updates or deletes the meeting at its provider. Safe to run twice and in
    parallel. Returns what it did, for logs and tests: ``"created"``, ``"updated"``,
    ``"deleted"``, ``"nothing"``, ``"busy"``, ``"waiting"`` or ``"failed"``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        meeting = (
            _locked(Meeting.objects.all())
            .select_related("booking__service", "booking__staff", "session__group_class")
            .filter(pk=meeting_id)
            .first()
        )
        if meeting is None:
            return "nothing"
        if meeting.claimed_at and meeting.claimed_at > now - LEASE:
            return "busy"
        goal, start, end = _target(meeting)
        if meeting.state == MeetingState.CANCELLED:
            if goal == "delete":
                _settle(meeting)
                return "nothing"
            _start_afresh(meeting)
        if goal == "delete":
            if not meeting.external_id and meeting.request_key and meeting.account_id:
                # An attempt to create it was made and its answer never came: the
                # meeting may exist at the provider without the site knowing its id.
                start, end = _booked_times(meeting)
                work = _Work("reclaim", start, end, may_exist=True)
            elif not meeting.external_id:
                meeting.state = MeetingState.CANCELLED
                meeting.next_attempt_at = None
                meeting.claimed_at = None
                meeting.save()
                return "deleted"
            else:
                work = _Work("delete")
        else:
            in_sync = (
                meeting.state == MeetingState.READY
                and meeting.synced_start == start
                and meeting.synced_end == end
            )
            if in_sync or meeting.state == MeetingState.FAILED:
                # A failed meeting waits for an administrator's retry (R24).
                _settle(meeting)
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
            later = _not_before(account, work, now)
            if later is not None:
                # Made closer to the date, so that bookings far ahead do not use up the
                # host's daily calls (R16).
                meeting.next_attempt_at = later
                meeting.save(update_fields=["next_attempt_at", "updated_at"])
                return "waiting"
        if work.action in ("create", "update", "reclaim"):
            budget_account = account if work.action == "create" else meeting.account
            next_day = _spend_call(budget_account, now)
            if next_day is not None:
                meeting.next_attempt_at = next_day
                meeting.last_error = _(
                    "The provider's daily limit of meeting changes for this host is used up: "
                    "this meeting is made after midnight UTC."
                )
                meeting.save(update_fields=["next_attempt_at", "last_error", "updated_at"])
                return "waiting"
        if work.action == "create":
            if meeting.request_key:
                work = replace(work, may_exist=True)
            else:
                meeting.request_key = uuid.uuid4().hex
            meeting.account = account
            meeting.provider = account.provider
            meeting.state = MeetingState.CREATING
        meeting.claimed_at = now
        meeting.attempts += 1
        meeting.save()

    return _call_provider(meeting, work, now)


def _provider_or_none(provider_id: str) -> Provider | None:
    try:
        return get_provider(provider_id)
    except ImproperlyConfigured:
        return None


def _not_before(account: ConferencingAccount, work: _Work, now: datetime) -> datetime | None:
    """When a meeting far ahead should be made instead of now (``None``: now)."""
    provider = _provider_or_none(account.provider)
    days = provider.create_ahead_days if provider is not None else None
    if not days or work.start is None:
        return None
    window = timedelta(days=days)
    if work.start - now <= window:
        return None
    # Spread over the first half of the window, so that a burst of bookings far ahead
    # (a whole course) does not come due on one day.
    return work.start - window + window / 2 * random.random()  # noqa: S311 - not a secret


def _user_key(account: ConferencingAccount) -> str:
    return account.external_user_id or f"account-{account.pk}"


def _spend_call(account: ConferencingAccount | None, now: datetime) -> datetime | None:
    """Count a create or update call against the host's daily limit, if the provider has one.

    Returns ``None`` when the call may be made now, else when to try again: a few minutes
    after the next midnight UTC, when the provider's count starts again.
    """
    if account is None:
        return None
    provider = _provider_or_none(account.provider)
    limit = provider.daily_call_limit if provider is not None else None
    if not limit:
        return None
    day = now.astimezone(UTC).date()
    key = _user_key(account)
    ProviderCallCount.objects.bulk_create(
        [ProviderCallCount(provider=account.provider, user_key=key, day=day)],
        ignore_conflicts=True,
    )
    spent = ProviderCallCount.objects.filter(
        provider=account.provider, user_key=key, day=day, calls__lt=limit
    ).update(calls=F("calls") + 1)
    if spent:
        return None
    midnight = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    return midnight + timedelta(minutes=5) * (1 + random.random())  # noqa: S311


def calls_today(account: ConferencingAccount, now: datetime | None = None) -> int:
    """Meeting create and update calls made today (UTC) for the account's host user."""
    day = (now or timezone.now()).astimezone(UTC).date()
    row = ProviderCallCount.objects.filter(
        provider=account.provider, user_key=_user_key(account), day=day
    ).first()
    return row.calls if row else 0


def _booked_times(meeting: Meeting) -> tuple[datetime | None, datetime | None]:
    """The times the meeting was (or would have been) made for, also once cancelled."""
    if meeting.session_id:
        return meeting.session.start, meeting.session.end
    return meeting.booking.start, meeting.booking.end


def _reclaim(provider: Provider, account: Any, meeting: Meeting, work: _Work) -> None:
    """Delete a meeting that may exist at the provider under an id the site never heard.

    No provider can be asked "is there a meeting for this booking?" in one way that
    works for all, but each can be asked to make it idempotently: the same request key
    and ``may_exist`` find the one an earlier attempt made (or make one), which is then
    deleted. A cancelled booking thus never leaves a meeting behind.
    """
    if work.start is None or work.end is None:
        return None
    found = provider.create_meeting(account, _spec(meeting, work.start, work.end, may_exist=True))
    provider.delete_meeting(account, found.external_id)
    return None


def _settle(meeting: Meeting) -> None:
    if meeting.next_attempt_at is not None:
        meeting.next_attempt_at = None
        meeting.save(update_fields=["next_attempt_at", "updated_at"])


def _call_provider(meeting: Meeting, work: _Work, now: datetime) -> str:
    # The handle saves rotated tokens the moment a provider hands them back.
    account = accounts.handle_for(meeting.account)
    try:
        provider = get_provider(meeting.provider)
        if work.action == "delete":
            provider.delete_meeting(account, meeting.external_id)
            details = None
        elif work.action == "reclaim":
            details = _reclaim(provider, account, meeting, work)
        elif work.start is None or work.end is None:
            raise PermanentFailure(
                _("The booking has no start and end time, so no meeting can be made for it.")
            )
        else:
            spec = _spec(meeting, work.start, work.end, may_exist=work.may_exist)
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
        locked = _locked(Meeting.objects.all()).get(pk=meeting.pk)
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
    # The booking may have moved, been cancelled or been booked again while the provider
    # was called: look again.
    goal, start, end = _target(locked)
    if details is None:
        if goal == "sync":
            request_work(locked)
    elif goal == "delete" or (start, end) != (work.start, work.end):
        request_work(locked)
    return {"create": "created", "update": "updated", "delete": "deleted", "reclaim": "deleted"}[
        work.action
    ]


def _record_error(meeting: Meeting, work: _Work, error: ProviderError, now: datetime) -> str:
    message = str(error)
    with transaction.atomic():
        locked = _locked(Meeting.objects.select_related("account")).get(pk=meeting.pk)
        locked.claimed_at = None
        locked.last_error = message
        final = isinstance(error, PermanentFailure | AuthorizationExpired) or (
            locked.attempts >= MAX_ATTEMPTS
        )
        if isinstance(error, AuthorizationExpired) and locked.account is not None:
            # A mapped staff member's meetings use the organisation's credentials.
            refused = locked.account.organisation or locked.account
            accounts.mark_needs_reconnecting(refused, message)
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
        if (
            final
            and locked.state == MeetingState.FAILED
            and not isinstance(error, AuthorizationExpired)
        ):
            # (A refused account is reported once, for the account, not per meeting.)
            transaction.on_commit(partial(_tell_failed, locked.pk, message))
    logger.warning("Meeting %s: %s failed: %s", meeting.pk, work.action, message)
    gave_up = locked.next_attempt_at is None
    if gave_up and work.action not in ("delete", "reclaim") and _target(locked)[0] == "delete":
        # Cancelled while the provider was called: the deletion must not wait for a retry.
        # (A deletion that failed for good waits for an administrator's retry instead.)
        request_work(locked)
    return "failed"


def _tell_failed(meeting_id: int, message: str) -> None:
    """Email the administrators and the host that a meeting could not be made (R24)."""
    meeting = Meeting.objects.filter(pk=meeting_id).first()
    if meeting is None:
        return
    staff = _staff_of(meeting)
    what = meeting.booking.reference if meeting.booking_id else str(meeting.session)
    subject = _("A video meeting could not be made")
    body = _(
        "The meeting of %(what)s could not be made: %(message)s\n\n"
        "Once the cause is fixed, press Retry in the online meetings report."
    ) % {"what": what, "message": message}
    accounts.tell_admins(subject, body)
    if staff is not None:
        accounts.tell_staff(staff.pk, subject, body)


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


def due_meetings(now: datetime | None = None) -> QuerySet[Meeting]:
    """Meetings that need a job now: never started, due for a retry, or abandoned mid-call.

    A deleted meeting is due when something asked for work on it since (a session back
    online, a new attendee): the job then makes it again.
    """
    now = now or timezone.now()
    return Meeting.objects.filter(
        Q(state=MeetingState.PENDING, next_attempt_at__isnull=True)
        | Q(next_attempt_at__lte=now)
        | Q(state=MeetingState.CREATING, claimed_at__lt=now - LEASE)
    ).order_by("next_attempt_at", "pk")


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
    ``time_zone`` is the holder's: the member's for an attendee, the staff member's for
    a host.
    """

    status: str
    url: str = ""
    start: datetime | None = None
    end: datetime | None = None
    opens_at: datetime | None = None
    title: str = ""
    time_zone: str = ""


def join_window_opens(start: datetime) -> datetime:
    minutes = accounts.conferencing_settings().join_opens_minutes_before
    return start - timedelta(minutes=minutes)


@dataclass(frozen=True)
class _Holder:
    booking: Booking
    name: str
    email: str
    time_zone: str


def _staff_holder(booking: Booking, staff: Any) -> _Holder:
    if staff is None:
        return _Holder(booking, "", "", timezone.get_default_timezone_name())
    return _Holder(booking, staff.name, staff.email, staff.time_zone)


def _holder(join_pass: JoinPass) -> _Holder | None:
    """The booking a pass joins through, and who holds the pass, if it may be used."""
    if join_pass.role == JoinPassRole.HOST and join_pass.session_id:
        # A class's host pass: the session's meeting exists while someone has a seat.
        session = join_pass.session
        booking = session.bookings.filter(status=BookingStatus.CONFIRMED).first()
        if booking is None:
            return None
        booking.session = session
        return _staff_holder(booking, session.group_class.staff)
    booking = join_pass.booking
    if booking is None or booking.status != BookingStatus.CONFIRMED:
        return None
    if join_pass.role == JoinPassRole.HOST:
        return _staff_holder(booking, booking.staff)
    # A priced booking opens its link once paid or approved (R19).
    if booking.payment_status in (PaymentStatus.PENDING, PaymentStatus.REFUNDED):
        return None
    return _Holder(booking, booking.member_name, booking.member_email, booking.time_zone)


def meeting_times(booking: Booking) -> tuple[datetime, datetime]:
    """When the meeting a booking joins starts and ends (a class seat: its session's times)."""
    if booking.session_id:
        return booking.session.start, booking.session.end
    return booking.start, booking.end


def account_usable(meeting: Meeting) -> bool:
    """Whether the account that made ``meeting`` still lets its link be shown.

    A meeting made through an account that was disconnected or needs reconnecting shows
    no link, like every automatic link while the site's default account is off (R3).
    """
    return meeting.account is None or meeting.account.is_connected


def decide_join(join_pass: JoinPass, now: datetime | None = None) -> JoinDecision:
    """Check, at click time, whether the holder of ``join_pass`` may join now (R18, R19, R22).

    Everything that keeps a link hidden (revoked pass, cancelled booking or session, no
    payment, no link, the site's default account missing or disconnected) answers
    ``"unavailable"`` before anything about the booking's time is told.
    """
    now = now or timezone.now()
    unavailable = JoinDecision("unavailable")
    if join_pass.revoked_at is not None:
        return unavailable
    holder = _holder(join_pass)
    if holder is None:
        return unavailable
    booking = holder.booking
    kind = link_kind(booking)
    if kind == NO_LINK:
        return unavailable
    if kind == AUTOMATIC and not accounts.links_enabled():
        # While the default account is disconnected no automatic link shows (R3).
        return unavailable
    start, end = meeting_times(booking)
    title, zone = booking.title, holder.time_zone
    opens_at = join_window_opens(start)
    if now < opens_at:
        return JoinDecision(
            "early", start=start, end=end, opens_at=opens_at, title=title, time_zone=zone
        )
    if now >= end:
        return JoinDecision("ended", start=start, end=end, title=title, time_zone=zone)
    is_host = join_pass.role == JoinPassRole.HOST
    account: Any = None
    if kind == MANUAL:
        provider = shared_link_provider()
        if provider is None:
            return unavailable
        try:
            details = provider.create_meeting(None, _manual_spec(booking, start, end))
        except ProviderError:
            # A manual link saved without a (valid) URL: there is nothing to send anyone to.
            return unavailable
    else:
        meeting = meeting_of(booking)
        if meeting is None or not meeting.is_ready:
            return JoinDecision("preparing", start=start, end=end, title=title, time_zone=zone)
        if not account_usable(meeting):
            return unavailable
        account = accounts.handle_for(meeting.account)
        try:
            provider = get_provider(meeting.provider)
        except ImproperlyConfigured:
            return unavailable
        details = MeetingDetails(
            external_id=meeting.external_id,
            join_url=meeting.join_url,
            host_url=meeting.host_url,
            passcode=meeting.passcode,
            extra=meeting.extra,
        )
    try:
        url = provider.participant_url(
            details,
            name=holder.name,
            email=holder.email,
            is_host=is_host,
            expires_at=end,
            account=account,
        )
    except ProviderError as error:
        # A host link fetched fresh at click time (Zoom's start URL) can fail for a moment.
        logger.warning("Join link of meeting %s: %s", details.external_id, error)
        return JoinDecision("preparing", start=start, end=end, title=title, time_zone=zone)
    JoinPass.objects.filter(pk=join_pass.pk).update(use_count=F("use_count") + 1, last_used_at=now)
    return JoinDecision("go", url=url, start=start, end=end, title=title, time_zone=zone)


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
