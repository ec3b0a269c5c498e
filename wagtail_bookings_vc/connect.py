"""Connecting and disconnecting conferencing accounts from the Wagtail admin (R2–R7).

One screen, *Video conferencing*, shows the site's default account, the organisation
accounts and every staff member's account, with a button for each thing that can be done
to them. Staff members linked to a Wagtail user manage their own account on *My video
account* (R4).

Connecting through a provider's consent screen is a round trip: :func:`connect` keeps an
unguessable ``state`` in the admin's session and sends them to the provider;
:func:`oauth_callback` takes the state out of the session (so it works once), checks that
it was issued to this user within ten minutes, and only then hands the callback to the
provider. A forged, replayed or other session's callback is refused and changes nothing.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from wagtail.admin.menu import MenuItem
from wagtail.models import Site

from . import accounts, meetings, permissions
from .models import (
    AccountStatus,
    ConferencingAccount,
    ConferencingSettings,
    Meeting,
    ProviderCallCount,
    Staff,
)
from .providers import Provider, ProviderError, ProviderUser, enabled_providers, get_provider

logger = logging.getLogger(__name__)

#: Where pending connections wait in the session, by state.
SESSION_KEY = "wagtail_bookings_vc_oauth"
#: How long someone may take on the provider's consent screen.
STATE_MAX_AGE = 10 * 60
#: Pending connections kept per session; older ones are dropped.
MAX_PENDING = 5

MANAGE_PERMISSION = "wagtail_bookings_vc.change_conferencingaccount"
OWN_ACCOUNT_PERMISSION = "wagtail_bookings_vc.connect_own_account"


# --------------------------------------------------------------------------------------
# Who may do what
# --------------------------------------------------------------------------------------


def can_manage_accounts(user: Any) -> bool:
    """Administrators and booking managers manage every account."""
    return bool(user.is_active and user.has_perm(MANAGE_PERMISSION))


def can_manage_own_account(user: Any) -> bool:
    """Staff linked to a Wagtail user, with the permission, manage their own account."""
    if permissions.staff_of_user(user) is None:
        return False
    return can_manage_accounts(user) or bool(user.has_perm(OWN_ACCOUNT_PERMISSION))


def _may_touch(user: Any, staff: Staff | None) -> bool:
    if can_manage_accounts(user):
        return True
    # Staff manage their own account and nobody else's (R4); never the site's.
    return (
        staff is not None
        and user.has_perm(OWN_ACCOUNT_PERMISSION)
        and staff.user_id is not None
        and staff.user_id == user.pk
    )


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def _home(request: HttpRequest) -> str:
    if can_manage_accounts(request.user):
        return reverse("wagtail_bookings_vc_admin:video_conferencing")
    return reverse("wagtail_bookings_vc_admin:my_video_account")


def _site(request: HttpRequest) -> Site | None:
    return Site.find_for_request(request) or Site.objects.filter(is_default_site=True).first()


# --------------------------------------------------------------------------------------
# Reading the state of things
# --------------------------------------------------------------------------------------


@dataclass
class ProviderChoice:
    """An enabled provider an account can be connected to, for the connect buttons."""

    id: str
    name: str
    needs_oauth: bool
    organisation: bool


def connectable_providers() -> list[ProviderChoice]:
    """Providers that make meetings through an account (not the typed-in manual link)."""
    return [
        ProviderChoice(
            id=provider.id,
            name=str(provider.name),
            needs_oauth=provider.needs_oauth,
            organisation=bool(provider.organisation_fields),
        )
        for provider in enabled_providers()
        if not provider.shared_link
    ]


def provider_name(provider_id: str) -> str:
    try:
        return str(get_provider(provider_id).name)
    except ImproperlyConfigured:
        return provider_id


def _label(accounts_shown: list[ConferencingAccount | None]) -> None:
    """Give each account its provider's name to show (``provider_label``)."""
    for account in accounts_shown:
        if account is not None:
            account.provider_label = provider_name(account.provider)


def account_usage(account: ConferencingAccount) -> dict[str, Any]:
    """What the admin shows about an account's limits: today's calls, plan limits."""
    if not account.is_connected:
        return {}
    try:
        provider = get_provider(account.provider)
        info = dict(provider.usage(accounts.AccountHandle(account)))
    except (ImproperlyConfigured, ProviderError, NotImplementedError):
        return {}
    limit = provider.daily_call_limit
    if limit:
        info["daily_call_limit"] = limit
        info["calls_today"] = meetings.calls_today(account)
    return info


