"""The members area: a page mixin (for a site's own base page) and a ready-made page type."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Page


class MembersAreaPageMixin:
    """Lists the signed-in member's upcoming and past bookings, with cancel and reschedule.

    Mix into a ``Page`` subclass; anonymous visitors are sent to log in and back.
    The page renders ``members_area_template``, which extends
    ``wagtail_bookings_vc/base.html``; a site overrides that one template to fit
    its own layout (it extends the site's ``base.html`` by default).
    """

    members_area_template = "wagtail_bookings_vc/members_area_page.html"

    def get_template(self, request: HttpRequest, *args: Any, **kwargs: Any) -> str:
        return self.members_area_template

    def serve(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from .views import serve_members_area

        return serve_members_area(self, request, *args, **kwargs)


class MembersAreaPage(MembersAreaPageMixin, Page):
    """A page that shows the signed-in member their bookings."""

    intro = RichTextField(_("introduction"), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    max_count_per_parent = 1

    class Meta:
        verbose_name = _("members area page")
        verbose_name_plural = _("members area pages")
