from wagtail.permissions import register_permission_policy
from wagtail.snippets.models import register_snippet

from .models import Booking
from .viewsets import BookingPermissionPolicy, BookingsViewSetGroup

register_permission_policy(Booking, BookingPermissionPolicy(Booking))
register_snippet(BookingsViewSetGroup)


