"""The *your link is ready* email: the link that was not there yet for the confirmation (R15).

An automatic meeting is made in the background, so a member's confirmation may
go out before the meeting exists; it then says the link is being prepared. When
the meeting becomes ready, its attendees get a short email with their personal
link: once per meeting, and only if no email with the link has reached them yet.

``Meeting.link_ready_notified`` records that: whichever comes first, an email that
carries the link or the *link ready* job, sets it, with an update that only
succeeds while it is still unset, so two workers never both send.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import jobs

if TYPE_CHECKING:
    from ..models import Booking

logger = logging.getLogger(__name__)

LINK_READY_JOB = "wagtail_bookings_vc.notifications.link_ready.send_link_ready"
#: The email kind (see ``emails.KINDS``); it has no editable text in the settings.
LINK_READY_KIND = "member_link_ready"


def send_link_ready(meeting_id: int) -> int:
    """Job: email each confirmed attendee of a meeting that has just become ready.

    Does nothing when the attendees already have the link by email (their
    confirmation went out after the meeting was ready) or another run got here
    first. Each email is its own job; it is not sent to a member whose link may not
    be shown in emails (unpaid, left out of emails, ...).

    Args:
        meeting_id: primary key of the meeting.

    Returns:
        How many emails were asked for.
    """
    from ..models import Meeting
    from .handlers import SEND_EMAIL_JOB

    if not _claim(meeting_id):
        return 0
    meeting = Meeting.objects.select_related("booking", "session").filter(pk=meeting_id).first()
    if meeting is None:
        return 0
    if meeting.session_id:
        booking_ids = list(meeting.session.bookings.confirmed().values_list("pk", flat=True))
    elif meeting.booking is not None and not meeting.booking.is_cancelled:
        booking_ids = [meeting.booking.pk]
    else:
        booking_ids = []
    for booking_id in booking_ids:
        jobs.enqueue(SEND_EMAIL_JOB, booking_id, LINK_READY_KIND)
    logger.info("Meeting %s is ready: link emails for %d bookings.", meeting_id, len(booking_ids))
    return len(booking_ids)


def mark_link_sent(booking: Booking) -> None:
    """Record that the member of ``booking`` got the link by email (no *link ready* email)."""
    from ..links import link_meeting

    meeting = link_meeting(booking)
    if meeting is not None:
        _claim(meeting.pk)


def _claim(meeting_id: int) -> bool:
    from ..models import Meeting

    return bool(
        Meeting.objects.filter(pk=meeting_id, link_ready_notified=False).update(
            link_ready_notified=True
        )
    )


def expect_new_link(session_id: int) -> None:
    """A session's meeting is to be made again (back online, automatic link restored).

    Its attendees are told of the change at once, perhaps before the new meeting is
    ready: the *link ready* email may then follow once more, unless the change email
    carried the link after all.
    """
    from ..models import Meeting, MeetingState

    Meeting.objects.filter(session_id=session_id).exclude(state=MeetingState.READY).update(
        link_ready_notified=False
    )
