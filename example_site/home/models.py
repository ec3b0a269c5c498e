"""Page types of the example site: a home page and content pages built from blocks."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest
from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page

from wagtail_bookings_vc.blocks import BookingWidgetBlock, ClassScheduleBlock


class BodyBlock(blocks.StreamBlock):
    heading = blocks.CharBlock(form_classname="title", icon="title")
    paragraph = blocks.RichTextBlock()
    booking_widget = BookingWidgetBlock()
    class_schedule = ClassScheduleBlock()


class HomePage(Page):
    tagline = models.CharField(max_length=255, blank=True)
    body = StreamField(BodyBlock(), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("tagline"), FieldPanel("body")]

    def get_context(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Add ``timetable_page``: the first content page below this one with a class schedule."""
        context = super().get_context(request, *args, **kwargs)
        context["timetable_page"] = next(
            (
                page
                for page in ContentPage.objects.child_of(self).live().order_by("path")
                if any(block.block_type == "class_schedule" for block in page.body)
            ),
            None,
        )
        return context


class ContentPage(Page):
    intro = models.CharField(max_length=255, blank=True)
    body = StreamField(BodyBlock(), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro"), FieldPanel("body")]
