"""StreamField blocks editors put on pages: the booking widget and the class schedule."""

from __future__ import annotations

from typing import Any

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

    def get_context(self, value: Any, parent_context: dict[str, Any] | None = None) -> dict:
        """Add ``bvc``: the service, the services to choose from and the week's free times.

        Reads the page's request (``bvc_service``, ``bvc_week``, ``bvc_staff``).
        """
        # Imported here: views import the models, which are still loading when blocks are.
        from .views import booking_widget_context

        context = super().get_context(value, parent_context=parent_context)
        block_id = context.get("id")
        context.update(
            booking_widget_context(
                context.get("request"),
                value,
                block_id=block_id if isinstance(block_id, str) else None,
            )
        )
        return context

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

    def get_context(self, value: Any, parent_context: dict[str, Any] | None = None) -> dict:
        """Add ``bvc``: the upcoming sessions, formatted, with the seats left."""
        # Imported here: views import the models, which are still loading when blocks are.
        from .views import class_schedule_context

        context = super().get_context(value, parent_context=parent_context)
        context.update(class_schedule_context(context.get("request"), value))
        return context

    class Meta:
        icon = "list-ul"
        label = _("Class schedule")
        template = "wagtail_bookings_vc/blocks/class_schedule.html"
