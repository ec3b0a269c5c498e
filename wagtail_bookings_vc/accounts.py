"""Which conferencing account applies to a meeting, and what happens when one fails."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

from django.core.mail import mail_admins
from django.db import transaction
from django.utils.translation import gettext as _
from wagtail.models import Site

from .memo import remembered
from .models import AccountStatus, ConferencingAccount, ConferencingSettings, Staff

logger = logging.getLogger(__name__)


def default_site() -> Site | None:
    """The site marked as the default one, if any (read once inside a read scope)."""
    return remembered("default_site", lambda: Site.objects.filter(is_default_site=True).first())


def _site(site: Site | None) -> Site | None:
    return site or default_site()


def conferencing_settings(site: Site | None = None) -> ConferencingSettings:
    """The video-conferencing site settings of ``site`` (default: the default site)."""
    site = _site(site)
    if site is None:
        return ConferencingSettings()
    return remembered(
        ("conferencing_settings", site.pk), lambda: ConferencingSettings.for_site(site)
    )


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


_process_locks: dict[int, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(pk: int) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(pk, threading.Lock())


class AccountHandle:
    """What a provider sees of a stored account (a :class:`~.providers.ProviderAccount`).

    For a staff member mapped to a user of an organisation account (R5) the credentials
    are the organisation's and ``external_user_id`` is the mapped user's. Credentials a
    provider assigns are saved at once, encrypted, in their own statement: a rotated
    refresh token must outlive whatever fails next.

    Attributes:
        account: The account meetings are made for.
        holder: The account whose credentials are used (the organisation, or ``account``).
    """

    def __init__(self, account: ConferencingAccount) -> None:
        self.account = account
        self.holder = account.organisation if account.organisation_id else account

    def __repr__(self) -> str:
        return f"<AccountHandle account={self.account.pk} holder={self.holder.pk}>"

    @property
    def pk(self) -> int | None:
        """The primary key of the account meetings are made for."""
        return self.account.pk

    @property
    def credentials(self) -> dict[str, Any]:
        return self.holder.credentials or {}

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.holder.credentials = dict(value)
        if self.holder.pk is not None:
            ConferencingAccount.objects.filter(pk=self.holder.pk).update(
                credentials=self.holder.credentials
            )

    @property
    def external_user_id(self) -> str:
        return self.account.external_user_id

    @external_user_id.setter
    def external_user_id(self, value: str) -> None:
        self.account.external_user_id = value

    @property
    def external_email(self) -> str:
        return self.account.external_email

    @external_email.setter
    def external_email(self, value: str) -> None:
        self.account.external_email = value

    @contextlib.contextmanager
    def credentials_lock(self) -> Iterator[None]:
        """Refresh tokens one caller at a time, reading the stored credentials afresh.

        Threads of one process wait on a lock; processes wait on the account's row lock
        (PostgreSQL), or on SQLite's single writer once the first write is made.
        """
        if self.holder.pk is None:
            yield
            return
        with _process_lock(self.holder.pk), transaction.atomic():
            row = (
                ConferencingAccount.objects.select_for_update()
                .only("credentials")
                .get(pk=self.holder.pk)
            )
            self.holder.credentials = row.credentials or {}
            yield


def handle_for(account: ConferencingAccount | None) -> AccountHandle | None:
    """The :class:`AccountHandle` providers get for ``account`` (``None`` for none)."""
    return None if account is None else AccountHandle(account)


def tell_admins(subject: str, body: str) -> None:
    """Email the site's administrators (``ADMINS``); a mail server failing is only logged."""
    try:
        mail_admins(subject, body)
    except Exception:  # noqa: BLE001 - an alert must never break the job that raised it
        logger.exception("Could not email the administrators: %s", subject)


def tell_staff(staff_id: int, subject: str, body: str) -> None:
    """Email a staff member about their account or meetings (nothing without an address)."""
    from django.core.mail import send_mail

    from .notifications.context import sender

    staff = Staff.objects.filter(pk=staff_id).first()
    if staff is None or not staff.email:
        return
    try:
        send_mail(subject, body, sender(), [staff.email])
    except Exception:  # noqa: BLE001 - as above
        logger.exception("Could not email staff member %s: %s", staff_id, subject)


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
        transaction.on_commit(partial(tell_admins, subject, body))
        if account.staff_id:
            # The staff member can reconnect their own account (My video account).
            transaction.on_commit(partial(tell_staff, account.staff_id, subject, body))
