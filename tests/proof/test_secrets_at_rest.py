"""A dump of the database holds no provider secret in plain text; keys rotate without downtime.

Accounts are connected with OAuth tokens, an organisation's client secret and a JWT
secret, written through the model's encrypted field and through the handle providers
use to store refreshed tokens. Then every row of every table is read back raw, as a
database dump would show it, and so is ``dumpdata``'s output: no secret appears.

Rotation follows ``crypto.py``: a new key goes first with the old one after it; old rows
still read, every row saved from then on uses the new key, and once all rows are saved
again the old key can go.
"""

from __future__ import annotations

import io
import secrets

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from wagtail_bookings_vc import accounts
from wagtail_bookings_vc.crypto import DecryptionError, generate_key
from wagtail_bookings_vc.models import ConferencingAccount

pytestmark = pytest.mark.django_db


def fresh_secrets() -> dict[str, dict[str, str]]:
    """Credentials as three kinds of provider store them, with unmistakable values."""
    jwt_like = ".".join(secrets.token_urlsafe(24) for _ in range(3))
    return {
        "oauth": {
            "access_token": "at-" + secrets.token_urlsafe(32),
            "refresh_token": "rt-" + secrets.token_urlsafe(32),
            "id_token": "eyJ" + jwt_like,
        },
        "organisation": {
            "client_id": "cid-" + secrets.token_hex(8),
            "client_secret": "cs-" + secrets.token_urlsafe(32),
            "access_token": "at-" + secrets.token_urlsafe(32),
        },
        "jwt": {"app_id": "studio", "app_secret": "jwt-" + secrets.token_urlsafe(40)},
    }


def secret_values(credentials: dict[str, dict[str, str]]) -> set[str]:
    return {
        value
        for group in credentials.values()
        for key, value in group.items()
        if key not in {"client_id", "app_id"}
    }


def connect_accounts(credentials: dict[str, dict[str, str]]) -> list[ConferencingAccount]:
    site = ConferencingAccount.objects.create(
        provider="zoom", label="Studio Zoom", credentials=credentials["oauth"]
    )
    organisation = ConferencingAccount.objects.create(
        provider="microsoft_teams",
        label="Tenant",
        is_organisation=True,
        credentials=credentials["organisation"],
    )
    jitsi = ConferencingAccount.objects.create(provider="jitsi", label="JaaS", credentials={})
    # As a provider stores a refreshed token: through the handle, in its own statement.
    accounts.handle_for(jitsi).credentials = credentials["jwt"]
    return [site, organisation, jitsi]


def raw_dump() -> str:
    """Every value of every row of every table, as text (what a dump would show)."""
    chunks: list[str] = []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608 - names from the schema
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value).decode("latin-1"))
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks)


def raw_credentials(account: ConferencingAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM wagtail_bookings_vc_conferencingaccount WHERE id = %s",
            [account.pk],
        )
        return cursor.fetchone()[0]


def readable_with(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def use_keys(settings, keys: list[str]) -> None:
    settings.WAGTAIL_BOOKINGS_VC = {**settings.WAGTAIL_BOOKINGS_VC, "ENCRYPTION_KEYS": keys}


def test_a_dump_of_the_database_holds_no_secret(figures):
    credentials = fresh_secrets()
    connected = connect_accounts(credentials)
    wanted = secret_values(credentials)

    dump = raw_dump()
    exported = io.StringIO()
    call_command("dumpdata", "wagtail_bookings_vc", stdout=exported)

    found = [value for value in wanted if value in dump or value in exported.getvalue()]
    assert found == []
    # The dump did read the accounts' rows: their plain columns are there.
    assert "Studio Zoom" in dump and "Tenant" in exported.getvalue()
    # The rows are there, encrypted, and read back whole.
    for account in connected:
        assert raw_credentials(account).startswith("gAAAAA")
    assert {
        key: ConferencingAccount.objects.get(pk=account.pk).credentials
        for key, account in zip(credentials, connected, strict=True)
    } == credentials
    figures(
        "secrets at rest",
        tables_dumped=len(connection.introspection.table_names()),
        secrets_searched=len(wanted),
        found_in_plain_text=len(found),
    )


def test_keys_rotate_without_downtime(settings, figures):
    old_key = settings.WAGTAIL_BOOKINGS_VC["ENCRYPTION_KEYS"][0]
    credentials = fresh_secrets()
    site, organisation, jitsi = connect_accounts(credentials)
    expected = {site.pk: credentials["oauth"], organisation.pk: credentials["organisation"]}
    expected[jitsi.pk] = credentials["jwt"]

    def everything_reads() -> bool:
        return {
            account.pk: account.credentials for account in ConferencingAccount.objects.all()
        } == expected

    # 1. Deploy with the new key first and the old one after it.
    new_key = generate_key()
    use_keys(settings, [new_key, old_key])
    assert everything_reads()
    assert readable_with(old_key, raw_credentials(site))
    assert not readable_with(new_key, raw_credentials(site))

    # 2. Every save from now on uses the new key: a refreshed token, an edit.
    refreshed = {**credentials["oauth"], "access_token": "at-" + secrets.token_urlsafe(32)}
    accounts.handle_for(site).credentials = refreshed
    expected[site.pk] = refreshed
    assert readable_with(new_key, raw_credentials(site))
    assert not readable_with(old_key, raw_credentials(site))
    assert everything_reads()  # old and new rows side by side

    # Without the old key, the rows not saved again yet could not be read.
    use_keys(settings, [new_key])
    with pytest.raises(DecryptionError):
        ConferencingAccount.objects.get(pk=organisation.pk)

    # 3. Save the remaining rows again (under both keys), then drop the old key.
    use_keys(settings, [new_key, old_key])
    resaved = 0
    for account in ConferencingAccount.objects.all():
        if not readable_with(new_key, raw_credentials(account)):
            account.save(update_fields=["credentials"])
            resaved += 1
    use_keys(settings, [new_key])
    assert everything_reads()
    assert all(
        readable_with(new_key, raw_credentials(account))
        for account in ConferencingAccount.objects.all()
    )
    figures(
        "secrets at rest",
        rotation="new key first: old rows read, saves use the new key, old key dropped",
        rows_saved_again_before_dropping_the_old_key=resaved,
    )
