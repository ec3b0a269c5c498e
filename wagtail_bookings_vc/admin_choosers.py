"""Snippet choosers that show a user only the rows they may see.

Wagtail's snippet choosers list every row of a model to anyone who can use the admin.
For bookings that would show a staff member every other staff member's bookings (and
let them look members up by email); for conferencing accounts, every account. These
choosers apply the same scope as the listings, in the modal, its search results and
the views that answer with a chosen row.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from wagtail.snippets.views.chooser import (
    ChooseResultsView,
    ChooseView,
    SnippetChooserViewSet,
    SnippetChosenMultipleView,
    SnippetChosenView,
)

from . import permissions


class ScopedChooserMixin:
    """Limit a chooser view's rows with :meth:`scope`."""

    request: Any
    model_class: Any

    def scope(self, queryset: QuerySet) -> QuerySet:
        raise NotImplementedError

    def get_object_list(self) -> QuerySet:
        return self.scope(super().get_object_list())  # type: ignore[misc]

    def get_object(self, pk: Any) -> Any:
        return self.scope(self.model_class.objects.all()).get(pk=pk)

    def get_objects(self, pks: list[str]) -> QuerySet:
        return self.scope(self.model_class.objects.all()).filter(pk__in=pks)


def scoped_chooser_viewset(name: str, scope: Any) -> type[SnippetChooserViewSet]:
    """A chooser viewset whose views show ``scope(user, queryset)`` only."""

    class Scoped(ScopedChooserMixin):
        def scope(self, queryset: QuerySet) -> QuerySet:
            return scope(self.request.user, queryset)

    return type(
        name,
        (SnippetChooserViewSet,),
        {
            "choose_view_class": type("ChooseView", (Scoped, ChooseView), {}),
            "choose_results_view_class": type("ChooseResultsView", (Scoped, ChooseResultsView), {}),
            "chosen_view_class": type("ChosenView", (Scoped, SnippetChosenView), {}),
            "chosen_multiple_view_class": type(
                "ChosenMultipleView", (Scoped, SnippetChosenMultipleView), {}
            ),
        },
    )


def visible_accounts(user: Any, queryset: QuerySet) -> QuerySet:
    """Conferencing accounts, for those who may manage them; nothing for anyone else."""
    from wagtail.permission_policies import ModelPermissionPolicy

    policy = ModelPermissionPolicy(queryset.model)
    if policy.user_has_any_permission(user, ["add", "change", "delete", "view"]):
        return queryset.defer("credentials")
    return queryset.none()


BookingChooserViewSet = scoped_chooser_viewset(
    "BookingChooserViewSet", permissions.visible_bookings
)
ConferencingAccountChooserViewSet = scoped_chooser_viewset(
    "ConferencingAccountChooserViewSet", visible_accounts
)