# --------------------------------------------------------------------------------------
# The screens
# --------------------------------------------------------------------------------------


def _render(request: HttpRequest, template: str, title: str, **context: Any) -> HttpResponse:
    context.setdefault("header_icon", "media")
    return TemplateResponse(
        request,
        f"wagtail_bookings_vc/admin/accounts/{template}",
        {"page_title": title, "header_title": title, **context},
    )


@require_GET
def video_conferencing(request: HttpRequest) -> HttpResponse:
    """The accounts of the whole site: the default one, organisations, every staff member."""
    _require(can_manage_accounts(request.user))
    site = _site(request)
    settings = accounts.conferencing_settings(site)
    default = settings.default_account if settings.default_account_id else None
    site_accounts = list(
        ConferencingAccount.objects.filter(staff__isnull=True, organisation__isnull=True)
        .defer("credentials")
        .order_by("pk")
    )
    staff_rows = []
    own = {
        account.staff_id: account
        for account in ConferencingAccount.objects.filter(staff__isnull=False)
        .select_related("organisation")
        .defer("credentials", "organisation__credentials")
    }
    for staff in Staff.objects.filter(active=True).order_by("name"):
        staff_rows.append({"staff": staff, "account": own.get(staff.pk)})
    _label([default, *site_accounts, *own.values()])
    return _render(
        request,
        "index.html",
        _("Video conferencing"),
        default=default,
        default_usage=account_usage(default) if default else {},
        site_accounts=site_accounts,
        organisations=[a for a in site_accounts if a.is_organisation],
        staff_rows=staff_rows,
        providers=connectable_providers(),
        join_opens=settings.join_opens_minutes_before,
    )


@require_GET
def my_video_account(request: HttpRequest) -> HttpResponse:
    """A staff member's own account: connect, reconnect or disconnect it (R4)."""
    staff = permissions.staff_of_user(request.user)
    _require(staff is not None and _may_touch(request.user, staff))
    account = ConferencingAccount.objects.filter(staff=staff).defer("credentials").first()
    _label([account])
    return _render(
        request,
        "mine.html",
        _("My video account"),
        staff=staff,
        account=account,
        default_ready=accounts.links_enabled(_site(request)),
        providers=[p for p in connectable_providers() if p.needs_oauth],
    )


# --------------------------------------------------------------------------------------
# Connecting through the provider's consent screen
# --------------------------------------------------------------------------------------


def _callback_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("wagtail_bookings_vc_admin:oauth_callback"))


def _target_staff(request: HttpRequest) -> Staff | None:
    staff_id = request.POST.get("staff") or ""
    if not staff_id:
        return None
    if not staff_id.isdigit():
        raise PermissionDenied
    return get_object_or_404(Staff, pk=int(staff_id))


def _enabled(provider_id: str) -> Provider:
    try:
        return get_provider(provider_id)
    except ImproperlyConfigured as error:
        from django.http import Http404

        raise Http404(str(error)) from error


def _refuse_switch(staff: Staff | None, provider: Provider) -> str:
    """Why ``staff``'s account cannot be connected to ``provider`` now ("" if it can)."""
    if staff is None:
        return ""
    current = ConferencingAccount.objects.filter(staff=staff).defer("credentials").first()
    if current is not None and current.provider != provider.id and current.is_connected:
        return _("%(name)s is connected to %(provider)s. Disconnect that account first.") % {
            "name": staff.name,
            "provider": provider_name(current.provider),
        }
    return ""


@require_POST
def connect(request: HttpRequest, provider_id: str) -> HttpResponse:
    """Start connecting the site's account or a staff member's account to a provider."""
    provider = _enabled(provider_id)
    staff = _target_staff(request)
    _require(_may_touch(request.user, staff))
    if provider.shared_link:
        raise PermissionDenied
    if staff is not None and not accounts.links_enabled(_site(request)):
        messages.error(
            request,
            _(
                "Connect the site's default account first: staff accounts work only while "
                "it is connected."
            ),
        )
        return redirect(_home(request))
    refused = _refuse_switch(staff, provider)
    if refused:
        messages.error(request, refused)
        return redirect(_home(request))
    if not provider.needs_oauth:
        # Nothing to consent to (Jitsi Meet): the account exists as soon as it is chosen.
        account = _save_connected(request, provider, staff, credentials={})
        messages.success(request, _("%(account)s is connected.") % {"account": account})
        return redirect(_home(request))

    state = secrets.token_urlsafe(32)
    try:
        started = provider.start_authorization(_callback_uri(request), state)
    except (ProviderError, NotImplementedError) as error:
        messages.error(request, str(error))
        return redirect(_home(request))
    pending = dict(request.session.get(SESSION_KEY) or {})
    pending[state] = {
        "provider": provider.id,
        "staff": staff.pk if staff else None,
        "account": request.POST.get("account") or None,
        "user": request.user.pk,
        "issued": time.time(),
        "flow": dict(started.flow),
    }
    newest = sorted(pending.items(), key=lambda item: item[1]["issued"])[-MAX_PENDING:]
    request.session[SESSION_KEY] = dict(newest)
    return redirect(started.url)


