"""Online bookings of services and classes for Wagtail, with video-meeting links."""

__version__ = "0.1.0.dev0"
