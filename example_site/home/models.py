"""Page types of the example site: a home page and content pages built from blocks."""

from __future__ import annotations

from django.db import models
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


class ContentPage(Page):
    intro = models.CharField(max_length=255, blank=True)
    body = StreamField(BodyBlock(), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro"), FieldPanel("body")]
