"""StreamField blocks editors put on pages: the booking widget and the class schedule."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.snippets.blocks import SnippetChooserBlock


class BookingWidgetBlock(blocks.StructBlock):
    """Lets a visitor pick a free slot of a service (or of any service) and book it."""

    heading = blocks.CharBlock(label=_("Heading"), required=False)
    service = SnippetChooserBlock(
        "wagtail_bookings_vc.Service",
        label=_("Service"),
        required=False,
        help_text=_("Leave empty to let visitors choose among all services."),
    )

    class Meta:
        icon = "date"
        label = _("Booking widget")
        template = "wagtail_bookings_vc/blocks/booking_widget.html"


class ClassScheduleBlock(blocks.StructBlock):
    """Upcoming sessions of one class (or of all classes) with the seats left."""

    heading = blocks.CharBlock(label=_("Heading"), required=False)
    group_class = SnippetChooserBlock(
        "wagtail_bookings_vc.GroupClass",
        label=_("Class"),
        required=False,
        help_text=_("Leave empty to list the sessions of every class."),
    )
    limit = blocks.IntegerBlock(label=_("Sessions shown"), default=10, min_value=1, max_value=100)

    class Meta:
        icon = "list-ul"
        label = _("Class schedule")
        template = "wagtail_bookings_vc/blocks/class_schedule.html"
