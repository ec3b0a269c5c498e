"""The app's own admin views, under ``<admin>/bookings-vc/`` in one URL namespace.

Registered through Wagtail's ``register_admin_urls`` hook. The online-meetings report
keeps its own namespace (see :mod:`wagtail_bookings_vc.reports`).
"""

from __future__ import annotations

from django.urls import include, path

from . import admin_bookings, admin_calendar, admin_sessions, connect, host_links

NAMESPACE = "wagtail_bookings_vc_admin"


def admin_urls() -> list:
    """URL patterns for the ``register_admin_urls`` hook."""
    patterns = [*connect.urlpatterns, *host_links.urlpatterns, *admin_sessions.urlpatterns]
    patterns += [*admin_calendar.urlpatterns, *admin_bookings.urlpatterns]
    return [path("bookings-vc/", include((patterns, NAMESPACE), namespace=NAMESPACE))]
