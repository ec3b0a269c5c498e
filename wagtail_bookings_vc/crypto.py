"""Encryption of secrets at rest (OAuth tokens and other provider credentials).

Values are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``)
under the keys in ``settings.WAGTAIL_BOOKINGS_VC["ENCRYPTION_KEYS"]``, newest first: new
values use the first key, and every key is tried when reading, so keys can be rotated
without downtime:

1. put a new key first and keep the old ones after it, deploy;
2. re-save the encrypted values (every save uses the first key; :func:`rotate` does it
   for a single value);
3. remove the old key.

Without ``ENCRYPTION_KEYS``, one key is derived from ``SECRET_KEY`` with HKDF-SHA256 (and
one more from each of ``SECRET_KEY_FALLBACKS``, so Django's own key rotation keeps old
values readable). That works out of the box, but ties the stored credentials to
``SECRET_KEY``; a system check recommends explicit keys.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from .conf import get_settings

__all__ = [
    "DecryptionError",
    "EncryptedJSONField",
    "check_encryption_keys",
    "decrypt_json",
    "derive_key",
    "encrypt_json",
    "generate_key",
    "get_fernet",
    "rotate",
    "uses_derived_key",
]

# Fixed, so that the same SECRET_KEY always derives the same key; changing either makes
# every stored value unreadable.
_HKDF_SALT = b"wagtail_bookings_vc"
_HKDF_INFO = b"wagtail_bookings_vc.crypto: Fernet key for secrets at rest, v1"

_GENERATE_HINT = (
    'Generate a key with `python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"` and set WAGTAIL_BOOKINGS_VC["ENCRYPTION_KEYS"] '
    "= [key], read from the environment or a secrets store."
)


class DecryptionError(Exception):
    """None of the configured keys can decrypt the value (or it was tampered with)."""


def generate_key() -> str:
    """Return a new random Fernet key, as text for ``ENCRYPTION_KEYS``."""
    return Fernet.generate_key().decode("ascii")


def derive_key(secret: str | bytes) -> bytes:
    """Derive a Fernet key from ``secret`` (HKDF-SHA256, fixed salt and info)."""
    material = secret.encode("utf-8") if isinstance(secret, str) else secret
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        material
    )
    return base64.urlsafe_b64encode(raw)


def _configured_keys() -> list[bytes]:
    keys = get_settings().values.get("ENCRYPTION_KEYS") or []
    if isinstance(keys, str | bytes) or not isinstance(keys, list | tuple):
        raise ImproperlyConfigured(
            'WAGTAIL_BOOKINGS_VC["ENCRYPTION_KEYS"] must be a list of keys, newest first.'
        )
    result: list[bytes] = []
    for index, key in enumerate(keys):
        raw = key.encode("ascii", "replace") if isinstance(key, str) else key
        try:
            Fernet(raw)
        except (TypeError, ValueError):
            # The message names the position only: the value is a secret.
            raise ImproperlyConfigured(
                f'WAGTAIL_BOOKINGS_VC["ENCRYPTION_KEYS"][{index}] is not a Fernet key '
                "(32 bytes, URL-safe base64)."
            ) from None
        result.append(raw)
    return result


def _keys() -> list[bytes]:
    keys = _configured_keys()
    if keys:
        return keys
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [derive_key(secret) for secret in secrets if secret]


def uses_derived_key() -> bool:
    """Return whether the key comes from ``SECRET_KEY`` (no ``ENCRYPTION_KEYS`` set)."""
    return not _configured_keys()


_lock = threading.Lock()
_fernet: MultiFernet | None = None


def get_fernet() -> MultiFernet:
    """Return the ``MultiFernet`` for the current settings (cached)."""
    global _fernet
    fernet = _fernet
    if fernet is None:
        with _lock:
            if _fernet is None:
                keys = _keys()
                if not keys:
                    raise ImproperlyConfigured(
                        "No encryption key: set ENCRYPTION_KEYS or SECRET_KEY."
                    )
                _fernet = MultiFernet([Fernet(key) for key in keys])
            fernet = _fernet
    return fernet


def reset_keys() -> None:
    """Forget the cached keys; the next call reads them from settings again."""
    global _fernet
    with _lock:
        _fernet = None


@receiver(setting_changed, dispatch_uid="wagtail_bookings_vc.crypto.reset")
def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"WAGTAIL_BOOKINGS_VC", "SECRET_KEY", "SECRET_KEY_FALLBACKS"}:
        reset_keys()


def encrypt_json(data: Mapping[str, Any]) -> str:
    """Return ``data`` as JSON encrypted with the newest key, as ASCII text.

    Raises:
        TypeError: ``data`` is not a mapping, or holds values JSON cannot encode.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"encrypt_json() takes a dict, not {type(data).__name__}.")
    plain = json.dumps(dict(data), separators=(",", ":"), sort_keys=True)
    return get_fernet().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt_json(token: str | bytes) -> dict[str, Any]:
    """Return the dict that :func:`encrypt_json` encrypted into ``token``.

    Raises:
        DecryptionError: No configured key fits, or the value was changed.
    """
    raw = token.encode("ascii", "replace") if isinstance(token, str) else token
    try:
        plain = get_fernet().decrypt(raw)
    except InvalidToken:
        raise DecryptionError(
            "None of the encryption keys can decrypt this value. Was a key removed from "
            'WAGTAIL_BOOKINGS_VC["ENCRYPTION_KEYS"], or SECRET_KEY changed?'
        ) from None
    try:
        data = json.loads(plain)
    except ValueError:
        raise DecryptionError("The decrypted value is not JSON.") from None
    if not isinstance(data, dict):
        raise DecryptionError("The decrypted value is not a dict.")
    return data


