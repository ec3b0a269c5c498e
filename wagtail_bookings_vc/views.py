"""Public views: book, see, cancel and reschedule a booking; the members area."""

from django.http import Http404


def _todo(*args, **kwargs):
    raise Http404


book_appointment = book_session = booking_detail = cancel_booking = _todo
reschedule_booking = booking_ics = serve_members_area = _todo
