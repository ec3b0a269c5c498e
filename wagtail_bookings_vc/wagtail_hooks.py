from wagtail import hooks
from wagtail.admin.menu import WagtailMenuRegisterableGroup
from wagtail.contrib.settings.registry import register_setting
from wagtail.snippets.models import register_snippet

from . import admin_calendar, admin_urls, alerts, connect, reports
from .models import Booking, BookingEmailSettings, ConferencingSettings
from .viewsets import (
    BookingPermissionPolicy,
    BookingsViewSetGroup,
    BookingViewSet,
    refuse_deleting_booked,
)

try:
    from wagtail.permissions import register_permission_policy
except ImportError:  # Wagtail 7.4 reads the policy from the viewset.
    BookingViewSet.permission_policy = BookingPermissionPolicy(Booking)
else:
    register_permission_policy(Booking, BookingPermissionPolicy(Booking))

register_snippet(BookingsViewSetGroup)
hooks.register("before_delete_snippet", refuse_deleting_booked)
register_setting(BookingEmailSettings, icon="mail")
register_setting(ConferencingSettings, icon="media")

# The online-meetings report (R24): in the Reports menu, and in the Bookings group's
# menu through its submenu hook.
hooks.register("register_admin_urls", reports.admin_urls)
hooks.register("register_reports_menu_item", reports.reports_menu_item)
hooks.register("register_bookings_vc_menu_item", reports.bookings_menu_item)

# Menu groups take items from a hook from Wagtail 8 on; on Wagtail 7.4 the calendar and
# the video conferencing screen go in the main menu, next to the Bookings group.
GROUP_TAKES_ITEMS = hasattr(WagtailMenuRegisterableGroup, "submenu_hook")

# The admin calendar (day, week, month), first in the Bookings group.
if GROUP_TAKES_ITEMS:
    hooks.register("register_bookings_vc_menu_item", admin_calendar.calendar_menu_item)
else:
    hooks.register("register_admin_menu_item", admin_calendar.calendar_main_menu_item)

# Connecting conferencing accounts (R2–R7): the site's in the Bookings group, a staff
# member's own as a menu item of its own.
hooks.register("register_admin_urls", admin_urls.admin_urls)
hooks.register("register_admin_menu_item", connect.my_account_menu_item)
if GROUP_TAKES_ITEMS:
    hooks.register("register_bookings_vc_menu_item", connect.video_menu_item)
else:
    hooks.register("register_admin_menu_item", connect.video_main_menu_item)

# What needs attention (failed meetings, accounts to reconnect), on the dashboard.
hooks.register("construct_homepage_panels", alerts.homepage_panels)