def rotate(token: str | bytes) -> str:
    """Return ``token`` re-encrypted with the newest key (same content and timestamp).

    Raises:
        DecryptionError: No configured key fits.
    """
    raw = token.encode("ascii", "replace") if isinstance(token, str) else token
    try:
        return get_fernet().rotate(raw).decode("ascii")
    except InvalidToken:
        raise DecryptionError("None of the encryption keys can decrypt this value.") from None


@register(Tags.security)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """System check: the encryption keys are valid, and set explicitly."""
    try:
        derived = uses_derived_key()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint=_GENERATE_HINT, id="wagtail_bookings_vc.E101")]
    if derived:
        return [
            CheckWarning(
                "Provider credentials are encrypted with a key derived from SECRET_KEY. If "
                "SECRET_KEY changes without the old one in SECRET_KEY_FALLBACKS, connected "
                "accounts can no longer be read and must be connected again.",
                hint=_GENERATE_HINT,
                id="wagtail_bookings_vc.W101",
            )
        ]
    return []


class EncryptedJSONField(models.TextField):
    """A dict stored as Fernet ciphertext in a text column.

    Python code sees a dict (or ``None``); the database, fixtures and ``dumpdata`` only
    see ciphertext. Each save encrypts with the newest key, so re-saving a row moves it to
    a new key. The field has no form field (secrets are not edited in forms) and supports
    no lookups but ``isnull``: the ciphertext differs at every save, so comparing it means
    nothing. Reading a value no key fits raises :class:`DecryptionError`; defer the field
    where a listing must work without the keys.

    Its migration holds no key material: keys are read from settings when used.
    """

    description = _("A dict, stored encrypted")

    def _decrypt(self, value: str) -> dict[str, Any]:
        return decrypt_json(value) if value else {}

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        return self._decrypt(value)

    def to_python(self, value: Any) -> dict[str, Any] | None:
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, str):
            try:
                return self._decrypt(value)
            except DecryptionError:
                raise ValidationError(
                    _("This value cannot be decrypted with the configured keys."),
                    code="invalid",
                ) from None
        raise ValidationError(_("Enter a dict."), code="invalid")

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt_json(value)

    def value_to_string(self, obj: models.Model) -> str:
        # Serializers (dumpdata, fixtures) get ciphertext, never the secrets themselves.
        return self.get_prep_value(self.value_from_object(obj)) or ""

    def formfield(self, **kwargs: Any) -> None:  # type: ignore[override]
        return None

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        return None

    def get_transform(self, lookup_name: str) -> Any:
        return None
