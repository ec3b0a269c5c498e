"""Admin screens for services, classes, staff and bookings, in one "Bookings" menu."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.contrib import messages
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext, pgettext_lazy
from django.views.generic import FormView, TemplateView
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.panels import FieldPanel
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.widgets import Button, ListingButton
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.snippets.views.snippets import (
    IndexView,
    InspectView,
    SnippetViewSet,
    SnippetViewSetGroup,
)

from . import admin_bookings, admin_sessions, host_links, meetings, permissions
from .admin_choosers import BookingChooserViewSet, ConferencingAccountChooserViewSet
from .admin_forms import SessionSeriesForm
from .courses import generate_sessions
from .models import (
    Booking,
    BookingStatus,
    ConferencingAccount,
    GroupClass,
    PaymentStatus,
    Service,
    SessionFormat,
    Staff,
)
from .providers.registry import enabled_providers


def local_datetime(booking: Booking) -> str:
    """The booking's start as a date and time in the admin user's time zone."""
    return date_format(timezone.localtime(booking.start), "SHORT_DATETIME_FORMAT")


class BookingPermissionPolicy(ModelPermissionPolicy):
    """Bookings are viewed in the admin, never added, edited or deleted through a form.

    Every change to a booking goes through ``wagtail_bookings_vc.bookings`` so that its
    rules, emails and calendar updates apply.
    """

    read_only_actions = frozenset({"add", "change", "delete"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        if action in self.read_only_actions:
            return False
        if action == "view" and permissions.can_see_bookings(user):
            # Staff members with their own bookings only see those (see get_queryset).
            return True
        return super().user_has_permission(user, action)

    def user_has_permission_for_instance(self, user: Any, action: str, instance: Any) -> bool:
        if action == "view":
            return permissions.visible_bookings(user).filter(pk=instance.pk).exists()
        return self.user_has_permission(user, action)

    def user_has_any_permission_for_instance(self, user: Any, actions: Any, instance: Any) -> bool:
        return any(self.user_has_permission(user, action) for action in actions)


class ServiceViewSet(SnippetViewSet):
    model = Service
    icon = "clipboard-list"
    menu_label = _("Services")
    list_display = [
        "name",
        Column("duration_minutes", label=_("Minutes")),
        Column("price", label=_("Price")),
        BooleanColumn("online", label=_("Online")),
        BooleanColumn("active", label=_("Bookable")),
    ]
    list_filter = ["online", "active", "staff"]


class GroupClassIndexView(IndexView):
    def get_list_more_buttons(self, instance: GroupClass) -> list:
        buttons = super().get_list_more_buttons(instance)
        if self.permission_policy.user_has_permission_for_instance(
            self.request.user, "change", instance
        ):
            buttons.append(
                ListingButton(
                    _("Add a series of sessions"),
                    url=reverse(
                        "wagtailsnippets_wagtail_bookings_vc_groupclass:add_sessions",
                        args=[instance.pk],
                    ),
                    icon_name="calendar",
                    priority=30,
                )
            )
        if admin_sessions.can_manage_class_sessions(self.request.user, instance):
            buttons.append(
                ListingButton(
                    _("Session links"),
                    url=admin_sessions.class_sessions_url(instance),
                    icon_name="link",
                    priority=35,
                )
            )
        return buttons


class SessionSeriesView(WagtailAdminTemplateMixin, FormView):
    """Adds a course's recurring sessions to a class in one go."""

    form_class = SessionSeriesForm
    template_name = "wagtail_bookings_vc/admin/session_series.html"
    header_icon = "calendar"
    permission_policy: Any = None

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self.group_class = get_object_or_404(GroupClass, pk=kwargs["pk"])
        if not self.permission_policy.user_has_permission_for_instance(
            request.user, "change", self.group_class
        ):
            from wagtail.admin.auth import permission_denied

            return permission_denied(request)
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return str(_("Add a series of sessions"))

    def get_page_subtitle(self) -> str:
        return str(self.group_class)

    def form_valid(self, form: SessionSeriesForm) -> Any:
        created = generate_sessions(
            self.group_class,
            first_start=form.cleaned_data["first_start"],
            count=form.cleaned_data["count"],
            every_days=form.cleaned_data["every_days"],
            location=form.cleaned_data["location"],
        )
        messages.success(
            self.request,
            ngettext(
                "%(count)d session added to %(name)s.",
                "%(count)d sessions added to %(name)s.",
                len(created),
            )
            % {"count": len(created), "name": self.group_class},
        )
        return redirect("wagtailsnippets_wagtail_bookings_vc_groupclass:edit", self.group_class.pk)


