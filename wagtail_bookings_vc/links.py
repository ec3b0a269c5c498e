"""What a member (or the staff member) is shown of a booking's video-meeting link.

The members area, the booking page, the emails and the calendar files all ask here,
so that every place shows the same thing for the same booking. What is shown is
always the personal ``/bookings/join/<token>/`` link: the provider's own URL reaches
a browser only through the join view's redirect, after its checks at click time.

The rules mirror the join view's (:func:`wagtail_bookings_vc.meetings.decide_join`):

- nothing for a cancelled or ended booking, one that is not online, one whose link
  is hidden in that place (R21), or one whose automatic link cannot be shown because
  the site's default conferencing account is missing or disconnected (R3);
- a note instead of a link while a priced booking is unpaid (R19) or while the
  meeting is still being made (R15);
- otherwise the personal link, which opens shortly before the start (R22).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from django.db.models import Prefetch, Q, prefetch_related_objects
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import accounts, meetings
from .models import BookingStatus, JoinPass, JoinPassRole, PaymentStatus

if TYPE_CHECKING:
    from .models import Booking, Meeting

Place = Literal["members_area", "email"]
MEMBERS_AREA: Place = "members_area"
EMAIL: Place = "email"

#: The join button works now.
OPEN = "open"
#: The link is known but the meeting does not open yet (greyed button).
WAITING = "waiting"
#: A priced booking is not paid yet: no link, a note instead (R19).
AWAITING_PAYMENT = "awaiting_payment"
#: The meeting is still being made at the provider: no link, a note instead (R15).
PREPARING = "preparing"

# Where the members area finds each booking's live passes without a query per booking.
_PASSES_ATTR = "bvc_live_passes"


@dataclass(frozen=True)
class MemberLink:
    """What to show a member about their booking's meeting link.

    Attributes:
        status: :data:`OPEN`, :data:`WAITING`, :data:`AWAITING_PAYMENT` or
            :data:`PREPARING`.
        path: the personal join path, ``/bookings/join/<token>/``; empty while no link
            may be shown (``reason`` says why).
        url: the same link as an absolute URL, for emails and calendar files.
        opens_at: when the join button opens (a little before the start).
        starts_at: the booked start.
        ends_at: the booked end; the link leads nowhere after it.
        reason: why there is no link yet, for the member to read.
        description: the editor's "how to join" note, shown with the link.
        passcode: the passcode of a hand-entered link, shown with the link.
    """

    status: str
    path: str = ""
    url: str = ""
    opens_at: datetime | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    reason: str = ""
    description: str = ""
    passcode: str = ""

    @property
    def shown(self) -> bool:
        """Whether there is a link to show (open or not)."""
        return bool(self.path)

    @property
    def is_open(self) -> bool:
        """Whether the join button works right now."""
        return self.status == OPEN


def load_link_data(bookings: Sequence[Booking]) -> None:
    """Fetch what :func:`member_link` reads for ``bookings``, in two queries however many.

    For lists of bookings (the members area): their meetings and the meetings of their
    sessions, with the meetings' accounts, then their live join passes. The bookings'
    ``session`` should already be loaded (``select_related``). Joining all of this
    into the list's own query made PostgreSQL spend longer planning it than running it.
    """
    from .models import Booking, ClassSession, Meeting

    if not bookings:
        return
    booking_ids = [booking.pk for booking in bookings]
    session_ids = [booking.session_id for booking in bookings if booking.session_id]
    of_booking: dict[int, Meeting] = {}
    of_session: dict[int, Meeting] = {}
    for meeting in Meeting.objects.filter(
        Q(booking_id__in=booking_ids) | Q(session_id__in=session_ids)
    ).select_related("account"):
        if meeting.booking_id is not None:
            of_booking[meeting.booking_id] = meeting
        if meeting.session_id is not None:
            of_session[meeting.session_id] = meeting
    # As select_related would: a booking or session without a meeting remembers that too.
    for booking in bookings:
        Booking.meeting.related.set_cached_value(booking, of_booking.get(booking.pk))
        if booking.session_id:
            ClassSession.meeting.related.set_cached_value(
                booking.session, of_session.get(booking.session_id)
            )
    prefetch_related_objects(
        list(bookings),
        Prefetch(
            "join_passes",
            queryset=JoinPass.objects.filter(revoked_at__isnull=True),
            to_attr=_PASSES_ATTR,
        ),
    )


def member_link(
    booking: Booking, *, where: Place, now: datetime | None = None
) -> MemberLink | None:
    """What the member of ``booking`` is shown about its meeting link in ``where``.

    Args:
        booking: the member's booking.
        where: ``"members_area"`` (the members area and the booking page) or
            ``"email"`` (emails and their calendar files): each has its own
            *leave the link out* setting on the service or class (R21).
        now: the current time (default: ``timezone.now()``).

    Returns:
        ``None`` when nothing about a link is to be shown: the booking is cancelled,
        over, not online, its link is hidden in ``where``, or automatic links are off
        because the site's default account is missing or disconnected (R3). Otherwise
        a :class:`MemberLink` with the personal link, or with a note saying why the
        link is not there yet.
    """
    return member_links([booking], where=where, now=now)[booking.pk]


def member_links(
    bookings: Iterable[Booking], *, where: Place, now: datetime | None = None
) -> dict[Any, MemberLink | None]:
    """:func:`member_link` for several bookings, keyed by primary key.

    The site-wide settings are read once; after :func:`load_link_data` the bookings'
    meetings and passes cost no query per booking.
    """
    now = now or timezone.now()
    bookings = list(bookings)
    if not bookings:
        return {}
    # Read once for the whole list; join_window_opens() reads the site's settings.
    lead = now - meetings.join_window_opens(now)
    automatic_on = accounts.links_enabled()
    base = _base_url()
    return {
        booking.pk: _member_link(
            booking, where, now, lead=lead, automatic_on=automatic_on, base=base
        )
        for booking in bookings
    }


def _member_link(
    booking: Booking,
    where: Place,
    now: datetime,
    *,
    lead: timedelta,
    automatic_on: bool,
    base: str,
) -> MemberLink | None:
    if booking.status != BookingStatus.CONFIRMED:
        return None
    kind = meetings.link_kind(booking)
    if kind == meetings.NO_LINK:
        return None
    bookable = booking.bookable
    hidden = bookable.hide_link_in_emails if where == EMAIL else bookable.hide_link_in_members_area
    if hidden:
        return None
    if kind == meetings.AUTOMATIC and not automatic_on:
        return None
    start, end = meetings.meeting_times(booking)
    if now >= end:
        return None
    if booking.payment_status == PaymentStatus.REFUNDED:
        return None
    opens_at = start - lead
    held_back = MemberLink(PREPARING, opens_at=opens_at, starts_at=start, ends_at=end)
    if booking.payment_status == PaymentStatus.PENDING:
        return replace(
            held_back,
            status=AWAITING_PAYMENT,
            reason=_("Your link appears once your payment is received."),
        )
    description = bookable.meeting_description
    passcode = ""
    if kind == meetings.AUTOMATIC:
        meeting = meetings.meeting_of(booking)
        if meeting is None or not meeting.is_ready:
            return replace(held_back, reason=_("Your link is being prepared."))
        if not meetings.account_usable(meeting):
            return None
    else:
        options = meetings.manual_options(booking)
        if not options.get("url"):
            return None
        # A session's own hand-entered link has no note: the class's would not fit it.
        description = options.get("description", "")
        passcode = options.get("passcode", "")
    path = _attendee_path(booking)
    if not path:
        return None
    return replace(
        held_back,
        status=OPEN if opens_at <= now else WAITING,
        path=path,
        url=base + path,
        description=description,
        passcode=passcode,
    )


def host_link(booking: Booking) -> str:
    """The staff member's personal host link for ``booking``, as an absolute URL, or ``""``.

    The host link opens the meeting with the host's rights (R23). It is given while
    the meeting is still being made too: the join page then waits for it. The
    members' *leave the link out* settings do not apply to it.
    """
    if booking.status != BookingStatus.CONFIRMED:
        return ""
    kind = meetings.link_kind(booking)
    if kind == meetings.NO_LINK:
        return ""
    if kind == meetings.AUTOMATIC:
        if not accounts.links_enabled():
            return ""
        meeting = meetings.meeting_of(booking)
        if meeting is not None and not meetings.account_usable(meeting):
            return ""
    path = meetings.join_path(booking, role=JoinPassRole.HOST)
    return _base_url() + path if path else ""


def link_meeting(booking: Booking) -> Meeting | None:
    """The meeting whose *link ready* email covers ``booking`` (none for hand-entered links)."""
    if meetings.link_kind(booking) != meetings.AUTOMATIC:
        return None
    return meetings.meeting_of(booking)


def _base_url() -> str:
    # Links in emails and calendar files start with the default site's root URL.
    from .notifications.context import base_url

    return base_url()


def _attendee_path(booking: Booking) -> str:
    passes = getattr(booking, _PASSES_ATTR, None)
    if passes is None:
        return meetings.join_path(booking, role=JoinPassRole.ATTENDEE)
    for join_pass in passes:
        if join_pass.role == JoinPassRole.ATTENDEE:
            return reverse("wagtail_bookings_vc:join", args=[join_pass.token])
    return ""
