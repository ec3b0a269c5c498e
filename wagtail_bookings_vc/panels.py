"""Edit-view panels of the app's own (imported by the models, so it imports none itself)."""

from __future__ import annotations

from typing import Any

from wagtail.admin.panels import Panel


class PlanWarningPanel(Panel):
    """Warns when a host's plan would cut the edited service's or class's meetings short (R17).

    Shows nothing when there is nothing to warn about; see
    :func:`wagtail_bookings_vc.plan_limits.plan_warnings`.
    """

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_bookings_vc/admin/plan_warning_panel.html"

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            from .plan_limits import plan_warnings

            instance = self.instance
            self.warnings = plan_warnings(instance) if instance is not None else []

        def is_shown(self) -> bool:
            return bool(self.warnings) and super().is_shown()

        def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
            context = super().get_context_data(parent_context)
            context["warnings"] = self.warnings
            return context