def _take_pending(request: HttpRequest, state: str) -> dict[str, Any] | None:
    pending = dict(request.session.get(SESSION_KEY) or {})
    entry = pending.pop(state, None) if state else None
    request.session[SESSION_KEY] = pending
    if entry is None:
        return None
    fresh = time.time() - float(entry.get("issued", 0)) <= STATE_MAX_AGE
    if not fresh or entry.get("user") != request.user.pk:
        return None
    return entry


@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """Where the provider sends the admin back after the consent screen."""
    entry = _take_pending(request, request.GET.get("state", ""))
    if entry is None:
        logger.warning("Refused a conferencing callback with an unknown or stale state.")
        messages.error(
            request,
            _("That connection request is not valid any more. Start connecting again."),
        )
        return redirect(_home(request))
    staff = Staff.objects.filter(pk=entry["staff"]).first() if entry["staff"] else None
    if entry["staff"] and staff is None:
        raise PermissionDenied
    # Checked again: the user's permissions may have changed during the round trip.
    _require(_may_touch(request.user, staff))
    provider = _enabled(entry["provider"])
    if request.GET.get("error"):
        messages.error(
            request,
            _("%(provider)s did not give access: %(reason)s")
            % {
                "provider": provider.name,
                "reason": request.GET.get("error_description") or request.GET["error"],
            },
        )
        return redirect(_home(request))
    account = _account_to_connect(entry, provider, staff)
    handle = accounts.AccountHandle(account)
    try:
        provider.finish_authorization(
            handle, request.GET.dict(), _callback_uri(request), entry["flow"]
        )
    except ProviderError as error:
        messages.error(request, str(error.message))
        return redirect(_home(request))
    account = _save_connected(
        request,
        provider,
        staff,
        credentials=handle.credentials,
        account=account,
    )
    messages.success(request, _("%(account)s is connected.") % {"account": account})
    return redirect(_home(request))


def _account_to_connect(
    entry: dict[str, Any], provider: Provider, staff: Staff | None
) -> ConferencingAccount:
    """The (unsaved, or existing) account a finished connection is stored in."""
    if staff is not None:
        account = ConferencingAccount.objects.filter(staff=staff).first()
        if account is not None:
            return account
        return ConferencingAccount(provider=provider.id, staff=staff)
    account_id = entry.get("account")
    if account_id and str(account_id).isdigit():
        existing = ConferencingAccount.objects.filter(
            pk=int(account_id), staff__isnull=True, provider=provider.id
        ).first()
        if existing is not None:
            return existing
    return ConferencingAccount(provider=provider.id)


def _save_connected(
    request: HttpRequest,
    provider: Provider,
    staff: Staff | None,
    *,
    credentials: dict[str, Any],
    account: ConferencingAccount | None = None,
) -> ConferencingAccount:
    with transaction.atomic():
        if account is None:
            account = (
                ConferencingAccount.objects.filter(staff=staff).first()
                if staff is not None
                else None
            ) or ConferencingAccount(staff=staff)
        account.provider = provider.id
        account.organisation = None
        account.credentials = dict(credentials)
        account.status = AccountStatus.CONNECTED
        account.last_error = ""
        account.connected_at = timezone.now()
        account.save()
        if staff is None and not account.is_organisation:
            _make_default_if_needed(request, account)
        meetings.account_connected(account)
    return account


def _make_default_if_needed(request: HttpRequest, account: ConferencingAccount) -> None:
    site = _site(request)
    if site is None:
        return
    settings = ConferencingSettings.for_site(site)
    current = settings.default_account if settings.default_account_id else None
    if current is None or (not current.is_connected and current.pk != account.pk):
        settings.default_account = account
        settings.save()