#: What links each catalogue model to its bookings.
BOOKINGS_OF = {GroupClass: "session__group_class", Service: "service", Staff: "staff"}


def refuse_deleting_booked(request: Any, instances: list[Any]) -> Any:
    """``before_delete_snippet``: a service, class or staff member with bookings stays.

    Their bookings protect them (and a class's sessions). Bookings are left out of
    Wagtail's reference index, to keep the booking request short, so Wagtail's delete
    view does not see them: this says why instead of failing.
    """
    model = type(instances[0]) if instances else None
    lookup = BOOKINGS_OF.get(model)
    if lookup is None:
        return None
    booked = [
        instance for instance in instances if Booking.objects.filter(**{lookup: instance}).exists()
    ]
    if not booked:
        return None
    for instance in booked:
        if model is GroupClass:
            text = _(
                "“%(name)s” cannot be deleted: its sessions have bookings. Cancel its "
                "sessions instead, or untick “bookable” to stop new bookings."
            ) % {"name": instance.name}
        else:
            text = _(
                "“%(name)s” cannot be deleted: it has bookings. Untick “%(field)s” to "
                "stop new bookings."
            ) % {"name": instance.name, "field": model._meta.get_field("active").verbose_name}
        messages.error(request, text)
    prefix = f"wagtailsnippets_wagtail_bookings_vc_{model._meta.model_name}"
    if len(instances) == 1:
        return redirect(f"{prefix}:edit", instances[0].pk)
    return redirect(f"{prefix}:list")


class GroupClassViewSet(SnippetViewSet):
    model = GroupClass
    icon = "group"
    menu_label = _("Classes")
    index_view_class = GroupClassIndexView
    list_display = [
        "name",
        Column("staff", label=_("Instructor")),
        Column("capacity", label=_("Capacity")),
        BooleanColumn("online", label=_("Online")),
        BooleanColumn("active", label=_("Bookable")),
    ]
    list_filter = ["online", "active", "staff"]

    @property
    def add_sessions_view(self) -> Any:
        return SessionSeriesView.as_view(permission_policy=self.permission_policy)

    def get_urlpatterns(self) -> list:
        return [
            *super().get_urlpatterns(),
            path("sessions/<int:pk>/", self.add_sessions_view, name="add_sessions"),
        ]


class StaffViewSet(SnippetViewSet):
    model = Staff
    icon = "user"
    menu_label = _("Staff")
    list_display = ["name", "email", "time_zone", BooleanColumn("active", label=_("Active"))]
    list_filter = ["active"]


def can_manage_bookings(user: Any) -> bool:
    """Marking paid goes through ``bookings.py``; it needs Django's change permission."""
    return user.has_perm("wagtail_bookings_vc.change_booking")


class BookingIndexView(IndexView):
    def get_list_more_buttons(self, instance: Booking) -> list:
        buttons = super().get_list_more_buttons(instance)
        manages = permissions.can_manage_booking(self.request.user, instance)
        if instance.status == BookingStatus.CONFIRMED and manages:
            buttons += [
                ListingButton(
                    _("Reschedule"),
                    url=admin_bookings.reschedule_url(instance),
                    icon_name="calendar",
                    priority=40,
                ),
                ListingButton(
                    _("Cancel booking"),
                    url=admin_bookings.cancel_url(instance),
                    icon_name="cross",
                    priority=50,
                ),
            ]
        if instance.online and manages:
            buttons.append(
                ListingButton(
                    _("Open meeting"),
                    url=host_links.open_meeting_url(instance),
                    icon_name="media",
                    priority=20,
                    attrs={"target": "_blank", "rel": "noopener noreferrer"},
                )
            )
        if instance.payment_status == PaymentStatus.PENDING and can_manage_bookings(
            self.request.user
        ):
            buttons.append(
                ListingButton(
                    _("Mark as paid"),
                    url=reverse(
                        "wagtailsnippets_wagtail_bookings_vc_booking:mark_paid",
                        args=[instance.pk],
                    ),
                    icon_name="tick",
                    priority=30,
                )
            )
        return buttons


