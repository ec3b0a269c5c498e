from ..pages import MembersAreaPage
from .bookings import Booking, BookingStatus, PaymentStatus
from .catalog import GroupClass, Service, Staff
from .schedule import ClassSession, TimeOff, WorkingHours
from .settings import BookingEmailSettings

__all__ = [
    "Booking",
    "BookingEmailSettings",
    "BookingStatus",
    "ClassSession",
    "GroupClass",
    "MembersAreaPage",
    "PaymentStatus",
    "Service",
    "Staff",
    "TimeOff",
    "WorkingHours",
]