# --------------------------------------------------------------------------------------
# Disconnecting
# --------------------------------------------------------------------------------------


def disconnect(request: HttpRequest, account_id: int) -> HttpResponse:
    """Ask, then disconnect an account: revoke at the provider, forget the credentials (R7)."""
    account = get_object_or_404(ConferencingAccount.objects.select_related("staff"), pk=account_id)
    _require(_may_touch(request.user, account.staff))
    settings = accounts.conferencing_settings(_site(request))
    is_default = settings.default_account_id == account.pk
    if request.method != "POST":
        return _render(
            request,
            "confirm_disconnect.html",
            _("Disconnect %(account)s") % {"account": account},
            account=account,
            is_default=is_default,
            mapped=list(account.mapped_accounts.select_related("staff")),
            provider_label=provider_name(account.provider),
        )
    disconnect_account(account)
    messages.success(request, _("%(account)s is disconnected.") % {"account": account})
    return redirect(_home(request))


def disconnect_account(account: ConferencingAccount) -> None:
    """Revoke an account's credentials where the provider allows, and delete them (R7).

    Staff members mapped to an organisation account are disconnected with it. Meetings
    made through the account are made again through the account that applies now, as
    its credentials can no longer change or delete them.
    """
    try:
        provider = get_provider(account.provider)
    except ImproperlyConfigured:
        provider = None
    if provider is not None and account.credentials:
        try:
            provider.disconnect(accounts.AccountHandle(account))
        except ProviderError as error:
            logger.warning("Revoking conferencing account %s failed: %s", account.pk, error)
    with transaction.atomic():
        affected = [account, *account.mapped_accounts.all()]
        for each in affected:
            ConferencingAccount.objects.filter(pk=each.pk).update(
                credentials={},
                status=AccountStatus.DISCONNECTED,
                last_error="",
                updated_at=timezone.now(),
            )
            each.credentials = {}
            each.status = AccountStatus.DISCONNECTED
            meetings.account_released(each)
        forget_provider_if_unused(account.provider)


def forget_provider_if_unused(provider_id: str) -> None:
    """Once no connected account uses a provider, keep nothing of it in the database.

    Disconnected accounts lose the provider's user ids and emails, past meetings their
    ids, links and passcodes, and the daily call counts go. (Upcoming meetings were
    already released to another account.)
    """
    if ConferencingAccount.objects.filter(
        provider=provider_id, status=AccountStatus.CONNECTED
    ).exists():
        return
    ConferencingAccount.objects.filter(provider=provider_id).update(
        credentials={}, external_user_id="", external_email=""
    )
    Meeting.objects.filter(provider=provider_id).update(
        external_id="", join_url="", host_url="", passcode="", extra={}
    )
    ProviderCallCount.objects.filter(provider=provider_id).delete()


# --------------------------------------------------------------------------------------
# Organisation accounts and mapping staff to their users (R5)
# --------------------------------------------------------------------------------------