class BookingInspectView(InspectView):
    """A booking's details, with its meeting's state and the buttons that act on it (R23)."""

    extra_labels = {
        "meeting_state": _("Online meeting"),
        "member_join_link": _("Member's join link"),
    }

    def get_object(self, queryset: Any = None) -> Booking:
        # Staff members who see only their own bookings cannot reach others' by URL.
        visible = permissions.visible_bookings(self.request.user).select_related(
            "service", "staff", "session__group_class"
        )
        return get_object_or_404(visible, pk=self.pk)

    def get_field_label(self, field_name: str, field: Any) -> str:
        if field_name in self.extra_labels:
            return str(self.extra_labels[field_name])
        return super().get_field_label(field_name, field)

    def get_meeting_state_display_value(self) -> str:
        meeting = meetings.meeting_of(self.object)
        if meeting is None:
            return (
                str(pgettext("meeting link", "None"))
                if not self.object.online
                else str(_("A link entered by hand"))
            )
        text = str(meeting.get_state_display())
        if meeting.changed_outside_at:
            text += " · " + str(_("changed outside the site"))
        if meeting.last_error:
            text += f" · {meeting.last_error}"
        return text

    def get_member_join_link_display_value(self) -> str:
        # A personal link lets its holder in: only for those who manage this booking.
        if not permissions.can_manage_booking(self.request.user, self.object):
            return "-"
        path = meetings.join_path(self.object)
        return self.request.build_absolute_uri(path) if path else "-"

    @cached_property
    def header_more_buttons(self) -> list:
        buttons = list(super().header_more_buttons)
        booking = self.object
        if booking.online and permissions.can_manage_booking(self.request.user, booking):
            buttons.append(
                Button(
                    _("Open meeting"),
                    url=host_links.open_meeting_url(booking),
                    icon_name="media",
                    priority=5,
                    attrs={"target": "_blank", "rel": "noopener noreferrer"},
                )
            )
        if booking.session_id and permissions.can_manage_session(
            self.request.user, booking.session
        ):
            buttons.append(
                Button(
                    _("Session link"),
                    url=admin_sessions.session_link_url(booking.session),
                    icon_name="link",
                    priority=10,
                )
            )
        if booking.payment_status == PaymentStatus.PENDING and can_manage_bookings(
            self.request.user
        ):
            buttons.append(
                Button(
                    _("Mark as paid"),
                    url=reverse(
                        "wagtailsnippets_wagtail_bookings_vc_booking:mark_paid", args=[booking.pk]
                    ),
                    icon_name="tick",
                    priority=30,
                )
            )
        return buttons


class MarkPaidView(WagtailAdminTemplateMixin, TemplateView):
    """Records a payment received outside the site (R19): the member's join link opens."""

    template_name = "wagtail_bookings_vc/admin/mark_paid.html"
    header_icon = "tick"

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self.booking = get_object_or_404(Booking, pk=kwargs["pk"])
        if not can_manage_bookings(request.user):
            from wagtail.admin.auth import permission_denied

            return permission_denied(request)
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return str(_("Mark as paid"))

    def get_page_subtitle(self) -> str:
        return str(self.booking)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "booking": self.booking}

    def post(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        from .bookings import BookingError, mark_paid

        try:
            mark_paid(self.booking)
        except BookingError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, _("Booking %(reference)s is paid.") % {"reference": self.booking.reference}
            )
        return redirect("wagtailsnippets_wagtail_bookings_vc_booking:list")


