"""Emails and calendar files sent to members and staff about their bookings."""
