from wagtail import hooks
from wagtail.contrib.settings.registry import register_setting
from wagtail.snippets.models import register_snippet

from . import admin_urls, connect, reports
from .models import Booking, BookingEmailSettings, ConferencingSettings
from .viewsets import BookingPermissionPolicy, BookingsViewSetGroup, BookingViewSet

try:
    from wagtail.permissions import register_permission_policy
except ImportError:  # Wagtail 7.4 reads the policy from the viewset.
    BookingViewSet.permission_policy = BookingPermissionPolicy(Booking)
else:
    register_permission_policy(Booking, BookingPermissionPolicy(Booking))

register_snippet(BookingsViewSetGroup)
register_setting(BookingEmailSettings, icon="mail")
register_setting(ConferencingSettings, icon="media")

# The online-meetings report (R24): in the Reports menu, and in the Bookings group's
# menu through its submenu hook.
hooks.register("register_admin_urls", reports.admin_urls)
hooks.register("register_reports_menu_item", reports.reports_menu_item)
hooks.register("register_bookings_vc_menu_item", reports.bookings_menu_item)

# Connecting conferencing accounts (R2–R7): the site's in the Bookings group, a staff
# member's own as a menu item of its own.
hooks.register("register_admin_urls", admin_urls.admin_urls)
hooks.register("register_bookings_vc_menu_item", connect.video_menu_item)
hooks.register("register_admin_menu_item", connect.my_account_menu_item)
