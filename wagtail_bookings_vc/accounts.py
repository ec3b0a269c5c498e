"""Which conferencing account applies to a meeting, and what happens when one fails."""

from __future__ import annotations

import logging
from functools import partial

from django.core.mail import mail_admins
from django.db import transaction
from django.utils.translation import gettext as _
from wagtail.models import Site

from .models import AccountStatus, ConferencingAccount, ConferencingSettings, Staff

logger = logging.getLogger(__name__)


def _site(site: Site | None) -> Site | None:
    return site or Site.objects.filter(is_default_site=True).first()


def conferencing_settings(site: Site | None = None) -> ConferencingSettings:
    """The video-conferencing site settings of ``site`` (default: the default site)."""
    site = _site(site)
    if site is None:
        return ConferencingSettings()
    return ConferencingSettings.for_site(site)


def default_account(site: Site | None = None) -> ConferencingAccount | None:
    """The site's default account as chosen in Settings → Video conferencing, if any."""
    settings = conferencing_settings(site)
    return settings.default_account if settings.default_account_id else None


def account_for(staff: Staff | None, site: Site | None = None) -> ConferencingAccount | None:
    """The account that makes meetings for ``staff``, or ``None`` when no link may be made.

    The staff member's own connected account comes first (R4), else the site's default
    account. The default account must exist and be connected in every case: while it
    is disconnected no automatic link is made or shown, even for staff with their own
    accounts (R3).
    """
    default = default_account(site)
    if default is None or not default.is_connected:
        return None
    if staff is not None:
        own = ConferencingAccount.objects.filter(staff=staff).first()
        if own is not None and own.is_connected:
            return own
    return default


def links_enabled(site: Site | None = None) -> bool:
    """Whether automatic meeting links may be shown at all (the default account is connected)."""
    default = default_account(site)
    return default is not None and default.is_connected


def store_credentials(account: ConferencingAccount) -> None:
    """Save the credentials a provider handed back (rotated tokens), and nothing else."""
    ConferencingAccount.objects.filter(pk=account.pk).update(credentials=account.credentials)


def mark_needs_reconnecting(account: ConferencingAccount, message: str) -> None:
    """Record that the provider refused the account's credentials, and tell the administrators.

    The administrators hear about it once, when the account changes to *needs
    reconnecting*, and only once that change is committed.
    """
    updated = (
        ConferencingAccount.objects.filter(pk=account.pk)
        .exclude(status=AccountStatus.NEEDS_RECONNECTING)
        .update(status=AccountStatus.NEEDS_RECONNECTING, last_error=message)
    )
    account.status = AccountStatus.NEEDS_RECONNECTING
    account.last_error = message
    if updated:
        logger.warning("Conferencing account %s needs reconnecting: %s", account.pk, message)
        subject = _("A video conferencing account needs reconnecting")
        body = _(
            "The account “%(account)s” was refused by its provider: %(message)s\n\n"
            "Meetings cannot be made through it until it is connected again in the admin."
        ) % {"account": account, "message": message}
        transaction.on_commit(partial(mail_admins, subject, body, fail_silently=True))
