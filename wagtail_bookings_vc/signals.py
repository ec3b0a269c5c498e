"""Signals sent after a booking changes, once the transaction has committed.

Each is sent with ``sender=Booking`` and ``booking=<the Booking>``. Payment
integrations listen to nothing here: they call ``bookings.mark_paid()``, which
sends ``booking_paid``.
"""

from __future__ import annotations

from django.dispatch import Signal

booking_confirmed = Signal()
booking_cancelled = Signal()
booking_rescheduled = Signal()
booking_paid = Signal()

# Sent with ``sender=Meeting`` and ``meeting=<the Meeting>`` once a meeting has been made.
meeting_ready = Signal()
