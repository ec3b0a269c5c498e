from wagtail.contrib.settings.registry import register_setting
from wagtail.snippets.models import register_snippet

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