class OrganisationForm(forms.Form):
    """The values an organisation account is connected with, as the provider asks."""

    label = forms.CharField(label=gettext_lazy("Name"), required=False, max_length=255)

    def __init__(self, provider: Provider, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in provider.organisation_fields:
            widget = forms.PasswordInput(render_value=False) if field.secret else None
            self.fields[field.name] = forms.CharField(
                label=field.label,
                help_text=field.help_text,
                max_length=1024,
                widget=widget,
                strip=True,
            )


def connect_organisation(request: HttpRequest, provider_id: str) -> HttpResponse:
    """Connect an account for a whole organisation with app-only credentials."""
    _require(can_manage_accounts(request.user))
    provider = _enabled(provider_id)
    if not provider.organisation_fields:
        raise PermissionDenied
    form = OrganisationForm(provider, request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = {f.name: form.cleaned_data[f.name] for f in provider.organisation_fields}
        account = ConferencingAccount(provider=provider.id, label=form.cleaned_data["label"])
        handle = accounts.AccountHandle(account)
        try:
            provider.connect_organisation(handle, values)
        except ProviderError as error:
            form.add_error(None, str(error.message))
        else:
            account.is_organisation = True
            account = _save_connected(
                request, provider, None, credentials=handle.credentials, account=account
            )
            messages.success(
                request,
                _("%(account)s is connected. Map staff members to its users.")
                % {"account": account},
            )
            return redirect("wagtail_bookings_vc_admin:map_staff", account.pk)
    return _render(
        request,
        "organisation.html",
        _("Connect a %(provider)s organisation account") % {"provider": provider.name},
        form=form,
        provider=provider,
    )


class MapStaffForm(forms.Form):
    staff = forms.ModelChoiceField(
        label=gettext_lazy("Staff member"), queryset=Staff.objects.none()
    )
    user = forms.ChoiceField(label=gettext_lazy("Provider user"))

    def __init__(self, users: list[ProviderUser], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.users = {user.id: user for user in users}
        self.fields["staff"].queryset = Staff.objects.filter(active=True).order_by("name")
        self.fields["user"].choices = [
            (user.id, f"{user.name} <{user.email}>" if user.email else user.name or user.id)
            for user in users
        ]


def map_staff(request: HttpRequest, account_id: int) -> HttpResponse:
    """Map staff members to users of an organisation account (R5)."""
    _require(can_manage_accounts(request.user))
    organisation = get_object_or_404(
        ConferencingAccount, pk=account_id, staff__isnull=True, organisation__isnull=True
    )
    provider = _enabled(organisation.provider)
    try:
        users = provider.list_users(accounts.AccountHandle(organisation))
    except (ProviderError, NotImplementedError) as error:
        messages.error(request, str(getattr(error, "message", error)))
        users = []
    form = MapStaffForm(users, request.POST or None)
    if request.method == "POST" and form.is_valid():
        staff = form.cleaned_data["staff"]
        user = form.users[form.cleaned_data["user"]]
        with transaction.atomic():
            account = ConferencingAccount.objects.filter(staff=staff).first()
            if (
                account is not None
                and account.is_connected
                and account.organisation_id != organisation.pk
            ):
                messages.error(
                    request,
                    _("%(name)s has an account of their own. Disconnect it first.")
                    % {"name": staff.name},
                )
                return redirect("wagtail_bookings_vc_admin:map_staff", organisation.pk)
            account = account or ConferencingAccount(staff=staff)
            account.provider = organisation.provider
            account.organisation = organisation
            account.credentials = {}
            account.external_user_id = user.id
            account.external_email = user.email
            account.status = AccountStatus.CONNECTED
            account.last_error = ""
            account.connected_at = timezone.now()
            account.save()
            meetings.account_connected(account)
        messages.success(
            request,
            _("%(staff)s now hosts meetings as %(user)s.")
            % {"staff": staff.name, "user": user.email or user.name or user.id},
        )
        return redirect("wagtail_bookings_vc_admin:map_staff", organisation.pk)
    return _render(
        request,
        "map_staff.html",
        _("Staff of %(account)s") % {"account": organisation},
        form=form,
        organisation=organisation,
        mapped=organisation.mapped_accounts.select_related("staff").order_by("staff__name"),
    )


class VideoConferencingMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return can_manage_accounts(request.user)


class MyVideoAccountMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return can_manage_own_account(request.user)


def video_menu_item() -> MenuItem:
    """For the Bookings menu group: the site's video conferencing accounts."""
    return VideoConferencingMenuItem(
        gettext_lazy("Video conferencing"),
        reverse("wagtail_bookings_vc_admin:video_conferencing"),
        name="video-conferencing",
        icon_name="media",
        order=850,
    )


def video_main_menu_item() -> MenuItem:
    """For the main menu, next to the Bookings group (where groups take no items)."""
    return VideoConferencingMenuItem(
        gettext_lazy("Video conferencing"),
        reverse("wagtail_bookings_vc_admin:video_conferencing"),
        name="video-conferencing",
        icon_name="media",
        order=252,
    )


def my_account_menu_item() -> MenuItem:
    """For the main menu: a staff member's own video account (R4)."""
    return MyVideoAccountMenuItem(
        gettext_lazy("My video account"),
        reverse("wagtail_bookings_vc_admin:my_video_account"),
        name="my-video-account",
        icon_name="media",
        order=260,
    )


urlpatterns = [
    path("video/", video_conferencing, name="video_conferencing"),
    path("my-video-account/", my_video_account, name="my_video_account"),
    path("connect/<str:provider_id>/", connect, name="connect"),
    path("oauth/callback/", oauth_callback, name="oauth_callback"),
    path("accounts/<int:account_id>/disconnect/", disconnect, name="disconnect"),
    path("organisation/<str:provider_id>/", connect_organisation, name="connect_organisation"),
    path("accounts/<int:account_id>/staff/", map_staff, name="map_staff"),
]