class BookingFilterSet(WagtailFilterSet):
    """Date range, service, class, staff member, status, payment and online or in person."""

    start = django_filters.DateFromToRangeFilter(
        label=_("Date"), field_name="start", widget=DateRangePickerWidget
    )
    service = django_filters.ModelChoiceFilter(
        label=_("Service"),
        queryset=Service.objects.order_by("name"),
        empty_label=pgettext_lazy("filter", "All"),
    )
    group_class = django_filters.ModelChoiceFilter(
        label=_("Class"),
        field_name="session__group_class",
        queryset=GroupClass.objects.order_by("name"),
        empty_label=pgettext_lazy("filter", "All"),
    )
    staff = django_filters.ModelChoiceFilter(
        label=_("Staff"),
        queryset=Staff.objects.order_by("name"),
        empty_label=_("All staff"),
        method="filter_staff",
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=BookingStatus.choices, empty_label=pgettext_lazy("filter", "All")
    )
    payment_status = django_filters.ChoiceFilter(
        label=_("Payment"),
        choices=PaymentStatus.choices,
        empty_label=pgettext_lazy("filter", "All"),
    )
    online = django_filters.ChoiceFilter(
        label=_("Online"),
        choices=[("yes", _("Online")), ("no", _("In person"))],
        empty_label=pgettext_lazy("filter", "All"),
        method="filter_online",
    )

    class Meta:
        model = Booking
        fields: list[str] = []

    def filter_staff(self, queryset: Any, name: str, value: Staff) -> Any:
        # A class seat's staff member is the class's.
        return queryset.filter(Q(staff=value) | Q(session__group_class__staff=value))

    def filter_online(self, queryset: Any, name: str, value: str) -> Any:
        online = Q(service__online=True) | Q(session__group_class__online=True)
        # A session held in person or online for once overrides its class.
        in_person_once = Q(session__format_override=SessionFormat.IN_PERSON)
        online_once = Q(session__format_override=SessionFormat.ONLINE)
        is_online = (online & ~in_person_once) | online_once
        return queryset.filter(is_online) if value == "yes" else queryset.exclude(is_online)


class BookingViewSet(SnippetViewSet):
    model = Booking
    icon = "date"
    chooser_viewset_class = BookingChooserViewSet
    index_view_class = BookingIndexView
    inspect_view_class = BookingInspectView
    menu_label = _("Bookings")
    inspect_view_enabled = True
    list_display = [
        "reference",
        Column("member_name", label=_("Member")),
        Column("title", label=_("Service or class")),
        Column("staff", label=_("Staff")),
        Column("start", label=_("Start"), accessor=local_datetime),
        Column("get_status_display", label=_("Status")),
        Column("get_payment_status_display", label=_("Payment")),
    ]
    filterset_class = BookingFilterSet
    # Bookings stay out of Wagtail's search index: a booking request then writes only
    # the booking. The listing searches these columns in the database instead.
    search_backend_name = None
    search_fields = ["reference", "member_name", "member_email"]
    inspect_view_fields = [
        "reference",
        "member_name",
        "member_email",
        "service",
        "session",
        "staff",
        "start",
        "end",
        "time_zone",
        "status",
        "payment_status",
        "price",
        "currency",
        "notes",
        "created_at",
        "cancelled_at",
        "meeting_state",
        "member_join_link",
    ]

    def get_queryset(self, request: Any) -> Any:
        bookings = Booking.objects.select_related("service", "session__group_class", "staff")
        return permissions.visible_bookings(request.user, bookings)

    def get_urlpatterns(self) -> list:
        return [
            *super().get_urlpatterns(),
            path("mark-paid/<int:pk>/", MarkPaidView.as_view(), name="mark_paid"),
        ]


def account_provider_choices() -> list[tuple[str, Any]]:
    """Providers whose accounts are added by a form: those without an OAuth consent step.

    Accounts of OAuth providers are created by their *Connect* flow instead.
    """
    return [
        (provider.id, provider.name)
        for provider in enabled_providers()
        if not provider.needs_oauth and not provider.shared_link
    ]


class ConferencingAccountViewSet(SnippetViewSet):
    model = ConferencingAccount
    icon = "media"
    chooser_viewset_class = ConferencingAccountChooserViewSet
    menu_label = _("Conferencing accounts")
    list_display = [
        "__str__",
        Column("provider", label=_("Provider")),
        Column("staff", label=_("Staff member")),
        Column("get_status_display", label=_("Status")),
    ]
    list_filter = ["provider", "status"]
    panels = [
        FieldPanel("provider", widget=forms.Select(choices=account_provider_choices)),
        FieldPanel("label"),
        FieldPanel("staff"),
    ]

    def get_queryset(self, request: Any) -> Any:
        # Listings never decrypt credentials: they may be unreadable after a key change.
        return ConferencingAccount.objects.select_related("staff").defer("credentials")


class BookingsViewSetGroup(SnippetViewSetGroup):
    items = (
        BookingViewSet,
        ServiceViewSet,
        GroupClassViewSet,
        StaffViewSet,
        ConferencingAccountViewSet,
    )
    menu_icon = "date"
    menu_label = _("Bookings")
    menu_name = "bookings"
    menu_order = 250
    # Lets other admin views (the online-meetings report) join this menu.
    submenu_hook = "register_bookings_vc_menu_item"
