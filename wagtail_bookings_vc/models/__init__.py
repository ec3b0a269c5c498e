from ..pages import MembersAreaPage
from .bookings import Booking, BookingStatus, PaymentStatus
from .catalog import GroupClass, Service, Staff
from .conferencing import (
    AccountStatus,
    ConferencingAccount,
    ConferencingSettings,
    JoinPass,
    JoinPassRole,
    Meeting,
    MeetingLinkMode,
    MeetingState,
    ProviderCallCount,
)
from .schedule import ClassSession, SessionFormat, SessionLink, TimeOff, WorkingHours
from .settings import BookingEmailSettings

__all__ = [
    "AccountStatus",
    "ProviderCallCount",
    "ConferencingAccount",
    "ConferencingSettings",
    "JoinPass",
    "JoinPassRole",
    "Meeting",
    "MeetingLinkMode",
    "MeetingState",
    "SessionFormat",
    "SessionLink",
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
